//! A report as sections, one per scenario that ran: its headline figures as (measurement,
//! value) rows and its latency sets, shared by the terminal table, the markdown and the plot.

use super::Report;
use crate::scenarios::chain::ChainReport;
use crate::scenarios::create::{CreateReport, Loops};
use crate::scenarios::follow::FollowReport;
use crate::scenarios::lifecycle::LifecycleReport;
use crate::scenarios::props::PropsReport;
use crate::scenarios::raw::RawReport;
use crate::scenarios::results::ResultsReport;
use crate::scenarios::steps::StepsReport;
use crate::stats::Latency;

pub struct Section {
    pub scenario: &'static str,
    pub rows: Vec<(String, String)>,
    /// Short series names (they label the plot's axis) with their percentiles.
    pub latencies: Vec<(String, Latency)>,
}

/// The sections in the order the bench runs the scenarios.
pub fn sections(report: &Report) -> Vec<Section> {
    [
        report.raw.as_ref().map(raw),
        report.chain.as_ref().map(chain),
        report.steps.as_ref().map(steps),
        report.props.as_ref().map(props),
        report.results.as_ref().map(results),
        report.create.as_ref().map(create),
        report.lifecycle.as_ref().map(lifecycle),
        report.follow.as_ref().map(follow),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn ms(value: f64) -> String {
    format!("{value:.1} ms")
}

fn rate(value: f64) -> String {
    format!("{value:.1}/s")
}

fn raw(r: &RawReport) -> Section {
    Section {
        scenario: "raw",
        rows: vec![
            ("container lifecycle p50".into(), ms(r.lifecycle.p50_ms)),
            ("container lifecycle p90".into(), ms(r.lifecycle.p90_ms)),
            (
                format!("container churn at {} concurrent", r.churn.concurrency),
                rate(r.churn.per_second),
            ),
            (
                format!("INSERT commits at {} concurrent", r.inserts.concurrency),
                rate(r.inserts.per_second),
            ),
            (
                format!("versioned tx at {} concurrent", r.versioned.concurrency),
                rate(r.versioned.per_second),
            ),
        ],
        latencies: vec![("raw container".into(), r.lifecycle.clone())],
    }
}

fn chain(c: &ChainReport) -> Section {
    let mut rows = vec![
        ("one-step change p50".into(), ms(c.single.p50_ms)),
        (
            format!("chain of {} steps", c.params.steps),
            ms(c.chain_total_ms),
        ),
        ("chain per step".into(), ms(c.chain_per_step_ms)),
    ];
    if let Some(b) = &c.breakdown {
        let share = |v: f64| {
            format!(
                "{} ({:.0}% of a step)",
                ms(v),
                100.0 * v / c.chain_per_step_ms
            )
        };
        for (phase, mean) in &b.container_phases {
            // Containers are created and started parked, beside the steps, and removed after
            // the hand-over: only the wait for one (take) and what follows are on a step's path.
            let note = match phase.as_str() {
                "create" | "start" => ", parked ahead (beside the steps)",
                "remove" => ", after the hand-over",
                "take" => ", the claimed step's wait for one",
                _ => "",
            };
            rows.push((format!("per step: container {phase}{note}"), share(*mean)));
        }
        rows.push((
            "per step: outside the container (messages, claim, result)".into(),
            share(b.outside_container_ms),
        ));
        for (queue, mean) in &b.message_handling {
            rows.push((format!("handling one {queue} delivery"), ms(*mean)));
        }
    }
    Section {
        scenario: "chain",
        rows,
        latencies: vec![
            ("one-step change".into(), c.single.clone()),
            ("chain step".into(), c.chain_step.clone()),
        ],
    }
}

fn steps(s: &StepsReport) -> Section {
    Section {
        scenario: "steps",
        rows: vec![
            (
                format!(
                    "{} changes × {} steps",
                    s.params.changes, s.params.steps_per_change
                ),
                format!("{:.2} s", s.makespan_secs),
            ),
            ("steps/s".into(), rate(s.steps_per_second)),
            (
                "change create→final p50".into(),
                ms(s.change_latency.p50_ms),
            ),
            ("per step (mean change ÷ K)".into(), ms(s.per_step_ms)),
        ],
        latencies: vec![
            ("steps: change".into(), s.change_latency.clone()),
            ("steps: step".into(), s.step_latency.clone()),
        ],
    }
}

fn props(p: &PropsReport) -> Section {
    Section {
        scenario: "props",
        rows: vec![
            (
                format!(
                    "{} clients × {} increments",
                    p.params.clients, p.params.increments
                ),
                format!("value {} at version {}", p.final_value, p.final_version),
            ),
            ("updates/s".into(), rate(p.updates_per_second)),
            ("412 retries".into(), p.retries.to_string()),
            ("increment p99".into(), ms(p.increment_latency.p99_ms)),
        ],
        latencies: vec![("props increment".into(), p.increment_latency.clone())],
    }
}

fn results(r: &ResultsReport) -> Section {
    Section {
        scenario: "results",
        rows: vec![
            ("results applied".into(), r.params.results.to_string()),
            ("applied/s".into(), rate(r.applied_per_second)),
            ("publish with confirms".into(), ms(r.publish_secs * 1000.0)),
        ],
        latencies: Vec::new(),
    }
}

fn create(c: &CreateReport) -> Section {
    let mut section = Section {
        scenario: "create",
        rows: Vec::new(),
        latencies: Vec::new(),
    };
    if let Some(alone) = &c.api_alone {
        let labels = (
            "api alone: ",
            "planner drain after the api-alone loops",
            "create, api alone",
        );
        add_loops(&mut section, c, alone, labels);
    }
    let with_planner = Loops {
        closed_loop: c.closed_loop.clone(),
        open_loop: c.open_loop.clone(),
        drain_secs: c.drain_secs,
    };
    add_loops(
        &mut section,
        c,
        &with_planner,
        ("", "planner drain after", "create"),
    );
    section
}

/// The rows and latencies of one closed and one open loop and the drain after them; `labels`:
/// the rows' prefix, the drain's row and the latencies' prefix.
fn add_loops(section: &mut Section, c: &CreateReport, loops: &Loops, labels: (&str, &str, &str)) {
    let (prefix, drain, latency) = labels;
    let (closed, open) = (&loops.closed_loop, &loops.open_loop);
    section.rows.extend([
        (
            format!("{prefix}closed loop, {} clients", c.params.concurrency),
            rate(closed.per_second),
        ),
        (
            format!("{prefix}closed loop p99"),
            ms(closed.latency.p99_ms),
        ),
        (
            format!("{prefix}open loop at {}/s", c.params.rate),
            rate(open.per_second),
        ),
        (format!("{prefix}open loop p99"), ms(open.latency.p99_ms)),
        (drain.to_owned(), format!("{:.1} s", loops.drain_secs)),
    ]);
    section.latencies.extend([
        (format!("{latency}: closed"), closed.latency.clone()),
        (format!("{latency}: open"), open.latency.clone()),
    ]);
}

fn lifecycle(l: &LifecycleReport) -> Section {
    Section {
        scenario: "lifecycle",
        rows: vec![
            (
                format!(
                    "step exit → next sibling start, p50 ({} siblings)",
                    l.params.siblings
                ),
                ms(l.exit_to_next_start.p50_ms),
            ),
            (
                "step exit → next sibling start, p99".into(),
                ms(l.exit_to_next_start.p99_ms),
            ),
            (
                format!(
                    "cancel request → container gone, p50 ({} cancels)",
                    l.params.cancels
                ),
                ms(l.cancel_to_gone.p50_ms),
            ),
            (
                "cancel request → container gone, max".into(),
                ms(l.cancel_to_gone.max_ms),
            ),
        ],
        latencies: vec![
            ("exit → next start".into(), l.exit_to_next_start.clone()),
            ("cancel → gone".into(), l.cancel_to_gone.clone()),
        ],
    }
}

fn follow(f: &FollowReport) -> Section {
    let reads = f.feed_reads + f.catch_up_reads;
    let cpu_ms = (f.api_cpu_seconds - f.api_cpu_seconds_unfollowed) * 1000.0;
    Section {
        scenario: "follow",
        rows: vec![
            (
                format!("{} followers × lines stored", f.params.followers),
                format!(
                    "{} lines, {} delivered, each exactly once in order",
                    f.lines, f.delivered
                ),
            ),
            (
                "database reads for the followers".into(),
                format!(
                    "{reads:.0} ({:.0} shared feed reads, {:.0} catch-up reads): {:.3} per line",
                    f.feed_reads,
                    f.catch_up_reads,
                    reads / f.lines.max(1) as f64
                ),
            ),
            (
                "api CPU, followed change (unfollowed)".into(),
                format!(
                    "{:.0} ms ({:.0} ms)",
                    f.api_cpu_seconds * 1000.0,
                    f.api_cpu_seconds_unfollowed * 1000.0
                ),
            ),
            (
                "api CPU the followers cost, per 1,000 lines delivered".into(),
                ms(cpu_ms * 1000.0 / f.delivered.max(1) as f64),
            ),
            (
                "delivery lag p50 (logged_at → follower)".into(),
                ms(f.delivery_lag.p50_ms),
            ),
            ("delivery lag p99".into(), ms(f.delivery_lag.p99_ms)),
            (
                "creation → last end event".into(),
                format!("{:.2} s", f.elapsed_secs),
            ),
        ],
        latencies: vec![("follow: lag".into(), f.delivery_lag.clone())],
    }
}

//! `docs/benchmarks.md`: the comparison table, the machine, the per-scenario figures and
//! percentiles, and a link to the latency plot.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use super::Report;
use super::sections::sections;
use super::table;

pub const MARKDOWN_FILE: &str = "benchmarks.md";
pub const PLOT_FILE: &str = "benchmarks-latency.png";

/// How each scenario measures, for readers of the document.
const HOW: &str = "\
* **raw** — without Gantry: the runner image running busybox `true` with the step container's \
hardening (create + start + wait + remove through the Docker API, one at a time, then 8 at once); \
single-row INSERT commits at the create scenario's concurrency and versioned transactions on one \
row (lock, `UPDATE … WHERE version = $v`, INSERT into a history table, commit) at 8, in a scratch \
database dropped afterwards. Each raw figure is measured right before and right after the Gantry \
scenario it is compared with, and the two are pooled (latencies into one histogram, rates as all \
events over all their time): the lifecycles around chain, the churn around steps, the versioned \
transactions around results, the INSERTs around create. The machine drifts within minutes; a \
figure measured on one side only moved the comparison with it.
* **chain** — one-step changes one after the other, then one change of sequential trivial steps; \
create→final from the server's timestamps.
* **steps** — N changes of K sequential trivial steps created at once (parallel changes allowed), \
run 8 at a time by the worker; steps/s over the first creation to the last finish.
* **props** — C clients incrementing one property with `If-Match` and retrying on 412; the final \
value must be C×M with every version in the history.
* **results** — N changes prepared with SQL in the state a runner leaves a claimed step, then N \
`step_result_v1` messages published to the results queue with confirms; results applied/s until \
all N changes are final.
* **create** — `POST /api/changes` of a change without a container (an action without command): \
after 10 unmeasured creations per client at the concurrency (the api's and the client's \
connections opened, statements prepared), a closed loop at that concurrency and an open loop at \
a target rate (latency from the scheduled send time), then the time the planner needs to finish \
them all. Both loops run twice: first with the worker's process stopped (`SIGSTOP`; its plan \
messages wait in the queue), the api alone, then with the planner running on the same two cores, \
the figure compared with the target. Creations arriving together are written in one statement \
with one plan message (a group commit), and planned set-based in batches.
* **lifecycle** — timed by the Docker engine's own container events: a chain of trivial sequential \
steps, each gap from one container's `die` to the next sibling's `start`; then changes whose step \
sleeps, each cancelled once its container started, from just before `DELETE /api/changes/{id}` to \
the container's `destroy`.
* **follow** — a change whose step prints 2,000 lines over about two seconds, followed from its \
creation by 100 clients (`?follow=true`, Server-Sent Events), each checked to get every stored line \
exactly once, in order, then the end event; the api's reads for the followers and its CPU time \
from its `/metrics` before and after, beside its CPU time for the same change unfollowed; each \
line's delay from its `logged_at` to its arrival at a follower.

Before each Gantry scenario the bench runs `VACUUM ANALYZE` on Gantry's database, as autovacuum \
would between them: the PostgreSQL of this machine kind runs with autovacuum off, and each \
scenario would otherwise run on the dead rows and stale statistics of the ones before.
";

pub fn render(report: &Report) -> String {
    let mut md = String::new();
    let date = report
        .machine
        .as_ref()
        .map_or("an unknown date", |m| m.date.as_str());
    let size = report.size.as_deref().unwrap_or("custom");
    let runs = report.runs.len().max(1);
    let repeated = if runs > 1 {
        format!(
            "Every scenario ran {runs} times: each row is its median run (the rest of this page \
             is of the last run), with the least and the most of the figure its target judges. "
        )
    } else {
        "One run. ".to_owned()
    };
    let _ = writeln!(
        md,
        "# Gantry benchmarks\n\n\
         Measured by `make bench` (`gantry-loadtest bench --size {size} --runs {runs}`) on {date}, \
         Gantry {}: the release api and worker (8 concurrent steps) against PostgreSQL, RabbitMQ \
         and Docker on the same machine, beside the raw figures of that machine without Gantry. \
         {repeated}One machine: compare runs on the same machine only. The full results are in \
         `benchmarks.json`.\n",
        report.gantry_version
    );
    let _ = writeln!(md, "## Gantry against the physical limits\n");
    let _ = writeln!(md, "{}\n", table::comparisons(&report.comparisons, true));
    if let Some(m) = &report.machine {
        let _ = writeln!(md, "## Machine\n");
        let _ = writeln!(md, "| | |\n|---|---|");
        for (k, v) in [
            ("CPU", m.cpu.clone()),
            ("cores", m.cores.to_string()),
            ("RAM", format!("{} GiB", m.memory_gib)),
            ("kernel", m.kernel.clone()),
            ("Docker", m.docker.clone()),
            ("PostgreSQL", m.postgres.clone()),
            ("RabbitMQ", m.rabbitmq.clone()),
            ("date", m.date.clone()),
        ] {
            let _ = writeln!(md, "| {k} | {v} |");
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## Scenarios\n\n{HOW}");
    for section in sections(report) {
        let _ = writeln!(md, "### {}\n", section.scenario);
        let _ = writeln!(md, "| measurement | value |\n|---|---|");
        for (k, v) in &section.rows {
            let _ = writeln!(md, "| {k} | {v} |");
        }
        md.push('\n');
        if !section.latencies.is_empty() {
            let _ = writeln!(md, "{}\n", table::percentiles(&section.latencies, true));
        }
    }
    if !report.errors.is_empty() {
        let _ = writeln!(md, "## Failed scenarios\n");
        for e in &report.errors {
            let _ = writeln!(md, "* **{}**: {}", e.scenario, e.message.replace('\n', " "));
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "## Latency percentiles\n\n![Latency percentiles per scenario]({PLOT_FILE})"
    );
    md
}

/// Writes `benchmarks.md` and `benchmarks-latency.png` into `dir`.
pub fn write(report: &Report, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let series: Vec<_> = sections(report)
        .into_iter()
        .flat_map(|s| s.latencies)
        .collect();
    super::plot::write_png(&dir.join(PLOT_FILE), &series)?;
    let path = dir.join(MARKDOWN_FILE);
    std::fs::write(&path, render(report)).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Machine, ScenarioError, targets};
    use crate::scenarios::raw::{RawParams, RawReport, Throughput};
    use crate::scenarios::results::{ResultsParams, ResultsReport};
    use crate::stats::Latency;

    fn latency(p50: f64) -> Latency {
        Latency {
            count: 10,
            mean_ms: p50 * 1.1,
            p50_ms: p50,
            p90_ms: p50 * 1.5,
            p99_ms: p50 * 2.0,
            max_ms: p50 * 3.0,
        }
    }

    fn throughput(per_second: f64) -> Throughput {
        Throughput {
            concurrency: 8,
            count: 100,
            elapsed_secs: 100.0 / per_second,
            per_second,
        }
    }

    fn report() -> Report {
        let mut report = Report::new();
        report.machine = Some(Machine {
            cpu: "Test CPU".into(),
            cores: 2,
            memory_gib: 24.0,
            kernel: "6.1".into(),
            docker: "20.10".into(),
            postgres: "15".into(),
            rabbitmq: "3.10".into(),
            date: "2026-01-01T00:00:00Z".into(),
        });
        report.raw = Some(RawReport {
            params: RawParams {
                lifecycles: 10,
                churn_containers: 100,
                churn_concurrency: 8,
                inserts: 100,
                insert_concurrency: 32,
                versioned: 100,
                versioned_concurrency: 8,
            },
            lifecycle: latency(120.0),
            churn: throughput(20.0),
            inserts: throughput(5000.0),
            versioned: throughput(2000.0),
        });
        report.results = Some(ResultsReport {
            params: ResultsParams { results: 100 },
            publish_secs: 0.1,
            elapsed_secs: 0.5,
            applied_per_second: 1200.0,
            changes_successful: 100,
            properties_version: 101,
        });
        report.errors.push(ScenarioError {
            scenario: "steps".into(),
            message: "it broke".into(),
        });
        report.comparisons = targets::compare(&report);
        report
    }

    #[test]
    fn the_markdown_has_the_comparison_table_the_machine_and_the_plot_link() {
        let md = render(&report());
        assert!(md.contains("| Gantry figure"), "{md}");
        assert!(md.contains("| step results applied/s"), "{md}");
        assert!(md.contains("0.600×"), "the results ratio 1200/2000: {md}");
        assert!(md.contains("| CPU | Test CPU |"), "{md}");
        assert!(md.contains("| raw container"), "{md}");
        assert!(md.contains("**steps**: it broke"), "{md}");
        assert!(md.contains(&format!("]({PLOT_FILE})")), "{md}");
    }

    #[test]
    fn the_writer_writes_the_markdown_and_a_png_plot() {
        let dir = tempfile::tempdir().unwrap();
        write(&report(), dir.path()).unwrap();
        let png = std::fs::read(dir.path().join(PLOT_FILE)).unwrap();
        assert!(png.len() > 1000, "a plot of {} bytes", png.len());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let md = std::fs::read_to_string(dir.path().join(MARKDOWN_FILE)).unwrap();
        assert!(md.starts_with("# Gantry benchmarks"));
    }
}

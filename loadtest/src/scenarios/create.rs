//! `create`: change creations per second through `POST /api/changes`, closed-loop (a fixed number
//! of clients, each sending its next request when the previous one answered) and open-loop (a
//! target rate, latency measured from each request's scheduled time so a slow server cannot hide
//! its queueing). The changes run the manifest action `noop`, which has no command: the smallest
//! valid change, planned and finished without a container. The scenario waits until the planner
//! has caught up, so no backlog is left behind for what runs next.
//!
//! Given the planner's process, both loops first run with it stopped (`SIGSTOP`, then `SIGCONT`:
//! its messages wait in the queue meanwhile), so the api alone is measured beside the api with
//! the planner running on the same cores.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::Api;
use crate::fixture::{BenchProject, Fixture, manifest};
use crate::progress;
use crate::stats::{Latency, Recorder, per_second};

/// Requests in flight at most in the open loop; beyond it, requests wait (and their latency,
/// measured from their scheduled time, shows it).
const MAX_IN_FLIGHT: usize = 512;

/// Unmeasured creations per client before the measured loops.
pub const WARM_UP_PER_CLIENT: usize = 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateParams {
    /// Closed loop: clients sending at once, and changes created in all.
    pub concurrency: usize,
    pub count: usize,
    /// Open loop: the target rate (changes/s) and how long it is held, in seconds.
    pub rate: f64,
    pub duration_secs: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateReport {
    pub params: CreateParams,
    /// Both loops with the planner's process stopped, when it was given.
    #[serde(default)]
    pub api_alone: Option<Loops>,
    /// Creations before the measured loops, not measured.
    pub warm_up: usize,
    pub closed_loop: LoopResult,
    pub open_loop: LoopResult,
    /// Seconds from the end of the open loop until every change was final.
    pub drain_secs: f64,
    /// Changes created in all and how many of them did not end in `success`.
    pub created: usize,
    pub unsuccessful: usize,
}

/// Both loops, and how long the planner took to finish what they created once they were over
/// (with the planner stopped during the loops: once it went on).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Loops {
    pub closed_loop: LoopResult,
    pub open_loop: LoopResult,
    pub drain_secs: f64,
}

/// A process stopped with `SIGSTOP` until this is dropped (`SIGCONT`).
struct Stopped(u32);

impl Stopped {
    fn new(pid: u32) -> anyhow::Result<Self> {
        signal(pid, "-STOP")?;
        Ok(Self(pid))
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Err(e) = signal(self.0, "-CONT") {
            eprintln!(
                "gantry-loadtest: the planner (pid {}) could not be continued: {e:#}",
                self.0
            );
        }
    }
}

fn signal(pid: u32, which: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args([which, &pid.to_string()])
        .status()?;
    if !status.success() {
        bail!("kill {which} {pid}: {status}");
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoopResult {
    pub sent: usize,
    pub errors: usize,
    pub elapsed_secs: f64,
    /// Successful creations per second.
    pub per_second: f64,
    pub latency: Latency,
}

/// Runs the scenario; with `planner_pid`, the loops run first with that process stopped.
pub async fn run(
    api: &Api,
    fixture: &Fixture,
    params: &CreateParams,
    planner_pid: Option<u32>,
) -> anyhow::Result<CreateReport> {
    let project = fixture
        .project(api, "create", Some(&manifest(&[])), true)
        .await?;
    // One change first, so the worker's Git mirror of the remote exists before timing starts.
    let warm = api
        .create_change(&project.code, &project.environment, "noop")
        .await?;
    api.wait_final(&warm, Duration::from_millis(20), Duration::from_secs(60))
        .await?;
    // A warm-up burst at the scenario's concurrency, not measured: the api's pool opens its
    // connections and prepares its statements, and the client its connections, as a running
    // server has long done. Measured cold, the closed loop paid for that: 1,500 creations at 32
    // clients with the planner stopped ran at 1572–1843/s cold and 2398–2500/s after this.
    let warm_up = closed_loop(
        api,
        &project,
        params.concurrency,
        WARM_UP_PER_CLIENT * params.concurrency,
        "warm-up",
    )
    .await;
    if warm_up.errors > 0 {
        bail!(
            "{} of the warm-up's change creations failed",
            warm_up.errors
        );
    }
    let api_alone = match planner_pid {
        None => None,
        Some(pid) => {
            let stopped = Stopped::new(pid)?;
            Some(both_loops(api, &project, params, Some(stopped)).await?)
        }
    };
    let Loops {
        closed_loop,
        open_loop,
        drain_secs,
    } = both_loops(api, &project, params, None).await?;
    let unsuccessful = api.unsuccessful_changes(&project.code).await?.len();
    let alone = api_alone
        .as_ref()
        .map_or(0, |a| a.closed_loop.sent + a.open_loop.sent);
    let created = 1 + warm_up.sent + alone + closed_loop.sent + open_loop.sent;
    Ok(CreateReport {
        params: params.clone(),
        api_alone,
        warm_up: warm_up.sent,
        closed_loop,
        open_loop,
        drain_secs,
        created,
        unsuccessful,
    })
}

/// The closed loop, then the open loop, then the planner's drain; with the planner `stopped`
/// during the loops (continued before the drain), the api alone.
async fn both_loops(
    api: &Api,
    project: &BenchProject,
    params: &CreateParams,
    stopped: Option<Stopped>,
) -> anyhow::Result<Loops> {
    let (closed, open) = match stopped {
        Some(_) => ("closed, api alone", "open, api alone"),
        None => ("closed", "open"),
    };
    let closed_loop = closed_loop(api, project, params.concurrency, params.count, closed).await;
    let open_loop = open_loop(api, project, params, open).await;
    drop(stopped);
    check(&closed_loop, &open_loop)?;
    Ok(Loops {
        closed_loop,
        open_loop,
        drain_secs: drain(api, project).await?,
    })
}

/// Fails when a creation of either loop failed.
fn check(closed: &LoopResult, open: &LoopResult) -> anyhow::Result<()> {
    if closed.errors + open.errors > 0 {
        bail!(
            "{} change creations failed (closed loop {}, open loop {})",
            closed.errors + open.errors,
            closed.errors,
            open.errors
        );
    }
    Ok(())
}

/// Seconds until the planner has finished every change of the project.
async fn drain(api: &Api, project: &BenchProject) -> anyhow::Result<f64> {
    let drained = Instant::now();
    let spinner = progress::spinner("create", "waiting for the planner to finish every change");
    api.wait_project_idle(
        &project.code,
        Duration::from_millis(200),
        Duration::from_secs(900),
    )
    .await?;
    spinner.finish_and_clear();
    Ok(drained.elapsed().as_secs_f64())
}

/// One creation: whether the API answered 201.
async fn create_one(api: &Api, body: &serde_json::Value) -> bool {
    matches!(
        api.send(reqwest::Method::POST, "/api/changes", Some(body), None).await,
        Ok(answer) if answer.status == 201
    )
}

async fn closed_loop(
    api: &Api,
    project: &BenchProject,
    concurrency: usize,
    count: usize,
    label: &'static str,
) -> LoopResult {
    let body = Arc::new(Api::change_body(
        &project.code,
        &project.environment,
        "noop",
    ));
    let next = Arc::new(AtomicUsize::new(0));
    let bar = progress::bar(count as u64, label);
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (api, body, next, bar) = (api.clone(), body.clone(), next.clone(), bar.clone());
        clients.spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0);
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let sent = Instant::now();
                if !create_one(&api, &body).await {
                    errors += 1;
                }
                latencies.push(sent.elapsed());
                bar.inc(1);
            }
            (latencies, errors)
        });
    }
    let (latencies, errors) = collect(clients).await;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    LoopResult {
        sent: count,
        errors,
        elapsed_secs: elapsed.as_secs_f64(),
        per_second: per_second(count - errors, elapsed),
        latency: latencies.summary(),
    }
}

async fn open_loop(
    api: &Api,
    project: &BenchProject,
    params: &CreateParams,
    label: &'static str,
) -> LoopResult {
    let body = Arc::new(Api::change_body(
        &project.code,
        &project.environment,
        "noop",
    ));
    let total = (params.rate * params.duration_secs).round().max(1.0) as usize;
    let bar = progress::bar(total as u64, label);
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let started = tokio::time::Instant::now();
    let mut requests = JoinSet::new();
    for i in 0..total {
        let scheduled = started + Duration::from_secs_f64(i as f64 / params.rate);
        tokio::time::sleep_until(scheduled).await;
        let permit = in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (api, body, bar) = (api.clone(), body.clone(), bar.clone());
        requests.spawn(async move {
            let ok = create_one(&api, &body).await;
            drop(permit);
            bar.inc(1);
            (vec![scheduled.elapsed()], usize::from(!ok))
        });
    }
    let (latencies, errors) = collect(requests).await;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    LoopResult {
        sent: total,
        errors,
        elapsed_secs: elapsed.as_secs_f64(),
        per_second: per_second(total - errors, elapsed),
        latency: latencies.summary(),
    }
}

/// The latencies and error counts of finished tasks, together.
async fn collect(mut tasks: JoinSet<(Vec<Duration>, usize)>) -> (Recorder, usize) {
    let (mut all, mut errors) = (Recorder::default(), 0);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((latencies, failed)) => {
                latencies.into_iter().for_each(|l| all.record(l));
                errors += failed;
            }
            Err(_) => errors += 1,
        }
    }
    (all, errors)
}

//! `hostile`: steps that turn on their own container (RELIABILITY S9, S13, S18), all at once,
//! while the api is probed every 100 ms. Each must end as designed with its reason in its log,
//! its container removed, and the api answering throughout:
//!
//! * S9: a step whose container is killed from outside (`docker kill`), a step past its timeout;
//! * S13: a fork bomb (the pids limit), a memory hog (the memory limit: the kernel's OOM killer),
//!   a CPU spin (the CPU limit, ended by its timeout), a disk fill of the scratch directory;
//! * S18: a step printing a line with invalid UTF-8 and NUL bytes, a 100 MB line and 1 GiB,
//!   then exiting 3: the stored log is capped with a truncation marker and the exit code kept.
//!
//! The worker's memory while it streams the flood is sampled by the script around it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bollard::query_parameters::KillContainerOptions;
use gantry_shared::settings::Settings;
use serde::{Deserialize, Serialize};

use super::raw::connect_docker;
use super::recorded;
use crate::client::{Api, status_of};
use crate::fixture::Fixture;

/// One hostile step: its action, what it runs, and how it must end.
struct Case {
    action: &'static str,
    scenario: &'static str,
    run: &'static str,
    timeout: Option<u64>,
    /// What its log must hold (part of a line); `|` separates alternatives.
    reason: &'static str,
}

const CASES: &[Case] = &[
    Case {
        action: "killed",
        scenario: "S9",
        run: "sleep 300",
        timeout: None,
        reason: "killed (SIGKILL) by something other than Gantry",
    },
    Case {
        action: "overtime",
        scenario: "S9",
        run: "sleep 300",
        timeout: Some(3),
        reason: "timed out after 3 seconds",
    },
    Case {
        action: "fork_bomb",
        scenario: "S13",
        // The bomb either keeps the shell waiting until the timeout or, once the pids limit is
        // reached, fails the shell's own fork: either way the limit holds and the step fails.
        run: "b() { b | b; }; b",
        timeout: Some(15),
        reason: "timed out after 15 seconds|can't fork",
    },
    Case {
        action: "memory_hog",
        scenario: "S13",
        run: "head -c 2000m /dev/zero | tail -c 1900m > /dev/null",
        timeout: Some(120),
        reason: "ran out of memory",
    },
    Case {
        action: "cpu_spin",
        scenario: "S13",
        run: "while :; do :; done",
        timeout: Some(8),
        reason: "timed out after 8 seconds",
    },
    Case {
        action: "disk_fill",
        scenario: "S13",
        run: "dd if=/dev/zero of=/tmp/fill bs=1M count=1024",
        timeout: Some(120),
        reason: "No space left on device",
    },
    Case {
        action: "flood",
        scenario: "S18",
        run: "printf 'bad \\377\\376 nul \\000 end\\n'; head -c 100000000 /dev/zero | tr '\\000' a; echo; \
              yes 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde | head -c 1073741824; exit 3",
        timeout: Some(600),
        reason: "[log truncated",
    },
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostileParams {
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostileCase {
    pub scenario: String,
    pub action: String,
    pub status: String,
    /// The reason line it had to log.
    pub reason: String,
    pub reason_logged: bool,
    pub seconds: f64,
    /// Bytes of the step's stored log (the flood's must stay near the cap).
    pub stored_bytes: usize,
    pub passed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostileReport {
    pub cases: Vec<HostileCase>,
    /// The api's slowest and median answer while the steps ran (`GET /api/projects`).
    pub api_max_ms: f64,
    pub api_p50_ms: f64,
    pub api_failures: usize,
    /// Step containers of these changes left after they ended.
    pub containers_left: usize,
    /// The flood's line with invalid UTF-8 and NUL bytes was stored (lossily) and the exit code
    /// 3 was kept.
    pub flood_exit_code_kept: bool,
    pub flood_bad_bytes_stored: bool,
}

fn manifest() -> String {
    let mut yaml = String::from("actions:\n");
    for case in CASES {
        yaml.push_str(&format!("  {}:\n    run: {:?}\n", case.action, case.run));
        if let Some(timeout) = case.timeout {
            yaml.push_str(&format!("    timeout: {timeout}\n"));
        }
    }
    yaml
}

pub async fn run(
    api: &Api,
    settings: &Settings,
    fixture: &Fixture,
    params: &HostileParams,
) -> anyhow::Result<HostileReport> {
    let project = fixture
        .project(api, "hostile", Some(&manifest()), true)
        .await?;
    let docker = connect_docker().await?;
    let db = recorded::connect(settings).await?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let probe = tokio::spawn(probe(api.clone(), seen.clone()));
    let mut changes = Vec::new();
    for case in CASES {
        let id = api
            .create_change(&project.code, &project.environment, case.action)
            .await
            .with_context(|| format!("creating the {} change", case.action))?;
        changes.push((case, id, Instant::now()));
    }
    let killed = &changes[0].1;
    kill_when_running(&docker, &db, killed, params.timeout).await?;

    let mut cases = Vec::new();
    let (mut exit_kept, mut bad_bytes) = (false, false);
    for (case, id, created) in &changes {
        let change = api
            .wait_final(id, Duration::from_millis(250), params.timeout)
            .await?;
        let seconds = created.elapsed().as_secs_f64();
        let lines = api
            .list_all(&format!("/api/changes/{id}/log_lines?limit=1000"))
            .await?;
        let texts: Vec<&str> = lines
            .iter()
            .filter_map(|l| l["attributes"]["text"].as_str())
            .collect();
        let reason_logged = case
            .reason
            .split('|')
            .any(|reason| texts.iter().any(|t| t.contains(reason)));
        let stored_bytes = texts.iter().map(|t| t.len()).sum();
        if case.action == "flood" {
            exit_kept = texts.iter().any(|t| t.contains("status code: 3"));
            bad_bytes = texts
                .iter()
                .any(|t| t.starts_with("bad ") && t.contains("end"));
        }
        let status = status_of(&change).to_owned();
        cases.push(HostileCase {
            scenario: case.scenario.to_owned(),
            action: case.action.to_owned(),
            passed: status == "error" && reason_logged,
            status,
            reason: case.reason.to_owned(),
            reason_logged,
            seconds,
            stored_bytes,
        });
    }
    probe.abort();
    let latencies = seen.lock().expect("not poisoned").clone();
    let ids: Vec<String> = changes.iter().map(|(_, id, _)| id.clone()).collect();
    let containers_left = containers_left(&docker, &db, &ids, params.timeout).await?;
    let mut answered: Vec<f64> = latencies.iter().filter_map(|l| *l).collect();
    answered.sort_by(f64::total_cmp);
    Ok(HostileReport {
        cases,
        api_max_ms: answered.last().copied().unwrap_or(f64::NAN),
        api_p50_ms: answered
            .get(answered.len() / 2)
            .copied()
            .unwrap_or(f64::NAN),
        api_failures: latencies.iter().filter(|l| l.is_none()).count(),
        containers_left,
        flood_exit_code_kept: exit_kept,
        flood_bad_bytes_stored: bad_bytes,
    })
}

/// `GET /api/projects` every 100 ms until aborted, each answer's milliseconds into `seen`
/// (`None` for a failure or no answer within 10 s).
async fn probe(api: Api, seen: Arc<Mutex<Vec<Option<f64>>>>) {
    loop {
        let started = Instant::now();
        let answer =
            tokio::time::timeout(Duration::from_secs(10), api.get("/api/projects?limit=1")).await;
        let ms = matches!(answer, Ok(Ok(_))).then(|| started.elapsed().as_secs_f64() * 1e3);
        seen.lock().expect("not poisoned").push(ms);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for the container of change `id` to be given its step, then kills it from outside, as
/// an operator or another program on the host would.
async fn kill_when_running(
    docker: &bollard::Docker,
    db: &tokio_postgres::Client,
    id: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let container = recorded::wait_given(db, id.parse()?, timeout).await?;
    // Let the step get past its start before the kill.
    tokio::time::sleep(Duration::from_secs(1)).await;
    docker
        .kill_container(&container, None::<KillContainerOptions>)
        .await
        .context("killing the step container from outside")?;
    Ok(())
}

/// Step containers of `ids` still there once the changes ended (given time to be removed).
async fn containers_left(
    docker: &bollard::Docker,
    db: &tokio_postgres::Client,
    ids: &[String],
    timeout: Duration,
) -> anyhow::Result<usize> {
    let changes = ids
        .iter()
        .map(|id| id.parse())
        .collect::<Result<Vec<uuid::Uuid>, _>>()?;
    let deadline = Instant::now() + timeout.min(Duration::from_secs(60));
    loop {
        let given = recorded::recorded(db, &changes).await?;
        let left = super::raw::step_containers(docker)
            .await?
            .iter()
            .filter(|name| given.contains_key(*name))
            .count();
        if left == 0 || Instant::now() > deadline {
            return Ok(left);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Fails unless every case ended as designed, nothing was left and the api kept answering.
pub fn verdict(report: &HostileReport) -> anyhow::Result<()> {
    let failed: Vec<&str> = report
        .cases
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.action.as_str())
        .collect();
    anyhow::ensure!(
        failed.is_empty()
            && report.containers_left == 0
            && report.api_failures == 0
            && report.flood_exit_code_kept
            && report.flood_bad_bytes_stored,
        "hostile steps not handled as designed: failed {failed:?}, {} containers left, {} api \
         failures, flood exit code kept: {}, bad bytes stored: {}",
        report.containers_left,
        report.api_failures,
        report.flood_exit_code_kept,
        report.flood_bad_bytes_stored
    );
    Ok(())
}

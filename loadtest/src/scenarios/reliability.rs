//! `reliability`: changes submitted to several api processes while the script around it injects
//! faults (RELIABILITY.md; `make reliability` runs the scenarios), then the invariants checked
//! from the outside — the database, the broker's outbox and the Docker engine's own events:
//!
//! * I1: every change an api accepted (201, or 200 for a retried `Idempotency-Key`) ends final;
//! * duplicated effects: no step finished twice (two `step:*` final events), no change with more
//!   steps than its manifest makes;
//! * I3: no two attempts of one step ran at once (their containers' `start`–`die` intervals, on
//!   the engine's clock, do not overlap);
//! * I5: afterwards everything drains — no unpublished outbox row, no step holding a lease, no
//!   step container of these changes left.
//!
//! A submission that fails (an api down, a connection cut) is retried with its key on the next
//! api, so a change is never made twice and never lost to the client.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use gantry_shared::settings::Settings;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tokio_postgres::NoTls;
use uuid::Uuid;

use super::lifecycle::{ContainerEvent, step_events};
use super::raw::connect_docker;
use crate::client::{Api, resource_id};
use crate::fixture::Fixture;

/// Two sequential steps: a change is K = 2 steps.
const MANIFEST: &str = "actions:\n  default: { steps: [one, two] }\n  one: { run: \"sleep 0.2\" }\n  two: { run: \"true\" }\n";
/// Steps a change of [`MANIFEST`] has: the root and its two children.
const STEPS_PER_CHANGE: i64 = 3;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReliabilityParams {
    pub changes: usize,
    /// Base URLs of the api processes, used in turn.
    pub apis: Vec<String>,
    /// How long the changes may take to end, and then to drain.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReliabilityReport {
    pub submitted: usize,
    pub accepted: usize,
    pub final_: usize,
    pub succeeded: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub overlapping: usize,
    /// From the last accepted submission to every change final.
    pub recovery_seconds: f64,
    pub peak_outbox_depth: i64,
    pub drained: bool,
    /// Submissions that had to be retried (an api down or a connection cut).
    pub retried_submissions: usize,
}

pub async fn run(
    token: &str,
    fixture: &Fixture,
    settings: &Settings,
    params: &ReliabilityParams,
) -> anyhow::Result<ReliabilityReport> {
    let apis: Vec<Api> = params.apis.iter().map(|u| Api::new(u, token)).collect();
    let first = apis.first().context("no api URL given")?;
    let project = fixture
        .project(first, "reliability", Some(MANIFEST), true)
        .await?;
    let (db, connection) = tokio_postgres::connect(settings.database.url.expose_secret(), NoTls)
        .await
        .context("connecting to Gantry's database")?;
    tokio::spawn(connection);
    let docker = connect_docker().await?;
    let events = step_events(&docker);
    let events = tokio::spawn(events.collect::<Vec<ContainerEvent>>());
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let sampler = tokio::spawn(sample_outbox(settings.clone(), peak.clone()));

    let (ids, retried) = submit(&apis, &project.code, &project.environment, params.changes).await;
    let submitted_at = Instant::now();
    let ids: Vec<Uuid> = ids.iter().filter_map(|id| id.parse().ok()).collect();
    let (final_, succeeded) = wait_final(&db, &ids, params.timeout).await?;
    let recovery_seconds = submitted_at.elapsed().as_secs_f64();
    let drained = wait_drained(&db, &docker, &ids, params.timeout).await?;
    explain_unsuccessful(&db, &ids).await?;
    sampler.abort();
    events.abort();
    let events = events.await.unwrap_or_default();
    Ok(ReliabilityReport {
        submitted: params.changes,
        accepted: ids.len(),
        final_,
        succeeded,
        lost: ids.len() - final_,
        duplicated: duplicated(&db, &ids).await?,
        overlapping: overlapping(&events, &ids),
        recovery_seconds,
        peak_outbox_depth: peak.load(std::sync::atomic::Ordering::Relaxed),
        drained,
        retried_submissions: retried,
    })
}

/// Submits `count` changes, each with its own `Idempotency-Key`, to the apis in turn; a failed
/// submission is retried with the same key on the next api for up to two minutes.
async fn submit(
    apis: &[Api],
    project: &str,
    environment: &str,
    count: usize,
) -> (Vec<String>, usize) {
    let body = Api::change_body(project, environment, "default");
    let mut ids = Vec::with_capacity(count);
    let mut retried = 0;
    for n in 0..count {
        let key = Uuid::new_v4().to_string();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut attempt = 0;
        loop {
            let api = &apis[(n + attempt) % apis.len()];
            match api.create_change_with_key(&body, &key).await {
                Ok(created) => {
                    if let Ok(id) = resource_id(&created) {
                        ids.push(id);
                    }
                    break;
                }
                Err(_) if Instant::now() < deadline => {
                    attempt += 1;
                    retried += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    eprintln!("gantry-loadtest: change {n} was never accepted: {e:#}");
                    break;
                }
            }
        }
    }
    (ids, retried)
}

async fn wait_final(
    db: &tokio_postgres::Client,
    ids: &[Uuid],
    timeout: Duration,
) -> anyhow::Result<(usize, usize)> {
    let deadline = Instant::now() + timeout;
    loop {
        let row = db
            .query_one(
                "SELECT count(*) FILTER (WHERE status_code IN ('success', 'error', 'cancelled')), \
                 count(*) FILTER (WHERE status_code = 'success') FROM changes WHERE id = ANY($1)",
                &[&ids],
            )
            .await?;
        let (done, succeeded): (i64, i64) = (row.get(0), row.get(1));
        if done as usize == ids.len() || Instant::now() > deadline {
            return Ok((done as usize, succeeded as usize));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// I5: no unpublished outbox row, no step of these changes holding a lease, no container left.
async fn wait_drained(
    db: &tokio_postgres::Client,
    docker: &bollard::Docker,
    ids: &[Uuid],
    timeout: Duration,
) -> anyhow::Result<bool> {
    let deadline = Instant::now() + timeout;
    let changes: HashSet<String> = ids.iter().map(Uuid::to_string).collect();
    loop {
        let row = db
            .query_one(
                "SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL), \
                 (SELECT count(*) FROM steps WHERE change_id = ANY($1) AND lease_owner IS NOT NULL)",
                &[&ids],
            )
            .await?;
        let (outbox, leases): (i64, i64) = (row.get(0), row.get(1));
        let containers = super::raw::step_containers(docker).await?;
        let left = containers.iter().filter(|c| changes.contains(*c)).count();
        if outbox == 0 && leases == 0 && left == 0 {
            return Ok(true);
        }
        if Instant::now() > deadline {
            eprintln!(
                "gantry-loadtest: not drained: {outbox} outbox rows, {leases} leases, {left} containers"
            );
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Prints why each change that did not succeed ended so: the last lines of its log.
async fn explain_unsuccessful(db: &tokio_postgres::Client, ids: &[Uuid]) -> anyhow::Result<()> {
    let rows = db
        .query(
            "SELECT c.id::text, c.status_code, \
             (SELECT string_agg(text, ' / ' ORDER BY seq) FROM (SELECT text, seq FROM log_lines \
              WHERE change_id = c.id ORDER BY seq DESC LIMIT 4) last) \
             FROM changes c WHERE c.id = ANY($1) AND c.status_code <> 'success'",
            &[&ids],
        )
        .await?;
    for row in rows {
        let (id, status, last): (String, String, Option<String>) =
            (row.get(0), row.get(1), row.get(2));
        eprintln!(
            "gantry-loadtest: change {id} ended {status}: {}",
            last.unwrap_or_default()
        );
    }
    Ok(())
}

/// Steps that finished twice, and changes with more steps than their manifest makes.
async fn duplicated(db: &tokio_postgres::Client, ids: &[Uuid]) -> anyhow::Result<usize> {
    let row = db
        .query_one(
            "SELECT \
               (SELECT count(*) FROM (SELECT e.target FROM events e JOIN steps s \
                  ON e.target = '/steps/' || s.id::text WHERE s.change_id = ANY($1) \
                  AND e.type IN ('step:success', 'step:error', 'step:system_error') \
                  GROUP BY e.target HAVING count(*) > 1) twice), \
               (SELECT count(*) FROM (SELECT change_id FROM steps WHERE change_id = ANY($1) \
                  GROUP BY change_id HAVING count(*) > $2) extra)",
            &[&ids, &STEPS_PER_CHANGE],
        )
        .await?;
    let (twice, extra): (i64, i64) = (row.get(0), row.get(1));
    Ok((twice + extra) as usize)
}

/// I3 on the engine's clock: pairs of attempts of one step whose containers ran at once.
fn overlapping(events: &[ContainerEvent], ids: &[Uuid]) -> usize {
    let changes: HashSet<String> = ids.iter().map(Uuid::to_string).collect();
    let mut runs: HashMap<(String, String), (i64, i64)> = HashMap::new();
    for event in events.iter().filter(|e| changes.contains(&e.change_id)) {
        let run = runs
            .entry((event.step_id.clone(), event.container.clone()))
            .or_insert((i64::MAX, i64::MAX));
        match event.action.as_str() {
            "start" => run.0 = event.at,
            "die" => run.1 = event.at,
            _ => {}
        }
    }
    let mut by_step: HashMap<&str, Vec<(i64, i64)>> = HashMap::new();
    for ((step, _), interval) in &runs {
        by_step.entry(step).or_default().push(*interval);
    }
    by_step
        .values_mut()
        .map(|intervals| {
            intervals.sort();
            intervals.windows(2).filter(|w| w[1].0 < w[0].1).count()
        })
        .sum()
}

/// The outbox's deepest backlog while the scenario runs, sampled every 200 ms.
async fn sample_outbox(settings: Settings, peak: std::sync::Arc<std::sync::atomic::AtomicI64>) {
    let Ok((db, connection)) =
        tokio_postgres::connect(settings.database.url.expose_secret(), NoTls).await
    else {
        return;
    };
    tokio::spawn(connection);
    loop {
        if let Ok(row) = db
            .query_one(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL",
                &[],
            )
            .await
        {
            peak.fetch_max(row.get(0), std::sync::atomic::Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Fails unless every invariant held.
pub fn verdict(report: &ReliabilityReport) -> anyhow::Result<()> {
    if report.lost > 0 || report.duplicated > 0 || report.overlapping > 0 || !report.drained {
        bail!(
            "invariants broken: {} lost, {} duplicated, {} overlapping, drained: {}",
            report.lost,
            report.duplicated,
            report.overlapping,
            report.drained
        );
    }
    Ok(())
}

//! `reliability`: changes submitted to several api processes while the script around it injects
//! faults (RELIABILITY.md; `make reliability` runs the scenarios), then the invariants checked
//! from the outside — the database, the broker's outbox and the Docker engine's own events:
//!
//! * I1: every change an api accepted (201, or 200 for a retried `Idempotency-Key`) ends final;
//! * duplicated effects: no step finished twice (two `step:*` final events), no change with more
//!   steps than its manifest makes;
//! * I3: no two attempts of one step ran at once (their containers' `start`–`die` intervals, on
//!   the engine's clock, do not overlap);
//! * I4: every succeeded step's property patch was applied exactly once (each attempt of step
//!   `one` adds a key of its own to the environment's properties), no step wrote two versions,
//!   the versions are contiguous from 1 and the last one is the current document;
//! * I5: afterwards everything drains — no unpublished outbox row, no step holding a lease, no
//!   step container of these changes left;
//! * I7: no api answered a 5xx other than 503 (the answer while the database is away).
//!
//! With `--canary`, step `two` prints a runner secret of that value (plain and base64) for the
//! script's I6 scan; the change logs read back through the api must show it masked only. With
//! `--poison`, messages no worker can process (not JSON, a huge body, an unknown step) go to the
//! steps queue first: the first two must reach its dead-letter queue, the last is dropped.
//!
//! A submission that fails (an api down, a connection cut, a 503) is retried with its key on the
//! next api, so a change is never made twice and never lost to the client. The checks' own
//! database connection reconnects (a scenario restarts PostgreSQL).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use gantry_shared::amqp::{self, Outgoing, Publisher, Topology};
use gantry_shared::crypto::Cipher;
use gantry_shared::messages::{Message, Queue};
use gantry_shared::settings::Settings;
use gantry_shared::store::Versioned;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_postgres::NoTls;
use uuid::Uuid;

use super::lifecycle::{ContainerEvent, step_events};
use super::raw::connect_docker;
use super::recorded;
use crate::client::{Api, properties_id, resource_id};
use crate::fixture::Fixture;

/// Steps a change has: the root and its two children.
const STEPS_PER_CHANGE: i64 = 3;
/// The server secret step `two` prints when a canary is given (as `$CANARY`).
const CANARY_SECRET: &str = "reliability-canary";

/// Two sequential steps: `one` sleeps, then adds a key of its own attempt (the container's host
/// name) to the environment's properties; `two` prints the canary secret, plain and in base64.
fn manifest(step_seconds: f64) -> String {
    format!(
        "actions:\n  default:\n    steps: [one, two]\n  one:\n    run: sleep {step_seconds} && \
         gantry-runner properties set environment /h_$(hostname) 1\n  two:\n    \
         run: echo \"token=$CANARY\" && printf %s \"$CANARY\" | base64\n"
    )
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReliabilityParams {
    pub changes: usize,
    /// Base URLs of the api processes, used in turn.
    pub apis: Vec<String>,
    /// How long the changes may take to end, and then to drain.
    pub timeout: Duration,
    /// Between two submissions (so that a fault meets submissions, not only running steps).
    pub pace: Duration,
    /// How long step `one` sleeps (long enough for a paused worker to hold running steps).
    pub step_seconds: f64,
    /// The value of the runner secret step `two` prints (I6).
    pub canary: Option<String>,
    /// Poison messages first (S8).
    pub poison: bool,
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
    /// Submissions answered 503 (the database away), and other 5xx answers (I7: none).
    pub unavailable_answers: usize,
    /// Submissions a load balancer answered 502 or 504 (its api host unreachable), retried.
    pub gateway_answers: usize,
    pub server_errors: usize,
    /// I4: succeeded steps whose patch is not in exactly one version, steps with two versions,
    /// the versions contiguous from 1, the last version the current document.
    pub patches_not_once: usize,
    pub versions: i64,
    pub versions_contiguous: bool,
    pub last_version_is_current: bool,
    /// Log lines read back through the api that hold the canary unmasked (I6).
    pub canary_in_responses: usize,
    /// Whether poison messages were published (S8).
    pub poison: bool,
    /// Messages that reached a dead-letter queue while the scenario ran: at least the two
    /// unprocessable poison messages with `poison`, none without.
    pub dead_lettered: u32,
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
        .project(
            first,
            "reliability",
            Some(&manifest(params.step_seconds)),
            true,
        )
        .await?;
    if let Some(canary) = &params.canary {
        first
            .put_secret(CANARY_SECRET, json!({ "CANARY": canary }))
            .await?;
        first
            .patch(
                &format!("/api/properties/{}", project.properties_id),
                json!({"data": {"gantry": {"env:runner_secrets": [CANARY_SECRET]}}}),
            )
            .await
            .context("giving the steps the canary secret")?;
    }
    let environment = first
        .get(&format!(
            "/api/projects/{}/environments/{}",
            project.code, project.environment
        ))
        .await?;
    let environment_properties: Uuid = properties_id(&environment)?.parse()?;
    let db = Db::new(settings.database.url.expose_secret());
    let docker = connect_docker().await?;
    // Collected until told to stop (the engine's stream never ends): the events, not an aborted
    // task's nothing, are what the overlap check reads.
    let (stop_events, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let mut stream = step_events(&docker);
    let events = tokio::spawn(async move {
        let mut seen = Vec::<ContainerEvent>::new();
        loop {
            tokio::select! {
                event = stream.next() => match event {
                    Some(event) => seen.push(event),
                    None => return seen,
                },
                _ = &mut stopped => return seen,
            }
        }
    });
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let sampler = tokio::spawn(sample_outbox(settings.clone(), peak.clone()));
    let dead_letters_before = dead_letters(first)
        .await?
        .context("the api cannot read the dead-letter queues")?;
    if params.poison {
        poison(settings).await?;
    }

    let submitted = submit(&apis, &project.code, &project.environment, params).await;
    let submitted_at = Instant::now();
    let ids: Vec<Uuid> = submitted
        .ids
        .iter()
        .filter_map(|id| id.parse().ok())
        .collect();
    let (final_, succeeded) = wait_final(&db, &ids, params.timeout).await?;
    let recovery_seconds = submitted_at.elapsed().as_secs_f64();
    let drained = wait_drained(&db, &docker, &ids, params.timeout).await?;
    explain_unsuccessful(&db, &ids).await?;
    let effects = effects(&db, settings, &ids, environment_properties).await?;
    let dead_lettered = if params.poison {
        wait_dead_lettered(first, dead_letters_before, params.timeout).await?
    } else {
        let after = dead_letters(first).await?.unwrap_or(dead_letters_before);
        after.saturating_sub(dead_letters_before)
    };
    let canary_in_responses = match &params.canary {
        Some(canary) => canary_lines(first, &ids, canary).await?,
        None => 0,
    };
    sampler.abort();
    let _ = stop_events.send(());
    let events = events.await.context("collecting the engine's events")?;
    Ok(ReliabilityReport {
        submitted: params.changes,
        accepted: ids.len(),
        final_,
        succeeded,
        lost: ids.len() - final_,
        duplicated: duplicated(&db, &ids).await?,
        overlapping: overlapping(
            &events,
            &recorded::from_rows(&db.query(recorded::SQL, &[&ids]).await?),
        ),
        recovery_seconds,
        peak_outbox_depth: peak.load(std::sync::atomic::Ordering::Relaxed),
        drained,
        retried_submissions: submitted.retried,
        unavailable_answers: submitted.unavailable,
        gateway_answers: submitted.gateway,
        server_errors: submitted.server_errors,
        patches_not_once: effects.patches_not_once,
        versions: effects.versions,
        versions_contiguous: effects.contiguous,
        last_version_is_current: effects.last_is_current,
        canary_in_responses,
        poison: params.poison,
        dead_lettered,
    })
}

/// A database connection for the checks that connects again when the server went away.
struct Db {
    url: String,
    client: tokio::sync::Mutex<Option<tokio_postgres::Client>>,
}

impl Db {
    fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            client: tokio::sync::Mutex::new(None),
        }
    }

    /// Runs `sql`, connecting (again) as needed, for up to two minutes.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> anyhow::Result<Vec<tokio_postgres::Row>> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mut slot = self.client.lock().await;
            let outcome = match slot.as_ref() {
                Some(client) => client.query(sql, params).await.map_err(anyhow::Error::from),
                None => match tokio_postgres::connect(&self.url, NoTls).await {
                    Ok((client, connection)) => {
                        tokio::spawn(connection);
                        let rows = client.query(sql, params).await.map_err(anyhow::Error::from);
                        *slot = Some(client);
                        rows
                    }
                    Err(e) => Err(e.into()),
                },
            };
            match outcome {
                Ok(rows) => return Ok(rows),
                Err(_) if Instant::now() < deadline => {
                    *slot = None;
                    drop(slot);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e.context("the database stayed away")),
            }
        }
    }

    async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> anyhow::Result<tokio_postgres::Row> {
        self.query(sql, params)
            .await?
            .into_iter()
            .next()
            .context("no row")
    }
}

/// What the submissions got.
struct Submitted {
    ids: Vec<String>,
    retried: usize,
    unavailable: usize,
    gateway: usize,
    server_errors: usize,
}

/// Submits the changes, each with its own `Idempotency-Key`, to the apis in turn, `pace` apart;
/// a failed submission is retried with the same key on the next api for up to two minutes.
async fn submit(
    apis: &[Api],
    project: &str,
    environment: &str,
    params: &ReliabilityParams,
) -> Submitted {
    let body = Api::change_body(project, environment, "default");
    let mut submitted = Submitted {
        ids: Vec::with_capacity(params.changes),
        retried: 0,
        unavailable: 0,
        gateway: 0,
        server_errors: 0,
    };
    for n in 0..params.changes {
        let key = Uuid::new_v4().to_string();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut attempt = 0;
        loop {
            let api = &apis[(n + attempt) % apis.len()];
            let failure = match api.post_change_with_key(&body, &key).await {
                Ok(answer) if answer.status == 201 || answer.status == 200 => {
                    if let Ok(id) = resource_id(&answer.body) {
                        submitted.ids.push(id);
                    }
                    break;
                }
                Ok(answer) => {
                    if answer.status == 503 {
                        submitted.unavailable += 1;
                    } else if answer.status == 502 || answer.status == 504 {
                        // A load balancer's: Gantry never answers these; its api host was cut
                        // off or gone mid-request (make cluster). Retried with the same key.
                        submitted.gateway += 1;
                    } else if answer.status >= 500 {
                        submitted.server_errors += 1;
                        eprintln!(
                            "gantry-loadtest: POST /api/changes answered {}: {}",
                            answer.status, answer.body
                        );
                    }
                    format!("answered {}: {}", answer.status, answer.body)
                }
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() >= deadline {
                eprintln!("gantry-loadtest: change {n} was never accepted: {failure}");
                break;
            }
            attempt += 1;
            submitted.retried += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(params.pace).await;
    }
    submitted
}

async fn wait_final(db: &Db, ids: &[Uuid], timeout: Duration) -> anyhow::Result<(usize, usize)> {
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
    db: &Db,
    docker: &bollard::Docker,
    ids: &[Uuid],
    timeout: Duration,
) -> anyhow::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let row = db
            .query_one(
                "SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL), \
                 (SELECT count(*) FROM steps WHERE change_id = ANY($1) AND lease_owner IS NOT NULL)",
                &[&ids],
            )
            .await?;
        let (outbox, leases): (i64, i64) = (row.get(0), row.get(1));
        let given = recorded::from_rows(&db.query(recorded::SQL, &[&ids]).await?);
        let containers = super::raw::step_containers(docker).await?;
        let left = containers.iter().filter(|c| given.contains_key(*c)).count();
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

/// Prints why each change that did not succeed ended so: its failed child steps' last log lines.
async fn explain_unsuccessful(db: &Db, ids: &[Uuid]) -> anyhow::Result<()> {
    let rows = db
        .query(
            "SELECT c.id::text, c.status_code, s.name, s.status_code, s.attempt, \
             (SELECT string_agg(text, ' / ' ORDER BY seq) FROM (SELECT text, seq FROM log_lines \
              WHERE step_id = s.id ORDER BY seq DESC LIMIT 8) last) \
             FROM changes c LEFT JOIN steps s ON s.change_id = c.id AND s.parent_id IS NOT NULL \
             AND s.status_code NOT IN ('success', 'aborted') \
             WHERE c.id = ANY($1) AND c.status_code <> 'success'",
            &[&ids],
        )
        .await?;
    for row in rows {
        let (id, status, step, step_status, attempt, last): (
            String,
            String,
            Option<String>,
            Option<String>,
            Option<i32>,
            Option<String>,
        ) = (
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            row.get(4),
            row.get(5),
        );
        let (Some(step), Some(step_status), Some(attempt)) = (step, step_status, attempt) else {
            eprintln!("gantry-loadtest: change {id} is {status} with every step succeeded or none");
            continue;
        };
        eprintln!(
            "gantry-loadtest: change {id} is {status}: step {step} {step_status} at attempt \
             {attempt}: {}",
            last.unwrap_or_default()
        );
    }
    Ok(())
}

/// Steps that finished twice, and changes with more steps than their manifest makes.
async fn duplicated(db: &Db, ids: &[Uuid]) -> anyhow::Result<usize> {
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

/// I3 on this host's clock: pairs of attempts of one step whose containers ran them at once, each
/// from the time its container was given the step (`recorded`) to the container's `die` (a
/// container that never died ran until the end).
fn overlapping(events: &[ContainerEvent], given: &HashMap<String, recorded::Recorded>) -> usize {
    let mut died: HashMap<&str, i64> = HashMap::new();
    for event in events.iter().filter(|e| e.action == "die") {
        died.insert(&event.name, event.at);
    }
    let mut by_step: HashMap<Uuid, Vec<(i64, i64)>> = HashMap::new();
    for (name, run) in given {
        let end = died.get(name.as_str()).copied().unwrap_or(i64::MAX);
        by_step
            .entry(run.step)
            .or_default()
            .push((run.given_at, end));
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
    let db = Db::new(settings.database.url.expose_secret());
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

/// I4, read from the database: see [`ReliabilityReport`].
struct Effects {
    patches_not_once: usize,
    versions: i64,
    contiguous: bool,
    last_is_current: bool,
}

async fn effects(
    db: &Db,
    settings: &Settings,
    ids: &[Uuid],
    properties: Uuid,
) -> anyhow::Result<Effects> {
    let row = db
        .query_one(
            "SELECT \
               (SELECT count(*) FROM steps s WHERE s.change_id = ANY($1) AND s.name = 'one' \
                  AND s.status_code = 'success' \
                  AND (SELECT count(*) FROM properties_versions v WHERE v.step_id = s.id) <> 1) \
             + (SELECT count(*) FROM (SELECT step_id FROM properties_versions \
                  WHERE properties_id = $2 AND step_id IS NOT NULL \
                  GROUP BY step_id HAVING count(*) > 1) twice), \
               (SELECT count(*) FROM properties_versions WHERE properties_id = $2), \
               (SELECT min(version) FROM properties_versions WHERE properties_id = $2), \
               (SELECT max(version) FROM properties_versions WHERE properties_id = $2), \
               p.version, p.document, \
               (SELECT document FROM properties_versions WHERE properties_id = $2 \
                  AND version = p.version) \
             FROM properties p WHERE p.id = $2",
            &[&ids, &properties],
        )
        .await?;
    let (not_once, count, min, max, current): (i64, i64, Option<i64>, Option<i64>, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    let (document, last): (Vec<u8>, Option<Vec<u8>>) = (row.get(5), row.get(6));
    let cipher = Cipher::from_settings(&settings.encryption)?;
    let open = |sealed: &[u8]| Versioned::open(&cipher, properties, current, sealed);
    let last_is_current = match last {
        Some(last) => open(&document)?.document == open(&last)?.document,
        None => false,
    };
    Ok(Effects {
        patches_not_once: not_once as usize,
        versions: count,
        contiguous: min == Some(1) && max == Some(current) && count == current,
        last_is_current,
    })
}

/// S8: publishes three messages no worker can process to the steps queue — not JSON, a body of
/// 8 MiB, a step nobody knows.
async fn poison(settings: &Settings) -> anyhow::Result<()> {
    let topology = Topology::new(&settings.amqp);
    let connection = amqp::connect(&settings.amqp, "gantry-loadtest-poison").await?;
    let publisher = Publisher::open(&connection, topology).await?;
    let unknown = serde_json::to_vec(&Message::RunStepV1 {
        change_id: Uuid::new_v4(),
        step_id: Uuid::new_v4(),
    })?;
    let huge = vec![b'x'; 8 << 20];
    let headers = serde_json::Map::new();
    let batch: Vec<Outgoing<'_>> = [b"not json".as_slice(), &huge, &unknown]
        .into_iter()
        .map(|payload| Outgoing {
            broadcast: false,
            routing_key: Queue::Steps.name(),
            payload,
            headers: &headers,
        })
        .collect();
    publisher
        .publish_all(&batch)
        .await
        .context("publishing the poison messages")?;
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}

/// The messages in every dead-letter queue, from `GET /api/info` (`None`: the broker unreadable).
async fn dead_letters(api: &Api) -> anyhow::Result<Option<u32>> {
    let info = api.get("/api/info").await?;
    Ok(info["data"]["attributes"]["dead_letters"]
        .as_object()
        .map(|queues| queues.values().filter_map(|n| n.as_u64()).sum::<u64>() as u32))
}

/// Waits until the two unprocessable poison messages are dead-lettered; returns how many were.
async fn wait_dead_lettered(api: &Api, before: u32, timeout: Duration) -> anyhow::Result<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = dead_letters(api).await.ok().flatten().unwrap_or(before);
        if now >= before + 2 || Instant::now() > deadline {
            return Ok(now.saturating_sub(before));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// I6 through the api: log lines of the changes that hold the canary, plain or in base64.
async fn canary_lines(api: &Api, ids: &[Uuid], canary: &str) -> anyhow::Result<usize> {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(canary);
    let mut found = 0;
    for id in ids {
        let lines = api
            .list_all(&format!("/api/changes/{id}/log_lines?limit=1000"))
            .await?;
        found += lines
            .iter()
            .filter(|line| {
                let text = line["attributes"]["text"].as_str().unwrap_or_default();
                text.contains(canary) || text.contains(&encoded)
            })
            .count();
    }
    Ok(found)
}

/// Fails unless every invariant held.
pub fn verdict(report: &ReliabilityReport) -> anyhow::Result<()> {
    // Poison must reach the dead-letter queues; nothing else may (it would be accepted work
    // left without a message to carry it on).
    let dead_letters_held = if report.poison {
        report.dead_lettered >= 2
    } else {
        report.dead_lettered == 0
    };
    if report.lost > 0
        || report.duplicated > 0
        || report.overlapping > 0
        || !report.drained
        || report.server_errors > 0
        || report.patches_not_once > 0
        || !report.versions_contiguous
        || !report.last_version_is_current
        || report.canary_in_responses > 0
        || !dead_letters_held
    {
        bail!(
            "invariants broken: {} lost, {} duplicated, {} overlapping, drained: {}, {} unexpected 5xx, \
             {} patches not applied once, versions contiguous: {}, last version current: {}, \
             {} log lines with the canary, {} dead-lettered (poison sent: {})",
            report.lost,
            report.duplicated,
            report.overlapping,
            report.drained,
            report.server_errors,
            report.patches_not_once,
            report.versions_contiguous,
            report.last_version_is_current,
            report.canary_in_responses,
            report.dead_lettered,
            report.poison,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn died(name: &str, at: i64) -> ContainerEvent {
        ContainerEvent {
            action: "die".into(),
            name: name.into(),
            at,
        }
    }

    fn given(step: Uuid, at: i64) -> recorded::Recorded {
        recorded::Recorded { step, given_at: at }
    }

    #[test]
    fn attempts_of_one_step_overlap_only_when_a_later_one_was_given_the_step_before_the_earlier_died()
     {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut runs = HashMap::from([
            ("a1".to_owned(), given(a, 100)),
            ("a2".to_owned(), given(a, 300)),
            // Another step at the same time: no overlap of one step's attempts.
            ("b1".to_owned(), given(b, 150)),
        ]);
        let mut events = vec![died("a1", 200), died("a2", 400), died("b1", 350)];
        assert_eq!(overlapping(&events, &runs), 0);

        // The first attempt's container died only after the second was given the step.
        events[0] = died("a1", 320);
        assert_eq!(overlapping(&events, &runs), 1);

        // A container that never died ran until the end: the next attempt overlaps it.
        events.remove(0);
        assert_eq!(overlapping(&events, &runs), 1);
        runs.remove("a2");
        assert_eq!(overlapping(&events, &runs), 0);
    }
}

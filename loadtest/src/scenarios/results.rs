//! `results`: step results applied per second by the worker's `results` role, alone. N changes
//! are prepared with SQL, each with one step in the state a runner leaves it once it has claimed
//! the step and handed its outcome over (`running`, attempt 1, the properties versions it read,
//! lease released); then N `step_result_v1` messages, each adding its own project property and
//! sealed as a runner seals them (with the key of Gantry's settings), are published straight to
//! the results queue with publisher confirms, and the time until every change is final is
//! measured. Afterwards the project's properties must hold all N keys at version 1 + N.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gantry_shared::amqp::{self, Outgoing, Publisher, Topology};
use gantry_shared::crypto::Cipher;
use gantry_shared::messages::{Message, Queue, SealedResult, StepOutcome};
use gantry_shared::settings::Settings;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

use crate::client::Api;
use crate::fixture::Fixture;
use crate::progress;
use crate::stats::per_second;

/// The action of the prepared steps; the manifest stored on each change defines it.
const ACTION: &str = "apply";
/// Messages published per batch of confirms.
const BATCH: usize = 500;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultsParams {
    pub results: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultsReport {
    pub params: ResultsParams,
    /// Publishing every message with confirms, in seconds.
    pub publish_secs: f64,
    /// From the first publish until every change was final, in seconds.
    pub elapsed_secs: f64,
    pub applied_per_second: f64,
    pub changes_successful: usize,
    pub properties_version: i64,
}

/// Rows of the prepared changes: the change and step ids.
struct Prepared {
    changes: Vec<Uuid>,
    steps: Vec<Uuid>,
    project_id: Uuid,
}

pub async fn run(
    api: &Api,
    fixture: &Fixture,
    settings: &Settings,
    params: &ResultsParams,
) -> anyhow::Result<ResultsReport> {
    let project = fixture.project(api, "results", None, true).await?;
    let (db, connection) = tokio_postgres::connect(settings.database.url.expose_secret(), NoTls)
        .await
        .context("connecting to Gantry's database")?;
    tokio::spawn(connection);
    let prepared = prepare(&db, &project.code, params.results).await?;
    let broker = amqp::connect(&settings.amqp, "gantry-loadtest")
        .await
        .context("connecting to RabbitMQ")?;
    let publisher = Publisher::open(&broker, Topology::new(&settings.amqp))
        .await
        .context("opening a confirming channel")?;
    let cipher =
        Cipher::from_settings(&settings.encryption).context("loading Gantry's encryption keys")?;
    let payloads = payloads(&prepared, &cipher)?;

    let bar = progress::bar(params.results as u64, "results");
    let started = Instant::now();
    publish(&publisher, &payloads).await?;
    let publish_secs = started.elapsed().as_secs_f64();
    bar.set_message("published; applying");
    wait_final(&db, prepared.project_id, params.results, &bar).await?;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let _ = broker.close(200, "done".into()).await;
    let (successful, version) = verify(api, &db, &prepared, &project.properties_id).await?;
    Ok(ResultsReport {
        params: params.clone(),
        publish_secs,
        elapsed_secs: elapsed.as_secs_f64(),
        applied_per_second: per_second(params.results, elapsed),
        changes_successful: successful,
        properties_version: version,
    })
}

/// Publishes with confirms, in batches.
async fn publish(publisher: &Publisher, payloads: &[Vec<u8>]) -> anyhow::Result<()> {
    let headers = serde_json::Map::new();
    for batch in payloads.chunks(BATCH) {
        let outgoing: Vec<Outgoing<'_>> = batch
            .iter()
            .map(|payload| Outgoing {
                broadcast: false,
                routing_key: Queue::Results.name(),
                payload,
                headers: &headers,
            })
            .collect();
        publisher
            .publish_all(&outgoing)
            .await
            .context("publishing step results")?;
    }
    Ok(())
}

/// Checks every change succeeded and every property arrived, each in its own version; returns
/// the successful changes and the properties' version.
async fn verify(
    api: &Api,
    db: &Client,
    prepared: &Prepared,
    properties_id: &str,
) -> anyhow::Result<(usize, i64)> {
    let n = prepared.changes.len();
    let successful = count(db, prepared.project_id, "status_code = 'success'").await?;
    let properties = api.get(&format!("/api/properties/{properties_id}")).await?;
    let version = properties["data"]["attributes"]["version"]
        .as_i64()
        .unwrap_or_default();
    let data = &properties["data"]["attributes"]["data"];
    let missing = (0..n)
        .filter(|i| data[key(*i)].as_u64() != Some(*i as u64))
        .count();
    if successful != n || missing > 0 || version != 1 + n as i64 {
        bail!(
            "{successful} of {n} changes succeeded; {missing} properties missing; version {version}"
        );
    }
    Ok((successful, version))
}

fn key(i: usize) -> String {
    format!("result_{i}")
}

/// Inserts N running changes with one claimed step each, as the planner and a runner leave them.
async fn prepare(db: &Client, project: &str, n: usize) -> anyhow::Result<Prepared> {
    let row = db
        .query_one(
            "SELECT p.id, e.id, pp.version, ep.version FROM projects p \
             JOIN environments e ON e.project_id = p.id \
             JOIN properties pp ON pp.project_id = p.id JOIN properties ep ON ep.environment_id = e.id \
             WHERE p.code = $1",
            &[&project],
        )
        .await
        .context("reading the results project")?;
    let (project_id, environment_id): (Uuid, Uuid) = (row.get(0), row.get(1));
    let (project_version, environment_version): (i64, i64) = (row.get(2), row.get(3));
    let changes: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let steps: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let tree = json!({"actions": {ACTION: {"run": "true"}}});
    db.execute(
        "INSERT INTO changes (id, project_id, environment_id, git_remote_name, git_rev, commit_sha, \
         action, status_code, created_by, started_at, step_tree) \
         SELECT id, $2, $3, 'origin', 'main', repeat('0', 40), $4, 'running', 'gantry-loadtest', now(), $5 \
         FROM unnest($1::uuid[]) AS id",
        &[&changes, &project_id, &environment_id, &ACTION, &tree],
    )
    .await
    .context("inserting the prepared changes")?;
    db.execute(
        "INSERT INTO steps (id, change_id, parent_id, position, action, name, has_command, status_code, \
         attempt, started_at, project_properties_version, environment_properties_version) \
         SELECT s, c, NULL, 0, $3, $3, true, 'running', 1, now(), $4, $5 \
         FROM unnest($1::uuid[], $2::uuid[]) AS t(s, c)",
        &[&steps, &changes, &ACTION, &project_version, &environment_version],
    )
    .await
    .context("inserting the prepared steps")?;
    Ok(Prepared {
        changes,
        steps,
        project_id,
    })
}

/// One `step_result_v1` per step: exit 0, adding the project property `result_<i>` = i. Sealing
/// happens here, before the clock starts, as the runner role seals before the hand-over.
fn payloads(prepared: &Prepared, cipher: &Cipher) -> anyhow::Result<Vec<Vec<u8>>> {
    prepared
        .changes
        .iter()
        .zip(&prepared.steps)
        .enumerate()
        .map(|(i, (change_id, step_id))| {
            let result = json!({
                "project": {"properties_diff": [{"op": "add", "path": format!("/{}", key(i)), "value": i}]},
                "environment": {"properties_diff": []},
                "step": {"properties": {}},
            });
            let message = Message::StepResultV1(StepOutcome {
                change_id: *change_id,
                step_id: *step_id,
                attempt: 1,
                exit_code: Some(0),
                sealed_result: Some(SealedResult::seal(cipher, *step_id, 1, &result)),
                error: None,
                system: false,
            });
            serde_json::to_vec(&message).context("serialising a step result")
        })
        .collect()
}

async fn count(db: &Client, project_id: Uuid, condition: &str) -> anyhow::Result<usize> {
    let sql = format!("SELECT count(*) FROM changes WHERE project_id = $1 AND {condition}");
    let n: i64 = db.query_one(&sql, &[&project_id]).await?.get(0);
    Ok(n as usize)
}

/// Polls (every 5 ms: the figure is a rate over the whole run) until `n` changes are final.
async fn wait_final(
    db: &Client,
    project_id: Uuid,
    n: usize,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done = count(
            db,
            project_id,
            "status_code IN ('success', 'error', 'cancelled')",
        )
        .await?;
        bar.set_position(done as u64);
        if done >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {done} of {n} results were applied in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

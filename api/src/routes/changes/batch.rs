//! Creations in batches, a group commit: every `POST /api/changes` (without an
//! `Idempotency-Key`) that arrives while earlier ones are being written joins the next batch, and
//! a batch is one statement, committed once: its changes, their audit events, and one
//! `plan_changes_v1` message naming them all. Under load a creation then costs a share of one
//! commit and of one message (published, delivered and acknowledged once for the batch) instead
//! of one each; a lone creation is written at once, as a batch of one.
//!
//! A batch that fails (the database refused one of its rows, say) holds back no creation: each
//! of its requests is written again on its own by the caller, and only its own error is answered.

use std::future::Future;

use deadpool_postgres::Pool;
use gantry_shared::batching;
use gantry_shared::db::CachedStatements;
use gantry_shared::domain::ChangeStatus;
use gantry_shared::messages::{EXCHANGE, PLAN_CHANGES_SQL, Queue};
use serde_json::Value;
use uuid::Uuid;

use super::create::NewChange;
use super::record::ChangeRecord;

/// Creations written in one statement at most.
const MAX_BATCH: usize = 256;

/// Batches written at once: while one waits for its commit the next is written. Measured with
/// `gantry-loadtest create` (the api alone, open loop at 3000/s): p99 8–14 ms with two, 18–24 ms with
/// eight; with four, the batches were smaller and the statements more.
const CONCURRENT_BATCHES: usize = 2;

/// A creation as the statement takes it.
pub(super) struct Creation {
    id: Uuid,
    change: NewChange,
    created_by: String,
    /// The request's trace context: stored with the change, and the batch message's headers
    /// when it comes first.
    traceparent: Option<String>,
    /// The audit event's payload.
    event: Value,
}

impl Creation {
    /// A creation in the current request's trace.
    pub(super) fn new(id: Uuid, change: &NewChange, created_by: &str, event: Value) -> Self {
        Self {
            id,
            change: change.clone(),
            created_by: created_by.to_owned(),
            traceparent: gantry_shared::telemetry::current_traceparent(),
            event,
        }
    }
}

/// What became of a creation in its batch.
#[derive(Debug)]
pub(super) enum Batched {
    Created(Box<ChangeRecord>),
    /// Its project, environment or git remote is missing or archived: nothing was written.
    NoTarget,
    /// The batch failed: nothing of it was written.
    Failed,
}

type Request = batching::Request<Creation, Batched>;

/// The handlers' side of the creation loop.
#[derive(Clone)]
pub struct Creations(batching::Sender<Creation, Batched>);

impl Creations {
    /// The sender, and the loop that writes what it is sent; the loop ends once every clone of
    /// the sender is dropped and the last batch is written.
    pub fn start(pool: Pool) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (sender, writing) =
            batching::Sender::start(MAX_BATCH, CONCURRENT_BATCHES, move |batch| {
                let pool = pool.clone();
                async move { write(&pool, batch).await }
            });
        (Self(sender), writing)
    }

    /// Writes the creation with the next batch.
    pub(super) async fn create(&self, creation: Creation) -> Batched {
        self.0.send(creation).await.unwrap_or(Batched::Failed)
    }
}

async fn write(pool: &Pool, batch: Vec<Request>) {
    metrics::histogram!(gantry_shared::metrics::names::CREATE_BATCH_SIZE)
        .record(batch.len() as f64);
    let creations: Vec<&Creation> = batch.iter().map(|r| &**r).collect();
    let written = async {
        let client = pool.get().await.map_err(anyhow::Error::new)?;
        insert(&client, &creations)
            .await
            .map_err(anyhow::Error::new)
    };
    match written.await {
        Ok(mut created) => {
            for request in batch {
                let answer = match created.remove(&request.id) {
                    Some(record) => Batched::Created(Box::new(record)),
                    None => Batched::NoTarget,
                };
                request.reply(answer);
            }
        }
        Err(e) => {
            if batch.len() > 1 {
                tracing::warn!(error = %format!("{e:#}"), creations = batch.len(), "a batch of creations failed; writing each on its own");
            }
            for request in batch {
                request.reply(Batched::Failed);
            }
        }
    }
}

/// Inserts the creations whose project, environment and git remote exist and are not archived
/// (each `initializing`, with its audit event) and one plan message naming them, in one
/// statement committed on its own; returns the created changes by id.
///
/// Like a single creation (see `create::insert_change`), the target rows are not locked.
async fn insert(
    client: &impl CachedStatements,
    creations: &[&Creation],
) -> Result<std::collections::HashMap<Uuid, ChangeRecord>, tokio_postgres::Error> {
    let column = |f: fn(&NewChange) -> &str| -> Vec<&str> {
        creations.iter().map(|c| f(&c.change)).collect()
    };
    let ids: Vec<Uuid> = creations.iter().map(|c| c.id).collect();
    let metadata: Vec<&Value> = creations.iter().map(|c| &c.change.metadata).collect();
    let created_by: Vec<&str> = creations.iter().map(|c| c.created_by.as_str()).collect();
    let events: Vec<&Value> = creations.iter().map(|c| &c.event).collect();
    let traceparents: Vec<Option<&str>> =
        creations.iter().map(|c| c.traceparent.as_deref()).collect();
    let headers = Value::Object(gantry_shared::telemetry::trace_headers(
        creations[0].traceparent.clone(),
    ));
    let sql = format!(
        "WITH input AS ( \
           SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
           $6::text[], $7::jsonb[], $8::text[], $9::text[], $10::jsonb[]) AS i (id, project_code, \
           environment_code, git_remote_name, git_rev, action, metadata, created_by, traceparent, event)), \
         target AS ( \
           SELECT i.*, p.id AS project_id, e.id AS environment_id FROM input i \
           JOIN projects p ON p.code = i.project_code \
           JOIN environments e ON e.project_id = p.id AND e.code = i.environment_code \
           JOIN git_remotes r ON r.project_id = p.id AND r.name = i.git_remote_name \
           WHERE NOT (p.archived OR e.archived OR r.archived)), \
         c AS ( \
           INSERT INTO changes (id, project_id, environment_id, git_remote_name, git_rev, action, \
           metadata, status_code, created_by, traceparent) \
           SELECT id, project_id, environment_id, git_remote_name, git_rev, action, metadata, $11, \
           created_by, traceparent FROM target ORDER BY id \
           RETURNING id, git_remote_name, git_rev, commit_sha, action, metadata, status_code, \
           created_by, created_at, started_at, finished_at, retried_from), \
         message AS ( \
           INSERT INTO outbox (exchange, routing_key, payload, headers) \
           SELECT $12, $13, {PLAN_CHANGES_SQL}, $14 FROM c HAVING count(*) > 0), \
         event AS ( \
           INSERT INTO events (type, actor, target, payload) \
           SELECT 'api:changes:create', t.created_by, '/changes/' || t.id, t.event \
           FROM c JOIN target t USING (id)) \
         SELECT c.*, t.project_code, t.environment_code FROM c JOIN target t USING (id)"
    );
    let rows = client
        .query_cached(
            &sql,
            &[
                &ids,
                &column(|c| c.project.as_str()),
                &column(|c| c.environment.as_str()),
                &column(|c| c.remote.as_str()),
                &column(|c| c.git_rev.as_str()),
                &column(|c| c.action.as_str()),
                &metadata,
                &created_by,
                &traceparents,
                &events,
                &ChangeStatus::Initializing.as_str(),
                &EXCHANGE,
                &Queue::Changes.name(),
                &headers,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let record = ChangeRecord::from_row(row);
            (record.id, record)
        })
        .collect())
}

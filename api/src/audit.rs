//! The append-only audit log: one `events` row per state change, written in the transaction that
//! makes the change (`api:projects:create`, `api:changes:create`, …).

use deadpool_postgres::{GenericClient, Transaction};
use gantry_shared::db::CachedStatements;
use serde_json::Value;

use crate::error::{ApiError, Context};

/// One audit event: what happened, who did it, and the path of what it happened to.
pub struct Event<'a> {
    pub kind: &'a str,
    pub actor: &'a str,
    pub target: String,
    pub payload: Value,
}

/// Records `event` and commits `tx`, the usual ending of a change of state, so none goes
/// unrecorded (a caller that pipelines the event with its own statements uses `insert_event`).
pub async fn commit(tx: Transaction<'_>, event: &Event<'_>) -> Result<(), ApiError> {
    insert_event(&tx, event)
        .await
        .context("recording the event")?;
    tx.commit().await.context("committing the transaction")
}

/// Records `event` in the caller's transaction, for a caller that pipelines it with its own
/// statements and then commits (see `audit::commit` for the usual ending).
pub async fn insert_event(
    client: &impl GenericClient,
    event: &Event<'_>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute_cached(
            "INSERT INTO events (type, actor, target, payload) VALUES ($1, $2, $3, $4)",
            &[&event.kind, &event.actor, &event.target, &event.payload],
        )
        .await?;
    Ok(())
}

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

/// Records `event` and commits `tx`: every change of state made through the API ends this way,
/// so none goes unrecorded. (A change's creation, one statement, inserts its event in it.)
pub async fn commit(tx: Transaction<'_>, event: &Event<'_>) -> Result<(), ApiError> {
    record(&tx, event).await?;
    tx.commit().await.context("committing the transaction")
}

/// Records `event` on `client` (in its transaction, if it has one).
pub async fn record(client: &impl GenericClient, event: &Event<'_>) -> Result<(), ApiError> {
    client
        .execute_cached(
            "INSERT INTO events (type, actor, target, payload) VALUES ($1, $2, $3, $4)",
            &[&event.kind, &event.actor, &event.target, &event.payload],
        )
        .await
        .context("recording the event")?;
    Ok(())
}

//! The append-only audit log: one `events` row per state change, written in the transaction that
//! makes the change (`api:projects:create`, `api:changes:create`, …).

use deadpool_postgres::GenericClient;
use serde_json::Value;

/// One audit event: what happened, who did it, and the path of what it happened to.
pub struct Event<'a> {
    pub kind: &'a str,
    pub actor: &'a str,
    pub target: String,
    pub payload: Value,
}

pub async fn insert_event(
    client: &impl GenericClient,
    event: &Event<'_>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO events (type, actor, target, payload) VALUES ($1, $2, $3, $4)",
            &[&event.kind, &event.actor, &event.target, &event.payload],
        )
        .await?;
    Ok(())
}

//! Retention: records kept for a while, then removed — `Idempotency-Key`s of `POST /api/changes`
//! past `api.idempotency_key_hours`, and the rows of workers that stopped reporting a day ago.
//! Every worker runs it; the deletes are idempotent.

use std::time::Duration;

use gantry_shared::db::CachedStatements;
use tokio_util::sync::CancellationToken;

use crate::context::Ctx;

pub async fn run(ctx: Ctx, shutdown: CancellationToken) {
    let period = Duration::from_secs(ctx.settings.worker.retention_interval_seconds.max(1));
    let (job, done) = (
        "removing expired records",
        "removed expired idempotency keys and workers gone for a day",
    );
    crate::periodic::every(period, shutdown, job, done, || prune_once(&ctx)).await;
}

/// Removes the expired idempotency keys and the rows of workers gone for a day (see
/// [`crate::registry`]); returns how many records.
pub async fn prune_once(ctx: &Ctx) -> anyhow::Result<usize> {
    let hours = ctx.settings.api.idempotency_key_hours as f64;
    let client = ctx.pool.get().await?;
    let keys = client
        .execute_cached(
            "DELETE FROM idempotency_keys WHERE created_at < now() - $1 * interval '1 hour'",
            &[&hours],
        )
        .await?;
    let workers = client
        .execute_cached(
            "DELETE FROM workers WHERE heartbeat_at < now() - interval '1 day'",
            &[],
        )
        .await?;
    Ok((keys + workers) as usize)
}

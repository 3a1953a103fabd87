//! The lease reaper (DESIGN §7): a step whose runner stopped renewing its lease (the worker died
//! or lost the database) is queued again while attempts remain, then becomes `system_error`.

use gantry_shared::db::CachedStatements;
use std::time::Duration;

use gantry_shared::logs::TxLog;
use gantry_shared::metrics::names;
use gantry_shared::telemetry;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::context::Ctx;
use crate::results::{orchestrate, retry, rows};

pub async fn run(ctx: Ctx, shutdown: CancellationToken) {
    let period = Duration::from_secs(ctx.settings.worker.reaper_interval_seconds.max(1));
    let (job, done) = (
        "lease reaping",
        "re-queued or failed steps whose lease expired",
    );
    crate::periodic::every(period, shutdown, job, done, || async {
        let reaped = reap_once(&ctx).await?;
        if reaped > 0 {
            ctx.signal.notify();
        }
        Ok(reaped)
    })
    .await;
}

/// Handles every expired lease, each in its own transaction. Returns how many were handled.
pub async fn reap_once(ctx: &Ctx) -> anyhow::Result<usize> {
    let client = ctx.pool.get().await?;
    let expired: Vec<(Uuid, Uuid, Option<String>)> = client
        .query_cached(
            "SELECT s.id, s.change_id, c.traceparent FROM steps s JOIN changes c ON c.id = s.change_id \
             WHERE s.status_code = 'running' AND s.lease_expires_at < now() LIMIT 100",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    drop(client);
    let mut handled = 0;
    for (step_id, change_id, traceparent) in expired {
        let span = tracing::info_span!("reap_step", %change_id, %step_id, trace_id = tracing::field::Empty);
        telemetry::continue_trace(&span, traceparent.as_deref());
        if reap_step(ctx, change_id, step_id).instrument(span).await? {
            metrics::counter!(names::LEASE_EXPIRIES).increment(1);
            handled += 1;
        }
    }
    Ok(handled)
}

async fn reap_step(ctx: &Ctx, change_id: Uuid, step_id: Uuid) -> anyhow::Result<bool> {
    let mut client = ctx.pool.get().await?;
    let tx = client.transaction().await?;
    let (change, step) = rows::lock_change_and_step(&tx, change_id, step_id).await?;
    let (Some(change), Some(step)) = (change, step) else {
        return Ok(false);
    };
    // Re-checked under the lock: the runner may have renewed or handed over meanwhile.
    let expired = tx
        .query_opt_cached(
            "SELECT 1 FROM steps WHERE id = $1 AND status_code = 'running' AND lease_expires_at < now()",
            &[&step_id],
        )
        .await?;
    if expired.is_none() {
        return Ok(false);
    }
    let what = format!(
        "The lease of attempt {} expired (its worker stopped responding)",
        step.attempt
    );
    let log = TxLog::default();
    let work =
        retry::retry_or_give_up(&tx, &log, ctx.settings.worker.max_attempts, &step, &what).await?;
    orchestrate::drive(&tx, &log, &change.manifest()?, work).await?;
    log.flush(&tx).await?;
    tx.commit().await?;
    log.notify(&ctx.notifier);
    Ok(true)
}

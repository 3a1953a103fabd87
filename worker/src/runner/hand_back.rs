//! Handing a step back at the end of a shutdown's grace period: its container was stopped, and
//! the attempt is given up as if its lease had expired — the step is queued again and a
//! `run_step_v1` goes out through the outbox — but at once instead of a lease later. The next
//! claim numbers a new attempt, as always (fencing stays by step and attempt); the attempt handed
//! back is counted in `steps.handed_back`, and `worker.max_attempts` counts only the others: a
//! rolling restart of the workers does not use up a long step's attempts. Only an attempt this
//! worker still owns is handed back: a step cancelled or taken over meanwhile is left as it is.

use gantry_shared::db::CachedStatements;
use gantry_shared::lifecycle::StepEvent;
use gantry_shared::logs::TxLog;
use gantry_shared::messages::Message;
use gantry_shared::outbox;
use gantry_shared::transitions::Record;

use super::claim::Claimed;
use crate::context::Ctx;
use crate::results::{orchestrate, rows};

pub async fn requeue(ctx: &Ctx, claimed: &Claimed) {
    match try_requeue(ctx, claimed).await {
        Ok(true) => {
            ctx.signal.notify();
            tracing::info!(step_id = %claimed.step_id, attempt = claimed.attempt, "handed a step back");
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(error = ?e, "handing a step back failed; its lease expires instead")
        }
    }
}

async fn try_requeue(ctx: &Ctx, claimed: &Claimed) -> anyhow::Result<bool> {
    let mut client = ctx.pool.get().await?;
    let tx = client.transaction().await?;
    let (change, step) =
        rows::lock_change_and_step(&tx, claimed.change_id, claimed.step_id).await?;
    let (Some(_), Some(step)) = (change, step) else {
        return Ok(false);
    };
    let owned = tx
        .query_opt_cached(
            "UPDATE steps SET handed_back = handed_back + 1 WHERE id = $1 AND attempt = $2 \
             AND lease_owner = $3 AND status_code = 'running' RETURNING 1",
            &[&claimed.step_id, &claimed.attempt, &ctx.worker_id],
        )
        .await?;
    if owned.is_none() {
        return Ok(false);
    }
    let log = TxLog::default();
    let line = format!(
        "===> Worker {} is shutting down: attempt {} of step \"{}\" was stopped and handed back; \
         the step will run again",
        ctx.worker_id, claimed.attempt, claimed.name
    );
    log.push(claimed.change_id, Some(claimed.step_id), &[&line]);
    orchestrate::transition(&tx, &log, &step, StepEvent::Requeue, Record::default()).await?;
    let message = Message::RunStepV1 {
        change_id: claimed.change_id,
        step_id: claimed.step_id,
    };
    outbox::insert_message(&tx, &message).await?;
    log.flush(&tx).await?;
    tx.commit().await?;
    log.notify(&ctx.notifier);
    Ok(true)
}

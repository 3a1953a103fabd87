//! `roll_up_v1`: a step reached a final status outside the results role (the API continued a
//! wait step); its parent, or the change, moves on here, in one transaction under the change's
//! lock. Idempotent: the roll-up decides from the children's statuses alone.

use gantry_shared::logs::TxLog;
use uuid::Uuid;

use super::orchestrate::{self, Queued, Work};
use super::rows;
use crate::consume::Disposition;
use crate::context::Ctx;

pub async fn handle_roll_up(ctx: Ctx, change_id: Uuid, step_id: Uuid) -> Disposition {
    match roll_up(&ctx, change_id, step_id).await {
        Ok(queued) => {
            if queued > 0 {
                ctx.signal.notify();
            }
            Disposition::Ack
        }
        Err(e) => {
            tracing::error!(error = ?e, %step_id, "rolling a step up failed; it will be retried");
            Disposition::Requeue
        }
    }
}

async fn roll_up(ctx: &Ctx, change_id: Uuid, step_id: Uuid) -> anyhow::Result<Queued> {
    let mut client = ctx.pool.get().await?;
    let tx = client.transaction().await?;
    let (change, step) = rows::lock_change_and_step(&tx, change_id, step_id).await?;
    let (Some(change), Some(step)) = (change, step) else {
        tracing::warn!(%step_id, "not rolling up an unknown step");
        return Ok(0);
    };
    if step.change_id != change_id || !step.status.is_final() {
        tracing::warn!(%step_id, status = %step.status, "not rolling up a step that is not final");
        return Ok(0);
    }
    let log = TxLog::default();
    let work = vec![Work::Finished(step)];
    let queued = orchestrate::drive(&tx, &log, &change.manifest()?, work).await?;
    log.flush(&tx).await?;
    tx.commit().await?;
    log.notify(&ctx.notifier);
    Ok(queued)
}

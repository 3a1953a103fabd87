//! The lease reaper (DESIGN §7): a step whose runner stopped renewing its lease (the worker died
//! or lost the database) is queued again while attempts remain, then becomes `system_error`.

use std::time::Duration;

use gantry_shared::domain::StepStatus;
use gantry_shared::messages::Message;
use gantry_shared::outbox;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::context::Ctx;
use crate::results::orchestrate::{self, Work};
use crate::steplog::system_lines;

pub async fn run(ctx: Ctx, shutdown: CancellationToken) {
    let period = Duration::from_secs(ctx.settings.worker.reaper_interval_seconds.max(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        match reap_once(&ctx).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(steps = n, "re-queued or failed steps whose lease expired");
                ctx.signal.notify();
            }
            Err(e) => tracing::warn!(error = ?e, "lease reaping failed; will try again"),
        }
    }
}

/// Handles every expired lease, each in its own transaction. Returns how many were handled.
pub async fn reap_once(ctx: &Ctx) -> anyhow::Result<usize> {
    let client = ctx.pool.get().await?;
    let expired: Vec<(Uuid, Uuid)> = client
        .query(
            "SELECT id, change_id FROM steps WHERE status_code = 'running' AND lease_expires_at < now() LIMIT 100",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    drop(client);
    let mut handled = 0;
    for (step_id, change_id) in expired {
        if reap_step(ctx, change_id, step_id).await? {
            handled += 1;
        }
    }
    Ok(handled)
}

async fn reap_step(ctx: &Ctx, change_id: Uuid, step_id: Uuid) -> anyhow::Result<bool> {
    let mut client = ctx.pool.get().await?;
    let tx = client.transaction().await?;
    tx.query_opt(
        "SELECT 1 FROM changes WHERE id = $1 FOR UPDATE",
        &[&change_id],
    )
    .await?;
    let row = tx
        .query_opt(
            "SELECT attempt FROM steps WHERE id = $1 AND status_code = 'running' AND lease_expires_at < now() FOR UPDATE",
            &[&step_id],
        )
        .await?;
    let Some(row) = row else { return Ok(false) };
    let attempt: i32 = row.get(0);
    if attempt < ctx.settings.worker.max_attempts {
        let line = format!(
            "The lease of attempt {attempt} expired (its worker stopped responding); the step will run again"
        );
        system_lines(&tx, change_id, Some(step_id), &[&line]).await?;
        tx.execute("UPDATE steps SET status_code = 'queued', lease_owner = NULL, lease_expires_at = NULL WHERE id = $1", &[&step_id])
            .await?;
        outbox::insert_message(
            &tx,
            &Message::RunStepV1 { change_id, step_id },
            &Default::default(),
        )
        .await?;
    } else {
        let line = format!("The lease of attempt {attempt} expired and no attempts are left");
        system_lines(&tx, change_id, Some(step_id), &[&line]).await?;
        tx.execute(
            "UPDATE steps SET status_code = $2, command_finished_at = now(), finished_at = now(), \
             lease_owner = NULL, lease_expires_at = NULL WHERE id = $1",
            &[&step_id, &StepStatus::SystemError.as_str()],
        )
        .await?;
        let manifest = crate::results::orchestrate_manifest(&tx, change_id).await?;
        orchestrate::drive(&tx, &manifest, vec![Work::Finished(step_id)]).await?;
    }
    tx.commit().await?;
    Ok(true)
}

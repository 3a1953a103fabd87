//! One decision for every attempt lost to infrastructure (a Docker or Git failure reported by the
//! runner, a lease that expired because its worker died): run the step again while attempts
//! remain, then `system_error` (DESIGN §2, §7).

use deadpool_postgres::GenericClient;
use gantry_shared::db::CachedStatements;
use gantry_shared::domain::StepStatus;
use gantry_shared::messages::Message;
use gantry_shared::outbox;

use super::orchestrate::{self, Work};
use super::rows::StepRow;
use crate::steplog::TxLog;

/// `what` says what happened to the attempt (e.g. "Attempt 2 failed (…)"); the step log gets it
/// with the consequence.
pub async fn retry_or_give_up(
    client: &impl GenericClient,
    log: &TxLog,
    max_attempts: i32,
    step: &StepRow,
    what: &str,
) -> anyhow::Result<Vec<Work>> {
    if step.attempt < max_attempts {
        let line = format!("{what}; the step will run again");
        log.push(step.change_id, Some(step.id), &[&line]);
        client
            .execute_cached(
                "UPDATE steps SET status_code = 'queued', lease_owner = NULL, lease_expires_at = NULL WHERE id = $1",
                &[&step.id],
            )
            .await?;
        let message = Message::RunStepV1 {
            change_id: step.change_id,
            step_id: step.id,
        };
        outbox::insert_message(client, &message).await?;
        return Ok(vec![]);
    }
    let line = format!("{what}; no attempts are left");
    log.push(step.change_id, Some(step.id), &[&line]);
    client
        .execute_cached(
            "UPDATE steps SET command_finished_at = now() WHERE id = $1",
            &[&step.id],
        )
        .await?;
    Ok(vec![
        orchestrate::complete_step(client, log, step, StepStatus::SystemError).await?,
    ])
}

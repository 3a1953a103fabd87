//! One decision for every attempt lost to infrastructure (a Docker or Git failure reported by the
//! runner, a lease that expired because its worker died): run the step again while attempts
//! remain, then `system_error` (DESIGN §2, §7).

use deadpool_postgres::GenericClient;
use gantry_shared::lifecycle::StepEvent;
use gantry_shared::logs::TxLog;
use gantry_shared::messages::Message;
use gantry_shared::outbox;
use gantry_shared::transitions::Record;

use super::orchestrate::{self, Work};
use super::rows::StepRow;

/// `what` says what happened to the attempt (e.g. "Attempt 2 failed (…)"); the step log gets it
/// with the consequence.
pub async fn retry_or_give_up(
    client: &impl GenericClient,
    log: &TxLog,
    max_attempts: i32,
    step: &StepRow,
    what: &str,
) -> anyhow::Result<Vec<Work>> {
    // Attempts handed back by a worker shutting down were not failures: they do not count.
    if step.attempt - step.handed_back < max_attempts {
        let line = format!("{what}; the step will run again");
        log.push(step.change_id, Some(step.id), &[&line]);
        orchestrate::transition(client, log, step, StepEvent::Requeue, Record::default()).await?;
        let message = Message::RunStepV1 {
            change_id: step.change_id,
            step_id: step.id,
        };
        outbox::insert_message(client, &message).await?;
        return Ok(vec![]);
    }
    let line = format!("{what}; no attempts are left");
    log.push(step.change_id, Some(step.id), &[&line]);
    let record = Record {
        command_finished: true,
        ..Record::default()
    };
    let status = orchestrate::transition(client, log, step, StepEvent::GiveUp, record).await?;
    log.push(
        step.change_id,
        Some(step.id),
        &[&orchestrate::finished_line(&step.name)],
    );
    Ok(vec![orchestrate::completed(step, status)])
}

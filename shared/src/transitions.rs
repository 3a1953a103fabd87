//! Writes the transitions [`crate::lifecycle`] decides: a step's or a change's new status with the
//! timestamps that go with it, guarded by the statuses the event applies to (so the database
//! refuses what the state machine refuses, whoever got there first), and the audit event of each
//! transition, through the transaction's [`TxLog`].

use deadpool_postgres::GenericClient;
use serde_json::json;
use uuid::Uuid;

use crate::db::CachedStatements;
use crate::domain::{ChangeStatus, StepStatus};
use crate::lifecycle::{ChangeEvent, ChangeTransition, Refused, StepEvent, step_transition};
use crate::logs::{Event, TxLog};
use crate::project_settings::PARALLEL_CHANGES_SQL;

/// The actor of what Gantry itself decides.
pub const SYSTEM_ACTOR: &str = "gantry";

#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The row was not in a status the event applies to, although the caller read one that is:
    /// it holds no lock on it, and another transaction moved it first.
    #[error("{0} moved before the transition was written")]
    Moved(String),
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
}

/// A step as a transition needs it.
#[derive(Debug, Clone, Copy)]
pub struct StepRef {
    pub id: Uuid,
    pub change_id: Uuid,
    pub status: StepStatus,
    pub attempt: i32,
}

/// What a step transition records besides the status.
#[derive(Debug, Default, Clone, Copy)]
pub struct Record<'a> {
    /// The step's own command has finished (it ran, or there is none): `command_finished_at`.
    pub command_finished: bool,
    /// `exit_code`, when the command's exit is known (`Some(None)`: known to be none).
    pub exit_code: Option<Option<i32>>,
    /// The merged properties the step ran with, sealed.
    pub properties: Option<&'a [u8]>,
}

/// Moves `step` through `event`: writes the new status (a lease ends with any transition; one is
/// started only by a claim), `started_at` once it runs or waits, `finished_at` when final, what
/// `record` says, and the transition's audit event. Returns the new status.
pub async fn step(
    client: &impl GenericClient,
    log: &TxLog,
    actor: &str,
    step: &StepRef,
    event: StepEvent,
    record: Record<'_>,
) -> Result<StepStatus, TransitionError> {
    let next = step_transition(step.status, event)?;
    let started = !matches!(next, StepStatus::Queued | StepStatus::Pending);
    let set_exit = record.exit_code.is_some();
    let exit_code = record.exit_code.flatten();
    let written = client
        .execute_cached(
            "UPDATE steps SET status_code = $2, lease_owner = NULL, lease_expires_at = NULL, \
             started_at = CASE WHEN $3 THEN COALESCE(started_at, now()) ELSE started_at END, \
             finished_at = CASE WHEN $4 THEN now() ELSE finished_at END, \
             command_finished_at = CASE WHEN $5 THEN COALESCE(command_finished_at, now()) ELSE command_finished_at END, \
             exit_code = CASE WHEN $6 THEN $7 ELSE exit_code END, \
             properties = COALESCE($8, properties) \
             WHERE id = $1 AND status_code = $9",
            &[
                &step.id,
                &next.as_str(),
                &started,
                &next.is_final(),
                &record.command_finished,
                &set_exit,
                &exit_code,
                &record.properties,
                &step.status.as_str(),
            ],
        )
        .await?;
    if written != 1 {
        return Err(TransitionError::Moved(format!("step {}", step.id)));
    }
    log.event(step_event(actor, step, next));
    Ok(next)
}

/// The audit event of `step` reaching `to`.
pub fn step_event(actor: &str, step: &StepRef, to: StepStatus) -> Event {
    Event {
        kind: format!("step:{to}"),
        actor: actor.to_owned(),
        target: format!("/steps/{}", step.id),
        payload: json!({
            "change_id": step.change_id,
            "from": step.status.as_str(),
            "attempt": step.attempt,
        }),
    }
}

/// Moves every step of the change that `event` applies to (the change is locked by the caller):
/// `abort` for the pending steps of a failed change, `cancel` for the non-final ones of a
/// cancelled change. Returns how many moved.
pub async fn steps_of_change(
    client: &impl GenericClient,
    log: &TxLog,
    actor: &str,
    change_id: Uuid,
    event: StepEvent,
) -> Result<u64, TransitionError> {
    let target = event.target();
    let moved = client
        .query_cached(
            "WITH moved AS (SELECT id, status_code, attempt FROM steps \
             WHERE change_id = $1 AND status_code = ANY($3) FOR NO KEY UPDATE) \
             UPDATE steps s SET status_code = $2, finished_at = CASE WHEN $4 THEN now() ELSE s.finished_at END \
             FROM moved WHERE s.id = moved.id \
             RETURNING s.id, moved.status_code, moved.attempt",
            &[&change_id, &target.as_str(), &event.sources(), &target.is_final()],
        )
        .await?;
    for row in &moved {
        let status: StepStatus = row
            .get::<_, &str>(1)
            .parse()
            .map_err(|_| TransitionError::Moved(format!("a step of change {change_id}")))?;
        let step = StepRef {
            id: row.get(0),
            change_id,
            status,
            attempt: row.get(2),
        };
        // The statement moved only what the event applies to; the table says where to.
        debug_assert_eq!(step_transition(status, event).ok(), Some(target));
        log.event(step_event(actor, &step, target));
    }
    Ok(moved.len() as u64)
}

/// Moves the change through `event` if it is in a status the event applies to, writing
/// `started_at` when it starts running and `finished_at` when final, with the audit event.
/// Returns the transition and the change's environment, or `None` when the change was not in
/// such a status (a duplicate, or another transaction was first).
pub async fn change(
    client: &impl GenericClient,
    log: &TxLog,
    actor: &str,
    change_id: Uuid,
    event: ChangeEvent,
) -> Result<Option<(ChangeTransition, ChangeRow)>, TransitionError> {
    let transition = event.transition();
    let sql = format!(
        "WITH old AS (SELECT status_code FROM changes WHERE id = $1 FOR NO KEY UPDATE) \
         UPDATE changes c SET status_code = $2, \
         started_at = CASE WHEN $2 = 'running' THEN COALESCE(c.started_at, now()) ELSE c.started_at END, \
         finished_at = CASE WHEN $3 THEN now() ELSE c.finished_at END \
         FROM old WHERE c.id = $1 AND old.status_code = ANY($4) \
         RETURNING old.status_code, c.environment_id, \
         (SELECT {PARALLEL_CHANGES_SQL} FROM environments e JOIN projects p ON p.id = e.project_id \
         WHERE e.id = c.environment_id)"
    );
    let row = client
        .query_opt_cached(
            &sql,
            &[
                &change_id,
                &transition.status.as_str(),
                &transition.effects.finish,
                &event.sources(),
            ],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let from: ChangeStatus = row
        .get::<_, &str>(0)
        .parse()
        .map_err(|_| TransitionError::Moved(format!("change {change_id}")))?;
    log.event(change_event(actor, change_id, from, transition.status));
    Ok(Some((
        transition,
        ChangeRow {
            environment_id: row.get(1),
            parallel_changes: row.get(2),
        },
    )))
}

/// What a change transition returns about the change.
#[derive(Debug, Clone, Copy)]
pub struct ChangeRow {
    pub environment_id: Uuid,
    /// Whether changes of its environment may run in parallel (else one at a time, FIFO).
    pub parallel_changes: bool,
}

/// The audit event of a change moving from `from` to `to`.
pub fn change_event(actor: &str, change_id: Uuid, from: ChangeStatus, to: ChangeStatus) -> Event {
    Event {
        kind: format!("change:{to}"),
        actor: actor.to_owned(),
        target: format!("/changes/{change_id}"),
        payload: json!({ "from": from.as_str() }),
    }
}

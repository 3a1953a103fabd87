//! The step tree and the change lifecycle (DESIGN §3) inside the caller's transaction. Every
//! status is decided by `gantry_shared::lifecycle` and written by `gantry_shared::transitions`;
//! this module says what follows from each: work is a queue of `Start` / `Finished` items
//! processed iteratively, so a tree of grouping steps (no container) completes in one transaction
//! without recursion.

use gantry_shared::db::CachedStatements;
use std::collections::VecDeque;

use deadpool_postgres::GenericClient;
use gantry_shared::domain::{ChangeStatus, StepStatus};
use gantry_shared::lifecycle::{ChangeEvent, RollUp, StepEvent, roll_up};
use gantry_shared::logs::TxLog;
use gantry_shared::manifest::{Manifest, WAIT_ACTION};
use gantry_shared::messages::Message;
use gantry_shared::protocol::ExecutionStrategy;
use gantry_shared::transitions::{self, Record, SYSTEM_ACTOR};
use gantry_shared::{outbox, telemetry};
use tracing::Instrument;
use uuid::Uuid;

use super::rows::{self, StepRow};

pub enum Work {
    /// Start the step: queue it for a runner, open it (a grouping step, or one a retry resumes:
    /// its children follow) or let it wait (a wait step).
    Start(Uuid),
    /// The step (locked, as it is now) reached a final status: roll up to its parent or the change.
    Finished(StepRow),
}

/// How many messages a transition wrote to the outbox: after the commit, the relay is woken only
/// when there are some.
pub type Queued = usize;

/// Processes `work` until nothing is left.
pub async fn drive(
    client: &impl GenericClient,
    log: &TxLog,
    manifest: &Manifest,
    work: Vec<Work>,
) -> anyhow::Result<Queued> {
    let mut queue: VecDeque<Work> = work.into();
    let mut queued = 0;
    while let Some(item) = queue.pop_front() {
        queued += match item {
            Work::Start(id) => start(client, log, manifest, id, &mut queue).await?,
            Work::Finished(step) => finished(client, log, step, &mut queue).await?,
        };
    }
    Ok(queued)
}

async fn start(
    client: &impl GenericClient,
    log: &TxLog,
    manifest: &Manifest,
    id: Uuid,
    queue: &mut VecDeque<Work>,
) -> anyhow::Result<Queued> {
    let Some(step) = rows::lock_step(client, id).await? else {
        return Ok(0);
    };
    if step.status != StepStatus::Pending {
        return Ok(0);
    }
    if step.action == WAIT_ACTION {
        transition(client, log, &step, StepEvent::Wait, Record::default()).await?;
        let line = format!(
            "===> Step \"{}\" is waiting: continue it with POST /api/steps/{}/continue",
            step.name, step.id
        );
        log.push(step.change_id, Some(step.id), &[&line]);
        // A change whose tree waits before any container ran has started all the same.
        transitions::change(client, log, SYSTEM_ACTOR, step.change_id, ChangeEvent::Run).await?;
        return Ok(0);
    }
    if step.has_command && !step.command_finished {
        let message = Message::RunStepV1 {
            change_id: step.change_id,
            step_id: id,
        };
        transition(client, log, &step, StepEvent::Queue, Record::default()).await?;
        outbox::insert_message(client, &message).await?;
        return Ok(1);
    }
    // A grouping step needs no container: its "command" succeeds at once. A step a retry resumes
    // ran its command before: its children go on.
    let record = Record {
        command_finished: true,
        ..Record::default()
    };
    transition(client, log, &step, StepEvent::Open, record).await?;
    let opened = StepRow {
        status: StepStatus::Running,
        ..step
    };
    if opened.command_finished {
        let children = rows::children_of(client, opened.change_id, opened.id).await?;
        roll(client, log, &opened, &children, queue).await?;
        return Ok(0);
    }
    let children = manifest_children(manifest, &opened.action);
    start_children(client, log, &opened, &children, opened.strategy, queue).await?;
    Ok(0)
}

/// Moves a locked step through the state machine, as Gantry.
pub async fn transition(
    client: &impl GenericClient,
    log: &TxLog,
    step: &StepRow,
    event: StepEvent,
    record: Record<'_>,
) -> anyhow::Result<StepStatus> {
    Ok(transitions::step(client, log, SYSTEM_ACTOR, &step.as_ref(), event, record).await?)
}

/// The static children of an action, with whether each needs a container and its strategy.
pub fn manifest_children(
    manifest: &Manifest,
    action: &str,
) -> Vec<(String, bool, ExecutionStrategy)> {
    manifest
        .actions
        .get(action)
        .map(|def| {
            def.steps
                .iter()
                .map(|child| child_spec(manifest, child))
                .collect()
        })
        .unwrap_or_default()
}

pub fn child_spec(manifest: &Manifest, action: &str) -> (String, bool, ExecutionStrategy) {
    let run_as = manifest
        .actions
        .get(action)
        .map(|d| d.run_as)
        .unwrap_or_default();
    (action.to_owned(), manifest.has_command(action), run_as)
}

/// Creates the children of a running step whose own command succeeded and starts them per
/// `strategy`; a step without children is a success right away.
pub async fn start_children(
    client: &impl GenericClient,
    log: &TxLog,
    parent: &StepRow,
    children: &[(String, bool, ExecutionStrategy)],
    strategy: ExecutionStrategy,
    queue: &mut VecDeque<Work>,
) -> anyhow::Result<()> {
    if children.is_empty() {
        queue.push_back(complete_step(client, log, parent, StepEvent::Succeed).await?);
        return Ok(());
    }
    client
        .execute_cached(
            "UPDATE steps SET child_execution_strategy = $2 WHERE id = $1",
            &[&parent.id, &strategy.as_str()],
        )
        .await?;
    let ids = rows::insert_children(client, parent, children).await?;
    match strategy {
        ExecutionStrategy::Parallel => queue.extend(ids.into_iter().map(Work::Start)),
        ExecutionStrategy::Sequential => {
            let line = enqueue_line(&children[0].0, children.len() - 1, &parent.name);
            log.push(parent.change_id, Some(parent.id), &[&line]);
            queue.push_back(Work::Start(ids[0]));
        }
    }
    Ok(())
}

fn enqueue_line(next: &str, others: usize, parent: &str) -> String {
    let plural = if others == 1 { "" } else { "s" };
    format!(
        "===> Enqueuing step \"{next}\" to run next, this and {others} other child step{plural} left to run for step \"{parent}\""
    )
}

/// Moves a locked, running step to a final status through `event` and logs that it finished;
/// returns the work of rolling it up.
pub async fn complete_step(
    client: &impl GenericClient,
    log: &TxLog,
    step: &StepRow,
    event: StepEvent,
) -> anyhow::Result<Work> {
    let status = transition(client, log, step, event, Record::default()).await?;
    log.push(step.change_id, Some(step.id), &[&finished_line(&step.name)]);
    Ok(completed(step, status))
}

/// The log line of a step that reached its final status.
pub fn finished_line(step_name: &str) -> String {
    format!("===> Finished step \"{step_name}\"")
}

/// The work of rolling up `step`, whose final `status` the caller has just written.
pub fn completed(step: &StepRow, status: StepStatus) -> Work {
    // Counted as the finishing transaction runs: one that rolls back (or back to a savepoint,
    // as a success whose property patch conflicts does) may be counted again.
    metrics::counter!(gantry_shared::metrics::names::STEPS_FINISHED, "status" => status.as_str())
        .increment(1);
    Work::Finished(StepRow {
        status,
        ..step.clone()
    })
}

async fn finished(
    client: &impl GenericClient,
    log: &TxLog,
    step: StepRow,
    queue: &mut VecDeque<Work>,
) -> anyhow::Result<Queued> {
    let Some(parent_id) = step.parent_id else {
        let event = match step.status {
            StepStatus::Success => ChangeEvent::Succeed,
            _ => ChangeEvent::Fail,
        };
        return finish_change(client, log, step.change_id, event).await;
    };
    // The parent and its children in one round trip: the change's lock, held by every
    // transaction that changes its tree, makes the order they are locked in irrelevant.
    let (parent, children) = tokio::try_join!(
        rows::lock_step(client, parent_id),
        rows::children_of(client, step.change_id, parent_id)
    )?;
    match parent {
        Some(parent) if parent.status == StepStatus::Running => {
            roll(client, log, &parent, &children, queue).await?
        }
        _ => {}
    }
    Ok(0)
}

/// Moves a running parent on from its children's statuses (see `lifecycle::roll_up`).
async fn roll(
    client: &impl GenericClient,
    log: &TxLog,
    parent: &StepRow,
    children: &[StepRow],
    queue: &mut VecDeque<Work>,
) -> anyhow::Result<()> {
    let statuses: Vec<StepStatus> = children.iter().map(|c| c.status).collect();
    match roll_up(parent.strategy, &statuses) {
        RollUp::Wait => {}
        RollUp::Start(indices) => {
            if parent.strategy == ExecutionStrategy::Sequential {
                let pending = statuses
                    .iter()
                    .filter(|s| **s == StepStatus::Pending)
                    .count();
                let next = &children[indices[0]];
                let line = enqueue_line(&next.name, pending - 1, &parent.name);
                log.push(parent.change_id, Some(parent.id), &[&line]);
            }
            queue.extend(indices.into_iter().map(|i| Work::Start(children[i].id)));
        }
        RollUp::Finish(status) => {
            let (line, event) = match status {
                StepStatus::Success => (
                    format!(
                        "===> All child steps have finished for step \"{}\"",
                        parent.name
                    ),
                    StepEvent::Succeed,
                ),
                _ => (
                    format!("A child step of step \"{}\" failed", parent.name),
                    StepEvent::Fail,
                ),
            };
            log.push(parent.change_id, Some(parent.id), &[&line]);
            queue.push_back(complete_step(client, log, parent, event).await?);
        }
    }
    Ok(())
}

/// Ends a change through `event` (`Succeed` or `Fail`) if it is not final yet: its status, every
/// still-pending step `aborted` when it failed, the environment lock released to the next pending
/// change.
pub async fn finish_change(
    client: &impl GenericClient,
    log: &TxLog,
    change_id: Uuid,
    event: ChangeEvent,
) -> anyhow::Result<Queued> {
    let Some((transition, change)) =
        transitions::change(client, log, SYSTEM_ACTOR, change_id, event).await?
    else {
        return Ok(0);
    };
    // A change that succeeded has no pending step: a step's children exist only once its command
    // succeeded, a sequential parent succeeds only when none is left, and a parallel parent
    // starts all its pending children before it can succeed. A failed one may also have steps
    // waiting for a continue (see `lifecycle::roll_up`): aborted with the pending ones.
    if transition.effects.abort_pending_steps {
        let aborted =
            transitions::steps_of_change(client, log, SYSTEM_ACTOR, change_id, StepEvent::Abort)
                .await?;
        if aborted > 0 {
            log.push(
                change_id,
                None,
                &[&format!("{aborted} pending or waiting step(s) aborted")],
            );
        }
    }
    log.push(
        change_id,
        None,
        &[&format!(
            "Change finished with status {}",
            transition.status
        )],
    );
    start_next_changes(client, log, change.environment_id, change.parallel_changes).await
}

/// Starts what may start in an environment: with `parallel_changes` (read by the caller with the
/// change it handles) every pending change, otherwise the oldest change waiting for the
/// environment if it is pending and no change holds the environment (FIFO, in creation order).
/// A change holds its environment while it is queued or running (a change whose step waits is
/// running); one still `initializing` waits its turn like a pending one: planned later than a
/// younger change (its repository was slower to fetch, say), it must still start first, and its
/// planner starts it when it is pending.
///
/// In FIFO mode the environment row lock serialises this between transactions: a change that
/// finishes and one that a planner makes pending must not each miss the other. The query after
/// the lock, a statement of its own, sees what was committed before the lock was granted.
/// Parallel changes need no lock: a change is started by a conditional update, so two
/// transactions that both see it pending start it once.
pub async fn start_next_changes(
    client: &impl GenericClient,
    log: &TxLog,
    environment_id: Uuid,
    parallel_changes: bool,
) -> anyhow::Result<Queued> {
    let rows = if parallel_changes {
        client
            .query_cached(
                "SELECT id FROM changes WHERE environment_id = $1 AND status_code = 'pending' \
                 ORDER BY created_at, id",
                &[&environment_id],
            )
            .await?
    } else {
        client
            .execute_cached(
                "SELECT 1 FROM environments WHERE id = $1 FOR NO KEY UPDATE",
                &[&environment_id],
            )
            .await?;
        let oldest = client
            .query_cached(
                "SELECT id, status_code FROM changes c WHERE environment_id = $1 \
                 AND status_code IN ('initializing', 'pending') \
                 AND NOT EXISTS (SELECT 1 FROM changes h WHERE h.environment_id = $1 \
                 AND h.status_code IN ('queued', 'running')) ORDER BY created_at, id LIMIT 1",
                &[&environment_id],
            )
            .await?;
        oldest
            .into_iter()
            .filter(|row| row.get::<_, &str>(1) == ChangeStatus::Pending.as_str())
            .collect()
    };
    let mut queued = 0;
    for row in rows {
        queued += start_change(client, log, row.get(0)).await?;
    }
    Ok(queued)
}

/// The log line of a change that leaves `pending` for `queued`.
pub const QUEUED_LINE: &str = "Change queued: the environment is free";

/// Queues the change if it is still pending and starts its root step.
async fn start_change(
    client: &impl GenericClient,
    log: &TxLog,
    change_id: Uuid,
) -> anyhow::Result<Queued> {
    // The manifest and the root step come with the update, in its round trip.
    let Some(row) = client
        .query_opt_cached(
            "UPDATE changes SET status_code = 'queued' WHERE id = $1 AND status_code = 'pending' \
             RETURNING traceparent, step_tree, \
             (SELECT id FROM steps WHERE change_id = $1 AND parent_id IS NULL)",
            &[&change_id],
        )
        .await?
    else {
        return Ok(0);
    };
    // (Pending to queued: `ChangeEvent::Queue`.)
    let queued = ChangeEvent::Queue.transition().status;
    log.event(transitions::change_event(
        SYSTEM_ACTOR,
        change_id,
        ChangeStatus::Pending,
        queued,
    ));
    // This runs inside the trace of the change that freed the environment; what is sent for this
    // change belongs to its own trace.
    let span = tracing::info_span!("start_change", %change_id, trace_id = tracing::field::Empty);
    telemetry::continue_trace(&span, row.get::<_, Option<&str>>(0));
    let manifest = rows::manifest_of(row.get(1))?;
    let root: Uuid = row
        .get::<_, Option<Uuid>>(2)
        .ok_or_else(|| anyhow::anyhow!("change {change_id} has no root step"))?;
    async {
        log.push(change_id, None, &[QUEUED_LINE]);
        // Boxed: starting a change may finish it at once (a tree of empty grouping steps), which
        // starts the next change — a cycle through async fns.
        Box::pin(drive(client, log, &manifest, vec![Work::Start(root)])).await
    }
    .instrument(span)
    .await
}

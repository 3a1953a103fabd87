//! The step tree and the change lifecycle (DESIGN §3), as transitions inside the caller's
//! transaction. Work is a queue of `Start` / `Finished` items processed iteratively, so a tree of
//! grouping steps (no container) completes in one transaction without recursion.

use gantry_shared::db::CachedStatements;
use std::collections::VecDeque;

use deadpool_postgres::GenericClient;
use gantry_shared::domain::{ChangeStatus, StepStatus};
use gantry_shared::manifest::Manifest;
use gantry_shared::messages::Message;
use gantry_shared::protocol::ExecutionStrategy;
use gantry_shared::{outbox, telemetry};
use tracing::Instrument;
use uuid::Uuid;

use super::rows::{self, StepRow};
use crate::steplog::system_lines;

pub enum Work {
    /// Queue the step (or, for a grouping step, complete it and start its children).
    Start(Uuid),
    /// The step reached a final status: roll up to its parent or the change.
    Finished(Uuid),
}

/// Processes `work` until nothing is left.
pub async fn drive(
    client: &impl GenericClient,
    manifest: &Manifest,
    work: Vec<Work>,
) -> anyhow::Result<()> {
    let mut queue: VecDeque<Work> = work.into();
    while let Some(item) = queue.pop_front() {
        match item {
            Work::Start(id) => start(client, manifest, id, &mut queue).await?,
            Work::Finished(id) => finished(client, id, &mut queue).await?,
        }
    }
    Ok(())
}

async fn start(
    client: &impl GenericClient,
    manifest: &Manifest,
    id: Uuid,
    queue: &mut VecDeque<Work>,
) -> anyhow::Result<()> {
    let Some(step) = rows::lock_step(client, id).await? else {
        return Ok(());
    };
    if step.status != StepStatus::Pending {
        return Ok(());
    }
    if step.has_command {
        client
            .execute_cached(
                "UPDATE steps SET status_code = 'queued' WHERE id = $1",
                &[&id],
            )
            .await?;
        outbox::insert_message(
            client,
            &Message::RunStepV1 {
                change_id: step.change_id,
                step_id: id,
            },
        )
        .await?;
        return Ok(());
    }
    // A grouping step needs no container: its "command" succeeds at once.
    client
        .execute_cached("UPDATE steps SET status_code = 'running', started_at = now(), command_finished_at = now() WHERE id = $1", &[&id])
        .await?;
    let children = manifest_children(manifest, &step.action);
    start_children(client, &step, &children, step.strategy, queue).await
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

/// Creates the children of a step whose own command succeeded and queues them per `strategy`;
/// a step without children is a success right away.
pub async fn start_children(
    client: &impl GenericClient,
    parent: &StepRow,
    children: &[(String, bool, ExecutionStrategy)],
    strategy: ExecutionStrategy,
    queue: &mut VecDeque<Work>,
) -> anyhow::Result<()> {
    if children.is_empty() {
        complete_step(client, parent, StepStatus::Success).await?;
        queue.push_back(Work::Finished(parent.id));
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
            let left = children.len() - 1;
            let line = enqueue_line(&children[0].0, left, &parent.name);
            system_lines(client, parent.change_id, Some(parent.id), &[&line]).await?;
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

/// Gives a step its final status and logs that it finished.
pub async fn complete_step(
    client: &impl GenericClient,
    step: &StepRow,
    status: StepStatus,
) -> Result<(), tokio_postgres::Error> {
    rows::set_step_status(client, step.id, status).await?;
    // Counted as the finishing transaction runs: one that rolls back may be counted again.
    metrics::counter!(gantry_shared::metrics::names::STEPS_FINISHED, "status" => status.as_str())
        .increment(1);
    let line = format!("===> Finished step \"{}\"", step.name);
    system_lines(client, step.change_id, Some(step.id), &[&line]).await
}

async fn finished(
    client: &impl GenericClient,
    id: Uuid,
    queue: &mut VecDeque<Work>,
) -> anyhow::Result<()> {
    let Some(step) = rows::lock_step(client, id).await? else {
        return Ok(());
    };
    let Some(parent_id) = step.parent_id else {
        let status = if step.status == StepStatus::Success {
            ChangeStatus::Success
        } else {
            ChangeStatus::Error
        };
        return finish_change(client, step.change_id, status).await;
    };
    let Some(parent) = rows::lock_step(client, parent_id).await? else {
        return Ok(());
    };
    if parent.status.is_final() {
        return Ok(());
    }
    let children = rows::children_of(client, parent_id).await?;
    let busy = children.iter().any(|c| {
        matches!(
            c.status,
            StepStatus::Queued | StepStatus::Running | StepStatus::Waiting
        )
    });
    let failed = children
        .iter()
        .any(|c| c.status.is_final() && c.status != StepStatus::Success);
    let outcome = match (parent.strategy, step.status == StepStatus::Success) {
        (ExecutionStrategy::Sequential, true) => {
            let pending: Vec<&StepRow> = children
                .iter()
                .filter(|c| c.status == StepStatus::Pending)
                .collect();
            if let Some(next) = pending.first() {
                let line = enqueue_line(&next.name, pending.len() - 1, &parent.name);
                system_lines(client, parent.change_id, Some(parent.id), &[&line]).await?;
                queue.push_back(Work::Start(next.id));
                return Ok(());
            }
            Some(StepStatus::Success)
        }
        (ExecutionStrategy::Sequential, false) => Some(StepStatus::Error),
        (ExecutionStrategy::Parallel, _) if busy => None,
        (ExecutionStrategy::Parallel, _) if failed => Some(StepStatus::Error),
        (ExecutionStrategy::Parallel, _) => Some(StepStatus::Success),
    };
    if let Some(status) = outcome {
        if status == StepStatus::Success {
            let line = format!(
                "===> All child steps have finished for step \"{}\"",
                parent.name
            );
            system_lines(client, parent.change_id, Some(parent.id), &[&line]).await?;
        } else {
            let line = format!("A child step of step \"{}\" failed", parent.name);
            system_lines(client, parent.change_id, Some(parent.id), &[&line]).await?;
        }
        complete_step(client, &parent, status).await?;
        queue.push_back(Work::Finished(parent.id));
    }
    Ok(())
}

/// Ends a change: its final status, every still-pending step `aborted`, the environment lock
/// released to the next pending change.
pub async fn finish_change(
    client: &impl GenericClient,
    change_id: Uuid,
    status: ChangeStatus,
) -> anyhow::Result<()> {
    let row = client
        .query_opt_cached(
            "UPDATE changes SET status_code = $2, finished_at = now() \
             WHERE id = $1 AND status_code NOT IN ('success', 'error', 'cancelled') RETURNING environment_id",
            &[&change_id, &status.as_str()],
        )
        .await?;
    let Some(row) = row else { return Ok(()) };
    let aborted = client
        .execute_cached("UPDATE steps SET status_code = 'aborted', finished_at = now() WHERE change_id = $1 AND status_code = 'pending'", &[&change_id])
        .await?;
    let mut lines = vec![format!("Change finished with status {status}")];
    if aborted > 0 {
        lines.insert(0, format!("{aborted} pending step(s) aborted"));
    }
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    system_lines(client, change_id, None, &refs).await?;
    client
        .execute_cached(
            "INSERT INTO events (type, actor, target, payload) VALUES ($1, 'gantry', $2, '{}')",
            &[
                &format!("change:{status}"),
                &format!("/changes/{change_id}"),
            ],
        )
        .await?;
    start_next_changes(client, row.get(0)).await
}

/// Starts what may start in an environment: with `allow_parallel_changes` every pending change,
/// otherwise the oldest pending one if no change holds the environment (FIFO). The environment
/// row lock serialises this between workers.
pub async fn start_next_changes(
    client: &impl GenericClient,
    environment_id: Uuid,
) -> anyhow::Result<()> {
    let row = client
        .query_one_cached(
            "SELECT p.allow_parallel_changes FROM environments e JOIN projects p ON p.id = e.project_id \
             WHERE e.id = $1 FOR UPDATE OF e",
            &[&environment_id],
        )
        .await?;
    let parallel: bool = row.get(0);
    let sql = if parallel {
        "SELECT id FROM changes WHERE environment_id = $1 AND status_code = 'pending' ORDER BY created_at, id"
    } else {
        "SELECT id FROM changes c WHERE environment_id = $1 AND status_code = 'pending' \
         AND NOT EXISTS (SELECT 1 FROM changes h WHERE h.environment_id = $1 AND h.status_code IN ('queued', 'running')) \
         ORDER BY created_at, id LIMIT 1"
    };
    let ids: Vec<Uuid> = client
        .query_cached(sql, &[&environment_id])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for change_id in ids {
        start_change(client, change_id).await?;
    }
    Ok(())
}

async fn start_change(client: &impl GenericClient, change_id: Uuid) -> anyhow::Result<()> {
    let traceparent: Option<String> = client
        .query_opt_cached(
            "UPDATE changes SET status_code = 'queued' WHERE id = $1 AND status_code = 'pending' RETURNING traceparent",
            &[&change_id],
        )
        .await?
        .and_then(|row| row.get(0));
    // This runs inside the trace of the change that freed the environment; what is sent for this
    // change belongs to its own trace.
    let span = tracing::info_span!("start_change", %change_id, trace_id = tracing::field::Empty);
    telemetry::continue_trace(&span, traceparent.as_deref());
    start_queued_change(client, change_id)
        .instrument(span)
        .await
}

async fn start_queued_change(client: &impl GenericClient, change_id: Uuid) -> anyhow::Result<()> {
    system_lines(
        client,
        change_id,
        None,
        &["Change queued: the environment is free"],
    )
    .await?;
    let manifest = rows::change_manifest(client, change_id).await?;
    let root = rows::root_step(client, change_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("change {change_id} has no root step"))?;
    // Boxed: starting a change may finish it at once (a tree of empty grouping steps), which
    // starts the next change — a cycle through async fns.
    Box::pin(drive(client, &manifest, vec![Work::Start(root.id)])).await
}

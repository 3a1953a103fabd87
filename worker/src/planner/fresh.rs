//! The plans of a batch's new changes, written set-based: one statement plans every change
//! (`changes`), inserts every root step (`steps`) and queues every root that runs a container
//! (`outbox`); the audit events and log lines go with the transaction's [`TxLog`] (one statement
//! each); what may start in the batch's environments is looked up once per environment.
//!
//! How a new change's root starts is decided here, without the database, where it takes one
//! transition: a root that runs a container is queued, a root without a command or children
//! succeeds at once and its change with it. Every other root (children to create, a wait step)
//! is inserted pending and driven by `orchestrate::drive`, as are changes held back in a FIFO
//! environment. Every status comes from `gantry_shared::lifecycle`, and the rows, events, lines
//! and messages are those the step-by-step path writes (a test compares them).

use std::collections::{BTreeSet, HashSet};

use deadpool_postgres::GenericClient;
use futures_util::future::join_all;
use gantry_shared::db::CachedStatements;
use gantry_shared::domain::{ChangeStatus, StepStatus};
use gantry_shared::lifecycle::{ChangeEvent, StepEvent, change_transition, step_transition};
use gantry_shared::logs::TxLog;
use gantry_shared::manifest::{Manifest, WAIT_ACTION};
use gantry_shared::messages::{EXCHANGE, Message, Queue};
use gantry_shared::outbox::OutboxRow;
use gantry_shared::protocol::ExecutionStrategy;
use gantry_shared::transitions::{self, SYSTEM_ACTOR, StepRef};
use tracing::Instrument;
use uuid::Uuid;

use super::load::ChangeToPlan;
use crate::results::orchestrate::{self, Queued, Work};

/// A new change to plan, with its commit and manifest, and the span its writes belong to.
pub struct NewPlan<'a> {
    pub change: &'a ChangeToPlan,
    pub sha: &'a str,
    pub manifest: &'a Manifest,
    pub span: &'a tracing::Span,
}

/// How a new change's root starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Queued for a runner.
    Queue,
    /// No command, no children: a success at once, and the change with it.
    Finish,
    /// Inserted pending, then driven (children, a wait step) or held back (a FIFO environment).
    Drive,
}

/// How the root of `change`, an action with or without a command, starts.
fn start_of(change: &ChangeToPlan, manifest: &Manifest, has_command: bool) -> Start {
    if !change.parallel_changes || change.action == WAIT_ACTION {
        return Start::Drive;
    }
    match has_command {
        true => Start::Queue,
        false if orchestrate::manifest_children(manifest, &change.action).is_empty() => {
            Start::Finish
        }
        false => Start::Drive,
    }
}

/// One change's values in the statement.
struct Row<'a> {
    plan: &'a NewPlan<'a>,
    start: Start,
    tree: serde_json::Value,
    /// The status the plan moves the change to (queued or pending), and the one it leaves it in
    /// (success, when its root finished at once).
    planned: ChangeStatus,
    status: ChangeStatus,
    root: Uuid,
    has_command: bool,
    strategy: ExecutionStrategy,
    root_status: StepStatus,
    message: Option<OutboxRow>,
}

/// Writes the plans in the caller's transaction; returns how many messages went to the outbox.
pub async fn write(
    tx: &impl GenericClient,
    log: &TxLog,
    plans: &[NewPlan<'_>],
) -> anyhow::Result<Queued> {
    let mut rows = Vec::with_capacity(plans.len());
    for plan in plans {
        rows.push(row_of(plan)?);
    }
    let planned = insert(tx, &rows).await?;
    let mut queued = 0;
    let mut drive = Vec::new();
    for row in rows.iter().filter(|r| planned.contains(&r.plan.change.id)) {
        record(log, row)?;
        queued += usize::from(row.message.is_some());
        if row.start == Start::Drive && row.status == ChangeStatus::Queued {
            drive.push(row);
        }
    }
    let driven = join_all(drive.iter().map(|row| {
        orchestrate::drive(tx, log, row.plan.manifest, vec![Work::Start(row.root)])
            .instrument(row.plan.span.clone())
    }))
    .await;
    for result in driven {
        queued += result?;
    }
    // What may start in each environment now: pending changes of an environment switched to
    // parallel changes, the oldest of a FIFO environment.
    let environments: BTreeSet<(Uuid, bool)> = rows
        .iter()
        .map(|r| (r.plan.change.environment_id, r.plan.change.parallel_changes))
        .collect();
    for (environment_id, parallel) in environments {
        queued += orchestrate::start_next_changes(tx, log, environment_id, parallel).await?;
    }
    Ok(queued)
}

fn row_of<'a>(plan: &'a NewPlan<'a>) -> anyhow::Result<Row<'a>> {
    let change = plan.change;
    let (_, has_command, strategy) = orchestrate::child_spec(plan.manifest, &change.action);
    let start = start_of(change, plan.manifest, has_command);
    let planned = change_transition(ChangeStatus::Initializing, super::plan_event(change))?.status;
    let root = Uuid::now_v7();
    let (status, root_status, message) = match start {
        Start::Drive => (planned, StepStatus::Pending, None),
        Start::Queue => {
            let message = plan.span.in_scope(|| {
                OutboxRow::of(&Message::RunStepV1 {
                    change_id: change.id,
                    step_id: root,
                })
            });
            let root_status = step_transition(StepStatus::Pending, StepEvent::Queue)?;
            (planned, root_status, Some(message))
        }
        Start::Finish => {
            let opened = step_transition(StepStatus::Pending, StepEvent::Open)?;
            let root_status = step_transition(opened, StepEvent::Succeed)?;
            let status = change_transition(planned, ChangeEvent::Succeed)?.status;
            (status, root_status, None)
        }
    };
    Ok(Row {
        plan,
        start,
        tree: serde_json::to_value(plan.manifest)?,
        planned,
        status,
        root,
        has_command,
        strategy,
        root_status,
        message,
    })
}

/// Plans every change still `initializing`, with its root step and its message, in one
/// statement; returns the ids of the changes it planned (the others were planned before).
async fn insert(
    tx: &impl GenericClient,
    rows: &[Row<'_>],
) -> Result<HashSet<Uuid>, tokio_postgres::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.plan.change.id).collect();
    let shas: Vec<&str> = rows.iter().map(|r| r.plan.sha).collect();
    let trees: Vec<&serde_json::Value> = rows.iter().map(|r| &r.tree).collect();
    let statuses: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    let finished: Vec<bool> = rows.iter().map(|r| r.status.is_final()).collect();
    let roots: Vec<Uuid> = rows.iter().map(|r| r.root).collect();
    let actions: Vec<&str> = rows.iter().map(|r| r.plan.change.action.as_str()).collect();
    let has_command: Vec<bool> = rows.iter().map(|r| r.has_command).collect();
    let strategies: Vec<&str> = rows.iter().map(|r| r.strategy.as_str()).collect();
    let root_statuses: Vec<&str> = rows.iter().map(|r| r.root_status.as_str()).collect();
    let started: Vec<bool> = rows
        .iter()
        .map(|r| !matches!(r.root_status, StepStatus::Pending | StepStatus::Queued))
        .collect();
    let payloads: Vec<Option<&[u8]>> = rows
        .iter()
        .map(|r| r.message.as_ref().map(|m| m.payload.as_slice()))
        .collect();
    let headers: Vec<Option<&serde_json::Value>> = rows
        .iter()
        .map(|r| r.message.as_ref().map(|m| &m.headers))
        .collect();
    // A root that started (it succeeded at once) has run, and finished, its (absent) command.
    let planned = tx
        .query_cached(
            "WITH input AS ( \
               SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::jsonb[], $4::text[], $5::bool[], \
               $6::uuid[], $7::text[], $8::bool[], $9::text[], $10::text[], $11::bool[], $12::bytea[], \
               $13::jsonb[]) AS i (id, sha, tree, status, finished, root, action, has_command, \
               strategy, root_status, started, payload, headers)), \
             planned AS ( \
               UPDATE changes c SET commit_sha = i.sha, step_tree = i.tree, status_code = i.status, \
               finished_at = CASE WHEN i.finished THEN now() ELSE c.finished_at END \
               FROM input i WHERE c.id = i.id AND c.status_code = 'initializing' RETURNING c.id), \
             roots AS ( \
               INSERT INTO steps (id, change_id, parent_id, position, action, name, has_command, \
               child_execution_strategy, status_code, started_at, command_finished_at, finished_at) \
               SELECT i.root, i.id, NULL, 0, i.action, i.action, i.has_command, i.strategy, \
               i.root_status, CASE WHEN i.started THEN now() END, CASE WHEN i.started THEN now() END, \
               CASE WHEN i.finished THEN now() END \
               FROM input i JOIN planned USING (id)), \
             messages AS ( \
               INSERT INTO outbox (exchange, routing_key, payload, headers) \
               SELECT $14, $15, i.payload, i.headers FROM input i JOIN planned USING (id) \
               WHERE i.payload IS NOT NULL ORDER BY i.id) \
             SELECT id FROM planned",
            &[
                &ids,
                &shas,
                &trees,
                &statuses,
                &finished,
                &roots,
                &actions,
                &has_command,
                &strategies,
                &root_statuses,
                &started,
                &payloads,
                &headers,
                &EXCHANGE,
                &Queue::Steps.name(),
            ],
        )
        .await?;
    Ok(planned.iter().map(|row| row.get(0)).collect())
}

/// The audit events and log lines of a planned change, as the step-by-step path writes them.
fn record(log: &TxLog, row: &Row<'_>) -> anyhow::Result<()> {
    let change = row.plan.change;
    super::log_planned(log, change, row.plan.sha, row.planned);
    let root = |status| StepRef {
        id: row.root,
        change_id: change.id,
        status,
        attempt: 0,
    };
    match row.start {
        Start::Drive => {}
        Start::Queue => log.event(transitions::step_event(
            SYSTEM_ACTOR,
            &root(StepStatus::Pending),
            row.root_status,
        )),
        Start::Finish => {
            let opened = step_transition(StepStatus::Pending, StepEvent::Open)?;
            log.event(transitions::step_event(
                SYSTEM_ACTOR,
                &root(StepStatus::Pending),
                opened,
            ));
            log.event(transitions::step_event(
                SYSTEM_ACTOR,
                &root(opened),
                row.root_status,
            ));
            log.push(
                change.id,
                Some(row.root),
                &[&orchestrate::finished_line(&change.action)],
            );
            metrics::counter!(gantry_shared::metrics::names::STEPS_FINISHED, "status" => row.root_status.as_str())
                .increment(1);
            log.event(transitions::change_event(
                SYSTEM_ACTOR,
                change.id,
                row.planned,
                row.status,
            ));
            log.push(
                change.id,
                None,
                &[&format!("Change finished with status {}", row.status)],
            );
        }
    }
    Ok(())
}

//! Applies one step outcome in one transaction (DESIGN §4 core algorithm, §3 semantics, §7
//! fencing): the step row is locked; an outcome for another attempt, or for a step whose command
//! result was already applied, is dropped; the sealed result is opened; the tree moves on; last,
//! property patches are applied to the current documents (`patches`), and any that cannot be saved
//! rolls the tree back, fails the step with a log naming the owner and writes nothing.

use gantry_shared::db::CachedStatements;
use std::collections::VecDeque;

use deadpool_postgres::{GenericClient, Transaction};
use gantry_shared::crypto::{Cipher, step_properties_aad};
use gantry_shared::domain::StepStatus;
use gantry_shared::lifecycle::StepEvent;
use gantry_shared::logs::TxLog;
use gantry_shared::manifest::{Manifest, WAIT_ACTION};
use gantry_shared::messages::StepOutcome;
use gantry_shared::properties::Owner;
use gantry_shared::protocol::StepResult;
use gantry_shared::store;
use gantry_shared::transitions::Record;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::batch::Batcher;
use super::fail::{Reason, fail};
use super::orchestrate::{self, Queued, Work};
use super::patches::{self, Edit, Sealed, Write};
use super::retry;
use super::rows::{self, StepRow};
use crate::consume::Disposition;
use crate::context::Ctx;

/// Applies the outcome of a `step_result_v1` delivery, with the outcomes arriving beside it (see
/// `batch`).
pub async fn handle_outcome(results: &Batcher, outcome: StepOutcome) -> Disposition {
    let step_id = outcome.step_id;
    match results.apply(outcome).await {
        Ok(()) => {
            fail::fail_point!("results::after_apply", |_| gantry_shared::crash::now(
                "results::after_apply"
            ));
            Disposition::Ack
        }
        Err(e) => {
            tracing::error!(error = ?e, %step_id, "applying a step outcome failed; it will be retried");
            Disposition::Requeue
        }
    }
}

/// Applies one outcome in a transaction of its own; returns how many messages it wrote to the
/// outbox.
pub(super) async fn apply(ctx: &Ctx, outcome: &StepOutcome) -> anyhow::Result<Queued> {
    let mut client = ctx.pool.get().await?;
    let tx = client.transaction().await?;
    // Every transaction that changes a step tree locks its change first, so the results of
    // parallel siblings serialise instead of deadlocking on each other's step rows.
    let (change, step) =
        rows::lock_change_and_step(&tx, outcome.change_id, outcome.step_id).await?;
    let (Some(change), Some(step)) = (change, step) else {
        tracing::warn!(step_id = %outcome.step_id, "dropping an outcome for an unknown step");
        return Ok(0);
    };
    if !awaits(&step, outcome) {
        tracing::info!(step_id = %step.id, attempt = outcome.attempt, "dropping a stale or duplicate outcome");
        return Ok(0);
    }
    let properties_ids = change.properties_ids;
    let manifest = change.manifest()?;
    let log = TxLog::default();
    let (queued, writes) = if let (true, Some(reason)) = (outcome.system, &outcome.error) {
        let what = format!("Attempt {} failed ({reason})", step.attempt);
        let work =
            retry::retry_or_give_up(&tx, &log, ctx.settings.worker.max_attempts, &step, &what)
                .await?;
        // A retry writes the step's message itself (counted whether or not it retried: rare).
        (
            1 + orchestrate::drive(&tx, &log, &manifest, work).await?,
            Vec::new(),
        )
    } else {
        match validate(&ctx.cipher, outcome, &manifest) {
            Ok(result) => {
                success(ctx, &tx, &log, &manifest, &step, &result, properties_ids).await?
            }
            Err(reason) => {
                let work = fail(
                    &tx,
                    &log,
                    &ctx.cipher,
                    &step,
                    outcome.exit_code,
                    &[reason],
                    properties_ids,
                )
                .await?;
                (
                    orchestrate::drive(&tx, &log, &manifest, work).await?,
                    Vec::new(),
                )
            }
        }
    };
    // (Empty after a success with property patches: see `success`.)
    log.flush(&tx).await?;
    let sealed: Vec<Sealed> = writes
        .iter()
        .map(|w| w.seal(&ctx.cipher, step.id))
        .collect();
    commit(tx, &sealed).await?;
    log.notify(&ctx.notifier);
    Ok(queued)
}

/// Whether `step` awaits `outcome`: its current attempt is running and its command's result was
/// not applied yet. Any other outcome is stale or a duplicate, and dropped (DESIGN §7 fencing).
pub(super) fn awaits(step: &StepRow, outcome: &StepOutcome) -> bool {
    step.change_id == outcome.change_id
        && step.status == StepStatus::Running
        && step.attempt == outcome.attempt
        && !step.command_finished
}

/// Writes the patched properties documents and commits. The properties rows are the locks that
/// every result editing the same document queues for, and only the commit releases them: the
/// writes are sent in one round trip with the COMMIT, so a lock is held for the locking read, the
/// patch and that one round trip. (The COMMIT is followed by a BEGIN of an empty transaction,
/// which the transaction handle rolls back when it is dropped, as it does with any transaction it
/// did not commit itself.) A write that fails aborts the transaction, whose COMMIT then rolls
/// everything back, and its error is returned.
pub(super) async fn commit(tx: Transaction<'_>, writes: &[Sealed]) -> anyhow::Result<()> {
    if writes.is_empty() {
        tx.commit().await?;
        return Ok(());
    }
    let author = "gantry";
    // Prepared first (when it is not cached yet): an unprepared statement would be sent only
    // after its preparation, behind the COMMIT.
    let statement = tx.prepare_cached(store::WRITE_LOCKED).await?;
    let (tx, statement) = (&tx, &statement);
    let sent = writes.iter().map(|write| {
        let next = write.version + 1;
        let step_id = Some(write.step_id);
        async move {
            let params: &[&(dyn ToSql + Sync)] = &[
                &write.properties_id,
                &write.version,
                &next,
                &write.sealed,
                &author,
                &step_id,
            ];
            tx.execute(statement, params).await.map_err(|e| {
                if e.code() == Some(&SqlState::NOT_NULL_VIOLATION) {
                    anyhow::anyhow!("properties {} moved while locked", write.properties_id)
                } else {
                    e.into()
                }
            })
        }
    });
    // Polled in order, and each sends its request on its first poll, before any await (as
    // tokio-postgres 0.7 is written, checked against 0.7.18; a short `join_all` polls its futures
    // in order): the writes go out first, in order, then the COMMIT. Every answer is awaited, and
    // the first failed write in that order is the cause: the later ones fail only because it
    // aborted the transaction, and whichever of them is seen first must not stand for it.
    let (written, committed) = futures_util::future::join(
        futures_util::future::join_all(sent),
        tx.batch_execute("COMMIT; BEGIN"),
    )
    .await;
    written.into_iter().collect::<anyhow::Result<Vec<u64>>>()?;
    committed?;
    Ok(())
}

/// The outcome as a usable result, or the reason the step failed.
pub(super) fn validate(
    cipher: &Cipher,
    outcome: &StepOutcome,
    manifest: &Manifest,
) -> Result<StepResult, Reason> {
    if let Some(error) = &outcome.error {
        return Err(Reason::Gantry(error.clone()));
    }
    if outcome.exit_code != Some(0) {
        let code = outcome
            .exit_code
            .map_or("unknown".to_owned(), |c| c.to_string());
        return Err(Reason::Gantry(format!(
            "Failed running step runner container: Step failed with status code: {code}"
        )));
    }
    let sealed = outcome.sealed_result.as_ref().ok_or_else(|| {
        Reason::Gantry("The step exited 0 but wrote no step_result.json".to_owned())
    })?;
    let value = sealed
        .open(cipher, outcome.step_id, outcome.attempt)
        .map_err(|e| {
            Reason::Gantry(format!(
                "The step's result cannot be opened ({e}): it was altered on its way from the \
                 runner role, or sealed with a key this worker does not have"
            ))
        })?;
    let result: StepResult = serde_json::from_value(value)
        .map_err(|e| Reason::Step(format!("The step_result.json is malformed: {e}")))?;
    for child in &result.steps.children {
        if child.action != WAIT_ACTION && !manifest.actions.contains_key(&child.action) {
            return Err(Reason::Step(format!(
                "The step added the child action \"{}\", which the actions manifest does not define",
                child.action
            )));
        }
    }
    Ok(result)
}

/// The step's command succeeded: its tree moves on, then its property patches are computed, to
/// be written at the commit (see [`commit`]). The patches come last because the properties rows
/// are the locks that the results of one project (and the changes of one environment, through its
/// row) queue for, and a lock is held until the commit: taken last, each is held for a few
/// statements instead of the whole transaction. A patch that cannot be saved rolls the tree back
/// to before it moved and fails the step instead.
async fn success(
    ctx: &Ctx,
    tx: &Transaction<'_>,
    log: &TxLog,
    manifest: &Manifest,
    step: &StepRow,
    result: &StepResult,
    properties_ids: (Uuid, Uuid),
) -> anyhow::Result<(Queued, Vec<Write>)> {
    let edits = edits(properties_ids, step, result);
    if !edits.is_empty() {
        tx.batch_execute("SAVEPOINT step_succeeded").await?;
    }
    let work = advance(ctx, tx, log, manifest, step, result).await?;
    let queued = orchestrate::drive(tx, log, manifest, work).await?;
    if edits.is_empty() {
        return Ok((queued, Vec::new()));
    }
    // The lines go in before the properties are locked, so the lock is not held for their
    // insert; a rollback to the savepoint takes them back with the rest.
    log.flush(tx).await?;
    match save_patches(&ctx.cipher, tx, step, &edits).await? {
        Ok(writes) => Ok((queued, writes)),
        Err(reasons) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT step_succeeded")
                .await?;
            // The command exited 0: `validate` let only such an outcome through.
            let work = fail(
                tx,
                log,
                &ctx.cipher,
                step,
                Some(0),
                &reasons,
                properties_ids,
            )
            .await?;
            Ok((
                orchestrate::drive(tx, log, manifest, work).await?,
                Vec::new(),
            ))
        }
    }
}

/// Records the step's success and starts its children.
pub(super) async fn advance(
    ctx: &Ctx,
    client: &impl GenericClient,
    log: &TxLog,
    manifest: &Manifest,
    step: &StepRow,
    result: &StepResult,
) -> anyhow::Result<Vec<Work>> {
    let merged = ctx
        .cipher
        .encrypt_json(&result.step.properties, &step_properties_aad(step.id));
    let line = format!("===> Completing step \"{}\"", step.name);
    let mut children = orchestrate::manifest_children(manifest, &step.action);
    children.extend(
        result
            .steps
            .children
            .iter()
            .map(|c| orchestrate::child_spec(manifest, &c.action)),
    );
    // A step without children succeeds with its command: one update records both.
    if children.is_empty() {
        let record = Record {
            command_finished: true,
            exit_code: Some(Some(0)),
            properties: Some(&merged),
        };
        let status = orchestrate::transition(client, log, step, StepEvent::Succeed, record).await?;
        let finished = orchestrate::finished_line(&step.name);
        log.push(step.change_id, Some(step.id), &[&line, &finished]);
        return Ok(vec![orchestrate::completed(step, status)]);
    }
    client
        .execute_cached(
            "UPDATE steps SET exit_code = 0, properties = $2, command_finished_at = now() WHERE id = $1",
            &[&step.id, &merged],
        )
        .await?;
    log.push(step.change_id, Some(step.id), &[&line]);
    let strategy = result
        .steps
        .child_execution_strategy
        .unwrap_or(step.strategy);
    let mut queue = VecDeque::new();
    orchestrate::start_children(client, log, step, &children, strategy, &mut queue).await?;
    Ok(queue.into())
}

/// The step's non-empty patches, one per owner it edits.
pub(super) fn edits<'a>(
    (project_id, environment_id): (Uuid, Uuid),
    step: &StepRow,
    result: &'a StepResult,
) -> Vec<Edit<'a>> {
    [
        Edit {
            owner: Owner::Project,
            properties_id: project_id,
            received_version: step.project_properties_version,
            patch: &result.project.properties_diff,
        },
        Edit {
            owner: Owner::Environment,
            properties_id: environment_id,
            received_version: step.environment_properties_version,
            patch: &result.environment.properties_diff,
        },
    ]
    .into_iter()
    .filter(|edit| !edit.patch.0.is_empty())
    .collect()
}

/// The step's patched documents, each to be written as its owner's next version (their rows
/// locked); or, when any of them cannot be saved, why.
async fn save_patches(
    cipher: &Cipher,
    client: &impl GenericClient,
    step: &StepRow,
    edits: &[Edit<'_>],
) -> anyhow::Result<Result<Vec<Write>, Vec<Reason>>> {
    if edits.len() > 1 {
        let ids: Vec<_> = edits.iter().map(|edit| edit.properties_id).collect();
        rows::lock_properties(client, &ids).await?;
    }
    let mut writes = Vec::with_capacity(edits.len());
    let mut reasons = Vec::new();
    for edit in edits {
        match patches::patched(cipher, client, step, edit).await? {
            Ok(write) => writes.push(write),
            Err(reason) => reasons.push(reason),
        }
    }
    Ok(if reasons.is_empty() {
        Ok(writes)
    } else {
        Err(reasons)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_testkit::{TestStack, spawn_stack};
    use secrecy::ExposeSecret;
    use serde_json::json;

    /// Whether the connection is outside any transaction block: only there is a SAVEPOINT
    /// refused as such.
    async fn idle(client: &deadpool_postgres::Client) -> bool {
        match client.batch_execute("SAVEPOINT probe").await {
            Err(e) => e.code() == Some(&SqlState::NO_ACTIVE_SQL_TRANSACTION),
            Ok(()) => false,
        }
    }

    fn write(id: &str, version: i64, document: serde_json::Value) -> Write {
        Write {
            properties_id: id.parse().unwrap(),
            version,
            document,
        }
    }

    async fn demo_project(stack: &mut TestStack) -> (String, String) {
        stack
            .project_with_manifest("actions:\n  default:\n    run: 'true'\n")
            .await
    }

    /// The pipelined commit on a pool of one connection: a stale write, first or last, commits
    /// nothing (not even the other write) and names its document; good ones commit every write;
    /// either way the connection goes back to the pool outside any transaction.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_pipelined_commit_saves_all_or_nothing_and_leaves_the_connection_idle() {
        let mut stack = spawn_stack().await;
        let (project, environment) = demo_project(&mut stack).await;
        let cipher = Cipher::from_settings(&stack.settings.encryption).unwrap();
        let url = stack.settings.database.url.expose_secret().to_owned();
        let pool = gantry_shared::db::pool_for_url(&url, 1).unwrap();
        let step_id = Uuid::now_v7();

        // `commit` on the pool's one connection: its outcome, and whether the connection is
        // outside any transaction afterwards.
        let run = |writes: [Write; 2]| {
            let (pool, cipher) = (&pool, &cipher);
            async move {
                let mut client = pool.get().await.unwrap();
                let tx = client.transaction().await.unwrap();
                let sealed: Vec<Sealed> = writes.iter().map(|w| w.seal(cipher, step_id)).collect();
                let outcome = commit(tx, &sealed).await;
                // With its causes: an unexpected database error says which it was.
                (outcome.map_err(|e| format!("{e:#}")), idle(&client).await)
            }
        };
        let moved = |id: &str| Err(format!("properties {id} moved while locked"));
        let stale_last = [
            write(&environment, 1, json!({"first": true})),
            write(&project, 5, json!({"last": true})),
        ];
        assert_eq!(run(stale_last).await, (moved(&project), true));
        let stale_first = [
            write(&environment, 7, json!({"first": true})),
            write(&project, 1, json!({"last": true})),
        ];
        assert_eq!(run(stale_first).await, (moved(&environment), true));
        assert_eq!(stack.properties(&environment).await, (1, json!({})));
        assert_eq!(stack.properties(&project).await, (1, json!({})));

        let good = [
            write(&environment, 1, json!({"first": true})),
            write(&project, 1, json!({"last": true})),
        ];
        assert_eq!(run(good).await, (Ok(()), true));
        assert_eq!(
            stack.properties(&environment).await,
            (2, json!({"first": true}))
        );
        assert_eq!(stack.properties(&project).await, (2, json!({"last": true})));
        stack.stop().await;
    }
}

//! Applies step outcomes in batches, a group commit (`gantry_shared::batching`): the outcomes
//! that arrived while the previous batch was being applied are applied in one transaction. One
//! outcome at a time, a result holds the properties rows it patches from its locking read to its
//! commit, and every result patching the same document queues for them: applied/s is bound by
//! the round trips and the commit of each. In a batch, the rows are locked and read once, the
//! patches applied one after the other in memory, the step trees moved interleaved on the one
//! connection, the log written by one statement, and the whole committed once.
//!
//! A batch takes the plain case only: a step that succeeded, whose patches apply. Anything else —
//! a stale or duplicate outcome, a failed step or attempt, a patch that conflicts or that the
//! checks refuse, a second outcome of a change already in the batch — is applied after the
//! batch's commit, each in a transaction of its own (`apply::apply`), which decides and logs it
//! as it always did. Applied later is a valid order: outcomes arriving together have no order of
//! their own. When the batch's transaction fails, each of its outcomes is applied that way too,
//! so that one outcome cannot hold back the others. A lone outcome is applied that way at once.
//!
//! Locks: the batch's changes in id order, their environments in id order, its steps, then its
//! properties rows in id order — the order one outcome takes them in (change, environment,
//! properties), so a batch and a single outcome never wait for each other in opposite orders.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use futures_util::StreamExt;
use futures_util::future::join_all;
use gantry_shared::batching;
use gantry_shared::logs::TxLog;
use gantry_shared::manifest::Manifest;
use gantry_shared::messages::StepOutcome;
use gantry_shared::protocol::StepResult;
use gantry_shared::store::{self, Versioned};
use tokio_postgres::error::SqlState;
use tracing::Instrument;
use uuid::Uuid;

use super::apply::{self, advance, awaits, commit, edits, validate};
use super::orchestrate::{self, Queued};
use super::patches::{self, Sealed, Write};
use super::rows::{self, StepRow};
use crate::context::Ctx;

/// Outcomes applied in one transaction at most.
const MAX_BATCH: usize = 128;

/// Outcomes a results role handles at once (its prefetch): the largest batch it can form.
pub const RESULTS_PERMITS: usize = MAX_BATCH;

/// Outcomes applied one by one at once (see `apply_batch`).
const ONE_BY_ONE: usize = 8;

/// Batches applied at once. One: while a batch is applied the next one grows; two would queue
/// for the same properties rows anyway when their steps patch one project.
const CONCURRENT_BATCHES: usize = 1;

/// An outcome to apply.
struct ToApply {
    outcome: StepOutcome,
    /// The span of the message's handler: what is written for the outcome belongs to its trace.
    span: tracing::Span,
}

type Request = batching::Request<ToApply, anyhow::Result<()>>;

/// The handlers' side of the results loop.
#[derive(Clone)]
pub struct Batcher(batching::Sender<ToApply, anyhow::Result<()>>);

impl Batcher {
    /// The batcher, and the loop that applies what it is given; the loop ends once every clone
    /// of the batcher is dropped and the last batch is applied.
    pub fn start(ctx: Ctx) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (sender, applying) =
            batching::Sender::start(MAX_BATCH, CONCURRENT_BATCHES, move |batch| {
                let ctx = ctx.clone();
                async move { apply_batch(&ctx, batch).await }
            });
        (Self(sender), applying)
    }

    /// Applies the outcome with the next batch (dropping it when it is stale or a duplicate);
    /// an error means it should be tried again later. A handler stops waiting only when its task
    /// is dropped; the message is then redelivered and found applied, or applied then.
    pub async fn apply(&self, outcome: StepOutcome) -> anyhow::Result<()> {
        let outcome = ToApply {
            outcome,
            span: tracing::Span::current(),
        };
        self.0
            .send(outcome)
            .await
            .ok_or_else(|| anyhow::anyhow!("the results loop has stopped or dropped the outcome"))?
    }
}

async fn apply_batch(ctx: &Ctx, batch: Vec<Request>) {
    metrics::histogram!(gantry_shared::metrics::names::RESULTS_BATCH_SIZE)
        .record(batch.len() as f64);
    let mut later = Vec::new();
    let mut batched = Vec::with_capacity(batch.len());
    if batch.len() == 1 {
        later = batch;
    } else {
        // One outcome per change: the outcomes of parallel siblings move one tree, one after the
        // other.
        let mut changes = HashSet::new();
        for request in batch {
            if changes.insert(request.outcome.change_id) {
                batched.push(request);
            } else {
                later.push(request);
            }
        }
    }
    if !batched.is_empty() {
        match write_batch(ctx, &batched).await {
            Ok((queued, applied)) => {
                notify(ctx, queued);
                for (request, applied) in batched.into_iter().zip(applied) {
                    match applied {
                        true => request.reply(Ok(())),
                        false => later.push(request),
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), outcomes = batched.len(), "a batch of step outcomes failed; applying each in a transaction of its own");
                later.extend(batched);
            }
        }
    }
    // A few at once, as many as the results role handled before it batched: the outcomes of one
    // change queue for its lock, each holding a connection of the pool the worker's other roles
    // share meanwhile, and a batch may leave up to `MAX_BATCH` of them (a change's parallel
    // siblings finishing together).
    futures_util::stream::iter(later)
        .for_each_concurrent(ONE_BY_ONE, |request| async move {
            let applied = apply::apply(ctx, &request.outcome)
                .instrument(request.span.clone())
                .await;
            request.reply(applied.map(|queued| notify(ctx, queued)));
        })
        .await;
}

/// An outcome the batch applies: its step succeeded and its result is usable.
struct Success<'a> {
    request: &'a Request,
    step: StepRow,
    manifest: Manifest,
    result: StepResult,
    properties_ids: (Uuid, Uuid),
}

/// Applies the plain successes among `requests` (one per change) in one transaction; returns the
/// messages it queued and, for each request, whether it was applied (the others are left to
/// [`apply::apply`]).
async fn write_batch(ctx: &Ctx, requests: &[Request]) -> anyhow::Result<(Queued, Vec<bool>)> {
    let mut client = ctx.pool.get().await?;
    let tx = client.transaction().await?;
    let mut change_ids: Vec<Uuid> = requests.iter().map(|r| r.outcome.change_id).collect();
    change_ids.sort_unstable();
    let step_ids: Vec<Uuid> = requests.iter().map(|r| r.outcome.step_id).collect();
    let (mut changes, steps) = rows::lock_changes_and_steps(&tx, &change_ids, &step_ids).await?;
    let mut steps: HashMap<Uuid, StepRow> = steps.into_iter().map(|s| (s.id, s)).collect();
    let mut successes = Vec::with_capacity(requests.len());
    for request in requests {
        let outcome = &request.outcome;
        let (Some(change), Some(step)) = (
            changes.remove(&outcome.change_id),
            steps.remove(&outcome.step_id),
        ) else {
            continue;
        };
        if !awaits(&step, outcome) {
            continue;
        }
        let properties_ids = change.properties_ids;
        let manifest = change.manifest()?;
        if let Ok(result) = validate(&ctx.cipher, outcome, &manifest) {
            successes.push(Success {
                request,
                step,
                manifest,
                result,
                properties_ids,
            });
        }
    }
    let (successes, writes) = patch_all(ctx, &tx, successes).await?;
    let log = TxLog::default();
    let moved = join_all(successes.iter().map(|success| {
        let work = async {
            let work = advance(
                ctx,
                &tx,
                &log,
                &success.manifest,
                &success.step,
                &success.result,
            )
            .await?;
            orchestrate::drive(&tx, &log, &success.manifest, work).await
        };
        work.instrument(success.request.span.clone())
    }))
    .await;
    let queued = total(moved)?;
    log.flush(&tx).await?;
    commit(tx, &writes).await?;
    log.notify(&ctx.notifier);
    let applied: HashSet<Uuid> = successes.iter().map(|s| s.step.id).collect();
    let applied = requests
        .iter()
        .map(|r| applied.contains(&r.outcome.step_id))
        .collect();
    Ok((queued, applied))
}

/// Locks and reads every properties row the successes patch, applies their patches one after
/// the other in the order of the batch, and returns the successes whose patches all apply with
/// the documents to write, sealed; a success with a patch that does not apply (or a document that
/// cannot be read) is left out, and what it would have written with it.
async fn patch_all<'a>(
    ctx: &Ctx,
    tx: &deadpool_postgres::Transaction<'_>,
    successes: Vec<Success<'a>>,
) -> anyhow::Result<(Vec<Success<'a>>, Vec<Sealed>)> {
    let mut ids: Vec<Uuid> = successes
        .iter()
        .flat_map(|s| edits(s.properties_ids, &s.step, &s.result))
        .map(|edit| edit.properties_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut current: HashMap<Uuid, Versioned> = HashMap::new();
    if !ids.is_empty() {
        let loaded = store::load_locked(tx, &ctx.cipher, &ids).await?;
        // One that cannot be read is left out: its steps fail one by one, with the reason.
        for document in loaded.into_iter().flatten() {
            current.insert(document.id, document);
        }
    }
    let mut kept = Vec::with_capacity(successes.len());
    let mut writes = Vec::new();
    for success in successes {
        let edits = edits(success.properties_ids, &success.step, &success.result);
        let patched: Option<Vec<(Uuid, serde_json::Value)>> = edits
            .iter()
            .map(|edit| {
                let document = current.get(&edit.properties_id)?;
                Some((
                    edit.properties_id,
                    patches::patched_current(document, edit)?,
                ))
            })
            .collect();
        let Some(patched) = patched else {
            continue;
        };
        for (id, document) in patched {
            let current = current.get_mut(&id).expect("read above");
            let write = Write {
                properties_id: id,
                version: current.version,
                document,
            };
            writes.push(write.seal(&ctx.cipher, success.step.id));
            current.version += 1;
            current.document = write.document;
        }
        kept.push(success);
    }
    Ok((kept, writes))
}

/// The messages queued by work interleaved in one transaction, or the error that failed it: the
/// first one aborted the transaction, and the work sent after it failed only for that.
pub(crate) fn total(results: Vec<anyhow::Result<Queued>>) -> anyhow::Result<Queued> {
    let mut queued = 0;
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(q) => queued += q,
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        return Ok(queued);
    }
    let first = errors
        .iter()
        .position(|e| !failed_after_an_earlier_error(e))
        .unwrap_or(0);
    Err(errors.swap_remove(first))
}

/// Whether a statement failed only because an earlier one had aborted its transaction.
fn failed_after_an_earlier_error(e: &anyhow::Error) -> bool {
    let code = e
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(tokio_postgres::Error::code);
    code == Some(&SqlState::IN_FAILED_SQL_TRANSACTION)
}

/// After a commit that wrote messages to the outbox, wakes the relay.
pub(crate) fn notify(ctx: &Ctx, queued: Queued) {
    if queued > 0 {
        ctx.signal.notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_shared::messages::SealedResult;
    use gantry_shared::settings::Role;
    use gantry_testkit::TestStack;
    use serde_json::{Value, json};
    use tokio::sync::oneshot;

    /// A stack whose worker applies no results (the tests hand outcomes to the batch's
    /// functions), with project `demo`, the id of its project properties and a results context.
    async fn setup() -> (TestStack, Ctx, tempfile::TempDir, String) {
        let mut stack =
            gantry_testkit::spawn_stack_with(|s| s.worker.roles = vec![Role::Planner]).await;
        let (project_properties, _) = stack
            .project_with_manifest("actions:\n  default:\n    run: 'true'\n")
            .await;
        let (ctx, git_cache) = crate::context::for_tests(&stack, "results-batch-test");
        (stack, ctx, git_cache, project_properties)
    }

    /// `n` running changes of project `demo`, each with one step claimed at attempt 1 that
    /// received version 1 of both properties, as a runner leaves them: (change, step) ids.
    async fn running(stack: &TestStack, n: usize) -> Vec<(Uuid, Uuid)> {
        let pairs: Vec<(Uuid, Uuid)> = (0..n).map(|_| (Uuid::now_v7(), Uuid::now_v7())).collect();
        let (changes, steps): (Vec<Uuid>, Vec<Uuid>) = pairs.iter().copied().unzip();
        let db = stack.db().await;
        db.execute(
            "INSERT INTO changes (id, project_id, environment_id, git_remote_name, git_rev, \
             commit_sha, action, status_code, created_by, started_at, step_tree) \
             SELECT c, p.id, e.id, 'origin', 'main', repeat('0', 40), 'default', 'running', 'test', \
             now(), '{\"actions\": {\"default\": {\"run\": \"true\"}}}' \
             FROM unnest($1::uuid[]) AS c, projects p JOIN environments e ON e.project_id = p.id \
             WHERE p.code = 'demo' AND e.code = 'dev'",
            &[&changes],
        )
        .await
        .unwrap();
        db.execute(
            "INSERT INTO steps (id, change_id, parent_id, position, action, name, has_command, \
             status_code, attempt, started_at, project_properties_version, \
             environment_properties_version) \
             SELECT s, c, NULL, 0, 'default', 'default', true, 'running', 1, now(), 1, 1 \
             FROM unnest($1::uuid[], $2::uuid[]) AS t(s, c)",
            &[&steps, &changes],
        )
        .await
        .unwrap();
        pairs
    }

    /// An outcome of attempt `attempt` of the step, exiting with `exit_code`; with exit 0, a
    /// result patching the project's properties with `diff`.
    fn outcome(
        ctx: &Ctx,
        (change_id, step_id): (Uuid, Uuid),
        attempt: i32,
        exit_code: i64,
        diff: Value,
    ) -> StepOutcome {
        let result = json!({
            "project": {"properties_diff": diff},
            "environment": {"properties_diff": []},
            "step": {"properties": {}},
        });
        StepOutcome {
            change_id,
            step_id,
            attempt,
            exit_code: Some(exit_code),
            sealed_result: (exit_code == 0)
                .then(|| SealedResult::seal(&ctx.cipher, step_id, attempt, &result)),
            error: None,
            system: false,
        }
    }

    fn add(key: &str) -> Value {
        json!([{"op": "add", "path": format!("/{key}"), "value": key}])
    }

    /// A request outside any trace, and where its answer arrives.
    fn request(outcome: StepOutcome) -> (Request, oneshot::Receiver<anyhow::Result<()>>) {
        Request::new(ToApply {
            outcome,
            span: tracing::Span::none(),
        })
    }

    async fn status(stack: &TestStack, change_id: Uuid) -> String {
        let change = stack.get(&format!("/api/changes/{change_id}")).await;
        change["data"]["attributes"]["status_code"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The batch applies the successes whose patches apply, one version each in the batch's
    /// order, and leaves every other outcome untouched for the one-by-one path: a patch that does
    /// not apply to what the batch wrote before it (it removes a key a later outcome adds) or at
    /// all, a failed step, a stale attempt. `apply_batch` then applies those one by one: the
    /// removal now applies, the conflict and the failure end their changes in `error` (the
    /// conflict with its log), the stale attempt and a duplicate of an applied outcome are
    /// dropped; every request is answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_applies_the_successes_and_leaves_the_rest_to_the_one_by_one_path() {
        let (stack, ctx, _git, properties) = setup().await;
        let c = running(&stack, 7).await;
        let remove = |key: &str| json!([{"op": "remove", "path": format!("/{key}")}]);
        let too_early = outcome(&ctx, c[3], 1, 0, remove("second"));
        let conflict = outcome(&ctx, c[4], 1, 0, remove("never"));
        let failed = outcome(&ctx, c[5], 1, 1, json!([]));
        let stale = outcome(&ctx, c[6], 2, 0, add("stale"));
        let batch = [
            outcome(&ctx, c[0], 1, 0, add("first")),
            too_early.clone(),
            outcome(&ctx, c[1], 1, 0, add("second")),
            conflict.clone(),
            failed.clone(),
            outcome(&ctx, c[2], 1, 0, add("third")),
            stale.clone(),
        ];
        let requests: Vec<Request> = batch.into_iter().map(|o| request(o).0).collect();
        let (_, applied) = write_batch(&ctx, &requests).await.unwrap();
        assert_eq!(applied, [true, false, true, false, false, true, false]);
        assert_eq!(
            stack.properties(&properties).await,
            (
                4,
                json!({"first": "first", "second": "second", "third": "third"})
            )
        );
        let statuses = |expected: [&'static str; 7]| {
            let stack = &stack;
            let c = &c;
            async move {
                for (change, expected) in c.iter().zip(expected) {
                    assert_eq!(status(stack, change.0).await, expected, "{change:?}");
                }
            }
        };
        statuses([
            "success", "success", "success", "running", "running", "running", "running",
        ])
        .await;
        let versions: Vec<(i64, Option<Uuid>)> = stack
            .db()
            .await
            .query(
                "SELECT version, step_id FROM properties_versions WHERE properties_id = $1 \
                 ORDER BY version",
                &[&properties.parse::<Uuid>().unwrap()],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        assert_eq!(
            versions,
            [
                (1, None),
                (2, Some(c[0].1)),
                (3, Some(c[1].1)),
                (4, Some(c[2].1))
            ]
        );

        let duplicate = outcome(&ctx, c[0], 1, 0, add("again"));
        let unknown = outcome(&ctx, (c[0].0, Uuid::now_v7()), 1, 0, add("unknown"));
        let (requests, answers): (Vec<_>, Vec<_>) =
            [too_early, conflict, failed, stale, duplicate, unknown]
                .into_iter()
                .map(request)
                .unzip();
        apply_batch(&ctx, requests).await;
        for answer in answers {
            answer.await.unwrap().unwrap();
        }
        statuses([
            "success", "success", "success", "success", "error", "error", "running",
        ])
        .await;
        assert_eq!(
            stack.properties(&properties).await,
            (5, json!({"first": "first", "third": "third"}))
        );
        let log = stack.log(&c[4].0.to_string()).await.join("\n");
        assert!(log.contains("never"), "{log}");
        stack.stop().await;
    }

    /// When the database refuses one outcome of a batch (a test trigger), the batch's
    /// transaction fails and writes nothing; each outcome is then applied in a transaction of its
    /// own: the others succeed, and only the refused one is answered with an error (its message
    /// is redelivered), its change left running.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_outcome_holds_back_no_other_of_its_batch() {
        let (stack, ctx, _git, properties) = setup().await;
        let c = running(&stack, 3).await;
        stack
            .sql(
                "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'poisoned result'; END $$",
            )
            .await;
        stack
            .sql(&format!(
                "CREATE TRIGGER refuse_poison BEFORE UPDATE ON changes FOR EACH ROW \
                 WHEN (NEW.id = '{}' AND NEW.status_code = 'success') \
                 EXECUTE FUNCTION refuse_poison()",
                c[1].0
            ))
            .await;
        let (requests, answers): (Vec<_>, Vec<_>) = c
            .iter()
            .zip(["a", "b", "c"])
            .map(|(pair, key)| request(outcome(&ctx, *pair, 1, 0, add(key))))
            .unzip();
        apply_batch(&ctx, requests).await;
        let mut answered = Vec::new();
        for answer in answers {
            answered.push(answer.await.unwrap().map_err(|e| format!("{e:#}")));
        }
        assert!(answered[0].is_ok() && answered[2].is_ok(), "{answered:?}");
        let refused = answered[1].as_ref().unwrap_err();
        assert!(refused.contains("poisoned result"), "{refused}");
        for (change, expected) in c.iter().zip(["success", "running", "success"]) {
            assert_eq!(status(&stack, change.0).await, expected);
        }
        assert_eq!(
            stack.properties(&properties).await,
            (3, json!({"a": "a", "c": "c"}))
        );
        stack.stop().await;
    }

    /// The outcomes a batch leaves to the one-by-one path hold a few connections at most: while
    /// the first of them waits for its step (locked here) with its change locked, the others of
    /// that change wait for the change, and no more than `ONE_BY_ONE` of them are under way, with
    /// a pool of more connections than they are. Every one is applied once the step is free.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn outcomes_left_to_the_one_by_one_path_are_applied_a_few_at_a_time() {
        let (mut stack, _ctx, _git, _) = setup().await;
        stack.settings.database.pool_size = 32;
        let (ctx, _git) = crate::context::for_tests(&stack, "results-batch-test");
        let change = running(&stack, 1).await[0].0;
        let siblings: Vec<Uuid> = (0..19).map(|_| Uuid::now_v7()).collect();
        let mut db = stack.db().await;
        db.execute(
            "INSERT INTO steps (id, change_id, parent_id, position, action, name, has_command, \
             status_code, attempt, started_at, project_properties_version, \
             environment_properties_version) \
             SELECT s, $2, NULL, n::int, 'default', 'default', true, 'running', 1, now(), 1, 1 \
             FROM unnest($1::uuid[]) WITH ORDINALITY AS t(s, n)",
            &[&siblings, &change],
        )
        .await
        .unwrap();
        let first = stack
            .db()
            .await
            .query_one(
                "SELECT id FROM steps WHERE change_id = $1 AND position = 0",
                &[&change],
            )
            .await
            .unwrap()
            .get(0);
        let blocker = db.transaction().await.unwrap();
        blocker
            .execute(
                "SELECT 1 FROM steps WHERE id = ANY($1) FOR UPDATE",
                &[&siblings],
            )
            .await
            .unwrap();
        let (requests, answers): (Vec<_>, Vec<_>) = std::iter::once(first)
            .chain(siblings.iter().copied())
            .map(|step| request(outcome(&ctx, (change, step), 1, 0, json!([]))))
            .unzip();
        let applying = tokio::spawn({
            let ctx = ctx.clone();
            async move { apply_batch(&ctx, requests).await }
        });
        let watcher = stack.db().await;
        let waiting = || async {
            let row = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .unwrap();
            row.get::<_, i64>(0)
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while waiting().await < ONE_BY_ONE as i64 {
            assert!(
                std::time::Instant::now() < deadline,
                "{} waiting",
                waiting().await
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // Given the time to start more, none does.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(waiting().await, ONE_BY_ONE as i64);
        blocker.commit().await.unwrap();
        applying.await.unwrap();
        for answer in answers {
            answer.await.unwrap().unwrap();
        }
        assert_eq!(status(&stack, change).await, "success");
        stack.stop().await;
    }
}

//! Plans changes in batches, a group commit (`gantry_shared::batching`): every change whose
//! message arrived while the previous batch was being written is loaded by one query and planned
//! in one transaction — the new ones set-based (see `fresh`), retries and changes that cannot run
//! one by one, their statements sent without waiting for the other changes' answers. A burst of
//! creations then costs a few statements, one commit and a few wake-ups per batch instead of
//! several per change; a lone change is planned at once, as a batch of one.
//!
//! The changes of a batch share the transaction's locks, so their plans run interleaved on one
//! connection. Each is correct under any interleaving, as it is against other transactions: it
//! plans its change only if it is still `initializing`, and a change is started only by a
//! conditional update from `pending` after the query that found it (see
//! `orchestrate::start_next_changes`), so two plans that pick the same pending change start it
//! once. The FIFO environments of a batch are locked up front, in one order (see
//! `write_batch`). When the transaction fails, each change of the batch is written again in a
//! transaction of its own, so one change cannot keep the others from being planned.

use std::future::Future;

use futures_util::future::join_all;
use tracing::Instrument;
use uuid::Uuid;

use gantry_shared::batching;
use gantry_shared::db::CachedStatements;
use gantry_shared::telemetry;

use super::fresh::{self, NewPlan};
use super::load::{self, ChangeToPlan};
use super::{Plan, read_plan, write};
use crate::context::Ctx;
use crate::results::batch::{notify, total};
use crate::results::orchestrate::Queued;
use gantry_shared::logs::TxLog;

/// Changes planned in one transaction at most. The planner's prefetch bounds a batch first.
const MAX_BATCH: usize = 256;

/// Batches planned at once. One: while a batch is planned the next one grows, and a few large
/// batches cost far less than many small ones (a fetch, a load, a log flush and a commit each).
/// Measured with `gantry-loadtest create` on two cores shared with the api: creations with the
/// planner running, open loop at 3000/s, p99 24–34 ms with one batch at a time, 31–53 ms with two,
/// 100–250 ms with four. A remote slow to fetch holds back the changes planned after it either way:
/// any batch with one of its changes waits for its fetch.
const CONCURRENT_BATCHES: usize = 1;

/// A change to plan.
struct ToPlan {
    change_id: Uuid,
    /// The span of the message's handler: what is written for the change belongs to its trace.
    /// For a message naming several changes, a span of this change's own, which continues the
    /// trace of the request that created it once it is loaded (`own_trace`).
    span: tracing::Span,
    own_trace: bool,
}

type Request = batching::Request<ToPlan, anyhow::Result<()>>;

/// The handlers' side of the planning loop.
#[derive(Clone)]
pub struct Batcher(batching::Sender<ToPlan, anyhow::Result<()>>);

impl Batcher {
    /// The batcher, and the loop that plans what it is given; the loop ends once every clone
    /// of the batcher is dropped and the last batch is written.
    pub fn start(ctx: Ctx) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (sender, planning) =
            batching::Sender::start(MAX_BATCH, CONCURRENT_BATCHES, move |batch| {
                let ctx = ctx.clone();
                async move { plan_batch(&ctx, batch).await }
            });
        (Self(sender), planning)
    }

    /// Plans the change with the next batch (a no-op for a change that is unknown or already
    /// planned); an error means it should be tried again later.
    pub async fn plan(&self, change_id: Uuid) -> anyhow::Result<()> {
        self.send(change_id, tracing::Span::current(), false).await
    }

    /// [`Self::plan`] for one of the changes a message names together: what is written for it
    /// belongs to its own trace, not to the message's.
    pub async fn plan_in_own_trace(&self, change_id: Uuid) -> anyhow::Result<()> {
        let span = tracing::info_span!("plan_change", %change_id, trace_id = tracing::field::Empty);
        self.send(change_id, span, true).await
    }

    /// A handler stops waiting only when its task is dropped; the message is then redelivered
    /// and the plan found written.
    async fn send(
        &self,
        change_id: Uuid,
        span: tracing::Span,
        own_trace: bool,
    ) -> anyhow::Result<()> {
        let change = ToPlan {
            change_id,
            span,
            own_trace,
        };
        self.0
            .send(change)
            .await
            .ok_or_else(|| anyhow::anyhow!("the planning loop has stopped or dropped the change"))?
    }
}

async fn plan_batch(ctx: &Ctx, batch: Vec<Request>) {
    metrics::histogram!(gantry_shared::metrics::names::PLAN_BATCH_SIZE).record(batch.len() as f64);
    let ids: Vec<Uuid> = batch.iter().map(|r| r.change_id).collect();
    let loaded = async {
        let client = ctx.pool.get().await?;
        load::changes_to_plan(&client, &ctx.cipher, &ids).await
    };
    let mut changes = match loaded.await {
        Ok(changes) => changes,
        Err(e) => {
            for request in batch {
                request.reply(Err(anyhow::anyhow!("loading the changes to plan: {e:#}")));
            }
            return;
        }
    };
    for request in batch.iter().filter(|r| r.own_trace) {
        if let Some(change) = changes.get(&request.change_id) {
            telemetry::continue_trace(&request.span, change.traceparent.as_deref());
        }
    }
    // Git is read for every change at once: the changes of one repository share its fetch.
    let reads = join_all(batch.iter().map(|request| {
        let change = changes.remove(&request.change_id);
        async move {
            let change = change?;
            let plan = read_plan(ctx, &change).await;
            Some(plan.map(|plan| (change, plan)))
        }
        .instrument(request.span.clone())
    }))
    .await;
    let mut plans = Vec::with_capacity(batch.len());
    for (request, read) in batch.into_iter().zip(reads) {
        match read {
            None => {
                request.span.in_scope(|| {
                    tracing::info!(change_id = %request.change_id, "not planning a change that is unknown or already planned");
                });
                request.reply(Ok(()));
            }
            Some(Err(e)) => request.reply(Err(e)),
            Some(Ok(plan)) => plans.push((request, plan)),
        }
    }
    if plans.is_empty() {
        return;
    }
    let written = write_batch(ctx, &plans).await;
    match written {
        Ok(queued) => {
            notify(ctx, queued);
            for (request, _) in plans {
                request.reply(Ok(()));
            }
        }
        Err(e) if plans.len() == 1 => {
            let (request, _) = plans.pop().expect("one plan");
            request.reply(Err(e));
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), changes = plans.len(), "a batch of plans failed; writing each in a transaction of its own");
            let mut written = Vec::with_capacity(plans.len());
            for plan in &plans {
                written.push(write_batch(ctx, std::slice::from_ref(plan)).await);
            }
            for ((request, _), written) in plans.into_iter().zip(written) {
                request.reply(written.map(|queued| notify(ctx, queued)));
            }
        }
    }
}

/// Writes every plan of the batch in one transaction, each in its message's span.
async fn write_batch(
    ctx: &Ctx,
    plans: &[(Request, (ChangeToPlan, Plan))],
) -> anyhow::Result<Queued> {
    write_batch_as(ctx, plans, Writes::SetBased).await
}

/// How the new changes of a batch are written: the step-by-step path stays for retries and
/// failures, and is what the set-based one is tested against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writes {
    SetBased,
    #[cfg_attr(not(test), allow(dead_code))]
    StepByStep,
}

async fn write_batch_as(
    ctx: &Ctx,
    plans: &[(Request, (ChangeToPlan, Plan))],
    writes: Writes,
) -> anyhow::Result<Queued> {
    let mut client = ctx.pool.get().await?;
    let tx = client.transaction().await?;
    // The FIFO environments the plans may start or free a change in, locked first and in one
    // order: interleaved, the plans would lock them in any order, and two batches could
    // each wait for an environment the other holds.
    let mut fifo: Vec<Uuid> = plans
        .iter()
        .filter(|(_, (change, _))| !change.parallel_changes)
        .map(|(_, (change, _))| change.environment_id)
        .collect();
    if !fifo.is_empty() {
        fifo.sort_unstable();
        fifo.dedup();
        tx.execute_cached(
            "SELECT 1 FROM environments WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
            &[&fifo],
        )
        .await?;
    }
    let log = TxLog::default();
    // New changes with a valid plan, set-based; retries (their steps are copied) and changes that
    // cannot run, one by one.
    let mut fresh = Vec::new();
    let mut others = Vec::new();
    for (request, (change, plan)) in plans {
        match plan {
            Ok((sha, manifest)) if writes == Writes::SetBased && change.retried_from.is_none() => {
                fresh.push(NewPlan {
                    change,
                    sha,
                    manifest,
                    span: &request.span,
                })
            }
            _ => others.push((request, change, plan)),
        }
    }
    let fresh_queued = match fresh.is_empty() {
        true => 0,
        false => fresh::write(&tx, &log, &fresh).await?,
    };
    let written = join_all(others.iter().map(|(request, change, plan)| {
        write(&tx, &log, &ctx.cipher, change, plan).instrument(request.span.clone())
    }))
    .await;
    let queued = fresh_queued + total(written)?;
    log.flush(&tx).await?;
    tx.commit().await?;
    log.notify(&ctx.notifier);
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_shared::settings::Role;
    use gantry_testkit::TestStack;
    use serde_json::json;
    use tokio::sync::oneshot;

    const MANIFEST: &str = "actions:
  default: { steps: [first, pair] }
  first: {}
  pair: { steps: [leaf, leaf], run_as: parallel }
  leaf: {}
  job: { run: 'true' }
";

    /// A stack whose worker plans nothing (the tests hand changes to the batcher's functions),
    /// with the project of [`MANIFEST`], a trigger that refuses to plan a change whose metadata
    /// has `poison`, and a planner's context over the stack's database.
    async fn setup() -> (TestStack, Ctx, tempfile::TempDir) {
        setup_with(vec![Role::Runner, Role::Results]).await
    }

    async fn setup_with(roles: Vec<Role>) -> (TestStack, Ctx, tempfile::TempDir) {
        let mut stack = gantry_testkit::spawn_stack_with(|s| {
            s.worker.roles = roles;
        })
        .await;
        stack.project_with_manifest(MANIFEST).await;
        stack
            .sql(
                "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'poisoned plan'; END $$",
            )
            .await;
        stack
            .sql(
                "CREATE TRIGGER refuse_poison BEFORE UPDATE ON changes FOR EACH ROW \
                 WHEN (OLD.status_code = 'initializing' AND NEW.metadata ? 'poison') \
                 EXECUTE FUNCTION refuse_poison()",
            )
            .await;
        let (ctx, git_cache) = crate::context::for_tests(&stack, "batch-test");
        (stack, ctx, git_cache)
    }

    /// Lets the changes of project `demo` run in parallel, or one at a time.
    async fn allow_parallel_changes(stack: &TestStack, parallel: bool) {
        stack
            .sql(&format!(
                "UPDATE projects SET settings = '{{\"allow_parallel_changes\": {parallel}}}'"
            ))
            .await;
    }

    /// The changes of `ids` loaded and their plans read, as a batch has them before it writes.
    async fn plans_of(ctx: &Ctx, ids: &[Uuid]) -> Vec<(Request, (ChangeToPlan, Plan))> {
        let client = ctx.pool.get().await.unwrap();
        let mut changes = load::changes_to_plan(&client, &ctx.cipher, ids)
            .await
            .unwrap();
        drop(client);
        let mut plans = Vec::new();
        for id in ids {
            let change = changes.remove(id).unwrap();
            let plan = read_plan(ctx, &change).await.unwrap();
            plans.push((request(*id).0, (change, plan)));
        }
        plans
    }

    /// A request for the change outside any trace, and where its answer arrives.
    fn request(change_id: Uuid) -> (Request, oneshot::Receiver<anyhow::Result<()>>) {
        Request::new(ToPlan {
            change_id,
            span: tracing::Span::none(),
            own_trace: false,
        })
    }

    async fn create(stack: &TestStack, action: &str, metadata: serde_json::Value) -> String {
        create_in(stack, "dev", action, metadata).await
    }

    async fn create_in(
        stack: &TestStack,
        environment: &str,
        action: &str,
        metadata: serde_json::Value,
    ) -> String {
        let body = json!({"project_code": "demo", "environment_code": environment,
            "git_remote_name": "origin", "git_rev": "main", "action": action,
            "metadata": metadata});
        let change = stack.post("/api/changes", body).await;
        change["data"]["id"].as_str().unwrap().to_owned()
    }

    /// One batch per environment mode, FIFO then parallel: grouping trees that finish while
    /// they are planned, interleaved with a change whose root step needs a container. In the
    /// first, the database refuses one change's plan (a test trigger): the batch's transaction
    /// fails, every other change is still planned, and only that one is reported failed and left
    /// `initializing` for redelivery. Every change finishes once, in `success`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_plans_each_change_once_and_a_refused_plan_holds_back_no_other() {
        let (stack, ctx, _git_cache) = setup().await;
        for parallel in [false, true] {
            allow_parallel_changes(&stack, parallel).await;
            let mut changes = Vec::new();
            for action in ["default", "default", "job", "default", "default"] {
                changes.push(create(&stack, action, json!({})).await);
            }
            let poison = match parallel {
                false => Some(create(&stack, "default", json!({"poison": true})).await),
                true => None,
            };
            let ids = changes.iter().chain(&poison);
            let (requests, answers): (Vec<_>, Vec<_>) =
                ids.map(|id| request(id.parse().unwrap())).unzip();
            plan_batch(&ctx, requests).await;
            let mut answers = join_all(answers).await.into_iter();
            for change in &changes {
                let answer = answers.next().unwrap().unwrap();
                assert!(answer.is_ok(), "{change}: {answer:?}");
            }
            if let Some(poison) = &poison {
                let refused = answers.next().unwrap().unwrap().unwrap_err();
                // Its own transaction's error, not the batch's.
                assert!(
                    format!("{refused:#}").contains("poisoned plan"),
                    "{refused:#}"
                );
                let document = stack.get(&format!("/api/changes/{poison}")).await;
                assert_eq!(
                    document["data"]["attributes"]["status_code"],
                    "initializing"
                );
            }
            for change in &changes {
                let document = stack.wait_final(change).await;
                assert_eq!(
                    document["data"]["attributes"]["status_code"], "success",
                    "{document}"
                );
                let log = stack.log(change).await;
                let finished = log
                    .iter()
                    .filter(|l| l.starts_with("Change finished"))
                    .count();
                assert_eq!(finished, 1, "{change}: {log:#?}");
            }
        }
        stack.stop().await;
    }

    /// The transaction of a batch that one refused plan failed reports that plan's error, not
    /// the "transaction is aborted" of the plans around it (the change before it, whose later
    /// statements went out after the refusal, fails with that too), and writes nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_batch_reports_the_refused_plan_and_writes_nothing() {
        let (stack, ctx, _git_cache) = setup().await;
        let mut ids: Vec<Uuid> = Vec::new();
        for metadata in [json!({}), json!({"poison": true}), json!({}), json!({})] {
            ids.push(create(&stack, "default", metadata).await.parse().unwrap());
        }
        let plans = plans_of(&ctx, &ids).await;
        let refused = write_batch(&ctx, &plans).await.unwrap_err();
        assert!(
            format!("{refused:#}").contains("poisoned plan"),
            "{refused:#}"
        );
        for id in &ids {
            let document = stack.get(&format!("/api/changes/{id}")).await;
            assert_eq!(
                document["data"]["attributes"]["status_code"],
                "initializing"
            );
        }
        stack.stop().await;
    }

    /// Plans the changes of `ids` in one batch, written `writes`.
    async fn plan_as(ctx: &Ctx, ids: &[Uuid], writes: Writes) {
        let plans = plans_of(ctx, ids).await;
        write_batch_as(ctx, &plans, writes).await.unwrap();
    }

    /// Everything planning wrote about a change, its ids replaced by names: the change row, its
    /// steps (in creation order, as `s0`, `s1`, …), the audit events and log lines of both and
    /// the messages about them, in the order written; timestamps only as set or not.
    async fn written(db: &tokio_postgres::Client, change: Uuid) -> serde_json::Value {
        let c = db
            .query_one(
                "SELECT status_code, commit_sha, step_tree, started_at IS NOT NULL, \
                 finished_at IS NOT NULL FROM changes WHERE id = $1",
                &[&change],
            )
            .await
            .unwrap();
        let steps = db
            .query(
                "SELECT id, parent_id, position, action, name, has_command, child_execution_strategy, \
                 status_code, attempt, lease_owner IS NOT NULL, started_at IS NOT NULL, \
                 command_finished_at IS NOT NULL, finished_at IS NOT NULL, exit_code \
                 FROM steps WHERE change_id = $1 ORDER BY id",
                &[&change],
            )
            .await
            .unwrap();
        let mut names = vec![(change.to_string(), "C".to_owned())];
        for (i, step) in steps.iter().enumerate() {
            names.push((step.get::<_, Uuid>(0).to_string(), format!("s{i}")));
        }
        let name = |text: String| {
            names
                .iter()
                .fold(text, |text, (id, name)| text.replace(id, name))
        };
        let steps: Vec<String> = steps
            .iter()
            .map(|s| {
                name(format!(
                    "{:?}",
                    (
                        s.get::<_, Option<Uuid>>(1),
                        s.get::<_, i32>(2),
                        s.get::<_, &str>(3),
                        s.get::<_, &str>(4),
                        s.get::<_, bool>(5),
                        s.get::<_, &str>(6),
                        s.get::<_, &str>(7),
                        s.get::<_, i32>(8),
                        (s.get::<_, bool>(9), s.get::<_, bool>(10)),
                        (s.get::<_, bool>(11), s.get::<_, bool>(12)),
                        s.get::<_, Option<i32>>(13),
                    )
                ))
            })
            .collect();
        let targets: Vec<String> = names
            .iter()
            .map(|(id, name)| match name.as_str() {
                "C" => format!("/changes/{id}"),
                _ => format!("/steps/{id}"),
            })
            .collect();
        let events: Vec<String> = db
            .query(
                "SELECT type, actor, target, payload::text FROM events WHERE target = ANY($1) \
                 AND type <> 'api:changes:create' ORDER BY id",
                &[&targets],
            )
            .await
            .unwrap()
            .iter()
            .map(|e| {
                name(format!(
                    "{} {} {} {}",
                    e.get::<_, &str>(0),
                    e.get::<_, &str>(1),
                    e.get::<_, &str>(2),
                    e.get::<_, &str>(3)
                ))
            })
            .collect();
        let lines: Vec<String> = db
            .query(
                "SELECT step_id::text, stream || ' ' || text FROM log_lines WHERE change_id = $1 ORDER BY id",
                &[&change],
            )
            .await
            .unwrap()
            .iter()
            .map(|l| name(format!("{:?} {}", l.get::<_, Option<&str>>(0), l.get::<_, &str>(1))))
            .collect();
        let messages: Vec<String> = db
            .query("SELECT payload FROM outbox ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|m| String::from_utf8(m.get::<_, Vec<u8>>(0)).unwrap())
            .filter(|m| m.contains(&change.to_string()) && !m.contains("plan_change"))
            .map(name)
            .collect();
        json!({
            "change": name(format!(
                "{:?}",
                (
                    c.get::<_, &str>(0),
                    c.get::<_, Option<&str>>(1),
                    c.get::<_, Option<serde_json::Value>>(2),
                    c.get::<_, bool>(3),
                    c.get::<_, bool>(4),
                )
            )),
            "steps": steps,
            "events": events,
            "lines": lines,
            "messages": messages,
        })
    }

    /// The set-based writes leave what the step-by-step ones leave, for every way a new change's
    /// root starts (queued for a container, a success at once, children to create) in a
    /// parallel and in a FIFO environment: the same rows, audit events, log lines and messages,
    /// ids aside. No runner runs: what is queued stays queued.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn set_based_plans_write_what_step_by_step_plans_write() {
        let (stack, ctx, _git_cache) = setup_with(vec![Role::Results]).await;
        let db = stack.db().await;
        let mut compared = 0;
        for parallel in [true, false] {
            allow_parallel_changes(&stack, parallel).await;
            let mut pairs = Vec::new();
            for action in ["first", "job", "default"] {
                let mut pair = Vec::new();
                for writes in ["set", "step"] {
                    let environment = format!("{action}_{writes}_{parallel}");
                    stack
                        .post(
                            "/api/projects/demo/environments",
                            json!({"code": environment, "name": environment}),
                        )
                        .await;
                    let id = create_in(&stack, &environment, action, json!({})).await;
                    pair.push(id.parse::<Uuid>().unwrap());
                }
                pairs.push(pair);
            }
            let set: Vec<Uuid> = pairs.iter().map(|p| p[0]).collect();
            let step: Vec<Uuid> = pairs.iter().map(|p| p[1]).collect();
            plan_as(&ctx, &set, Writes::SetBased).await;
            plan_as(&ctx, &step, Writes::StepByStep).await;
            let mut statuses = Vec::new();
            for pair in &pairs {
                let (set, step) = (written(&db, pair[0]).await, written(&db, pair[1]).await);
                assert_eq!(set, step, "parallel {parallel}");
                assert!(!set["events"].as_array().unwrap().is_empty(), "{set}");
                statuses.push(set["change"].clone());
                compared += 1;
            }
            if parallel {
                // The shapes differ: one finished, one queued for a runner, one a tree.
                assert!(
                    statuses[0].as_str().unwrap().starts_with("(\"success\""),
                    "{statuses:?}"
                );
                assert!(
                    statuses[1].as_str().unwrap().starts_with("(\"queued\""),
                    "{statuses:?}"
                );
            }
        }
        assert_eq!(compared, 6);
        stack.stop().await;
    }
}

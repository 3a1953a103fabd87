//! The `planner` role: turns an `initializing` change into a planned one (DESIGN §1, §3).
//! Git and the manifest are read outside any transaction; the plans of a batch of changes are
//! written in one transaction (see [`batch`]) that re-checks each change is still `initializing`
//! (duplicate messages are no-ops).

mod batch;
mod fresh;
mod load;
mod retry;

use deadpool_postgres::GenericClient;
use gantry_shared::crypto::Cipher;
use gantry_shared::db::CachedStatements;
use gantry_shared::domain::ChangeStatus;
use gantry_shared::lifecycle::ChangeEvent;
use gantry_shared::logs::TxLog;
use gantry_shared::manifest::{self, MANIFEST_NAMES, Manifest};
use gantry_shared::project_settings::PARALLEL_CHANGES_SQL;
use gantry_shared::transitions::{self, SYSTEM_ACTOR};
use uuid::Uuid;

use crate::consume::Disposition;
use crate::context::Ctx;
use crate::git::GitError;
use crate::results::orchestrate::{self, Queued};
use load::ChangeToPlan;

pub use batch::Batcher;

/// Plans the change with the next batch; a failure is retried by redelivery.
pub async fn handle(plans: &Batcher, change_id: Uuid) -> Disposition {
    match plans.plan(change_id).await {
        Ok(()) => Disposition::Ack,
        Err(e) => {
            tracing::error!(error = ?e, %change_id, "planning failed; it will be retried");
            Disposition::Requeue
        }
    }
}

/// Plans the changes created together with the next batches; the message is requeued when one
/// failed (the others are then found planned, and skipped).
pub async fn handle_all(plans: &Batcher, change_ids: Vec<Uuid>) -> Disposition {
    let planned = futures_util::future::join_all(
        change_ids
            .iter()
            .map(|&change_id| plans.plan_in_own_trace(change_id)),
    )
    .await;
    let failed = planned.iter().filter(|p| p.is_err()).count();
    match planned.into_iter().find_map(Result::err) {
        None => Disposition::Ack,
        Some(e) => {
            tracing::error!(error = ?e, changes = change_ids.len(), failed, "planning changes failed; they will be retried");
            Disposition::Requeue
        }
    }
}

/// Why a change cannot run; the change ends in `error` with this reason in its log.
struct Invalid(String);

/// What the planner makes of a change: its commit and manifest, or why it cannot run.
type Plan = Result<(String, Manifest), Invalid>;

/// Resolves the revision and reads and validates the manifest. Git transport failures of a
/// reachable-looking remote are reported to the user too: retrying would not fix a bad URL.
async fn read_plan(ctx: &Ctx, change: &ChangeToPlan) -> anyhow::Result<Plan> {
    let remote = match &change.remote {
        Ok(remote) => remote,
        Err(reason) => return Ok(Err(Invalid(reason.clone()))),
    };
    // The revision as the remote had it when the change was created, or later: a fetch that
    // started since serves every change created before it. A retry runs its commit again.
    let rev = change.commit_sha.as_deref().unwrap_or(&change.git_rev);
    let sha = match ctx.git.resolve(remote, rev, change.created).await {
        Ok(sha) => sha,
        Err(e @ (GitError::UnknownRevision { .. } | GitError::Failed { .. })) => {
            return Ok(Err(Invalid(e.to_string())));
        }
        Err(e) => return Err(e.into()),
    };
    let folder = ctx.settings.worker.repo_folder.trim_end_matches('/');
    for name in MANIFEST_NAMES {
        let path = format!("{folder}/{name}");
        let Some(bytes) = ctx.git.read_file(remote, &sha, &path).await? else {
            continue;
        };
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => return Ok(Err(Invalid(format!("{path} is not UTF-8 text")))),
        };
        let manifest = match manifest::parse(name, &text) {
            Ok(m) => m,
            Err(e) => return Ok(Err(Invalid(format!("{path}: {e}")))),
        };
        if let Err(e) = manifest.validate_tree(&change.action) {
            return Ok(Err(Invalid(format!("{path}: {e}"))));
        }
        return Ok(Ok((sha, manifest)));
    }
    Ok(Err(Invalid(format!(
        "commit {sha} has no actions manifest ({folder}/actions.yaml, .json or .toml)"
    ))))
}

/// Writes a change's plan, or its failure, in the caller's transaction; returns how many
/// messages it wrote to the outbox.
async fn write(
    tx: &impl GenericClient,
    log: &TxLog,
    cipher: &Cipher,
    change: &ChangeToPlan,
    plan: &Plan,
) -> anyhow::Result<Queued> {
    match plan {
        Ok((sha, manifest)) => write_plan(tx, log, cipher, change, sha, manifest).await,
        Err(Invalid(reason)) => fail(tx, log, change.id, reason).await,
    }
}

async fn write_plan(
    tx: &impl GenericClient,
    log: &TxLog,
    cipher: &Cipher,
    change: &ChangeToPlan,
    sha: &str,
    manifest: &Manifest,
) -> anyhow::Result<Queued> {
    let tree = serde_json::to_value(manifest)?;
    let status = plan_event(change).transition().status;
    // The change's lock, then (in a FIFO environment) the environment's: the reverse of a
    // finishing change that starts the next one, without a deadlock, since that one locks only
    // pending changes and this one is initializing until the commit.
    let planned = tx
        .execute_cached(
            "UPDATE changes SET commit_sha = $2, step_tree = $3, status_code = $4 \
             WHERE id = $1 AND status_code = 'initializing'",
            &[&change.id, &sha, &tree, &status.as_str()],
        )
        .await?;
    if planned == 0 {
        return Ok(0);
    }
    log_planned(log, change, sha, status);
    let copied = match change.retried_from {
        Some(from) => retry::copy_steps(tx, log, cipher, from, change.id).await?,
        None => None,
    };
    let root_id = match copied {
        Some(root) => root,
        None => insert_root(tx, change, manifest).await?,
    };
    // Changes of the environment left pending (a project switched to parallel changes has some)
    // start first, as they would have before this one was planned.
    let mut queued =
        orchestrate::start_next_changes(tx, log, change.environment_id, change.parallel_changes)
            .await?;
    if status == ChangeStatus::Queued {
        let start = vec![orchestrate::Work::Start(root_id)];
        queued += orchestrate::drive(tx, log, manifest, start).await?;
    }
    Ok(queued)
}

/// How a change leaves `initializing` when it is planned. With parallel changes allowed nothing
/// holds it back: it is queued as it is planned. Otherwise it is pending, and started if it is
/// the oldest and its environment is free.
fn plan_event(change: &ChangeToPlan) -> ChangeEvent {
    match change.parallel_changes {
        true => ChangeEvent::Queue,
        false => ChangeEvent::Plan,
    }
}

/// The audit event and log lines of a change planned at `sha` into `status` (queued, or pending
/// until its environment is free).
fn log_planned(log: &TxLog, change: &ChangeToPlan, sha: &str, status: ChangeStatus) {
    log.event(transitions::change_event(
        SYSTEM_ACTOR,
        change.id,
        ChangeStatus::Initializing,
        status,
    ));
    let resolved = format!("Resolved {} to commit {sha}", change.git_rev);
    match status {
        ChangeStatus::Queued => log.push(change.id, None, &[&resolved, orchestrate::QUEUED_LINE]),
        _ => log.push(
            change.id,
            None,
            &[&format!(
                "{resolved}; the change is pending until its environment is free"
            )],
        ),
    }
}

/// The root step of a new change: its action, pending.
async fn insert_root(
    tx: &impl GenericClient,
    change: &ChangeToPlan,
    manifest: &Manifest,
) -> Result<Uuid, tokio_postgres::Error> {
    let (_, has_command, strategy) = orchestrate::child_spec(manifest, &change.action);
    let root_id = Uuid::now_v7();
    tx.execute_cached(
        "INSERT INTO steps (id, change_id, parent_id, position, action, name, has_command, child_execution_strategy, status_code) \
         VALUES ($1, $2, NULL, 0, $3, $3, $4, $5, 'pending')",
        &[&root_id, &change.id, &change.action, &has_command, &strategy.as_str()],
    )
    .await?;
    Ok(root_id)
}

async fn fail(
    tx: &impl GenericClient,
    log: &TxLog,
    change_id: Uuid,
    reason: &str,
) -> anyhow::Result<Queued> {
    if !load::lock_initializing(tx, change_id).await? {
        return Ok(0);
    }
    log.push(
        change_id,
        None,
        &[&format!("ERROR: the change cannot run: {reason}")],
    );
    orchestrate::finish_change(tx, log, change_id, ChangeEvent::Fail).await
}

/// A change left its environment outside a transaction that could start the next one (the API
/// cancelled it): starts what may start there now. Idempotent: a change starts only from
/// `pending`.
pub async fn start_next(ctx: &Ctx, environment_id: Uuid) -> Disposition {
    match start_next_in(ctx, environment_id).await {
        Ok(queued) => {
            if queued > 0 {
                ctx.signal.notify();
            }
            Disposition::Ack
        }
        Err(e) => {
            tracing::error!(error = ?e, %environment_id, "starting the next changes failed; it will be retried");
            Disposition::Requeue
        }
    }
}

async fn start_next_in(ctx: &Ctx, environment_id: Uuid) -> anyhow::Result<Queued> {
    let mut client = ctx.pool.get().await?;
    let tx = client.transaction().await?;
    let sql = format!(
        "SELECT {PARALLEL_CHANGES_SQL} FROM environments e JOIN projects p ON p.id = e.project_id \
         WHERE e.id = $1"
    );
    let Some(row) = tx.query_opt_cached(&sql, &[&environment_id]).await? else {
        return Ok(0);
    };
    let log = TxLog::default();
    let queued = orchestrate::start_next_changes(&tx, &log, environment_id, row.get(0)).await?;
    log.flush(&tx).await?;
    tx.commit().await?;
    log.notify(&ctx.notifier);
    Ok(queued)
}

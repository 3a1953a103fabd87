//! The `runner` role: claim a step, build or reuse its image, run its container, hand the outcome
//! to the `results` role through the outbox (DESIGN §5, §7).

pub mod buildkit;
mod claim;
pub mod container;
pub mod gc;
mod hand_back;
mod image;
pub mod pool;
mod running;
pub mod sweeper;
mod volume;

use std::time::Duration;

use gantry_shared::messages::{Message, SealedResult, StepOutcome};
use gantry_shared::protocol::{SECRET_NAMES_ENV, StepContextEnv, StepStart};
use gantry_shared::telemetry;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::consume::{Disposition, EarlyAck};
use crate::context::Ctx;
use crate::mask::Masker;
use crate::steplog::StepLog;
use claim::Claimed;
use container::{Ended, Shape};
pub use image::ImageCache;
use image::{ImageError, ImageRequest};
pub use running::RunningSteps;

/// The local Docker engine (or `DOCKER_HOST`), at the API version both sides speak.
pub async fn connect_docker() -> anyhow::Result<bollard::Docker> {
    use anyhow::Context;
    bollard::Docker::connect_with_socket_defaults()
        .context("connecting to the Docker engine")?
        .negotiate_version()
        .await
        .context("negotiating the Docker API version")
}

pub async fn handle(ctx: Ctx, change_id: Uuid, step_id: Uuid, ack: EarlyAck) -> Disposition {
    let registration = ctx.running.register(change_id);
    let claimed = match claim_step(&ctx, step_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Disposition::Ack,
        Err(e) if e.is::<claim::UnknownStep>() => {
            tracing::warn!(%step_id, "dead-lettering a message for a step that does not exist");
            return Disposition::DeadLetter;
        }
        Err(e) => {
            tracing::warn!(error = ?e, %step_id, "claiming a step failed; the message will be redelivered");
            return Disposition::Requeue;
        }
    };
    fail::fail_point!("runner::after_claim", |_| gantry_shared::crash::now(
        "runner::after_claim"
    ));
    // The claim is committed: from here the database, not the message, holds the work.
    ack.ack().await;
    run_claimed(&ctx, claimed, &registration.stop).await;
    Disposition::Ack
}

async fn claim_step(ctx: &Ctx, step_id: Uuid) -> anyhow::Result<Option<Claimed>> {
    let mut client = ctx.pool.get().await?;
    let tx = client.transaction().await?;
    let lease = ctx.settings.worker.lease_seconds as f64;
    let Some(claimed) = claim::claim(
        &tx,
        &ctx.cipher,
        &ctx.step_defaults,
        step_id,
        &ctx.worker_id,
        lease,
    )
    .await?
    else {
        // Not queued: a duplicate or stale message; nothing was written. Dropping the
        // transaction ends it.
        return Ok(None);
    };
    tx.commit().await?;
    Ok(Some(claimed))
}

/// How an attempt ended, for this worker.
enum Attempt {
    /// Its outcome, for the results role.
    Ran(StepOutcome),
    /// The lease was lost: another attempt owns the step now; nothing is reported.
    LeaseLost,
    /// The change was cancelled: the container was killed; nothing is reported.
    Stopped,
}

#[tracing::instrument(skip_all, fields(step_id = %claimed.step_id, attempt = claimed.attempt))]
async fn run_claimed(ctx: &Ctx, claimed: Claimed, stop: &CancellationToken) {
    let masker = match &claimed.inputs {
        Ok(inputs) => Masker::new(inputs.secrets.values()),
        Err(_) => Masker::default(),
    };
    let log = StepLog::start(
        ctx.pool.clone(),
        ctx.notifier.clone(),
        claimed.change_id,
        Some(claimed.step_id),
        ctx.settings.worker.max_log_bytes_per_step,
        masker,
    );
    log.system(format!(
        "===> Starting step processing for step \"{}\"",
        claimed.name
    ));
    let lease_lost = CancellationToken::new();
    let done = CancellationToken::new();
    let heartbeat = tokio::spawn(heartbeat(
        ctx.clone(),
        claimed.step_id,
        claimed.attempt,
        Lost {
            lease: lease_lost.clone(),
            cancelled: stop.clone(),
        },
        done.clone(),
    ));
    let mut container = None;
    let ending = Ending {
        lease_lost: &lease_lost,
        stop,
    };
    let attempt = execute(ctx, &claimed, &log, ending, &mut container).await;
    done.cancel();
    let _ = heartbeat.await;
    let handing_back = matches!(attempt, Attempt::Stopped) && ctx.running.handing_back();
    if let Attempt::Stopped = attempt
        && !handing_back
    {
        log.system(format!(
            "===> Step \"{}\" was cancelled with its change: its container was stopped",
            claimed.name
        ));
    }
    log.close().await;
    match attempt {
        Attempt::Ran(outcome) => {
            if !hand_over(ctx, &claimed, outcome).await {
                release(ctx, &claimed).await;
            }
        }
        Attempt::LeaseLost => tracing::warn!("the step's lease was lost; its outcome is dropped"),
        Attempt::Stopped if handing_back => hand_back::requeue(ctx, &claimed).await,
        Attempt::Stopped => release(ctx, &claimed).await,
    }
    if let Some(container) = container {
        let shape = container.shape.clone();
        container.remove().await;
        ctx.parking.refill(ctx, &shape);
    }
}

/// What ends an attempt early.
#[derive(Clone, Copy)]
struct Ending<'a> {
    lease_lost: &'a CancellationToken,
    stop: &'a CancellationToken,
}

/// After an attempt whose outcome nobody wants (the change was cancelled; its lines are stored):
/// gives the lease up if this worker still holds it, so that the change's log followers know no
/// more lines of it will come, and wakes them.
async fn release(ctx: &Ctx, claimed: &Claimed) {
    let released = async {
        let client = ctx.pool.get().await?;
        claim::release(&client, claimed.step_id, claimed.attempt, &ctx.worker_id).await?;
        ctx.notifier.notify(claimed.change_id);
        anyhow::Ok(())
    };
    if let Err(e) = released.await {
        tracing::warn!(error = ?e, "releasing a stopped step's lease failed; it expires instead");
    }
}

/// Runs the attempt. The container it created is left in `created` for the caller to remove after
/// the hand-over.
async fn execute(
    ctx: &Ctx,
    claimed: &Claimed,
    log: &StepLog,
    ending: Ending<'_>,
    created: &mut Option<container::Parked>,
) -> Attempt {
    let outcome = |exit_code, result: Option<serde_json::Value>, error: Option<String>, system| {
        StepOutcome {
            change_id: claimed.change_id,
            step_id: claimed.step_id,
            attempt: claimed.attempt,
            exit_code,
            // Property values: the outbox and the results queue only ever hold them sealed.
            sealed_result: result
                .map(|r| SealedResult::seal(&ctx.cipher, claimed.step_id, claimed.attempt, &r)),
            // The results role stores it as a line of this step's log.
            error: error.map(|e| log.mask(&e).into_owned()),
            system,
        }
    };
    // An attempt that ended before or without its command's exit: only why, and whether the
    // infrastructure is to blame (retried) or the step (failed).
    let failed = |reason: String, system| Attempt::Ran(outcome(None, None, Some(reason), system));
    if ending.stop.is_cancelled() {
        return Attempt::Stopped;
    }
    let Some(docker) = ctx.docker.as_ref() else {
        return failed("this worker has no Docker engine".into(), true);
    };
    let settings = &ctx.settings.worker;
    let (remote, context, secrets) = match &claimed.inputs {
        Ok(inputs) => (&inputs.remote, &inputs.context, &inputs.secrets),
        Err(reason) => return failed(reason.clone(), false),
    };
    let env_file = match StepContextEnv::from_step_context(context) {
        Ok(env) => serde_json::to_vec_pretty(&env).expect("serialisable"),
        Err(e) => {
            return failed(format!("Invalid properties: {e}"), false);
        }
    };
    let request = ImageRequest {
        remote,
        commit_sha: &claimed.commit_sha,
        git_rev: &claimed.git_rev,
        repo_folder: &settings.repo_folder,
        base_image: &claimed.settings.runner_image,
        network: &claimed.settings.runner_network,
        project_code: &claimed.project_code,
        context_env_json: &env_file,
        step_name: &claimed.name,
        build_secrets: &secrets.build,
    };
    let ensured = tokio::select! {
        ensured = image::ensure_image(docker, &ctx.git, &ctx.images, &request, log) => ensured,
        _ = ending.stop.cancelled() => return Attempt::Stopped,
    };
    let image = match ensured {
        Ok(tag) => {
            gc::record_use(ctx, &tag);
            tag
        }
        Err(ImageError::Build(msg)) => {
            return failed(format!("The step image build failed: {msg}"), false);
        }
        Err(ImageError::Infrastructure(msg)) => {
            return failed(msg, true);
        }
    };
    log.system(format!("===> Starting step \"{}\"", claimed.name));
    let timeout = claimed
        .timeout_seconds
        .unwrap_or(claimed.settings.step_timeout);
    // The step's own variables go with its start line, not into the container's configuration.
    let mut env = std::collections::BTreeMap::new();
    // gantry-runner passes it on to the action: a traced tool in the step joins the change's trace.
    if let Some(traceparent) = telemetry::current_traceparent() {
        env.insert("TRACEPARENT".to_owned(), traceparent);
    }
    // Runner secrets are the run's variables; their names (not values) tell gantry-runner not to
    // override them with `gantry.env` properties of the same name (a secret wins).
    let runner_secrets = secrets.runner_env();
    if !runner_secrets.is_empty() {
        let names: Vec<&str> = runner_secrets.keys().map(String::as_str).collect();
        env.insert(SECRET_NAMES_ENV.to_owned(), names.join(","));
        env.extend(runner_secrets.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    // A worker that died or was paused may have left an earlier attempt's container running:
    // it goes before this one starts, so two attempts never run at once on this engine.
    if claimed.attempt > 1 {
        match sweeper::remove_earlier_attempts(ctx, docker, claimed.step_id, claimed.attempt).await
        {
            Ok(0) => {}
            Ok(n) => log.system(format!(
                "===> Removed {n} container(s) of an earlier attempt of this step"
            )),
            Err(e) => {
                return failed(
                    format!("Docker failed removing an earlier attempt's container: {e}"),
                    true,
                );
            }
        }
    }
    let shape = Shape {
        image: image.clone(),
        limits: claimed.settings.clone(),
    };
    let taken = tokio::select! {
        taken = ctx.parking.take(ctx, &shape) => taken,
        _ = ending.stop.cancelled() => return Attempt::Stopped,
    };
    let container = match taken {
        Ok(container) => created.insert(container),
        Err(e) => {
            // Perhaps the image was removed behind this worker's back: the retry checks again.
            ctx.images.forget(&image);
            return failed(e, true);
        }
    };
    match record(ctx, claimed, &container.name).await {
        Ok(true) => {}
        Ok(false) => return Attempt::Stopped,
        Err(e) => {
            return failed(format!("Recording the step's container failed: {e}"), true);
        }
    }
    let run = container::StepRun {
        start: StepStart {
            action: claimed.action.clone(),
            env,
        },
        step_context_json: serde_json::to_vec(context).expect("serialisable"),
        timeout: Duration::from_secs(timeout),
        memory_bytes: claimed.settings.memory_bytes,
        ends: container::Ends {
            lease_lost: ending.lease_lost,
            stop: ending.stop,
        },
    };
    let ended = container.run(settings, run, log).await;
    match ended {
        Ok(Ended::Exited {
            code: 0,
            result: Ok(result),
        }) => Attempt::Ran(outcome(Some(0), result, None, false)),
        Ok(Ended::Exited {
            code: 0,
            result: Err(msg),
        }) => Attempt::Ran(outcome(Some(0), None, Some(msg), false)),
        Ok(Ended::Exited { code, .. }) => Attempt::Ran(outcome(Some(code), None, None, false)),
        Ok(Ended::TimedOut) => failed(
            format!("The step timed out after {timeout} seconds and was killed"),
            false,
        ),
        Ok(Ended::LeaseLost) => Attempt::LeaseLost,
        Ok(Ended::Stopped) => Attempt::Stopped,
        Ok(Ended::Unused) => failed(
            "The step's container ended before it was given the step".to_owned(),
            true,
        ),
        Err(e) => failed(
            format!("Docker failed running the step container: {e}"),
            true,
        ),
    }
}

/// Records the attempt's container (see `claim::record_container`).
async fn record(ctx: &Ctx, claimed: &Claimed, container: &str) -> anyhow::Result<bool> {
    let client = ctx.pool.get().await?;
    Ok(claim::record_container(
        &client,
        claimed.step_id,
        claimed.attempt,
        &ctx.worker_id,
        container,
    )
    .await?)
}

/// How the heartbeat tells the attempt it must end.
struct Lost {
    /// Another attempt owns the step now.
    lease: CancellationToken,
    /// The step was cancelled (a missed `stop_change_v1` broadcast is caught here).
    cancelled: CancellationToken,
}

async fn heartbeat(ctx: Ctx, step_id: Uuid, attempt: i32, lost: Lost, done: CancellationToken) {
    let lease = ctx.settings.worker.lease_seconds as f64;
    let period = Duration::from_secs_f64(lease / 3.0);
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let renewed = match ctx.pool.get().await {
            Ok(client) => {
                claim::renew_lease(&client, step_id, attempt, &ctx.worker_id, lease).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the lease: no database connection");
                continue;
            }
        };
        match renewed {
            Ok(claim::Renewal::Renewed) => {}
            Ok(claim::Renewal::Cancelled) => {
                lost.cancelled.cancel();
                return;
            }
            Ok(claim::Renewal::Lost) => {
                lost.lease.cancel();
                return;
            }
            Err(e) => tracing::warn!(error = %e, "renewing the lease failed; retrying"),
        }
    }
}

/// Writes the outcome to the outbox with the lease release, retrying while the database is away;
/// `false` when it was not handed over (the step is no longer this attempt's: cancelled, or its
/// lease taken over). If it never succeeds the lease expires and the reaper runs the step again.
async fn hand_over(ctx: &Ctx, claimed: &Claimed, outcome: StepOutcome) -> bool {
    let message = Message::StepResultV1(outcome);
    let mut backoff = Duration::from_millis(100);
    for _ in 0..8 {
        let attempt = async {
            let mut client = ctx.pool.get().await?;
            let tx = client.transaction().await?;
            let handed = claim::hand_over(
                tx,
                claimed.step_id,
                claimed.attempt,
                &ctx.worker_id,
                &message,
            )
            .await?;
            anyhow::Ok(handed)
        };
        match attempt.await {
            Ok(true) => {
                ctx.signal.notify();
                return true;
            }
            Ok(false) => {
                tracing::warn!(
                    "the step is no longer this attempt's (cancelled, or its lease taken over); its outcome is dropped"
                );
                return false;
            }
            Err(e) => tracing::warn!(error = ?e, "handing over a step outcome failed; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    false
}

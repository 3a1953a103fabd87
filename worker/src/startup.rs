//! Builds a worker from settings and runs its roles until shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use gantry_shared::crypto::Cipher;
use gantry_shared::logs::Notifier;
use gantry_shared::messages::{Message, Queue};
use gantry_shared::metrics::Scrape;
use gantry_shared::outbox::{self, OutboxSignal};
use gantry_shared::project_settings::EffectiveSettings;
use gantry_shared::settings::{Role, Settings};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::consume::{self, Disposition};
use crate::context::{Context, Ctx};
use crate::git::GitCache;

/// Plan messages a worker handles at once: the largest batch it can plan together.
const PLANNER_PERMITS: usize = 256;

pub struct Worker {
    ctx: Ctx,
    ops: std::net::TcpListener,
    ops_port: u16,
}

impl Worker {
    pub async fn build(mut settings: Settings) -> anyhow::Result<Self> {
        if settings.worker.local_volume_access && !runs_as_root() {
            // Only root may hand the step's files to the runner user: decided once here instead
            // of an inspect and a refused write before every step's fallback to the Docker API.
            tracing::info!("not root: step files are copied through the Docker API");
            settings.worker.local_volume_access = false;
        }
        let pool = gantry_shared::db::pool(&settings.database)?;
        let cipher = Cipher::from_settings(&settings.encryption)?;
        let docker = if settings.worker.roles.contains(&Role::Runner) {
            crate::runner::buildkit::sweep_stale_secret_files();
            Some(crate::runner::connect_docker().await?)
        } else {
            None
        };
        let engine_id = match &docker {
            Some(docker) => docker
                .info()
                .await
                .context("asking the Docker engine for its id")?
                .id
                .unwrap_or_else(|| "docker".to_owned()),
            None => String::new(),
        };
        let host = crate::registry::host_name(&settings.worker.host);
        let worker_id = format!("{host}-{}", uuid::Uuid::new_v4().simple());
        let git = GitCache::with_fetch_interval(
            settings.worker.git_cache_dir.clone(),
            Duration::from_millis(settings.worker.git_fetch_interval_ms),
        );
        let notifier = Notifier::spawn(gantry_shared::db::config(&settings.database)?);
        let (ops, ops_port) =
            crate::ops::bind(&settings.worker.metrics_host, settings.worker.metrics_port)?;
        let ctx = Arc::new(Context {
            pool,
            cipher,
            step_defaults: EffectiveSettings::defaults(&settings.worker),
            settings,
            signal: OutboxSignal::default(),
            notifier,
            host,
            worker_id,
            docker,
            engine_id,
            git,
            images: Default::default(),
            running: Default::default(),
            parking: Default::default(),
        });
        Ok(Self { ctx, ops, ops_port })
    }

    /// The port of `/metrics` and `/health`.
    pub fn metrics_port(&self) -> u16 {
        self.ops_port
    }

    /// Runs the outbox relay, the reaper and one consumer per configured role until `shutdown`,
    /// then waits for in-flight work.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let scrape = Scrape::new(ctx.pool.clone(), ctx.settings.amqp.clone());
        let ops = match crate::ops::serve(self.ops, scrape) {
            Ok(server) => Some(server),
            Err(e) => {
                tracing::error!(error = ?e, "the metrics server did not start");
                None
            }
        };
        let ops_handle = ops.as_ref().map(|server| server.handle());
        let mut tasks = JoinSet::new();
        if let Some(server) = ops {
            tasks.spawn(async move {
                if let Err(e) = server.await {
                    tracing::warn!(error = %e, "the metrics server stopped");
                }
            });
        }
        // The relay outlives the consumers: what the last handlers write (outcomes, steps handed
        // back) is published before the worker exits.
        let relay_stop = CancellationToken::new();
        let relay = tokio::spawn(outbox::run_relay(
            ctx.pool.clone(),
            ctx.settings.amqp.clone(),
            ctx.signal.clone(),
            relay_stop.clone(),
        ));
        // Like the relay, the worker's row outlives the consumers: it shows the worker (and its
        // running steps) until they are done, then marks it stopped.
        let registry_stop = CancellationToken::new();
        let registry = tokio::spawn(crate::registry::run(ctx.clone(), registry_stop.clone()));
        tasks.spawn(crate::reaper::run(ctx.clone(), shutdown.clone()));
        tasks.spawn(crate::retention::run(ctx.clone(), shutdown.clone()));
        if ctx.settings.worker.roles.contains(&Role::Runner) {
            tasks.spawn(crate::control::run(ctx.clone(), shutdown.clone()));
            tasks.spawn(crate::runner::gc::run(ctx.clone(), shutdown.clone()));
            tasks.spawn(crate::runner::sweeper::run(ctx.clone(), shutdown.clone()));
            tasks.spawn(crate::runner::pool::run_expiry(
                ctx.clone(),
                shutdown.clone(),
            ));
        }
        // Its loop ends when the consumers, which hold the other clones, have stopped.
        let (plans, planning) = crate::planner::Batcher::start(ctx.clone());
        tasks.spawn(planning);
        let (results, applying) = crate::results::Batcher::start(ctx.clone());
        tasks.spawn(applying);
        let batchers = Batchers { plans, results };
        for role in ctx.settings.worker.roles.clone() {
            let (queue, permits) = match role {
                // The changes in flight are planned in batches (see planner::batch), and plans of
                // one repository share a fetch (see git): more at once, fewer commits and fetches.
                Role::Planner => (Queue::Changes, PLANNER_PERMITS),
                Role::Runner => (Queue::Steps, ctx.settings.worker.concurrency),
                // Outcomes in flight are applied in batches (see results::batch).
                Role::Results => (Queue::Results, crate::results::batch::RESULTS_PERMITS),
            };
            let handler_ctx = ctx.clone();
            let handler_batchers = batchers.clone();
            let handler_shutdown = shutdown.clone();
            let handler = move |message, ack| {
                let (ctx, batchers) = (handler_ctx.clone(), handler_batchers.clone());
                let shutdown = handler_shutdown.clone();
                async move {
                    let disposition = dispatch(ctx.clone(), batchers, message, ack).await;
                    if disposition == Disposition::Requeue {
                        wait_for_database(&ctx.pool, &shutdown).await;
                    }
                    disposition
                }
            };
            tasks.spawn(consume::run(
                ctx.settings.amqp.clone(),
                queue,
                permits,
                shutdown.clone(),
                handler,
            ));
        }
        drop(batchers);
        tracing::info!(worker_id = %ctx.worker_id, roles = ?ctx.settings.worker.roles, metrics_port = self.ops_port, "worker running");
        shutdown.cancelled().await;
        if let Some(handle) = ops_handle {
            handle.stop(true).await;
        }
        let grace = Duration::from_secs(ctx.settings.worker.shutdown_grace_seconds);
        let running = ctx.running.clone();
        let hand_back = tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let stopped = running.hand_back_all();
            if stopped > 0 {
                tracing::warn!(
                    steps = stopped,
                    ?grace,
                    "handing back the steps still running"
                );
            }
        });
        while tasks.join_next().await.is_some() {}
        hand_back.abort();
        // No step takes a parked container any more: they go, before the worker's row says it
        // stopped.
        ctx.parking.close(Duration::from_secs(10)).await;
        registry_stop.cancel();
        let _ = registry.await;
        relay_stop.cancel();
        if let Err(e) = relay.await {
            tracing::warn!(error = %e, "the outbox relay ended abnormally");
        }
        tracing::info!("worker stopped");
    }
}

/// The batching loops the handlers hand their work to.
#[derive(Clone)]
struct Batchers {
    plans: crate::planner::Batcher,
    results: crate::results::Batcher,
}

async fn dispatch(
    ctx: Ctx,
    batchers: Batchers,
    message: Message,
    ack: consume::EarlyAck,
) -> Disposition {
    match message {
        Message::PlanChangeV1 { change_id } => {
            crate::planner::handle(&batchers.plans, change_id).await
        }
        Message::PlanChangesV1 { change_ids } => {
            crate::planner::handle_all(&batchers.plans, change_ids).await
        }
        Message::StartNextChangesV1 { environment_id } => {
            crate::planner::start_next(&ctx, environment_id).await
        }
        Message::RunStepV1 { change_id, step_id } => {
            crate::runner::handle(ctx, change_id, step_id, ack).await
        }
        Message::StepResultV1(outcome) => {
            crate::results::handle_outcome(&batchers.results, outcome).await
        }
        Message::RollUpV1 { change_id, step_id } => {
            crate::results::handle_roll_up(ctx, change_id, step_id).await
        }
        Message::StopChangeV1 { .. } => {
            tracing::warn!("dead-lettering a broadcast that arrived on a work queue");
            Disposition::DeadLetter
        }
    }
}

/// Returns once the database answers (or on shutdown). A handler that failed while it was down
/// requeues its message only then: five immediate redeliveries would spend the queue's delivery
/// limit, meant for poison messages, in milliseconds and dead-letter work that was accepted (a
/// step left `queued` with no message to run it).
async fn wait_for_database(pool: &deadpool_postgres::Pool, shutdown: &CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    let mut waited = Duration::ZERO;
    loop {
        if gantry_shared::db::answers(pool).await.is_ok() {
            if !waited.is_zero() {
                tracing::info!(?waited, "the database answers again; requeueing");
            }
            return;
        }
        if waited.is_zero() {
            tracing::warn!(
                "the database does not answer; holding the failed message until it does"
            );
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        waited += backoff;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// `/proc/self` belongs to the process's effective user.
fn runs_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

//! Prometheus metrics (DESIGN §6 `GET /metrics`). One recorder per process; counters and
//! histograms are updated where things happen (`metrics::counter!(names::…)`), and the gauges that
//! describe shared state — queue depths, the outbox backlog, steps by status — are read from
//! RabbitMQ and PostgreSQL when `/metrics` is scraped, so every api and worker replica reports
//! the same truth without keeping any state of its own.

use crate::db::CachedStatements;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use deadpool_postgres::Pool;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::Mutex;

use crate::amqp::{self, Topology};
use crate::messages::Queue;
use crate::settings::AmqpSettings;

/// The media type of the Prometheus text exposition format `/metrics` answers with.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Metric names, shared by the code that records them and the tests that read them.
pub mod names {
    pub const HTTP_REQUEST_SECONDS: &str = "gantry_http_request_duration_seconds";
    pub const CHANGES_CREATED: &str = "gantry_changes_created_total";
    pub const QUEUE_DEPTH: &str = "gantry_queue_depth";
    pub const OUTBOX_DEPTH: &str = "gantry_outbox_depth";
    pub const OUTBOX_PUBLISHED: &str = "gantry_outbox_published_total";
    pub const STEPS: &str = "gantry_steps";
    pub const STEPS_FINISHED: &str = "gantry_steps_finished_total";
    pub const MESSAGES: &str = "gantry_messages_total";
    pub const MESSAGE_SECONDS: &str = "gantry_message_duration_seconds";
    pub const PLAN_BATCH_SIZE: &str = "gantry_plan_batch_size";
    pub const CREATE_BATCH_SIZE: &str = "gantry_create_batch_size";
    pub const RESULTS_BATCH_SIZE: &str = "gantry_results_batch_size";
    pub const IMAGES: &str = "gantry_step_images_total";
    pub const CONTAINER_SECONDS: &str = "gantry_container_phase_duration_seconds";
    pub const LEASE_EXPIRIES: &str = "gantry_lease_expiries_total";
    pub const PARKED_TAKEN: &str = "gantry_parked_containers_taken_total";
    pub const PARKED_CONTAINERS: &str = "gantry_parked_containers";
    pub const PROTOCOL_COPIES: &str = "gantry_step_protocol_copies_total";
    pub const SCRAPE_ERRORS: &str = "gantry_metrics_scrape_errors_total";
    pub const PROCESS_CPU_SECONDS: &str = "gantry_process_cpu_seconds";
    pub const LOG_FOLLOWERS: &str = "gantry_log_followers";
    pub const LOG_FOLLOW_QUERIES: &str = "gantry_log_follow_queries_total";
    pub const LOG_FOLLOW_LINES: &str = "gantry_log_follow_lines_total";
}

/// Histogram buckets in seconds: from a fast API request to a long container run.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0, 1800.0,
];

/// Buckets of the batch sizes (`gantry_plan_batch_size` …), in requests: up to the largest batch.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// The statuses `gantry_steps` reports (the partial index `steps_not_final` covers them).
const NOT_FINAL_STEP_STATUSES: [&str; 4] = ["pending", "queued", "running", "waiting"];

/// A gauge source that does not answer within this is skipped for one scrape.
const SOURCE_TIMEOUT: Duration = Duration::from_secs(2);

/// Installs the process-wide recorder once and returns its handle. Processes running an api and a
/// worker together (the tests) share it.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("the bucket list is not empty")
                .set_buckets_for_metric(Matcher::Full(names::PLAN_BATCH_SIZE.into()), BATCH_BUCKETS)
                .expect("the bucket list is not empty")
                .set_buckets_for_metric(
                    Matcher::Full(names::CREATE_BATCH_SIZE.into()),
                    BATCH_BUCKETS,
                )
                .expect("the bucket list is not empty")
                .set_buckets_for_metric(
                    Matcher::Full(names::RESULTS_BATCH_SIZE.into()),
                    BATCH_BUCKETS,
                )
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; this handle then stays empty.
            if metrics::set_global_recorder(recorder).is_ok() {
                describe();
                // Series without labels exist from the start, so a zero is visible as a zero.
                for counter in [
                    names::CHANGES_CREATED,
                    names::OUTBOX_PUBLISHED,
                    names::LEASE_EXPIRIES,
                ] {
                    metrics::counter!(counter).increment(0);
                }
            }
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    use names::*;
    describe_histogram!(
        HTTP_REQUEST_SECONDS,
        Unit::Seconds,
        "API request latency by method, route and status"
    );
    describe_counter!(CHANGES_CREATED, "Changes accepted by the API");
    describe_gauge!(QUEUE_DEPTH, "Messages ready in each queue");
    describe_gauge!(OUTBOX_DEPTH, "Outbox rows not yet published");
    describe_counter!(OUTBOX_PUBLISHED, "Outbox rows published with a confirm");
    describe_gauge!(STEPS, "Steps that are not final, by status");
    describe_counter!(
        STEPS_FINISHED,
        "Steps that reached a final status, by status"
    );
    describe_counter!(MESSAGES, "Deliveries handled, by queue and disposition");
    describe_histogram!(
        MESSAGE_SECONDS,
        Unit::Seconds,
        "Time to handle a delivery, by queue"
    );
    describe_histogram!(
        PLAN_BATCH_SIZE,
        "Changes planned together in one transaction by a planner"
    );
    describe_histogram!(
        CREATE_BATCH_SIZE,
        "Changes created together in one statement by an api (POST /api/changes)"
    );
    describe_histogram!(
        RESULTS_BATCH_SIZE,
        "Step outcomes a results role received together and applied in one transaction (or, \
         those it could not, each in one of its own)"
    );
    describe_counter!(
        IMAGES,
        "Step images needed, by outcome (built, reused, failed)"
    );
    describe_histogram!(
        CONTAINER_SECONDS,
        Unit::Seconds,
        "Step container lifecycle phases (create, start, run, result, remove; take: a claimed step's wait for its container)"
    );
    describe_counter!(
        PARKED_TAKEN,
        "Step containers taken by claimed steps, by whether one was parked ready (yes) or the step waited for one (no)"
    );
    describe_gauge!(
        PARKED_CONTAINERS,
        "Started step containers parked idle on this worker, waiting for a step"
    );
    describe_counter!(LEASE_EXPIRIES, "Step leases found expired by the reaper");
    describe_counter!(
        PROTOCOL_COPIES,
        "Step protocol files copied in (context) and out (result), by route (volume, docker_api)"
    );
    describe_counter!(
        SCRAPE_ERRORS,
        "Gauge sources that failed during a scrape, by source"
    );
    describe_gauge!(
        PROCESS_CPU_SECONDS,
        Unit::Seconds,
        "CPU time this process has used, user and system"
    );
    describe_gauge!(LOG_FOLLOWERS, "Clients following a log (SSE) on this api");
    describe_counter!(
        LOG_FOLLOW_QUERIES,
        "Queries made for log followers, by kind (feed: one per change and wake-up, shared by its followers; catch_up: a follower reading what it missed)"
    );
    describe_counter!(
        LOG_FOLLOW_LINES,
        "Log lines sent to followers (each line counted once per follower)"
    );
}

/// The CPU time (user + system) this process used, from `/proc/self/stat`, in seconds: its
/// 14th and 15th fields count clock ticks of `USER_HZ`, which Linux fixes at 100 for user space.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ').skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / 100.0)
}

/// This process's resident memory in bytes, from `VmRSS` of `/proc/self/status` (in kB).
pub fn process_resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The host's load average over the last minute, from `/proc/loadavg`.
pub fn host_load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// Renders `/metrics`: refreshes the shared-state gauges, then the whole registry.
pub struct Scrape {
    handle: PrometheusHandle,
    pool: Pool,
    amqp: AmqpSettings,
    topology: Topology,
    /// A lazily opened channel for passive queue declarations, reopened after any failure.
    broker: Mutex<Option<(Connection, Channel)>>,
}

impl Scrape {
    pub fn new(pool: Pool, amqp: AmqpSettings) -> Self {
        Self {
            handle: install(),
            pool,
            topology: Topology::new(&amqp),
            amqp,
            broker: Mutex::new(None),
        }
    }

    pub async fn render(&self) -> String {
        let (database, queues) = tokio::join!(
            tokio::time::timeout(SOURCE_TIMEOUT, self.refresh_database()),
            tokio::time::timeout(SOURCE_TIMEOUT, self.refresh_queues()),
        );
        let (database_ok, broker_ok) =
            (matches!(database, Ok(Ok(()))), matches!(queues, Ok(Ok(()))));
        for (source, ok) in [("database", database_ok), ("broker", broker_ok)] {
            if !ok {
                metrics::counter!(names::SCRAPE_ERRORS, "source" => source).increment(1);
            }
        }
        if !broker_ok {
            // Reopened on the next scrape.
            *self.broker.lock().await = None;
        }
        if let Some(seconds) = process_cpu_seconds() {
            metrics::gauge!(names::PROCESS_CPU_SECONDS).set(seconds);
        }
        self.handle.run_upkeep();
        self.handle.render()
    }

    async fn refresh_database(&self) -> Result<(), SourceError> {
        let client = self.pool.get().await?;
        let outbox: i64 = client
            .query_one_cached(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL",
                &[],
            )
            .await?
            .get(0);
        metrics::gauge!(names::OUTBOX_DEPTH).set(outbox as f64);
        let counts: std::collections::HashMap<String, i64> = client
            .query_cached(
                "SELECT status_code, count(*) FROM steps \
                 WHERE status_code IN ('pending', 'queued', 'running', 'waiting') GROUP BY status_code",
                &[],
            )
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        for status in NOT_FINAL_STEP_STATUSES {
            let count = counts.get(status).copied().unwrap_or(0);
            metrics::gauge!(names::STEPS, "status" => status).set(count as f64);
        }
        Ok(())
    }

    async fn refresh_queues(&self) -> Result<(), SourceError> {
        for queue in Queue::ALL {
            for name in [
                self.topology.queue(queue),
                self.topology.dead_letter_queue(queue),
            ] {
                let depth = self.depth(&name).await?;
                metrics::gauge!(names::QUEUE_DEPTH, "queue" => name).set(f64::from(depth));
            }
        }
        Ok(())
    }

    /// Messages in each queue's dead-letter queue, by the queue's name (`gantry.steps`, …):
    /// deliveries that failed past the delivery limit, for an operator to look at.
    pub async fn dead_letters(&self) -> Result<BTreeMap<&'static str, u32>, SourceError> {
        let read = async {
            let mut counts = BTreeMap::new();
            for queue in Queue::ALL {
                let depth = self.depth(&self.topology.dead_letter_queue(queue)).await?;
                counts.insert(queue.name(), depth);
            }
            Ok::<_, SourceError>(counts)
        };
        let counts = tokio::time::timeout(SOURCE_TIMEOUT, read).await;
        match counts {
            Ok(Ok(counts)) => Ok(counts),
            Ok(Err(error)) => {
                *self.broker.lock().await = None;
                Err(error)
            }
            Err(elapsed) => {
                *self.broker.lock().await = None;
                Err(elapsed.into())
            }
        }
    }

    /// Messages ready in queue `name`, read with a passive declaration on this process's
    /// metrics channel (opened on first use).
    async fn depth(&self, name: &str) -> Result<u32, SourceError> {
        let mut broker = self.broker.lock().await;
        if broker.is_none() {
            let connection = amqp::connect(&self.amqp, "gantry-metrics").await?;
            let channel = connection.create_channel().await?;
            *broker = Some((connection, channel));
        }
        let (_, channel) = broker.as_ref().expect("opened above");
        let declared = channel
            .queue_declare(
                name.into(),
                QueueDeclareOptions {
                    // Only read the queue: never create it with the wrong arguments.
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok(declared.message_count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_load_are_read_from_proc() {
        assert!(process_resident_bytes().is_some_and(|b| b > 1 << 20));
        assert!(host_load_average().is_some_and(|l| l >= 0.0));
    }

    #[test]
    fn the_process_cpu_time_grows_while_the_process_computes() {
        let before = process_cpu_seconds().expect("/proc/self/stat is readable");
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let after = process_cpu_seconds().unwrap();
        assert!(after - before >= 0.1, "{before} -> {after}");
    }

    #[test]
    fn recorded_series_are_rendered_with_their_labels() {
        let handle = install();
        metrics::counter!(names::LEASE_EXPIRIES).increment(2);
        metrics::histogram!(names::CONTAINER_SECONDS, "phase" => "run").record(0.2);
        let text = handle.render();
        assert!(text.contains("gantry_lease_expiries_total 2"), "{text}");
        assert!(
            text.contains(
                "gantry_container_phase_duration_seconds_bucket{phase=\"run\",le=\"0.25\"} 1"
            ),
            "{text}"
        );
    }
}

//! The transactional outbox (DESIGN §7). A message is first a row written in the same transaction
//! as the state it announces; a relay in every api and worker process publishes unpublished rows
//! with confirms and only then marks them published. Several relays may run: rows are claimed with
//! `FOR UPDATE SKIP LOCKED`, and a crash between publish and mark only duplicates a message, which
//! every consumer tolerates.

use crate::db::CachedStatements;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{GenericClient, Pool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::amqp::{self, Outgoing, Publisher, Topology};
use crate::messages::{CONTROL_EXCHANGE, EXCHANGE, Message, Route};
use crate::settings::AmqpSettings;

/// Rows published per transaction.
const BATCH: i64 = 256;
/// The relay also sweeps on this period, for rows written by processes without a relay wake-up.
const SWEEP: Duration = Duration::from_millis(500);
/// How often a relay removes rows published more than an hour ago.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Wakes the relay of this process after a commit that wrote outbox rows.
#[derive(Clone, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    pub fn notify(&self) {
        self.0.notify_one();
    }
}

/// The column values of a message's outbox row, for a statement that inserts it with others.
/// Its headers carry the trace context of the current span, so the consumer continues the trace
/// of the change.
pub struct OutboxRow {
    pub exchange: &'static str,
    pub routing_key: &'static str,
    pub payload: Vec<u8>,
    pub headers: serde_json::Value,
}

impl OutboxRow {
    pub fn of(message: &Message) -> Self {
        let (exchange, routing_key) = match message.route() {
            Route::Queue(queue) => (EXCHANGE, queue.name()),
            Route::Broadcast => (CONTROL_EXCHANGE, ""),
        };
        Self {
            exchange,
            routing_key,
            payload: serde_json::to_vec(message).expect("messages always serialise"),
            headers: serde_json::Value::Object(crate::telemetry::current_trace_headers()),
        }
    }
}

/// Writes a message into the outbox inside the caller's transaction (see [`OutboxRow`]).
pub async fn insert_message(
    client: &impl GenericClient,
    message: &Message,
) -> Result<(), tokio_postgres::Error> {
    let row = OutboxRow::of(message);
    client
        .execute_cached(
            "INSERT INTO outbox (exchange, routing_key, payload, headers) VALUES ($1, $2, $3, $4)",
            &[&row.exchange, &row.routing_key, &row.payload, &row.headers],
        )
        .await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("database: {0}")]
    Db(String),
    #[error("broker: {0}")]
    Broker(String),
}

/// Runs until `shutdown`: connects (forever, with backoff), then drains the outbox whenever woken.
pub async fn run_relay(
    pool: Pool,
    settings: AmqpSettings,
    signal: OutboxSignal,
    shutdown: CancellationToken,
) {
    let topology = Topology::new(&settings);
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match relay_connected(&pool, &settings, &topology, &signal, &shutdown).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "outbox relay failed, reconnecting in {:?}", backoff);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn relay_connected(
    pool: &Pool,
    settings: &AmqpSettings,
    topology: &Topology,
    signal: &OutboxSignal,
    shutdown: &CancellationToken,
) -> Result<(), RelayError> {
    let connection = amqp::connect(settings, "gantry-outbox-relay")
        .await
        .map_err(|e| RelayError::Broker(e.to_string()))?;
    let publisher = Publisher::open(&connection, topology.clone())
        .await
        .map_err(|e| RelayError::Broker(e.to_string()))?;
    let mut last_prune = std::time::Instant::now();
    loop {
        while drain_once(pool, &publisher).await? == BATCH as usize {}
        if last_prune.elapsed() >= PRUNE_EVERY {
            prune_published(pool).await?;
            last_prune = std::time::Instant::now();
        }
        tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = drain_once(pool, &publisher).await;
                let _ = connection.close(200, "shutdown".into()).await;
                return Ok(());
            }
            _ = signal.0.notified() => {}
            _ = tokio::time::sleep(SWEEP) => {}
        }
    }
}

/// Published rows are kept an hour for inspection, then removed so the table stays small. Off the
/// publish path: once a minute per relay is plenty.
async fn prune_published(pool: &Pool) -> Result<(), RelayError> {
    let client = pool
        .get()
        .await
        .map_err(|e| RelayError::Db(e.to_string()))?;
    client
        .execute_cached(
            "DELETE FROM outbox WHERE published_at < now() - interval '1 hour'",
            &[],
        )
        .await
        .map_err(|e| RelayError::Db(e.to_string()))?;
    Ok(())
}

/// Publishes one batch of unpublished rows and marks them; returns how many there were.
async fn drain_once(pool: &Pool, publisher: &Publisher) -> Result<usize, RelayError> {
    let db = |e: &dyn std::fmt::Display| RelayError::Db(e.to_string());
    let mut client = pool.get().await.map_err(|e| db(&e))?;
    let tx = client.transaction().await.map_err(|e| db(&e))?;
    let rows = tx
        .query_cached(
            "SELECT id, routing_key, payload, headers, exchange FROM outbox WHERE published_at IS NULL \
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            &[&BATCH],
        )
        .await
        .map_err(|e| db(&e))?;
    if rows.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let keys: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
    let payloads: Vec<Vec<u8>> = rows.iter().map(|r| r.get(2)).collect();
    let headers: Vec<serde_json::Map<String, serde_json::Value>> = rows
        .iter()
        .map(|r| {
            r.get::<_, serde_json::Value>(3)
                .as_object()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let broadcasts: Vec<bool> = rows
        .iter()
        .map(|r| r.get::<_, &str>(4) == CONTROL_EXCHANGE)
        .collect();
    let batch: Vec<Outgoing<'_>> = (0..rows.len())
        .map(|i| Outgoing {
            broadcast: broadcasts[i],
            routing_key: &keys[i],
            payload: &payloads[i],
            headers: &headers[i],
        })
        .collect();
    fail::fail_point!("outbox::before_publish", |_| crate::crash::now(
        "outbox::before_publish"
    ));
    publisher
        .publish_all(&batch)
        .await
        .map_err(|e| RelayError::Broker(e.to_string()))?;
    fail::fail_point!("outbox::before_mark", |_| crate::crash::now(
        "outbox::before_mark"
    ));
    tx.execute_cached(
        "UPDATE outbox SET published_at = now() WHERE id = ANY($1)",
        &[&ids],
    )
    .await
    .map_err(|e| db(&e))?;
    tx.commit().await.map_err(|e| db(&e))?;
    ::metrics::counter!(crate::metrics::names::OUTBOX_PUBLISHED).increment(ids.len() as u64);
    Ok(ids.len())
}

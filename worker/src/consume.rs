//! The one consume loop. It reconnects to RabbitMQ forever with backoff, bounds concurrency with a
//! semaphore whose permit moves into the handler task (prefetch = permits), and is the only place
//! that settles deliveries: handlers return a [`Disposition`], or ack early through [`EarlyAck`]
//! (the runner acks right after claiming, long before its container ends). Each delivery is
//! handled in a span that continues the trace of the message's `traceparent` header.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gantry_shared::amqp::{self, Topology};
use gantry_shared::messages::{Message, Queue};
use gantry_shared::metrics::names;
use gantry_shared::settings::AmqpSettings;
use gantry_shared::telemetry::{self, TRACEPARENT_HEADER};
use lapin::Acker;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use tokio::sync::{Mutex, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What happens to a delivery once its handler returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done (or a duplicate that changes nothing).
    Ack,
    /// A transient failure: deliver again (counts towards the queue's delivery limit), after a
    /// delay that doubles with each delivery (see [`requeue_delay`]).
    Requeue,
    /// Never processable (malformed): straight to the dead-letter queue.
    DeadLetter,
}

impl Disposition {
    /// The `disposition` label of `gantry_messages_total`.
    fn label(self) -> &'static str {
        match self {
            Disposition::Ack => "ack",
            Disposition::Requeue => "requeue",
            Disposition::DeadLetter => "dead_letter",
        }
    }
}

/// Lets a handler acknowledge before it returns; later settlement is then skipped.
#[derive(Clone)]
pub struct EarlyAck(Arc<Mutex<Option<Acker>>>);

impl EarlyAck {
    pub async fn ack(&self) {
        if let Some(acker) = self.0.lock().await.take()
            && let Err(e) = acker.ack(BasicAckOptions::default()).await
        {
            tracing::warn!(error = %e, "early ack failed; the message will be redelivered");
        }
    }
}

/// How long a delivery that failed for the `deliveries`-th time waits before it is requeued: half
/// a second, doubling up to 8 s, so that the queue's delivery limit (5 by default) spans ≈15 s of
/// a failure instead of the milliseconds of five immediate redeliveries. A handler that fails
/// because the database is down waits for it before even this (see `startup`), so an outage does
/// not spend the limit that is there for poison messages.
pub fn requeue_delay(deliveries: u32) -> Duration {
    Duration::from_millis(500) * 2u32.pow(deliveries.clamp(1, 5) - 1)
}

async fn settle(
    ack: &EarlyAck,
    disposition: Disposition,
    deliveries: u32,
    shutdown: &CancellationToken,
) {
    if disposition == Disposition::Requeue {
        // Held meanwhile, the message counts against the prefetch: a failing queue slows down
        // instead of spinning. On shutdown it goes back at once (closing the channel would).
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(requeue_delay(deliveries)) => {}
        }
    }
    let Some(acker) = ack.0.lock().await.take() else {
        return;
    };
    let result = match disposition {
        Disposition::Ack => acker.ack(BasicAckOptions::default()).await,
        Disposition::Requeue => {
            acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await
        }
        Disposition::DeadLetter => acker.reject(BasicRejectOptions { requeue: false }).await,
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, ?disposition, "settling a delivery failed; it will be redelivered");
    }
}

/// Consumes `queue` until `shutdown`, running at most `permits` handlers at once. On shutdown it
/// stops consuming and waits for in-flight handlers.
pub async fn run<F, Fut>(
    settings: AmqpSettings,
    queue: Queue,
    permits: usize,
    shutdown: CancellationToken,
    handler: F,
) where
    F: Fn(Message, EarlyAck) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Disposition> + Send + 'static,
{
    let semaphore = Arc::new(Semaphore::new(permits));
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match consume_connected(&settings, queue, permits, &semaphore, &shutdown, &handler).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, queue = queue.name(), "consumer lost its connection, reconnecting in {:?}", backoff);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    let _ = semaphore.acquire_many(permits as u32).await;
}

async fn consume_connected<F, Fut>(
    settings: &AmqpSettings,
    queue: Queue,
    permits: usize,
    semaphore: &Arc<Semaphore>,
    shutdown: &CancellationToken,
    handler: &F,
) -> anyhow::Result<()>
where
    F: Fn(Message, EarlyAck) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Disposition> + Send + 'static,
{
    let topology = Topology::new(settings);
    let connection = amqp::connect(settings, &format!("gantry-worker-{}", queue.name())).await?;
    let channel = connection.create_channel().await?;
    amqp::declare(&channel, &topology).await?;
    amqp::set_prefetch(&channel, permits.min(u16::MAX as usize) as u16).await?;
    let mut consumer = channel
        .basic_consume(
            topology.queue(queue).into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = queue.name(), "consuming");
    loop {
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = channel.close(200, "shutdown".into()).await;
                return Ok(());
            }
            next = consumer.next() => next,
        };
        let delivery = match delivery {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("the broker cancelled the consumer"),
        };
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let handler = handler.clone();
        let span = tracing::info_span!(
            "handle_message",
            queue = queue.name(),
            redelivered = delivery.redelivered,
            trace_id = tracing::field::Empty,
        );
        let traceparent = amqp::header_text(&delivery.properties, TRACEPARENT_HEADER);
        telemetry::continue_trace(&span, traceparent.as_deref());
        let deliveries = amqp::deliveries(&delivery.properties);
        let shutdown = shutdown.clone();
        let task = async move {
            let started = Instant::now();
            let ack = EarlyAck(Arc::new(Mutex::new(Some(delivery.acker))));
            let disposition = match serde_json::from_slice::<Message>(&delivery.data) {
                Ok(message) => handler(message, ack.clone()).await,
                Err(e) => {
                    tracing::warn!(error = %e, "dead-lettering a message that is not a Gantry message");
                    Disposition::DeadLetter
                }
            };
            settle(&ack, disposition, deliveries, &shutdown).await;
            drop(permit);
            metrics::counter!(names::MESSAGES, "queue" => queue.name(), "disposition" => disposition.label())
                .increment(1);
            metrics::histogram!(names::MESSAGE_SECONDS, "queue" => queue.name())
                .record(started.elapsed().as_secs_f64());
        };
        tokio::spawn(task.instrument(span));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requeue_delay_doubles_from_half_a_second_to_eight() {
        let delays: Vec<u64> = (0..=7)
            .map(|n| requeue_delay(n).as_millis() as u64)
            .collect();
        assert_eq!(delays, [500, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
        // Five deliveries, the default limit, span 15.5 s of failures.
        let spanned: Duration = (1..=5).map(requeue_delay).sum();
        assert_eq!(spanned, Duration::from_millis(15_500));
    }
}

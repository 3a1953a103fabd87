//! RabbitMQ plumbing (DESIGN §7): connection, topology (a direct exchange, quorum queues with an
//! explicit delivery limit and a dead-letter queue each) and a confirming publisher. Business code
//! sees [`Message`]s; lapin types stay here and in the worker's consume loop.

use lapin::options::{
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use secrecy::ExposeSecret;

use crate::messages::{CONTROL_EXCHANGE, DEAD_LETTER_EXCHANGE, EXCHANGE, Queue};
use crate::settings::AmqpSettings;

pub use lapin::Error as AmqpError;

/// Names of the exchanges and queues, with this deployment's (or test's) prefix.
#[derive(Debug, Clone)]
pub struct Topology {
    pub prefix: String,
    pub delivery_limit: u32,
}

impl Topology {
    pub fn new(settings: &AmqpSettings) -> Self {
        Self {
            prefix: settings.prefix.clone(),
            delivery_limit: settings.delivery_limit,
        }
    }
    pub fn exchange(&self) -> String {
        format!("{}{EXCHANGE}", self.prefix)
    }
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}{DEAD_LETTER_EXCHANGE}", self.prefix)
    }
    pub fn control_exchange(&self) -> String {
        format!("{}{CONTROL_EXCHANGE}", self.prefix)
    }
    pub fn queue(&self, queue: Queue) -> String {
        format!("{}{}", self.prefix, queue.name())
    }
    pub fn dead_letter_queue(&self, queue: Queue) -> String {
        format!("{}{}.dlq", self.prefix, queue.name())
    }
}

/// Connects with the configured heartbeat so a dead or paused broker is noticed within about two
/// heartbeats. Reconnecting is the caller's loop: lapin's own recovery gives up after a while.
pub async fn connect(
    settings: &AmqpSettings,
    connection_name: &str,
) -> Result<Connection, AmqpError> {
    let mut url = settings.url.expose_secret().to_owned();
    if !url.contains("heartbeat=") {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("heartbeat={}", settings.heartbeat_seconds));
    }
    let properties =
        ConnectionProperties::default().with_connection_name(LongString::from(connection_name));
    Connection::connect(&url, properties).await
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// Declares the exchange, the dead-letter exchange, the control (broadcast) exchange and every
/// queue with its dead-letter queue. Idempotent: every process declares on connect.
pub async fn declare(channel: &Channel, topology: &Topology) -> Result<(), AmqpError> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            topology.exchange().into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            topology.dead_letter_exchange().into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            topology.control_exchange().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
    for queue in Queue::ALL {
        declare_queue(channel, topology, queue).await?;
    }
    Ok(())
}

async fn declare_queue(
    channel: &Channel,
    topology: &Topology,
    queue: Queue,
) -> Result<(), AmqpError> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let mut dlq_args = FieldTable::default();
    dlq_args.insert("x-queue-type".into(), text("quorum"));
    let dlq = topology.dead_letter_queue(queue);
    channel
        .queue_declare(dlq.clone().into(), durable, dlq_args)
        .await?;
    channel
        .queue_bind(
            dlq.into(),
            topology.dead_letter_exchange().into(),
            queue.name().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    // Quorum queues survive a broker node loss; RabbitMQ 3.10 sets no delivery limit by itself,
    // so a poison message would be redelivered forever without x-delivery-limit.
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(i64::from(topology.delivery_limit)),
    );
    args.insert(
        "x-dead-letter-exchange".into(),
        text(&topology.dead_letter_exchange()),
    );
    args.insert("x-dead-letter-routing-key".into(), text(queue.name()));
    let name = topology.queue(queue);
    channel
        .queue_declare(name.clone().into(), durable, args)
        .await?;
    channel
        .queue_bind(
            name.into(),
            topology.exchange().into(),
            queue.name().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

/// Removes everything [`declare`] made (tests clean up their own prefix with it).
pub async fn delete_topology(channel: &Channel, topology: &Topology) -> Result<(), AmqpError> {
    for queue in Queue::ALL {
        channel
            .queue_delete(topology.queue(queue).into(), QueueDeleteOptions::default())
            .await?;
        channel
            .queue_delete(
                topology.dead_letter_queue(queue).into(),
                QueueDeleteOptions::default(),
            )
            .await?;
    }
    channel
        .exchange_delete(topology.exchange().into(), ExchangeDeleteOptions::default())
        .await?;
    channel
        .exchange_delete(
            topology.control_exchange().into(),
            ExchangeDeleteOptions::default(),
        )
        .await?;
    channel
        .exchange_delete(
            topology.dead_letter_exchange().into(),
            ExchangeDeleteOptions::default(),
        )
        .await
}

/// A channel in confirm mode. Publishes are pipelined: all are sent, then all confirms awaited.
pub struct Publisher {
    channel: Channel,
    topology: Topology,
}

/// One message ready to publish: a broadcast or a work message with its routing key (a queue
/// name), the body and its headers.
pub struct Outgoing<'a> {
    pub broadcast: bool,
    pub routing_key: &'a str,
    pub payload: &'a [u8],
    pub headers: &'a serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Amqp(#[from] AmqpError),
    #[error("the broker did not accept message {index} (nack or unroutable)")]
    NotAccepted { index: usize },
}

impl Publisher {
    pub async fn open(connection: &Connection, topology: Topology) -> Result<Self, AmqpError> {
        let channel = connection.create_channel().await?;
        declare(&channel, &topology).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self { channel, topology })
    }

    /// Publishes every work message persistent and `mandatory` (an unroutable message comes back
    /// instead of vanishing), every broadcast to whoever listens (no worker, no one to tell), and
    /// returns only when the broker confirmed all of them.
    pub async fn publish_all(&self, batch: &[Outgoing<'_>]) -> Result<(), PublishError> {
        let mut confirms = Vec::with_capacity(batch.len());
        for message in batch {
            let properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type(ShortString::from("application/json"))
                .with_headers(headers_table(message.headers));
            let exchange = match message.broadcast {
                true => self.topology.control_exchange(),
                false => self.topology.exchange(),
            };
            let confirm = self
                .channel
                .basic_publish(
                    exchange.into(),
                    message.routing_key.into(),
                    BasicPublishOptions {
                        mandatory: !message.broadcast,
                        ..Default::default()
                    },
                    message.payload,
                    properties,
                )
                .await?;
            confirms.push(confirm);
        }
        for (index, confirm) in confirms.into_iter().enumerate() {
            let confirmation = confirm.await?;
            if !confirmation.is_ack() || confirmation.take_message().is_some() {
                return Err(PublishError::NotAccepted { index });
            }
        }
        Ok(())
    }
}

/// A text header of a delivery (`traceparent`, say), if present.
pub fn header_text(properties: &BasicProperties, key: &str) -> Option<String> {
    let value = properties.headers().as_ref()?.inner().get(key)?;
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// How often a message was delivered before, as a quorum queue counts it in `x-delivery-count`,
/// plus this delivery: 1 on the first.
pub fn deliveries(properties: &BasicProperties) -> u32 {
    let count = properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-delivery-count").cloned());
    let before = match count {
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(n).unwrap_or(u32::MAX),
        Some(AMQPValue::LongInt(n)) => u32::try_from(n).unwrap_or(u32::MAX),
        Some(AMQPValue::LongUInt(n)) => n,
        Some(AMQPValue::ShortInt(n)) => u32::try_from(n).unwrap_or(u32::MAX),
        Some(AMQPValue::ShortUInt(n)) => u32::from(n),
        _ => 0,
    };
    before.saturating_add(1)
}

fn headers_table(headers: &serde_json::Map<String, serde_json::Value>) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in headers {
        if let Some(s) = value.as_str() {
            table.insert(key.as_str().into(), text(s));
        }
    }
    table
}

/// Sets the prefetch of a consuming channel: it equals the consumer's concurrency permits.
pub async fn set_prefetch(channel: &Channel, prefetch: u16) -> Result<(), AmqpError> {
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_count(value: Option<AMQPValue>) -> BasicProperties {
        let mut headers = FieldTable::default();
        if let Some(value) = value {
            headers.insert("x-delivery-count".into(), value);
        }
        BasicProperties::default().with_headers(headers)
    }

    #[test]
    fn a_first_delivery_has_no_count_and_later_ones_add_the_brokers() {
        assert_eq!(deliveries(&BasicProperties::default()), 1);
        assert_eq!(deliveries(&with_count(None)), 1);
        assert_eq!(deliveries(&with_count(Some(AMQPValue::LongLongInt(2)))), 3);
        assert_eq!(deliveries(&with_count(Some(AMQPValue::LongInt(4)))), 5);
        assert_eq!(
            deliveries(&with_count(Some(AMQPValue::LongLongInt(-1)))),
            u32::MAX
        );
        assert_eq!(
            deliveries(&with_count(Some(AMQPValue::Boolean(true)))),
            1,
            "a count of another type is not one"
        );
    }
}

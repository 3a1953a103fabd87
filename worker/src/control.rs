//! Broadcasts to every worker (`gantry.control`, a fanout exchange): each runner binds a queue of
//! its own, exclusive to its connection and gone with it, and acts on what concerns the steps it
//! runs — today `stop_change_v1`, which kills the containers of a cancelled change. A broadcast a
//! worker misses while it reconnects is caught by its lease heartbeat, which finds the step
//! cancelled (see `runner::heartbeat`).

use std::time::Duration;

use futures_util::StreamExt;
use gantry_shared::amqp::{self, Topology};
use gantry_shared::messages::Message;
use gantry_shared::settings::AmqpSettings;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use tokio_util::sync::CancellationToken;

use crate::context::Ctx;

/// Listens until `shutdown`, reconnecting forever with backoff.
pub async fn run(ctx: Ctx, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match listen(&ctx, &ctx.settings.amqp, &shutdown).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "the control listener lost its connection, reconnecting in {:?}", backoff);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn listen(
    ctx: &Ctx,
    settings: &AmqpSettings,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let topology = Topology::new(settings);
    let connection = amqp::connect(settings, "gantry-worker-control").await?;
    let channel = connection.create_channel().await?;
    amqp::declare(&channel, &topology).await?;
    // A server-named queue of this connection only: nothing piles up for a worker that is gone.
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.name().clone(),
            topology.control_exchange().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    // No acknowledgements: a broadcast is acted on at once or not at all (see the module).
    let mut consumer = channel
        .basic_consume(
            queue.name().clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    loop {
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = connection.close(200, "shutdown".into()).await;
                return Ok(());
            }
            next = consumer.next() => next,
        };
        let delivery = match delivery {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("the broker cancelled the control consumer"),
        };
        match serde_json::from_slice::<Message>(&delivery.data) {
            Ok(Message::StopChangeV1 { change_id }) => {
                let stopped = ctx.running.stop_change(change_id);
                if stopped > 0 {
                    tracing::info!(%change_id, steps = stopped, "stopping the steps of a cancelled change");
                }
            }
            Ok(other) => {
                tracing::warn!(message = ?other, "ignoring a broadcast that is not a control message")
            }
            Err(e) => {
                tracing::warn!(error = %e, "ignoring a broadcast that is not a Gantry message")
            }
        }
    }
}

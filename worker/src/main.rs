use anyhow::Context;
use gantry_shared::settings::Settings;
use gantry_worker::Worker;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Crash points of the fault suite: nothing unless built with the `failpoints` feature.
    let _crash_points = gantry_shared::crash::arm_from_env();
    let settings = Settings::load().context("loading settings")?;
    let _telemetry = gantry_shared::telemetry::init(&settings.telemetry, "gantry-worker");
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let worker = Worker::build(settings)
        .await
        .context("starting the worker")?;
    worker.run_until_stopped(shutdown).await;
    Ok(())
}

async fn cancel_on_signal(token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested");
    token.cancel();
}

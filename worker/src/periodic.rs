//! The loop of the worker's periodic jobs (the lease reaper, the image collector, the orphan
//! sweeper): wait a period, run once, log what it did, until shutdown.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Runs `once` every `period` until `shutdown`; `once` says how many things it handled, and
/// `done` what that was (logged when not zero). A failed run is logged and tried again next time.
pub async fn every<F, Fut>(
    period: Duration,
    shutdown: CancellationToken,
    job: &'static str,
    done: &'static str,
    mut once: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<usize>>,
{
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        match once().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "{done}"),
            Err(e) => tracing::warn!(error = ?e, "{job} failed; will try again"),
        }
    }
}

//! The worker's own row in `workers` (`GET /api/workers`): written when it starts, renewed every
//! `worker.heartbeat_seconds` with its load (the steps it runs, the host's load average, its
//! memory), and marked stopped when it shuts down gracefully — so an operator sees the cluster.
//! A worker that dies stops renewing it; the API shows it as lost after three intervals.

use std::time::Duration;

use gantry_shared::db::CachedStatements;
use gantry_shared::metrics;
use tokio_util::sync::CancellationToken;

use crate::context::Ctx;

/// The configured name, else the kernel's host name (that of the process's UTS namespace, so a
/// worker in a container or a namespace of its own reports that host).
pub fn host_name(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_owned();
    }
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| {
            let name = std::fs::read_to_string(path).ok()?;
            let name = name.trim();
            (!name.is_empty()).then(|| name.to_owned())
        })
        .unwrap_or_else(|| "worker".into())
}

/// Reports every `heartbeat_seconds` until shutdown, then marks the row stopped. A failed report
/// (the database away) is retried at the next beat.
pub async fn run(ctx: Ctx, shutdown: CancellationToken) {
    let roles: Vec<&str> = ctx
        .settings
        .worker
        .roles
        .iter()
        .map(|r| r.as_str())
        .collect();
    let period = Duration::from_secs(ctx.settings.worker.heartbeat_seconds.max(1));
    loop {
        if let Err(e) = report(&ctx, &roles).await {
            tracing::warn!(error = ?e, "reporting this worker in the workers table failed; will try again");
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(period) => {}
        }
    }
    if let Err(e) = stopped(&ctx).await {
        tracing::warn!(error = ?e, "marking this worker stopped failed; it will show as lost");
    }
}

/// Writes the worker's row (once, or again after the retention job removed it) with its load.
async fn report(ctx: &Ctx, roles: &[&str]) -> anyhow::Result<()> {
    let client = ctx.pool.get().await?;
    let running = ctx.running.count() as i32;
    let concurrency = ctx.settings.worker.concurrency as i32;
    let heartbeat = ctx.settings.worker.heartbeat_seconds.max(1) as i32;
    client
        .execute_cached(
            "INSERT INTO workers (id, host, version, roles, concurrency, running_steps, load_average, \
             memory_bytes, heartbeat_seconds) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (id) DO UPDATE SET running_steps = $6, load_average = $7, memory_bytes = $8, \
             heartbeat_seconds = $9, heartbeat_at = now(), stopped_at = NULL",
            &[
                &ctx.worker_id,
                &ctx.host,
                &gantry_shared::VERSION,
                &roles,
                &concurrency,
                &running,
                &metrics::host_load_average(),
                &metrics::process_resident_bytes(),
                &heartbeat,
            ],
        )
        .await?;
    Ok(())
}

async fn stopped(ctx: &Ctx) -> anyhow::Result<()> {
    let client = ctx.pool.get().await?;
    client
        .execute_cached(
            "UPDATE workers SET stopped_at = now(), running_steps = 0 WHERE id = $1",
            &[&ctx.worker_id],
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_host_name_wins_over_the_kernels() {
        assert_eq!(host_name("worker-7"), "worker-7");
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(host_name(""), kernel.trim());
    }
}

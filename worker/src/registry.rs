//! The worker's own row in `workers` (`GET /api/workers`): written when it starts, renewed every
//! `worker.heartbeat_seconds` with its load (the steps it runs, the host's load average, its
//! memory), and marked stopped when it shuts down gracefully — so an operator sees the cluster.
//! A worker that dies stops renewing it; the API shows it as lost after three intervals.

use std::time::Duration;

use gantry_shared::db::CachedStatements;
use tokio_util::sync::CancellationToken;

use crate::context::Ctx;

/// What a worker says of itself: its host, roles and capacity.
pub struct Identity {
    pub host: String,
    pub roles: Vec<String>,
}

impl Identity {
    pub fn of(ctx: &Ctx) -> Self {
        let roles = ctx
            .settings
            .worker
            .roles
            .iter()
            .map(|r| format!("{r:?}").to_lowercase())
            .collect();
        Identity {
            host: host_name(&ctx.settings.worker.host),
            roles,
        }
    }
}

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
    let identity = Identity::of(&ctx);
    let period = Duration::from_secs(ctx.settings.worker.heartbeat_seconds.max(1));
    loop {
        if let Err(e) = report(&ctx, &identity).await {
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
pub async fn report(ctx: &Ctx, identity: &Identity) -> anyhow::Result<()> {
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
                &identity.host,
                &gantry_shared::VERSION,
                &identity.roles,
                &concurrency,
                &running,
                &load_average(),
                &resident_bytes(),
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

/// The host's load average over the last minute (`/proc/loadavg`).
fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The process's resident memory (`/proc/self/statm`, in pages of 4 KiB).
fn resident_bytes() -> Option<i64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
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

    #[test]
    fn load_and_memory_are_read_from_proc() {
        assert!(load_average().is_some_and(|l| l >= 0.0));
        assert!(resident_bytes().is_some_and(|b| b > 1 << 20));
    }
}

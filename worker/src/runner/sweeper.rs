//! The orphan sweeper (RELIABILITY, delivery): step containers left behind by a worker that died
//! are removed. A container labelled `gantry=true` is an orphan when its step is final, when its
//! attempt is not the step's current one (the step was queued again), or when its step is running
//! under a lease nobody renewed; the runner that owns a live attempt renews its lease, so its
//! container is never one. Containers without the label, and labelled ones whose step this
//! installation does not know (another installation on a shared engine), are never touched.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use gantry_shared::db::CachedStatements;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::context::Ctx;

/// Sweeps until `shutdown`.
pub async fn run(ctx: Ctx, shutdown: CancellationToken) {
    let period = Duration::from_secs(ctx.settings.worker.orphan_sweep_interval_seconds.max(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        match sweep_once(&ctx).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(containers = n, "removed orphaned step containers"),
            Err(e) => {
                tracing::warn!(error = ?e, "sweeping orphaned containers failed; will try again")
            }
        }
    }
}

/// A labelled step container: its engine id, step and attempt.
struct StepContainer {
    id: String,
    step: Uuid,
    attempt: i32,
}

/// Removes this installation's orphaned step containers; returns how many it removed.
pub async fn sweep_once(ctx: &Ctx) -> anyhow::Result<usize> {
    let Some(docker) = ctx.docker.as_ref() else {
        return Ok(0);
    };
    let containers = step_containers(docker).await?;
    if containers.is_empty() {
        return Ok(0);
    }
    let steps: Vec<Uuid> = containers.iter().map(|c| c.step).collect();
    let client = ctx.pool.get().await?;
    let known: HashMap<Uuid, (i32, bool)> = client
        .query_cached(
            // A running step without a lease (its outcome handed over, not yet applied) is not
            // an orphan's: COALESCE keeps the NULL of that comparison from reading as one.
            "SELECT id, attempt, status_code IN ('success', 'error', 'aborted', 'cancelled', \
             'system_error') OR COALESCE(status_code = 'running' AND lease_expires_at < now(), false) \
             FROM steps WHERE id = ANY($1)",
            &[&steps],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    drop(client);
    let mut removed = 0;
    for container in containers {
        let Some(&(attempt, ended)) = known.get(&container.step) else {
            continue;
        };
        if ended || attempt != container.attempt {
            let remove = RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(true)
                .build();
            match docker.remove_container(&container.id, Some(remove)).await {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(error = %e, container = %container.id, "removing an orphaned step container failed")
                }
            }
        }
    }
    Ok(removed)
}

/// Every container with the label `gantry=true` whose step and attempt labels parse.
async fn step_containers(docker: &Docker) -> anyhow::Result<Vec<StepContainer>> {
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&HashMap::from([("label", vec!["gantry=true"])]))
        .build();
    let listed = docker.list_containers(Some(options)).await?;
    Ok(listed
        .into_iter()
        .filter_map(|c| {
            let labels = c.labels?;
            Some(StepContainer {
                id: c.id?,
                step: labels.get("gantry.step_id")?.parse().ok()?,
                attempt: labels.get("gantry.attempt")?.parse().ok()?,
            })
        })
        .collect())
}

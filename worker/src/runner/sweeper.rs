//! The orphan sweeper (RELIABILITY, delivery): step containers left behind by a worker that died
//! are removed. A container labelled `gantry=true` belongs to the step attempt it was recorded
//! for (`step_containers`; before parking, its labels named it); it is an orphan when that step
//! is final, when its attempt is not the step's current one (the step was queued again), or when
//! its step is running under a lease nobody renewed; the runner that owns a live attempt renews
//! its lease, so its container is never one. A parked container no step took is an orphan once
//! its worker stopped or shows as lost (`workers`); a live worker's pool removes its own.
//! Containers without the label, and labelled ones whose step or worker this installation does
//! not know (another installation on a shared engine), are never touched.

use std::collections::{HashMap, HashSet};
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

/// A labelled step container as the engine lists it.
struct StepContainer {
    id: String,
    /// Without the engine's leading slash.
    name: String,
    /// The step and attempt its labels name (containers made before parking).
    labelled: Option<(Uuid, i32)>,
    parked: bool,
    worker: Option<String>,
}

/// Removes this installation's orphaned step containers; returns how many it removed.
pub async fn sweep_once(ctx: &Ctx) -> anyhow::Result<usize> {
    let Some(docker) = ctx.docker.as_ref() else {
        return Ok(0);
    };
    let containers = labelled(docker, vec!["gantry=true"]).await?;
    if containers.is_empty() {
        return Ok(0);
    }
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    let labelled_steps: Vec<Uuid> = containers
        .iter()
        .filter_map(|c| c.labelled.map(|(step, _)| step))
        .collect();
    let workers: Vec<&str> = containers
        .iter()
        .filter_map(|c| c.worker.as_deref())
        .collect();
    let client = ctx.pool.get().await?;
    // A running step without a lease (its outcome handed over, not yet applied) is not an
    // orphan's: COALESCE keeps the NULL of that comparison from reading as one.
    let ended = "(s.status_code IN ('success', 'error', 'aborted', 'cancelled', 'system_error') \
                 OR COALESCE(s.status_code = 'running' AND s.lease_expires_at < now(), false))";
    let recorded: HashMap<String, bool> = client
        .query_cached(
            &format!(
                "SELECT c.container, {ended} OR c.attempt <> s.attempt \
                 FROM step_containers c JOIN steps s ON s.id = c.step_id WHERE c.container = ANY($1)"
            ),
            &[&names],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let legacy: HashMap<Uuid, (i32, bool)> = client
        .query_cached(
            &format!("SELECT s.id, s.attempt, {ended} FROM steps s WHERE s.id = ANY($1)"),
            &[&labelled_steps],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    // Gone: stopped, or lost (three reports late, as GET /api/workers shows it).
    let gone_workers: HashSet<String> = client
        .query_cached(
            "SELECT id FROM workers WHERE id = ANY($1) AND (stopped_at IS NOT NULL \
             OR heartbeat_at < now() - make_interval(secs => 3 * heartbeat_seconds))",
            &[&workers],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    drop(client);
    let mut removed = 0;
    for container in containers {
        let orphan = if let Some(&orphan) = recorded.get(&container.name) {
            orphan
        } else if let Some((step, attempt)) = container.labelled {
            legacy
                .get(&step)
                .is_some_and(|&(current, ended)| ended || current != attempt)
        } else {
            container.parked
                && container
                    .worker
                    .as_ref()
                    .is_some_and(|w| gone_workers.contains(w))
        };
        if orphan {
            match remove(docker, &container.id).await {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(error = %e, container = %container.id, "removing an orphaned step container failed")
                }
            }
        }
    }
    Ok(removed)
}

/// Before a later attempt of `step` starts (RELIABILITY I3): removes the containers of its earlier
/// attempts on this engine, which a worker that died or was paused may have left running — the
/// sweeper would find them too, but only on its next round, after the new attempt has started.
/// Returns how many it removed; an engine error is the caller's to report.
pub async fn remove_earlier_attempts(
    ctx: &Ctx,
    docker: &Docker,
    step: Uuid,
    attempt: i32,
) -> anyhow::Result<usize> {
    let recorded: HashSet<String> = ctx
        .pool
        .get()
        .await?
        .query_cached(
            "SELECT container FROM step_containers WHERE step_id = $1 AND attempt < $2",
            &[&step, &attempt],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut removed = 0;
    for container in labelled(docker, vec!["gantry=true"]).await? {
        let earlier = recorded.contains(&container.name)
            || container
                .labelled
                .is_some_and(|(s, a)| s == step && a < attempt);
        if earlier {
            remove(docker, &container.id).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes the container (killing it first); returns once it runs no more. A removal someone
/// else started (the sweeper, its own worker: the engine answers 409) is waited for.
async fn remove(docker: &Docker, id: &str) -> Result<(), bollard::errors::Error> {
    let remove = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(remove)).await {
        // Gone already (removed by its own worker or the sweeper meanwhile): what was wanted.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        })
        | Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => stopped(docker, id).await,
        Err(e) => Err(e),
    }
}

/// Waits (up to 30 s) until container `id` is gone or no longer running.
async fn stopped(docker: &Docker, id: &str) -> Result<(), bollard::errors::Error> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match docker
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
        {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(()),
            Ok(c) if !c.state.as_ref().and_then(|s| s.running).unwrap_or(false) => return Ok(()),
            Err(e) if std::time::Instant::now() > deadline => return Err(e),
            Ok(_) if std::time::Instant::now() > deadline => {
                return Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 409,
                    message: format!("container {id} was still running 30 s into its removal"),
                });
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The step containers carrying every one of `labels`.
async fn labelled(docker: &Docker, labels: Vec<&str>) -> anyhow::Result<Vec<StepContainer>> {
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&HashMap::from([("label", labels)]))
        .build();
    let listed = docker.list_containers(Some(options)).await?;
    Ok(listed
        .into_iter()
        .filter_map(|c| {
            let labels = c.labels.unwrap_or_default();
            let step = labels.get("gantry.step_id").and_then(|s| s.parse().ok());
            let attempt = labels.get("gantry.attempt").and_then(|s| s.parse().ok());
            Some(StepContainer {
                id: c.id?,
                name: c.names?.first()?.trim_start_matches('/').to_owned(),
                labelled: step.zip(attempt),
                parked: labels.get("gantry.parked").is_some_and(|p| p == "true"),
                worker: labels.get("gantry.worker").cloned(),
            })
        })
        .collect())
}

//! The step image collector (DESIGN §5.1): step images of this installation that no step used for
//! `worker.image_ttl_seconds` are removed from the worker's Docker engine.
//!
//! What "used" means is kept in PostgreSQL (`step_images`: engine, tag, last use), written when a
//! step gets its image, so every worker of an engine sees every use, whoever made it. Only images
//! with such a record and the label `gantry=true` are candidates: another installation's images on
//! a shared engine, and every image without the label, are never touched. Docker itself refuses to
//! remove an image that a container (running or not) uses, so an image in use is never removed; a
//! step that picks an image up in the instant it is removed fails to create its container and its
//! attempt is retried, which builds the image again.

use std::time::Duration;

use bollard::query_parameters::RemoveImageOptionsBuilder;
use gantry_shared::db::CachedStatements;
use tokio_util::sync::CancellationToken;

use crate::context::Ctx;

/// A tag's use is recorded at most this often by one process (or four times per TTL, when the
/// TTL is shorter than four minutes).
const RECORD_EVERY: Duration = Duration::from_secs(60);

/// Records that a step uses `tag` now, off the step's path (a lost record makes the image look
/// older than it is: at worst it is built again later).
pub fn record_use(ctx: &Ctx, tag: &str) {
    let ttl = Duration::from_secs(ctx.settings.worker.image_ttl_seconds);
    if !ctx.images.use_to_record(tag, RECORD_EVERY.min(ttl / 4)) {
        return;
    }
    let (pool, engine, tag) = (ctx.pool.clone(), ctx.engine_id.clone(), tag.to_owned());
    tokio::spawn(async move {
        let recorded = async {
            pool.get()
                .await?
                .execute_cached(
                    "INSERT INTO step_images (engine_id, tag, last_used_at) VALUES ($1, $2, now()) \
                     ON CONFLICT (engine_id, tag) DO UPDATE SET last_used_at = now()",
                    &[&engine, &tag],
                )
                .await?;
            anyhow::Ok(())
        };
        if let Err(e) = recorded.await {
            tracing::warn!(error = %e, %tag, "recording a step image's use failed");
        }
    });
}

/// Collects until `shutdown`.
pub async fn run(ctx: Ctx, shutdown: CancellationToken) {
    let period = Duration::from_secs(ctx.settings.worker.image_gc_interval_seconds);
    let (job, done) = ("collecting step images", "removed unused step images");
    crate::periodic::every(period, shutdown, job, done, || collect_once(&ctx)).await;
}

/// Removes this installation's step images unused past the TTL; returns how many it removed.
pub async fn collect_once(ctx: &Ctx) -> anyhow::Result<usize> {
    let Some(docker) = ctx.docker.as_ref() else {
        return Ok(0);
    };
    let ttl = ctx.settings.worker.image_ttl_seconds as f64;
    let client = ctx.pool.get().await?;
    let expired: Vec<String> = client
        .query_cached(
            "SELECT tag FROM step_images WHERE engine_id = $1 \
             AND last_used_at < now() - make_interval(secs => $2)",
            &[&ctx.engine_id, &ttl],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut removed = 0;
    for tag in expired {
        match remove(docker, &tag).await {
            Removal::Removed => removed += 1,
            Removal::Gone => {}
            Removal::Kept => continue,
        }
        ctx.images.forget(&tag);
        // Unless a step used it meanwhile (its image was built again).
        client
            .execute_cached(
                "DELETE FROM step_images WHERE engine_id = $1 AND tag = $2 \
                 AND last_used_at < now() - make_interval(secs => $3)",
                &[&ctx.engine_id, &tag, &ttl],
            )
            .await?;
    }
    Ok(removed)
}

enum Removal {
    Removed,
    /// The engine no longer has it.
    Gone,
    /// In use by a container, not a step image, or the engine failed: kept for now.
    Kept,
}

async fn remove(docker: &bollard::Docker, tag: &str) -> Removal {
    use bollard::errors::Error::DockerResponseServerError;
    match docker.inspect_image(tag).await {
        Ok(image) => {
            let labelled = image
                .config
                .and_then(|c| c.labels)
                .is_some_and(|labels| labels.get("gantry").is_some_and(|v| v == "true"));
            if !labelled {
                tracing::warn!(%tag, "not removing an image without the label gantry=true");
                return Removal::Kept;
            }
        }
        Err(DockerResponseServerError {
            status_code: 404, ..
        }) => return Removal::Gone,
        Err(e) => {
            tracing::warn!(error = %e, %tag, "inspecting a step image failed");
            return Removal::Kept;
        }
    }
    // Without force: the engine refuses (409) while any container uses the image.
    match docker
        .remove_image(
            tag,
            Some(RemoveImageOptionsBuilder::default().build()),
            None,
        )
        .await
    {
        Ok(_) => Removal::Removed,
        Err(DockerResponseServerError {
            status_code: 404, ..
        }) => Removal::Gone,
        Err(DockerResponseServerError {
            status_code: 409, ..
        }) => Removal::Kept,
        Err(e) => {
            tracing::warn!(error = %e, %tag, "removing a step image failed");
            Removal::Kept
        }
    }
}

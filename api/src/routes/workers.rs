//! `GET /api/workers`: the cluster's workers as they report themselves (see the worker's
//! `registry`): host, version, roles, load and last heartbeat, with a status derived from the
//! heartbeat — `alive`, `lost` (three reports missed: dead, or cut off from the database) or
//! `stopped` (shut down gracefully). Paged by worker id; filtered by status.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use gantry_shared::db::CachedStatements;
use serde::Serialize;

use crate::error::{ApiError, Context};
use crate::jsonapi::{self, Resource};
use crate::query::{ListQuery, ListSpec};
use crate::state::AppState;
use utoipa::ToSchema;

const SPEC: ListSpec = ListSpec {
    filters: &["status_eq"],
    ..ListSpec::paged(50, 500)
};

crate::openapi::list_query!(WorkerListQuery, SPEC);

const STATUSES: [&str; 3] = ["alive", "lost", "stopped"];

#[derive(Debug, Serialize, ToSchema)]
struct WorkerAttributes {
    host: String,
    version: String,
    /// `planner`, `runner`, `results`.
    roles: Vec<String>,
    /// `alive`, `lost` (no heartbeat for three intervals) or `stopped`.
    status: String,
    /// Steps it runs at most at once.
    concurrency: i32,
    /// Steps it ran at its last heartbeat.
    running_steps: i32,
    /// Its host's load average over a minute, at its last heartbeat.
    load_average: Option<f64>,
    /// Its resident memory, at its last heartbeat.
    memory_bytes: Option<i64>,
    heartbeat_seconds: i32,
    started_at: DateTime<Utc>,
    heartbeat_at: DateTime<Utc>,
    stopped_at: Option<DateTime<Utc>>,
}

struct WorkerRow {
    id: String,
    attributes: WorkerAttributes,
}

/// The `status_eq` filter, the only one `ListQuery` admits here (once at most).
fn status_filter(filters: &[(String, String)]) -> Result<Option<&str>, ApiError> {
    let Some((key, value)) = filters.first() else {
        return Ok(None);
    };
    if !STATUSES.contains(&value.as_str()) {
        return Err(ApiError::bad_parameter(
            &format!("filter[{key}]"),
            format!("`{value}` is not a worker status (alive, lost, stopped)"),
        ));
    }
    Ok(Some(value))
}

#[utoipa::path(
    get,
    path = "/api/workers",
    tag = "workers",
    summary = "The workers of the cluster with their load and last heartbeat, by id, paged.",
    params(WorkerListQuery),
    responses(
        (status = 200, description = "A page of workers.", body = crate::jsonapi::List<WorkerAttributes>),
    ),
)]
#[tracing::instrument(skip_all, err(level = "info"))]
pub async fn list_workers(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = ListQuery::parse(&req, &SPEC)?;
    let status = status_filter(&query.filters)?;
    let client = state.client().await?;
    let rows = select_workers(&client, status, query.after.as_deref(), query.fetch_limit())
        .await
        .context("listing workers")?;
    let page = query.page(rows, "/api/workers", |w| w.id.clone());
    Ok(jsonapi::list(page, |w| {
        Resource::unlinked("workers", w.id, w.attributes)
    }))
}

async fn select_workers(
    client: &impl GenericClient,
    status: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<WorkerRow>, tokio_postgres::Error> {
    let rows = client
        .query_cached(
            "SELECT * FROM (SELECT id, host, version, roles, concurrency, running_steps, load_average, \
             memory_bytes, heartbeat_seconds, started_at, heartbeat_at, stopped_at, \
             CASE WHEN stopped_at IS NOT NULL THEN 'stopped' \
                  WHEN heartbeat_at < now() - 3 * heartbeat_seconds * interval '1 second' THEN 'lost' \
                  ELSE 'alive' END AS status \
             FROM workers WHERE ($1::text IS NULL OR id > $1)) w \
             WHERE $2::text IS NULL OR status = $2 ORDER BY id LIMIT $3",
            &[&after, &status, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| WorkerRow {
            id: r.get(0),
            attributes: WorkerAttributes {
                host: r.get(1),
                version: r.get(2),
                roles: r.get(3),
                concurrency: r.get(4),
                running_steps: r.get(5),
                load_average: r.get(6),
                memory_bytes: r.get(7),
                heartbeat_seconds: r.get(8),
                started_at: r.get(9),
                heartbeat_at: r.get(10),
                stopped_at: r.get(11),
                status: r.get(12),
            },
        })
        .collect())
}

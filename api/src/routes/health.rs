//! `/health`: the process answers. `/ready`: it can also reach its database (load balancers send
//! traffic only to ready replicas). `/metrics`: Prometheus text, open like the probes (it holds
//! counts and latencies, never data).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;

/// How long `/ready` waits for the database before answering 503.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    summary = "The process answers.",
    security(()),
    responses(
        (status = 200, description = "The process is up.", body = Object),
    ),
)]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    summary = "The process can reach its database.",
    security(()),
    responses(
        (status = 200, description = "Ready for traffic.", body = Object),
        (status = 503, description = "The database does not answer.", body = Object),
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match tokio::time::timeout(READY_TIMEOUT, gantry_shared::db::answers(&state.pool)).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Ok(Err(error)) => not_ready(&error),
        Err(_) => not_ready(&"the database did not answer in time"),
    }
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics.",
    security(()),
    responses(
        (status = 200, description = "Prometheus text exposition.", body = String, content_type = "text/plain; version=0.0.4"),
    ),
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(gantry_shared::metrics::CONTENT_TYPE)
        .body(state.scrape.render().await)
}

fn not_ready(cause: &dyn std::fmt::Display) -> HttpResponse {
    tracing::warn!(%cause, "not ready");
    HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable" }))
}

//! `GET /api/info`: the server's version, the caller, the API settings (never a secret) and the
//! dead-lettered messages waiting for an operator.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::auth::User;
use crate::jsonapi::{self, Resource};
use crate::state::AppState;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
struct InfoAttributes<'a> {
    version: &'static str,
    user: &'a str,
    api: ApiSummary<'a>,
    /// Messages in each queue's dead-letter queue (deliveries that failed past the delivery
    /// limit, kept for an operator); `null` when the broker cannot be read just now.
    dead_letters: Option<BTreeMap<&'static str, u32>>,
}

#[derive(Serialize, ToSchema)]
struct ApiSummary<'a> {
    host: &'a str,
    port: u16,
    max_body_bytes: usize,
}

#[utoipa::path(
    get,
    path = "/api/info",
    tag = "info",
    summary = "The server version, the caller and the API limits.",
    responses(
        (status = 200, description = "Server information.", body = crate::jsonapi::Single<InfoAttributes<'static>>),
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn show_info(state: web::Data<AppState>, user: User) -> HttpResponse {
    let dead_letters = match state.scrape.dead_letters().await {
        Ok(counts) => Some(counts),
        Err(error) => {
            tracing::warn!(%error, "the dead-letter queues could not be read");
            None
        }
    };
    let attributes = InfoAttributes {
        dead_letters,
        version: gantry_shared::VERSION,
        user: user.name(),
        api: ApiSummary {
            host: &state.api.host,
            port: state.api.port,
            max_body_bytes: state.api.max_body_bytes,
        },
    };
    jsonapi::ok(Resource::new(
        "info",
        "info",
        attributes,
        "/api/info".into(),
    ))
}

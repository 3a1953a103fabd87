//! `GET /api/info`: the server's version and API settings (never a secret).

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
    let attributes = InfoAttributes {
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

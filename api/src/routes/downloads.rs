//! `GET /api/downloads/Dockerfile`: the default step Dockerfile, to start a custom one from.

use actix_web::HttpResponse;
use actix_web::http::header;

#[utoipa::path(
    get,
    path = "/api/downloads/Dockerfile",
    tag = "downloads",
    summary = "The default step Dockerfile, to start a custom `.gantry/Dockerfile` from.",
    responses(
        (status = 200, description = "The Dockerfile.", body = String, content_type = "text/plain; charset=utf-8"),
    ),
)]
pub async fn dockerfile() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"Dockerfile\"",
        ))
        .body(gantry_shared::DEFAULT_DOCKERFILE)
}

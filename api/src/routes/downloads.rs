//! `GET /api/downloads/Dockerfile`: the default step Dockerfile, to start a custom one from.

use actix_web::HttpResponse;
use actix_web::http::header;

pub async fn dockerfile() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"Dockerfile\"",
        ))
        .body(gantry_shared::DEFAULT_DOCKERFILE)
}

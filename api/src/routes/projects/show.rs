//! `GET /api/projects/{project}`.

use actix_web::{HttpResponse, web};

use super::record::select_project;
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::paths;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/api/projects/{project}",
    tag = "projects",
    summary = "A project.",
    params(crate::openapi::params::ProjectPath),
    responses(
        (status = 200, description = "The project.", body = crate::jsonapi::Single<super::record::ProjectAttributes>),
        (status = 404, description = "No such project."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path), err(level = "info"))]
pub async fn show_project(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let code = paths::code(&path, "project")?;
    let client = state.client().await?;
    let project = select_project(&client, &code)
        .await
        .context("loading the project")?
        .ok_or_else(|| paths::not_found("project", code.as_str()))?;
    Ok(jsonapi::ok(project.into_resource()))
}

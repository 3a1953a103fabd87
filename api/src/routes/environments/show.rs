//! `GET /api/projects/{project}/environments/{environment}`.

use actix_web::{HttpResponse, web};

use super::record::select_environment;
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::paths;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/api/projects/{project}/environments/{environment}",
    tag = "environments",
    summary = "An environment.",
    params(crate::openapi::params::EnvironmentPath),
    responses(
        (status = 200, description = "The environment.", body = crate::jsonapi::Single<super::record::EnvironmentAttributes>),
        (status = 404, description = "No such project or environment."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path.0, environment = %path.1), err(level = "info"))]
pub async fn show_environment(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project, code) = (
        paths::code(&path.0, "project")?,
        paths::code(&path.1, "environment")?,
    );
    let client = state.client().await?;
    let environment = select_environment(&client, &project, &code)
        .await
        .context("loading the environment")?
        .ok_or_else(|| paths::not_found("environment", code.as_str()))?;
    Ok(jsonapi::ok(environment.into_resource()))
}

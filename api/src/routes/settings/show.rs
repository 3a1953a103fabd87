//! `GET …/settings`: the owner's document, its version and the settings in effect.

use actix_web::{HttpResponse, web};

use super::owner::Owner;
use crate::error::ApiError;
use crate::jsonapi;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/api/projects/{project}/settings",
    tag = "settings",
    summary = "A project's settings and the settings in force for it.",
    params(crate::openapi::params::ProjectPath),
    responses(
        (status = 200, description = "The settings.", body = crate::jsonapi::Single<super::owner::SettingsAttributes>),
        (status = 404, description = "No such project."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path), err(level = "info"))]
pub async fn show_project_settings(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    show(&state, Owner::project(&path)?).await
}

#[utoipa::path(
    get,
    path = "/api/projects/{project}/environments/{environment}/settings",
    tag = "settings",
    summary = "An environment's settings and the settings in force for its changes.",
    params(crate::openapi::params::EnvironmentPath),
    responses(
        (status = 200, description = "The settings.", body = crate::jsonapi::Single<super::owner::SettingsAttributes>),
        (status = 404, description = "No such project or environment."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path.0, environment = %path.1), err(level = "info"))]
pub async fn show_environment_settings(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    show(&state, Owner::environment(&path.0, &path.1)?).await
}

async fn show(state: &AppState, owner: Owner) -> Result<HttpResponse, ApiError> {
    let client = state.client().await?;
    let current = owner.load(&client, false).await?;
    Ok(jsonapi::ok(current.into_resource(&owner, &state.defaults)))
}

//! `GET /api/projects/{project}/git_remotes/{id}`.

use actix_web::{HttpResponse, web};

use super::record::select_git_remote;
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::paths;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/api/projects/{project}/git_remotes/{id}",
    tag = "git_remotes",
    summary = "A Git remote.",
    params(crate::openapi::params::GitRemotePath),
    responses(
        (status = 200, description = "The Git remote.", body = crate::jsonapi::Single<super::record::GitRemoteAttributes>),
        (status = 404, description = "No such project or Git remote."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path.0, git_remote = %path.1), err(level = "info"))]
pub async fn show_git_remote(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project, id) = (
        paths::code(&path.0, "project")?,
        paths::uuid(&path.1, "git remote")?,
    );
    let client = state.client().await?;
    let remote = select_git_remote(&client, &project, id)
        .await
        .context("loading the git remote")?
        .ok_or_else(|| paths::not_found("git remote", &path.1))?;
    Ok(jsonapi::ok(remote.into_resource()))
}

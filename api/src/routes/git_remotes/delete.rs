//! `DELETE /api/projects/{project}/git_remotes/{id}`: refused while an unfinished change still
//! needs the remote (changes name their remote; the planner fetches from it).

use actix_web::{HttpResponse, web};
use deadpool_postgres::GenericClient;
use gantry_shared::domain::Code;
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, Event};
use crate::auth::User;
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::paths;
use crate::state::AppState;

#[utoipa::path(
    delete,
    path = "/api/projects/{project}/git_remotes/{id}",
    tag = "git_remotes",
    summary = "Delete a Git remote no change was made from.",
    params(crate::openapi::params::GitRemotePath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such project or Git remote."),
        (status = 409, description = "Changes were made from the remote."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path.0, git_remote = %path.1, user = user.name()), err(level = "info"))]
pub async fn delete_git_remote(
    state: web::Data<AppState>,
    user: User,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project, id) = (
        paths::code(&path.0, "project")?,
        paths::uuid(&path.1, "git remote")?,
    );
    let mut client = state.client().await?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    let (project_id, name) = lock_git_remote(&tx, &project, id)
        .await
        .context("locking the git remote")?
        .ok_or_else(|| paths::not_found("git remote", &path.1))?;
    if let Some(change) = select_unfinished_change(&tx, project_id, &name)
        .await
        .context("looking for changes")?
    {
        return Err(ApiError::Conflict(format!(
            "git remote {name} is used by the unfinished change {change}; retry when it has finished"
        )));
    }
    delete_git_remote_row(&tx, id)
        .await
        .context("deleting the git remote")?;
    let event = Event {
        kind: "api:git_remotes:delete",
        actor: user.name(),
        target: format!("/projects/{project}/git_remotes/{id}"),
        payload: json!({ "name": name }),
    };
    audit::commit(tx, &event).await?;
    Ok(jsonapi::no_content())
}

async fn lock_git_remote(
    client: &impl GenericClient,
    project: &Code,
    id: Uuid,
) -> Result<Option<(Uuid, String)>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT r.project_id, r.name FROM git_remotes r JOIN projects p ON p.id = r.project_id \
             WHERE p.code = $1 AND r.id = $2 FOR UPDATE OF r",
            &[&project.as_str(), &id],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

async fn select_unfinished_change(
    client: &impl GenericClient,
    project_id: Uuid,
    name: &str,
) -> Result<Option<Uuid>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT id FROM changes WHERE project_id = $1 AND git_remote_name = $2 \
             AND status_code IN ('initializing', 'pending', 'queued', 'running') ORDER BY created_at LIMIT 1",
            &[&project_id, &name],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

async fn delete_git_remote_row(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute("DELETE FROM git_remotes WHERE id = $1", &[&id])
        .await
}

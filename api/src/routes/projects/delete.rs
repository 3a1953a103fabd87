//! `DELETE /api/projects/{project}`: only a project without changes can go (its environments,
//! remotes and properties go with it); one with history can be archived instead.

use actix_web::{HttpResponse, web};
use deadpool_postgres::GenericClient;
use gantry_shared::domain::Code;
use gantry_shared::store::Owner;
use serde_json::json;
use uuid::Uuid;

use crate::audit::Event;
use crate::auth::User;
use crate::error::{ApiError, Context};
use crate::routes::{deletion, paths};
use crate::state::AppState;

#[utoipa::path(
    delete,
    path = "/api/projects/{project}",
    tag = "projects",
    summary = "Delete a project that no change was made to (archive it otherwise).",
    params(crate::openapi::params::ProjectPath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such project."),
        (status = 409, description = "Changes were made to the project."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path, user = user.name()), err(level = "info"))]
pub async fn delete_project(
    state: web::Data<AppState>,
    user: User,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let code = paths::code(&path, "project")?;
    let mut client = state.client().await?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    // The row lock makes a concurrent change creation wait, then fail to find the project.
    let id = lock_project(&tx, &code)
        .await
        .context("locking the project")?
        .ok_or_else(|| paths::not_found("project", code.as_str()))?;
    let event = Event {
        kind: "api:projects:delete",
        actor: user.name(),
        target: format!("/projects/{code}"),
        payload: json!({ "id": id }),
    };
    deletion::delete_unless_changed(tx, Owner::Project(id), &format!("project {code}"), &event)
        .await
}

async fn lock_project(
    client: &impl GenericClient,
    code: &Code,
) -> Result<Option<Uuid>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT id FROM projects WHERE code = $1 FOR UPDATE",
            &[&code.as_str()],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

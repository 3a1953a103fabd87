//! `DELETE /api/projects/{project}/environments/{environment}`: only without changes.

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
    path = "/api/projects/{project}/environments/{environment}",
    tag = "environments",
    summary = "Delete an environment that no change was made to.",
    params(crate::openapi::params::EnvironmentPath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such project or environment."),
        (status = 409, description = "Changes were made to the environment."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path.0, environment = %path.1, user = user.name()), err(level = "info"))]
pub async fn delete_environment(
    state: web::Data<AppState>,
    user: User,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project, code) = (
        paths::code(&path.0, "project")?,
        paths::code(&path.1, "environment")?,
    );
    let mut client = state.client().await?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    let id = lock_environment(&tx, &project, &code)
        .await
        .context("locking the environment")?
        .ok_or_else(|| paths::not_found("environment", code.as_str()))?;
    let event = Event {
        kind: "api:environments:delete",
        actor: user.name(),
        target: format!("/projects/{project}/environments/{code}"),
        payload: json!({ "id": id }),
    };
    let what = format!("environment {code} of project {project}");
    deletion::delete_unless_changed(tx, Owner::Environment(id), &what, &event).await
}

async fn lock_environment(
    client: &impl GenericClient,
    project: &Code,
    code: &Code,
) -> Result<Option<Uuid>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT e.id FROM environments e JOIN projects p ON p.id = e.project_id \
             WHERE p.code = $1 AND e.code = $2 FOR UPDATE OF e",
            &[&project.as_str(), &code.as_str()],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

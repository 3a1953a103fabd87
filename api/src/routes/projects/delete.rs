//! `DELETE /api/projects/{project}`: only a project without changes can go (its environments,
//! remotes and properties go with it); one with history can be archived instead.

use actix_web::{HttpResponse, web};
use deadpool_postgres::GenericClient;
use gantry_shared::domain::Code;
use serde_json::json;
use uuid::Uuid;

use crate::audit::{Event, insert_event};
use crate::auth::User;
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::paths;
use crate::state::AppState;

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
    if project_has_changes(&tx, id)
        .await
        .context("looking for changes of the project")?
    {
        return Err(ApiError::Conflict(format!(
            "project {code} has changes and cannot be deleted; archive it instead"
        )));
    }
    delete_project_row(&tx, id)
        .await
        .context("deleting the project")?;
    let event = Event {
        kind: "api:projects:delete",
        actor: user.name(),
        target: format!("/projects/{code}"),
        payload: json!({ "id": id }),
    };
    insert_event(&tx, &event)
        .await
        .context("recording the event")?;
    tx.commit().await.context("committing the deletion")?;
    Ok(jsonapi::no_content())
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

async fn project_has_changes(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM changes WHERE project_id = $1)",
            &[&id],
        )
        .await?;
    Ok(row.get(0))
}

async fn delete_project_row(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute("DELETE FROM projects WHERE id = $1", &[&id])
        .await
}

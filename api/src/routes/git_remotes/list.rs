//! `GET /api/projects/{project}/git_remotes`: ordered by name, paged with `page[after]=<name>`.

use actix_web::{HttpRequest, HttpResponse, web};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::record::{GIT_REMOTE_SELECT, GitRemoteRecord};
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::query::{ListQuery, ListSpec};
use crate::routes::{paths, projects};
use crate::state::AppState;

const SPEC: ListSpec = ListSpec::paged(100, 500);

crate::openapi::list_query!(GitRemoteListQuery, SPEC);

#[utoipa::path(
    get,
    path = "/api/projects/{project}/git_remotes",
    tag = "git_remotes",
    summary = "The Git remotes of a project (credentials are never shown).",
    params(crate::openapi::params::ProjectPath, GitRemoteListQuery),
    responses(
        (status = 200, description = "A page of Git remotes.", body = crate::jsonapi::List<super::record::GitRemoteAttributes>),
        (status = 404, description = "No such project."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path), err(level = "info"))]
pub async fn list_git_remotes(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let code = paths::code(&path, "project")?;
    let query = ListQuery::parse(&req, &SPEC)?;
    let client = state.client().await?;
    let project_id = projects::project_id(&client, &code).await?;
    let rows = select_git_remotes(
        &client,
        project_id,
        query.after.as_deref(),
        query.fetch_limit(),
    )
    .await
    .context("listing git remotes")?;
    let page = query.page(rows, &format!("/api/projects/{code}/git_remotes"), |r| {
        r.attributes.name.clone()
    });
    Ok(jsonapi::list(page, GitRemoteRecord::into_resource))
}

async fn select_git_remotes(
    client: &impl GenericClient,
    project_id: Uuid,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<GitRemoteRecord>, tokio_postgres::Error> {
    let sql = format!(
        "{GIT_REMOTE_SELECT} WHERE r.project_id = $1 AND ($2::text IS NULL OR r.name > $2) ORDER BY r.name LIMIT $3"
    );
    let rows = client.query(&sql, &[&project_id, &after, &limit]).await?;
    Ok(rows.iter().map(GitRemoteRecord::from_row).collect())
}

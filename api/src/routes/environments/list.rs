//! `GET /api/projects/{project}/environments`: ordered by code, paged with `page[after]=<code>`.

use actix_web::{HttpRequest, HttpResponse, web};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::record::{ENVIRONMENT_SELECT, EnvironmentRecord};
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::query::{ListQuery, ListSpec};
use crate::routes::{paths, projects};
use crate::state::AppState;

const SPEC: ListSpec = ListSpec::paged(100, 500);

crate::openapi::list_query!(EnvironmentListQuery, SPEC);

#[utoipa::path(
    get,
    path = "/api/projects/{project}/environments",
    tag = "environments",
    summary = "The environments of a project.",
    params(crate::openapi::params::ProjectPath, EnvironmentListQuery),
    responses(
        (status = 200, description = "A page of environments.", body = crate::jsonapi::List<super::record::EnvironmentAttributes>),
        (status = 404, description = "No such project."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path), err(level = "info"))]
pub async fn list_environments(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let code = paths::code(&path, "project")?;
    let query = ListQuery::parse(&req, &SPEC)?;
    let client = state.client().await?;
    let project_id = projects::project_id(&client, &code).await?;
    let rows = select_environments(
        &client,
        project_id,
        query.after.as_deref(),
        query.fetch_limit(),
    )
    .await
    .context("listing environments")?;
    let page = query.page(rows, &format!("/api/projects/{code}/environments"), |e| {
        e.attributes.code.clone()
    });
    Ok(jsonapi::list(page, EnvironmentRecord::into_resource))
}

async fn select_environments(
    client: &impl GenericClient,
    project_id: Uuid,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<EnvironmentRecord>, tokio_postgres::Error> {
    let sql = format!(
        "{ENVIRONMENT_SELECT} WHERE e.project_id = $1 AND ($2::text IS NULL OR e.code > $2) ORDER BY e.code LIMIT $3"
    );
    let rows = client.query(&sql, &[&project_id, &after, &limit]).await?;
    Ok(rows.iter().map(EnvironmentRecord::from_row).collect())
}

//! `GET /api/projects`: ordered by code, paged with `page[after]=<code>`.

use actix_web::{HttpRequest, HttpResponse, web};
use deadpool_postgres::GenericClient;

use super::record::{PROJECT_SELECT, ProjectRecord};
use uuid::Uuid;

use crate::auth::User;
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::query::{ListQuery, ListSpec};
use crate::state::AppState;

const SPEC: ListSpec = ListSpec::paged(100, 500);

crate::openapi::list_query!(ProjectListQuery, SPEC);

#[utoipa::path(
    get,
    path = "/api/projects",
    tag = "projects",
    summary = "The projects the caller may see.",
    params(ProjectListQuery),
    responses(
        (status = 200, description = "A page of projects.", body = crate::jsonapi::List<super::record::ProjectAttributes>),
    ),
)]
#[tracing::instrument(skip_all, err(level = "info"))]
pub async fn list_projects(
    state: web::Data<AppState>,
    user: User,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = ListQuery::parse(&req, &SPEC)?;
    let client = state.client().await?;
    let only = user.confined_to();
    let rows = select_projects(&client, query.after.as_deref(), only, query.fetch_limit())
        .await
        .context("listing projects")?;
    let page = query.page(rows, "/api/projects", |p| p.attributes.code.clone());
    Ok(jsonapi::list(page, ProjectRecord::into_resource))
}

async fn select_projects(
    client: &impl GenericClient,
    after: Option<&str>,
    only: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ProjectRecord>, tokio_postgres::Error> {
    let sql = format!(
        "{PROJECT_SELECT} WHERE ($1::text IS NULL OR p.code > $1) \
         AND ($3::uuid IS NULL OR p.id = $3) ORDER BY p.code LIMIT $2"
    );
    let rows = client.query(&sql, &[&after, &limit, &only]).await?;
    Ok(rows.iter().map(ProjectRecord::from_row).collect())
}

//! `GET /api/changes`: filtered, sorted by `created_at` (newest first by default) and paged with
//! an opaque cursor.

use actix_web::{HttpRequest, HttpResponse, web};
use deadpool_postgres::GenericClient;

use super::cursor::ChangeCursor;
use super::filters::{ChangeFilters, SUPPORTED};
use super::record::{CHANGE_SELECT, ChangeRecord};
use crate::auth::User;
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::query::{ListQuery, ListSpec};
use crate::state::AppState;

const SPEC: ListSpec = ListSpec {
    default_limit: 50,
    max_limit: 500,
    filters: SUPPORTED,
    sorts: &["created_at", "-created_at"],
    includes: &[],
    flags: &[],
};

crate::openapi::list_query!(ChangeListQuery, SPEC);

#[utoipa::path(
    get,
    path = "/api/changes",
    tag = "changes",
    summary = "The changes, filtered and paged.",
    params(ChangeListQuery),
    responses(
        (status = 200, description = "A page of changes.", body = crate::jsonapi::List<super::record::ChangeAttributes>),
    ),
)]
#[tracing::instrument(skip_all, err(level = "info"))]
pub async fn list_changes(
    state: web::Data<AppState>,
    user: User,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = ListQuery::parse(&req, &SPEC)?;
    let mut filters = ChangeFilters::parse(&query.filters)?;
    // A caller confined to one project sees only its changes.
    filters.project_id = user.confined_to();
    let after = query
        .after
        .as_deref()
        .map(ChangeCursor::decode)
        .transpose()?;
    let oldest_first = query.sort.as_deref() == Some("created_at");
    let client = state.client().await?;
    let rows = select_changes(&client, &filters, oldest_first, after, query.fetch_limit())
        .await
        .context("listing changes")?;
    let page = query.page(rows, "/api/changes", |c| {
        ChangeCursor {
            created_at: c.attributes.created_at,
            id: c.id,
        }
        .encode()
    });
    Ok(jsonapi::list(page, ChangeRecord::into_resource))
}

async fn select_changes(
    client: &impl GenericClient,
    filters: &ChangeFilters,
    oldest_first: bool,
    after: Option<ChangeCursor>,
    limit: i64,
) -> Result<Vec<ChangeRecord>, tokio_postgres::Error> {
    let (order, beyond) = if oldest_first {
        ("ASC", ">")
    } else {
        ("DESC", "<")
    };
    let sql = format!(
        "{CHANGE_SELECT} WHERE ($1::text[] IS NULL OR c.status_code = ANY($1)) \
         AND ($2::text[] IS NULL OR c.status_code <> ALL($2)) \
         AND ($3::text[] IS NULL OR p.code = ANY($3)) \
         AND ($4::text[] IS NULL OR e.code = ANY($4)) \
         AND ($5::text IS NULL OR c.action = $5) \
         AND ($6::text IS NULL OR c.created_by = $6) \
         AND ($7::timestamptz IS NULL OR c.created_at > $7) \
         AND ($8::timestamptz IS NULL OR c.created_at < $8) \
         AND ($9::timestamptz IS NULL OR (c.created_at, c.id) {beyond} ($9, $10::uuid)) \
         AND ($12::uuid IS NULL OR c.project_id = $12) \
         ORDER BY c.created_at {order}, c.id {order} LIMIT $11"
    );
    let rows = client
        .query(
            &sql,
            &[
                &filters.statuses,
                &filters.excluded_statuses,
                &filters.projects,
                &filters.environments,
                &filters.action,
                &filters.created_by,
                &filters.created_after,
                &filters.created_before,
                &after.map(|a| a.created_at),
                &after.map(|a| a.id),
                &limit,
                &filters.project_id,
            ],
        )
        .await?;
    Ok(rows.iter().map(ChangeRecord::from_row).collect())
}

//! `GET /api/tokens`: the tokens the caller manages, newest first (never the tokens themselves).

use actix_web::{HttpRequest, HttpResponse, web};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::record::{TOKEN_SELECT, TokenRecord, require_manager};
use crate::auth::User;
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::query::{ListQuery, ListSpec};
use crate::state::AppState;

const SPEC: ListSpec = ListSpec::paged(100, 500);

crate::openapi::list_query!(TokenListQuery, SPEC);

#[utoipa::path(
    get,
    path = "/api/tokens",
    tag = "tokens",
    summary = "The tokens the caller manages (all for an admin of every project, a project's for its admin).",
    params(TokenListQuery),
    responses(
        (status = 200, description = "A page of tokens.", body = crate::jsonapi::List<super::record::TokenAttributes>),
        (status = 403, description = "The caller is not an admin."),
    ),
)]
#[tracing::instrument(skip_all, fields(user = user.name()), err(level = "info"))]
pub async fn list_tokens(
    state: web::Data<AppState>,
    user: User,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = ListQuery::parse(&req, &SPEC)?;
    let only = user.confined_to();
    require_manager(&user, only)?;
    let after = query.after_uuid()?;
    let client = state.client().await?;
    let rows = select_tokens(&client, only, after, query.fetch_limit())
        .await
        .context("listing tokens")?;
    let page = query.page(rows, "/api/tokens", |t| t.id.to_string());
    Ok(jsonapi::list(page, TokenRecord::into_resource))
}

async fn select_tokens(
    client: &impl GenericClient,
    only: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<TokenRecord>, tokio_postgres::Error> {
    let sql = format!(
        "{TOKEN_SELECT} WHERE ($1::uuid IS NULL OR t.project_id = $1) \
         AND ($2::uuid IS NULL OR t.id < $2) ORDER BY t.id DESC LIMIT $3"
    );
    let rows = client.query(&sql, &[&only, &after, &limit]).await?;
    Ok(rows.iter().map(TokenRecord::from_row).collect())
}

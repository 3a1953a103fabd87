//! `GET /api/secrets`: every secret's name and keys, ordered by name, paged with
//! `page[after]=<name>`.

use actix_web::{HttpRequest, HttpResponse, web};
use gantry_shared::secrets;

use super::record::{SecretAttributes, secret_resource};
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::query::{ListQuery, ListSpec, Page};
use crate::state::AppState;

const SPEC: ListSpec = ListSpec::paged(100, 500);

crate::openapi::list_query!(SecretListQuery, SPEC);

#[utoipa::path(
    get,
    path = "/api/secrets",
    tag = "secrets",
    summary = "The secrets (names and keys, never values).",
    params(SecretListQuery),
    responses(
        (status = 200, description = "A page of secrets.", body = crate::jsonapi::List<super::record::SecretAttributes>),
    ),
)]
#[tracing::instrument(skip_all, err(level = "info"))]
pub async fn list_secrets(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = ListQuery::parse(&req, &SPEC)?;
    let client = state.client().await?;
    // Every name sorts after "", so no cursor means the first page.
    let after = query.after.as_deref().unwrap_or("");
    let rows = secrets::page(&client, after, query.fetch_limit())
        .await
        .context("loading the secrets")?;
    let page = query.page(rows, "/api/secrets", |s| s.name.clone());
    // Only the page's rows are decrypted (to list their keys), not the look-ahead row.
    let rows = page
        .rows
        .into_iter()
        .map(|sealed| sealed.open(&state.cipher))
        .collect::<Result<Vec<_>, _>>()
        .context("decrypting the secrets")?;
    let page = Page {
        rows,
        next: page.next,
    };
    Ok(jsonapi::list(page, |s| {
        secret_resource(SecretAttributes::of(s))
    }))
}

//! `GET /api/secrets`: every secret's name and keys, ordered by name, paged with
//! `page[after]=<name>`.

use actix_web::{HttpRequest, HttpResponse, web};
use deadpool_postgres::GenericClient;
use gantry_shared::secrets;

use super::record::{SecretAttributes, secret_resource};
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::query::{ListQuery, ListSpec, Page};
use crate::state::AppState;

const SPEC: ListSpec = ListSpec::paged(100, 500);

#[tracing::instrument(skip_all, err(level = "info"))]
pub async fn list_secrets(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = ListQuery::parse(&req, &SPEC)?;
    let client = state.client().await?;
    let names = select_names(&client, query.after.as_deref(), query.fetch_limit())
        .await
        .context("listing secrets")?;
    let names = query.page(names, "/api/secrets", String::clone);
    // Decrypted to list their keys; one deleted in between is simply left out of the page.
    let rows = secrets::load_many(&client, &state.cipher, &names.rows)
        .await
        .context("loading the secrets")?;
    let page = Page {
        rows,
        next: names.next,
    };
    Ok(jsonapi::list(page, |s| {
        secret_resource(SecretAttributes::of(s))
    }))
}

async fn select_names(
    client: &impl GenericClient,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT name FROM secrets WHERE ($1::text IS NULL OR name > $1) ORDER BY name LIMIT $2",
            &[&after, &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

//! `DELETE /api/tokens/{id}`: the token stops working at once (revoking it again changes nothing).

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::record::{TOKEN_SELECT, TokenRecord, require_manager};
use crate::audit::{self, Event};
use crate::auth::User;
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::paths;
use crate::state::AppState;

#[utoipa::path(
    delete,
    path = "/api/tokens/{id}",
    tag = "tokens",
    summary = "Revoke a token.",
    params(crate::openapi::params::IdPath),
    responses(
        (status = 204, description = "Revoked."),
        (status = 403, description = "The caller may not manage this token."),
        (status = 404, description = "No such token (or one of a project the caller cannot see)."),
    ),
)]
#[tracing::instrument(skip_all, fields(token = %path, user = user.name()), err(level = "info"))]
pub async fn revoke_token(
    state: web::Data<AppState>,
    user: User,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = paths::uuid(&path, "token")?;
    let missing = || paths::not_found("token", &path);
    let mut client = state.client().await?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    let sql = format!("{TOKEN_SELECT} WHERE t.id = $1 FOR UPDATE OF t");
    let token = tx
        .query_opt(&sql, &[&id])
        .await
        .context("loading the token")?
        .map(|row| TokenRecord::from_row(&row))
        .ok_or_else(missing)?;
    if let Some(project) = token.project_id
        && !user.sees(project)
    {
        return Err(missing());
    }
    require_manager(&user, token.project_id)?;
    tx.execute(
        "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1",
        &[&id],
    )
    .await
    .context("revoking the token")?;
    let event = Event {
        kind: "api:tokens:revoke",
        actor: user.name(),
        target: format!("/tokens/{id}"),
        payload: json!({ "user_name": token.attributes.user_name }),
    };
    audit::commit(tx, &event).await?;
    Ok(jsonapi::no_content())
}

//! `DELETE /api/secrets/{name}`.

use actix_web::{HttpResponse, web};
use gantry_shared::secrets;
use serde_json::json;

use super::record::existing_name;
use crate::audit::{self, Event};
use crate::auth::User;
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::paths;
use crate::state::AppState;

#[utoipa::path(
    delete,
    path = "/api/secrets/{name}",
    tag = "secrets",
    summary = "Delete a secret.",
    params(crate::openapi::params::SecretPath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such secret."),
    ),
)]
#[tracing::instrument(skip_all, fields(secret = %path, user = user.name()), err(level = "info"))]
pub async fn delete_secret(
    state: web::Data<AppState>,
    user: User,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = existing_name(&path)?;
    let mut client = state.client().await?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    if !secrets::delete(&tx, name)
        .await
        .context("deleting the secret")?
    {
        return Err(paths::not_found("secret", name));
    }
    let event = Event {
        kind: "api:secrets:delete",
        actor: user.name(),
        target: format!("/secrets/{name}"),
        payload: json!({ "name": name }),
    };
    audit::commit(tx, &event).await?;
    Ok(jsonapi::no_content())
}

//! `GET /api/secrets/{name}`: the secret's keys (decrypting it proves they are the stored ones).

use actix_web::{HttpResponse, web};
use gantry_shared::secrets;

use super::record::{SecretAttributes, existing_name, secret_resource};
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::paths;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/api/secrets/{name}",
    tag = "secrets",
    summary = "A secret's keys (never its values).",
    params(crate::openapi::params::SecretPath),
    responses(
        (status = 200, description = "The secret.", body = crate::jsonapi::Single<super::record::SecretAttributes>),
        (status = 404, description = "No such secret."),
    ),
)]
#[tracing::instrument(skip_all, fields(secret = %path), err(level = "info"))]
pub async fn show_secret(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = existing_name(&path)?;
    let client = state.client().await?;
    let secret = secrets::load(&client, &state.cipher, name)
        .await
        .context("loading the secret")?
        .ok_or_else(|| paths::not_found("secret", name))?;
    Ok(jsonapi::ok(secret_resource(SecretAttributes::of(secret))))
}

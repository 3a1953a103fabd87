//! `GET /api/properties/{id}/versions/{n}`: the document as it was at version n.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use gantry_shared::store;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::versions::version_resource;
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::paths;
use crate::state::AppState;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionAttributes {
    pub data: Value,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub step_id: Option<Uuid>,
}

#[utoipa::path(
    get,
    path = "/api/properties/{id}/versions/{version}",
    tag = "properties",
    summary = "One version of a properties document.",
    params(crate::openapi::params::PropertiesVersionPath),
    responses(
        (status = 200, description = "The version.", body = crate::jsonapi::Single<VersionAttributes>),
        (status = 404, description = "No such properties or version."),
    ),
)]
#[tracing::instrument(skip_all, fields(properties = %path.0, version = %path.1), err(level = "info"))]
pub async fn show_version(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = paths::uuid(&path.0, "properties")?;
    let not_found =
        || ApiError::NotFound(format!("version {} of properties {id} not found", path.1));
    let version = path
        .1
        .parse::<i64>()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(not_found)?;
    let client = state.client().await?;
    let (data, created_at, created_by, step_id) =
        store::load_version(&client, &state.cipher, id, version)
            .await
            .context("loading the properties version")?
            .ok_or_else(not_found)?;
    let attributes = VersionAttributes {
        data,
        version,
        created_at,
        created_by,
        step_id,
    };
    Ok(jsonapi::ok(version_resource(id, version, attributes)))
}

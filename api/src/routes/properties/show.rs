//! `GET /api/properties/{id}`: the current document and its version.

use actix_web::{HttpResponse, web};
use gantry_shared::store;
use tokio_postgres::IsolationLevel;

use super::record::{PropertiesAttributes, properties_resource, select_properties_info};
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::paths;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/api/properties/{id}",
    tag = "properties",
    summary = "The latest version of a properties document.",
    params(crate::openapi::params::IdPath),
    responses(
        (status = 200, description = "The properties.", body = crate::jsonapi::Single<super::record::PropertiesAttributes>),
        (status = 404, description = "No such properties."),
    ),
)]
#[tracing::instrument(skip_all, fields(properties = %path), err(level = "info"))]
pub async fn show_properties(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = paths::uuid(&path, "properties")?;
    let mut client = state.client().await?;
    // One snapshot, so that the document, its version and updated_at belong together.
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .context("starting a read-only transaction")?;
    let info = select_properties_info(&tx, id)
        .await
        .context("loading the properties")?
        .ok_or_else(|| paths::not_found("properties", &path))?;
    let current = store::load(&tx, &state.cipher, id, false)
        .await
        .context("loading the properties document")?;
    tx.commit()
        .await
        .context("ending the read-only transaction")?;
    let attributes = PropertiesAttributes {
        data: current.document,
        version: current.version,
        updated_at: info.updated_at,
    };
    Ok(jsonapi::ok(properties_resource(id, attributes)))
}

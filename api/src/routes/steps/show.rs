//! `GET /api/steps/{id}`: the step, with the merged properties it ran with (decrypted).

use actix_web::{HttpResponse, web};
use deadpool_postgres::GenericClient;
use gantry_shared::crypto::step_properties_aad;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::record::{STEP_COLUMNS, StepAttributes, StepRecord};
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::paths;
use crate::state::AppState;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
struct StepWithProperties {
    #[serde(flatten)]
    step: StepAttributes,
    properties: Option<Value>,
}

#[utoipa::path(
    get,
    path = "/api/steps/{id}",
    tag = "steps",
    summary = "A step, with the properties it ran with.",
    params(crate::openapi::params::IdPath),
    responses(
        (status = 200, description = "The step.", body = crate::jsonapi::Single<StepWithProperties>),
        (status = 404, description = "No such step."),
    ),
)]
#[tracing::instrument(skip_all, fields(step = %path), err(level = "info"))]
pub async fn show_step(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = paths::uuid(&path, "step")?;
    let client = state.client().await?;
    let (step, sealed) = select_step(&client, id)
        .await
        .context("loading the step")?
        .ok_or_else(|| paths::not_found("step", &path))?;
    let properties = sealed
        .map(|sealed| state.cipher.decrypt_json(&sealed, &step_properties_aad(id)))
        .transpose()
        .context("decrypting the step properties")?;
    Ok(jsonapi::ok(step.into_resource_with(|step| {
        StepWithProperties { step, properties }
    })))
}

async fn select_step(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<(StepRecord, Option<Vec<u8>>)>, tokio_postgres::Error> {
    let sql = format!("SELECT {STEP_COLUMNS}, properties FROM steps WHERE id = $1");
    let row = client.query_opt(&sql, &[&id]).await?;
    Ok(row.map(|row| (StepRecord::from_row(&row), row.get("properties"))))
}

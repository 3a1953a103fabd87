//! `PATCH /api/properties/{id}`: one transaction locks the document, refuses while an active
//! change uses it (409) or when the edit was made to an older version (412), then writes the next
//! version with an audit event.

use actix_web::{HttpRequest, HttpResponse, web};
use gantry_shared::store;
use serde_json::json;

use super::in_use::{in_use, select_active_change};
use super::record::{PropertiesAttributes, properties_resource, select_properties_info};
use super::reserved::check_reserved_keys;
use crate::audit::{self, Event};
use crate::auth::User;
use crate::body::{Edit, EditRequest};
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::paths;
use crate::state::AppState;

#[utoipa::path(
    patch,
    path = "/api/properties/{id}",
    tag = "properties",
    summary = "Write the next version: a whole document or an RFC 6902 patch, made against a version (`version` or `If-Match`).",
    params(crate::openapi::params::IdPath, ("If-Match" = Option<String>, Header, description = "The version the edit was made against, e.g. `\"3\"`.")),
    request_body(content(
        (crate::body::RequestDocument<crate::body::UpdateDocumentAttributes> = "application/vnd.api+json"),
        (Vec<crate::openapi::PatchOperation> = "application/json-patch+json"),
    )),
    responses(
        (status = 200, description = "The new version.", body = crate::jsonapi::Single<super::record::PropertiesAttributes>),
        (status = 404, description = "No such properties."),
        (status = 409, description = "An active change uses the properties."),
        (status = 412, description = "The edit was made to an older version."),
        (status = 422, description = "The document or patch is invalid."),
    ),
)]
#[tracing::instrument(skip_all, fields(properties = %path, user = user.name()), err(level = "info"))]
pub async fn update_properties(
    state: web::Data<AppState>,
    user: User,
    path: web::Path<String>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = paths::uuid(&path, "properties")?;
    let request = EditRequest::read(&req, &mut payload).await?;
    let base_pointer = matches!(request.edit, Edit::Replace(_)).then_some("/data/attributes/data");
    let mut client = state.client().await?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    let info = select_properties_info(&tx, id)
        .await
        .context("loading the properties")?
        .ok_or_else(|| paths::not_found("properties", &path))?;
    let current = store::load(&tx, &state.cipher, id, true)
        .await
        .context("locking the properties")?;
    if let Some(change) = select_active_change(&tx, info.owner)
        .await
        .context("looking for active changes")?
    {
        return Err(in_use(info.owner, change));
    }
    if let Some(expected) = request.expected_version.filter(|v| *v != current.version) {
        return Err(version_mismatch(current.version, expected));
    }
    let document = request.edit.apply(&current.document)?;
    check_reserved_keys(&document, base_pointer)?;
    let author = user.author();
    let version = store::write_next(&tx, &state.cipher, id, current.version, &document, &author)
        .await
        .context("writing the properties")?
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("the locked properties version moved"))
        })?;
    let updated_at = select_properties_info(&tx, id)
        .await
        .context("reading the properties")?
        .map_or(info.updated_at, |u| u.updated_at);
    let event = Event {
        kind: "api:properties:update",
        actor: user.name(),
        target: format!("/properties/{id}"),
        payload: json!({ "version": version }),
    };
    audit::commit(tx, &event).await?;
    let attributes = PropertiesAttributes {
        data: document,
        version,
        updated_at,
    };
    Ok(jsonapi::ok(properties_resource(id, attributes)))
}

fn version_mismatch(current: i64, expected: i64) -> ApiError {
    ApiError::PreconditionFailed(format!(
        "Version mismatch, the properties are now at version {current} whilst these modifications were made to \
         version {expected}. Please fetch the latest version of the properties and reapply the edits."
    ))
}

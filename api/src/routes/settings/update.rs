//! `PATCH …/settings`: one transaction locks the owner, refuses an edit made to an older version
//! (412), checks the new document (422, pointing at the key) and writes it as the next version
//! with an audit event.

use actix_web::{HttpRequest, HttpResponse, web};
use gantry_shared::project_settings::SettingsDocument;
use serde_json::json;

use super::owner::Owner;
use crate::audit::{self, Event};
use crate::auth::User;
use crate::body::{Edit, EditRequest};
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::state::AppState;

#[utoipa::path(
    patch,
    path = "/api/projects/{project}/settings",
    tag = "settings",
    summary = "Write the next version of a project's settings.",
    params(crate::openapi::params::ProjectPath, ("If-Match" = Option<String>, Header, description = "The version the edit was made against, e.g. `\"3\"`.")),
    request_body(content(
        (crate::body::RequestDocument<crate::openapi::SettingsEdit> = "application/vnd.api+json"),
        (Vec<crate::openapi::PatchOperation> = "application/json-patch+json"),
    )),
    responses(
        (status = 200, description = "The new version.", body = crate::jsonapi::Single<super::owner::SettingsAttributes>),
        (status = 404, description = "No such project."),
        (status = 412, description = "The edit was made to an older version."),
        (status = 422, description = "The document or patch is invalid."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path, user = user.name()), err(level = "info"))]
pub async fn update_project_settings(
    state: web::Data<AppState>,
    user: User,
    path: web::Path<String>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let owner = Owner::project(&path)?;
    update(&state, &user, owner, &req, &mut payload).await
}

#[utoipa::path(
    patch,
    path = "/api/projects/{project}/environments/{environment}/settings",
    tag = "settings",
    summary = "Write the next version of an environment's settings.",
    params(crate::openapi::params::EnvironmentPath, ("If-Match" = Option<String>, Header, description = "The version the edit was made against, e.g. `\"3\"`.")),
    request_body(content(
        (crate::body::RequestDocument<crate::openapi::SettingsEdit> = "application/vnd.api+json"),
        (Vec<crate::openapi::PatchOperation> = "application/json-patch+json"),
    )),
    responses(
        (status = 200, description = "The new version.", body = crate::jsonapi::Single<super::owner::SettingsAttributes>),
        (status = 404, description = "No such project or environment."),
        (status = 412, description = "The edit was made to an older version."),
        (status = 422, description = "The document or patch is invalid."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path.0, environment = %path.1, user = user.name()), err(level = "info"))]
pub async fn update_environment_settings(
    state: web::Data<AppState>,
    user: User,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let owner = Owner::environment(&path.0, &path.1)?;
    update(&state, &user, owner, &req, &mut payload).await
}

async fn update(
    state: &AppState,
    user: &User,
    owner: Owner,
    req: &HttpRequest,
    payload: &mut web::Payload,
) -> Result<HttpResponse, ApiError> {
    let request = EditRequest::read(req, payload).await?;
    let base_pointer = match request.edit {
        Edit::Replace(_) => "/data/attributes/data",
        Edit::Patch(_) => "",
    };
    let mut client = state.client().await?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    let current = owner.load(&tx, true).await?;
    if let Some(expected) = request.expected_version.filter(|v| *v != current.version) {
        return Err(ApiError::PreconditionFailed(format!(
            "Version mismatch, the settings are now at version {} whilst these modifications were \
             made to version {expected}. Please fetch the latest version of the settings and \
             reapply the edits.",
            current.version
        )));
    }
    let document = request.edit.apply(&current.document)?;
    let parsed = SettingsDocument::parse(&document)
        .map_err(|e| ApiError::invalid(format!("{base_pointer}{}", e.pointer), e.detail))?;
    // Stored as checked: the same keys, in a canonical form.
    let document = serde_json::to_value(&parsed).context_internal()?;
    let version = owner
        .write(&tx, current.id, current.version, &document, user.name())
        .await?;
    let event = Event {
        kind: "api:settings:update",
        actor: user.name(),
        target: format!("{}/settings", owner.path()),
        payload: json!({ "version": version }),
    };
    audit::commit(tx, &event).await?;
    let client = &client;
    let updated = owner.load(client, false).await?;
    Ok(jsonapi::ok(updated.into_resource(&owner, &state.defaults)))
}

trait InternalContext<T> {
    fn context_internal(self) -> Result<T, ApiError>;
}

impl<T> InternalContext<T> for Result<T, serde_json::Error> {
    fn context_internal(self) -> Result<T, ApiError> {
        self.map_err(|e| ApiError::Internal(e.into()))
    }
}

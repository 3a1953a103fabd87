//! `PATCH /api/projects/{project}`: name, description, archived. The code is immutable; the
//! project's settings have their own route (`settings`).

use actix_web::{HttpResponse, web};
use deadpool_postgres::GenericClient;
use gantry_shared::domain::Code;
use serde::Deserialize;
use serde_json::json;

use super::record::select_project;
use crate::audit::{self, Event};
use crate::auth::User;
use crate::body::{JsonApiBody, nullable};
use crate::domain::{Description, Name};
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::{patching, paths};
use crate::state::AppState;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProjectAttributes {
    #[serde(default, deserialize_with = "nullable")]
    code: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    archived: Option<Option<bool>>,
}

struct ProjectChanges {
    name: Option<Name>,
    description: Option<Option<Description>>,
    archived: Option<bool>,
}

impl ProjectChanges {
    fn parse(code: &Code, attributes: UpdateProjectAttributes) -> Result<Self, ApiError> {
        patching::immutable("code", code.as_str(), attributes.code)?;
        Ok(Self {
            name: patching::required("name", attributes.name)?
                .map(Name::parse)
                .transpose()
                .map_err(|e| ApiError::invalid_attribute("name", e))?,
            description: patching::optional(
                "description",
                attributes.description,
                Description::parse,
            )?,
            archived: patching::required("archived", attributes.archived)?,
        })
    }
}

#[utoipa::path(
    patch,
    path = "/api/projects/{project}",
    tag = "projects",
    summary = "Rename, describe or archive a project (its code cannot change).",
    params(crate::openapi::params::ProjectPath),
    request_body = crate::body::RequestDocument<UpdateProjectAttributes>,
    responses(
        (status = 200, description = "The updated project.", body = crate::jsonapi::Single<super::record::ProjectAttributes>),
        (status = 404, description = "No such project."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path, user = user.name()), err(level = "info"))]
pub async fn update_project(
    state: web::Data<AppState>,
    user: User,
    path: web::Path<String>,
    JsonApiBody(attributes): JsonApiBody<UpdateProjectAttributes>,
) -> Result<HttpResponse, ApiError> {
    let code = paths::code(&path, "project")?;
    let changes = ProjectChanges::parse(&code, attributes)?;
    let mut client = state.client().await?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    if update_project_row(&tx, &code, &changes)
        .await
        .context("updating the project")?
        == 0
    {
        return Err(paths::not_found("project", code.as_str()));
    }
    let project = select_project(&tx, &code)
        .await
        .context("reading the project")?
        .ok_or_else(|| paths::not_found("project", code.as_str()))?;
    let event = Event {
        kind: "api:projects:update",
        actor: user.name(),
        target: format!("/projects/{code}"),
        payload: json!({ "changed": changed_names(&changes) }),
    };
    audit::commit(tx, &event).await?;
    Ok(jsonapi::ok(project.into_resource()))
}

fn changed_names(changes: &ProjectChanges) -> Vec<&'static str> {
    [
        ("name", changes.name.is_some()),
        ("description", changes.description.is_some()),
        ("archived", changes.archived.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}

async fn update_project_row(
    client: &impl GenericClient,
    code: &Code,
    changes: &ProjectChanges,
) -> Result<u64, tokio_postgres::Error> {
    let description = changes
        .description
        .as_ref()
        .map(|d| d.as_ref().map(Description::as_str));
    client
        .execute(
            "UPDATE projects SET name = COALESCE($2, name), \
             description = CASE WHEN $3::boolean THEN $4::text ELSE description END, \
             archived = COALESCE($5, archived), updated_at = now() \
             WHERE code = $1",
            &[
                &code.as_str(),
                &changes.name.as_ref().map(Name::as_str),
                &description.is_some(),
                &description.flatten(),
                &changes.archived,
            ],
        )
        .await
}

//! `PATCH /api/projects/{project}/environments/{environment}`: name, description, archived. The
//! code is immutable.

use actix_web::{HttpResponse, web};
use deadpool_postgres::GenericClient;
use gantry_shared::domain::Code;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::record::select_environment;
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
pub struct UpdateEnvironmentAttributes {
    #[serde(default, deserialize_with = "nullable")]
    code: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    archived: Option<Option<bool>>,
}

struct EnvironmentChanges {
    name: Option<Name>,
    description: Option<Option<Description>>,
    archived: Option<bool>,
}

impl EnvironmentChanges {
    fn parse(code: &str, attributes: UpdateEnvironmentAttributes) -> Result<Self, ApiError> {
        patching::immutable("code", code, attributes.code)?;
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
    path = "/api/projects/{project}/environments/{environment}",
    tag = "environments",
    summary = "Rename, describe or archive an environment.",
    params(crate::openapi::params::EnvironmentPath),
    request_body = crate::body::RequestDocument<UpdateEnvironmentAttributes>,
    responses(
        (status = 200, description = "The updated environment.", body = crate::jsonapi::Single<super::record::EnvironmentAttributes>),
        (status = 404, description = "No such project or environment."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path.0, environment = %path.1, user = user.name()), err(level = "info"))]
pub async fn update_environment(
    state: web::Data<AppState>,
    user: User,
    path: web::Path<(String, String)>,
    JsonApiBody(attributes): JsonApiBody<UpdateEnvironmentAttributes>,
) -> Result<HttpResponse, ApiError> {
    let (project, code) = (
        paths::code(&path.0, "project")?,
        paths::code(&path.1, "environment")?,
    );
    let changes = EnvironmentChanges::parse(code.as_str(), attributes)?;
    let mut client = state.client().await?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    let not_found = || paths::not_found("environment", code.as_str());
    let id = update_environment_row(&tx, &project, &code, &changes)
        .await
        .context("updating the environment")?
        .ok_or_else(not_found)?;
    let updated = select_environment(&tx, &project, &code)
        .await
        .context("reading the environment")?
        .ok_or_else(not_found)?;
    let event = Event {
        kind: "api:environments:update",
        actor: user.name(),
        target: format!("/projects/{project}/environments/{code}"),
        payload: json!({ "id": id }),
    };
    audit::commit(tx, &event).await?;
    Ok(jsonapi::ok(updated.into_resource()))
}

/// Updates environment `code` of project `project` and returns its id, if it exists.
async fn update_environment_row(
    client: &impl GenericClient,
    project: &Code,
    code: &Code,
    changes: &EnvironmentChanges,
) -> Result<Option<Uuid>, tokio_postgres::Error> {
    let description = changes
        .description
        .as_ref()
        .map(|d| d.as_ref().map(Description::as_str));
    let row = client
        .query_opt(
            "UPDATE environments e SET name = COALESCE($3, e.name), \
             description = CASE WHEN $4::boolean THEN $5::text ELSE e.description END, \
             archived = COALESCE($6, e.archived), updated_at = now() \
             FROM projects p WHERE p.id = e.project_id AND p.code = $1 AND e.code = $2 RETURNING e.id",
            &[
                &project.as_str(),
                &code.as_str(),
                &changes.name.as_ref().map(Name::as_str),
                &description.is_some(),
                &description.flatten(),
                &changes.archived,
            ],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

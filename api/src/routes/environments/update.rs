//! `PATCH /api/projects/{project}/environments/{environment}`: name, description, archived. The
//! code is immutable.

use actix_web::{HttpResponse, web};
use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::select_environment;
use crate::audit::{Event, insert_event};
use crate::auth::User;
use crate::body::{JsonApiBody, nullable};
use crate::domain::{Description, Name};
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::{patching, paths};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
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
    let environment = select_environment(&tx, &project, &code)
        .await
        .context("loading the environment")?
        .ok_or_else(|| paths::not_found("environment", code.as_str()))?;
    update_environment_row(&tx, environment.id, &changes)
        .await
        .context("updating the environment")?;
    let event = Event {
        kind: "api:environments:update",
        actor: user.name(),
        target: format!("/projects/{project}/environments/{code}"),
        payload: json!({ "id": environment.id }),
    };
    insert_event(&tx, &event)
        .await
        .context("recording the event")?;
    let updated = select_environment(&tx, &project, &code)
        .await
        .context("reading the environment")?;
    tx.commit()
        .await
        .context("committing the environment update")?;
    let updated = updated.ok_or_else(|| paths::not_found("environment", code.as_str()))?;
    Ok(jsonapi::ok(updated.into_resource()))
}

async fn update_environment_row(
    client: &impl GenericClient,
    id: Uuid,
    changes: &EnvironmentChanges,
) -> Result<u64, tokio_postgres::Error> {
    let description = changes
        .description
        .as_ref()
        .map(|d| d.as_ref().map(Description::as_str));
    client
        .execute(
            "UPDATE environments SET name = COALESCE($2, name), \
             description = CASE WHEN $3::boolean THEN $4::text ELSE description END, \
             archived = COALESCE($5, archived), updated_at = now() WHERE id = $1",
            &[
                &id,
                &changes.name.as_ref().map(Name::as_str),
                &description.is_some(),
                &description.flatten(),
                &changes.archived,
            ],
        )
        .await
}

//! `POST /api/projects/{project}/environments`: the environment, its (empty) properties and an
//! audit event, in one transaction.

use actix_web::{HttpResponse, web};
use deadpool_postgres::GenericClient;
use gantry_shared::domain::Code;
use gantry_shared::store::{self, Owner};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::record::select_environment;
use crate::audit::{self, Event};
use crate::auth::User;
use crate::body::JsonApiBody;
use crate::domain::{Description, Name};
use crate::error::{ApiError, Context, conflict_on_unique};
use crate::jsonapi;
use crate::routes::{paths, projects};
use crate::state::AppState;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnvironmentAttributes {
    #[schema(pattern = "^[a-z0-9_]{1,50}$")]
    code: String,
    name: String,
    description: Option<String>,
}

struct NewEnvironment {
    code: Code,
    name: Name,
    description: Option<Description>,
}

impl TryFrom<CreateEnvironmentAttributes> for NewEnvironment {
    type Error = ApiError;

    fn try_from(attributes: CreateEnvironmentAttributes) -> Result<Self, ApiError> {
        Ok(Self {
            code: Code::parse(&attributes.code)
                .map_err(|e| ApiError::invalid_attribute("code", e))?,
            name: Name::parse(attributes.name)
                .map_err(|e| ApiError::invalid_attribute("name", e))?,
            description: attributes
                .description
                .map(Description::parse)
                .transpose()
                .map_err(|e| ApiError::invalid_attribute("description", e))?,
        })
    }
}

#[utoipa::path(
    post,
    path = "/api/projects/{project}/environments",
    tag = "environments",
    summary = "Create an environment of a project.",
    params(crate::openapi::params::ProjectPath),
    request_body = crate::body::RequestDocument<CreateEnvironmentAttributes>,
    responses(
        (status = 201, description = "The new environment.", body = crate::jsonapi::Single<super::record::EnvironmentAttributes>),
        (status = 404, description = "No such project."),
        (status = 409, description = "An environment with this code exists."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path, user = user.name()), err(level = "info"))]
pub async fn create_environment(
    state: web::Data<AppState>,
    user: User,
    path: web::Path<String>,
    JsonApiBody(attributes): JsonApiBody<CreateEnvironmentAttributes>,
) -> Result<HttpResponse, ApiError> {
    let project_code = paths::code(&path, "project")?;
    let environment = NewEnvironment::try_from(attributes)?;
    let mut client = state.client().await?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    let project_id = projects::project_id(&tx, &project_code).await?;
    let id = Uuid::now_v7();
    conflict_on_unique(
        insert_environment(&tx, id, project_id, &environment, user.name()).await,
        || {
            format!(
                "an environment with code {} already exists in project {project_code}",
                environment.code
            )
        },
        "inserting the environment",
    )?;
    store::create_properties(&tx, &state.cipher, Owner::Environment(id), &user.author())
        .await
        .context("creating the environment properties")?;
    let created = select_environment(&tx, &project_code, &environment.code)
        .await
        .context("reading the environment")?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the new environment was not found")))?;
    let event = Event {
        kind: "api:environments:create",
        actor: user.name(),
        target: format!("/projects/{project_code}/environments/{}", environment.code),
        payload: json!({ "id": id, "name": environment.name.as_str() }),
    };
    audit::commit(tx, &event).await?;
    Ok(jsonapi::created(created.into_resource()))
}

async fn insert_environment(
    client: &impl GenericClient,
    id: Uuid,
    project_id: Uuid,
    environment: &NewEnvironment,
    user: &str,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "WITH e AS (INSERT INTO environments (id, project_id, code, name, description) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id, settings) \
             INSERT INTO settings_versions (environment_id, version, document, created_by) \
             SELECT id, 1, settings, $6 FROM e",
            &[
                &id,
                &project_id,
                &environment.code.as_str(),
                &environment.name.as_str(),
                &environment.description.as_ref().map(Description::as_str),
                &user,
            ],
        )
        .await
}

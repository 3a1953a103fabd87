//! `POST /api/projects`: the project, its (empty) properties and settings and an audit event, in
//! one transaction.

use actix_web::{HttpResponse, web};
use deadpool_postgres::GenericClient;
use gantry_shared::domain::Code;
use gantry_shared::store::{self, Owner};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::record::select_project;
use crate::audit::{self, Event};
use crate::auth::User;
use crate::body::JsonApiBody;
use crate::domain::{Description, Name};
use crate::error::{ApiError, Context, conflict_on_unique};
use crate::jsonapi;
use crate::state::AppState;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectAttributes {
    #[schema(pattern = "^[a-z0-9_]{1,50}$")]
    code: String,
    name: String,
    description: Option<String>,
}

struct NewProject {
    code: Code,
    name: Name,
    description: Option<Description>,
}

impl TryFrom<CreateProjectAttributes> for NewProject {
    type Error = ApiError;

    fn try_from(attributes: CreateProjectAttributes) -> Result<Self, ApiError> {
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
    path = "/api/projects",
    tag = "projects",
    summary = "Create a project, with empty properties and settings.",
    request_body = crate::body::RequestDocument<CreateProjectAttributes>,
    responses(
        (status = 201, description = "The new project.", body = crate::jsonapi::Single<super::record::ProjectAttributes>),
        (status = 409, description = "A project with this code exists."),
    ),
)]
#[tracing::instrument(skip_all, fields(user = user.name()), err(level = "info"))]
pub async fn create_project(
    state: web::Data<AppState>,
    user: User,
    JsonApiBody(attributes): JsonApiBody<CreateProjectAttributes>,
) -> Result<HttpResponse, ApiError> {
    let project = NewProject::try_from(attributes)?;
    let mut client = state.client().await?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    let id = Uuid::now_v7();
    conflict_on_unique(
        insert_project(&tx, id, &project, user.name()).await,
        || format!("a project with code {} already exists", project.code),
        "inserting the project",
    )?;
    store::create_properties(&tx, &state.cipher, Owner::Project(id), &user.author())
        .await
        .context("creating the project properties")?;
    let created = select_project(&tx, &project.code)
        .await
        .context("reading the new project")?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the new project was not found")))?;
    let event = Event {
        kind: "api:projects:create",
        actor: user.name(),
        target: format!("/projects/{}", project.code),
        payload: json!({ "id": id, "name": project.name.as_str() }),
    };
    audit::commit(tx, &event).await?;
    Ok(jsonapi::created(created.into_resource()))
}

/// The project, with version 1 of its (empty) settings.
async fn insert_project(
    client: &impl GenericClient,
    id: Uuid,
    project: &NewProject,
    user: &str,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "WITH p AS (INSERT INTO projects (id, code, name, description) VALUES ($1, $2, $3, $4) \
             RETURNING id, settings) \
             INSERT INTO settings_versions (project_id, version, document, created_by) \
             SELECT id, 1, settings, $5 FROM p",
            &[
                &id,
                &project.code.as_str(),
                &project.name.as_str(),
                &project.description.as_ref().map(Description::as_str),
                &user,
            ],
        )
        .await
}

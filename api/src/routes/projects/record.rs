//! A project as read from the database, and its JSON:API resource.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use gantry_shared::domain::Code;
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::{ApiError, Context};
use crate::jsonapi::{Identifier, Resource};
use crate::routes::paths;
use utoipa::ToSchema;

/// The columns every project read selects (with its properties id).
pub(super) const PROJECT_SELECT: &str = "SELECT p.code, p.name, p.description, p.archived, \
     p.created_at, p.updated_at, pr.id AS properties_id \
     FROM projects p JOIN properties pr ON pr.project_id = p.id";

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectAttributes {
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug)]
pub struct ProjectRecord {
    pub properties_id: Uuid,
    pub attributes: ProjectAttributes,
}

impl ProjectRecord {
    pub(super) fn from_row(row: &Row) -> Self {
        Self {
            properties_id: row.get("properties_id"),
            attributes: ProjectAttributes {
                code: row.get("code"),
                name: row.get("name"),
                description: row.get("description"),
                archived: row.get("archived"),
                created_at: row.get("created_at"),
                updated_at: row.get("updated_at"),
            },
        }
    }

    pub fn into_resource(self) -> Resource<ProjectAttributes> {
        let code = self.attributes.code.clone();
        let properties = self.properties_id.to_string();
        Resource::new(
            "projects",
            code.clone(),
            self.attributes,
            format!("/api/projects/{code}"),
        )
        .related(
            "properties",
            Some(Identifier::new("properties", properties.clone())),
            Some(format!("/api/properties/{properties}")),
        )
        .link("environments", format!("/api/projects/{code}/environments"))
        .link("git_remotes", format!("/api/projects/{code}/git_remotes"))
        .link("settings", format!("/api/projects/{code}/settings"))
    }
}

/// The project with this code, if any.
pub(super) async fn select_project(
    client: &impl GenericClient,
    code: &Code,
) -> Result<Option<ProjectRecord>, tokio_postgres::Error> {
    let sql = format!("{PROJECT_SELECT} WHERE p.code = $1");
    let row = client.query_opt(&sql, &[&code.as_str()]).await?;
    Ok(row.as_ref().map(ProjectRecord::from_row))
}

/// The id of project `code`, or a 404: how nested resources resolve their project.
pub async fn project_id(client: &impl GenericClient, code: &Code) -> Result<Uuid, ApiError> {
    select_project_id(client, code)
        .await
        .context("loading the project")?
        .ok_or_else(|| paths::not_found("project", code.as_str()))
}

/// The id of the project with this code, if any.
pub async fn select_project_id(
    client: &impl GenericClient,
    code: &Code,
) -> Result<Option<Uuid>, tokio_postgres::Error> {
    let row = client
        .query_opt("SELECT id FROM projects WHERE code = $1", &[&code.as_str()])
        .await?;
    Ok(row.map(|r| r.get(0)))
}

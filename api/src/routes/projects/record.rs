//! A project as read from the database, and its JSON:API resource.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use gantry_shared::domain::Code;
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::jsonapi::{Identifier, Resource};

/// The columns every project read selects (with its properties id).
pub(super) const PROJECT_SELECT: &str = "SELECT p.id, p.code, p.name, p.description, p.archived, \
     p.allow_parallel_changes, p.created_at, p.updated_at, pr.id AS properties_id \
     FROM projects p JOIN properties pr ON pr.project_id = p.id";

#[derive(Debug, Serialize)]
pub struct ProjectAttributes {
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub archived: bool,
    pub allow_parallel_changes: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug)]
pub struct ProjectRecord {
    pub id: Uuid,
    pub properties_id: Uuid,
    pub attributes: ProjectAttributes,
}

impl ProjectRecord {
    pub(super) fn from_row(row: &Row) -> Self {
        Self {
            id: row.get("id"),
            properties_id: row.get("properties_id"),
            attributes: ProjectAttributes {
                code: row.get("code"),
                name: row.get("name"),
                description: row.get("description"),
                archived: row.get("archived"),
                allow_parallel_changes: row.get("allow_parallel_changes"),
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
    }
}

/// The project with this code, if any. Nested resources use it to resolve their project.
pub async fn select_project(
    client: &impl GenericClient,
    code: &Code,
) -> Result<Option<ProjectRecord>, tokio_postgres::Error> {
    let sql = format!("{PROJECT_SELECT} WHERE p.code = $1");
    let row = client.query_opt(&sql, &[&code.as_str()]).await?;
    Ok(row.as_ref().map(ProjectRecord::from_row))
}

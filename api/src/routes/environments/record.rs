//! An environment as read from the database, and its JSON:API resource.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use gantry_shared::domain::Code;
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::jsonapi::{Identifier, Resource};
use utoipa::ToSchema;

/// The columns every environment read selects (with its project's code and its properties id).
pub(super) const ENVIRONMENT_SELECT: &str = "SELECT e.code, e.name, e.description, e.archived, \
     e.created_at, e.updated_at, p.code AS project_code, pr.id AS properties_id \
     FROM environments e JOIN projects p ON p.id = e.project_id \
     JOIN properties pr ON pr.environment_id = e.id";

#[derive(Debug, Serialize, ToSchema)]
pub struct EnvironmentAttributes {
    pub code: String,
    pub project_code: String,
    pub name: String,
    pub description: Option<String>,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug)]
pub struct EnvironmentRecord {
    pub properties_id: Uuid,
    pub attributes: EnvironmentAttributes,
}

impl EnvironmentRecord {
    pub(super) fn from_row(row: &Row) -> Self {
        Self {
            properties_id: row.get("properties_id"),
            attributes: EnvironmentAttributes {
                code: row.get("code"),
                project_code: row.get("project_code"),
                name: row.get("name"),
                description: row.get("description"),
                archived: row.get("archived"),
                created_at: row.get("created_at"),
                updated_at: row.get("updated_at"),
            },
        }
    }

    pub fn into_resource(self) -> Resource<EnvironmentAttributes> {
        let project = self.attributes.project_code.clone();
        let link = format!(
            "/api/projects/{project}/environments/{}",
            self.attributes.code
        );
        let properties = self.properties_id.to_string();
        Resource::new(
            "environments",
            self.attributes.code.clone(),
            self.attributes,
            link.clone(),
        )
        .link("settings", format!("{link}/settings"))
        .related(
            "properties",
            Some(Identifier::new("properties", properties.clone())),
            Some(format!("/api/properties/{properties}")),
        )
        .related(
            "project",
            Some(Identifier::new("projects", project.clone())),
            Some(format!("/api/projects/{project}")),
        )
    }
}

/// The environment `code` of project `project`, if any.
pub(super) async fn select_environment(
    client: &impl GenericClient,
    project: &Code,
    code: &Code,
) -> Result<Option<EnvironmentRecord>, tokio_postgres::Error> {
    let sql = format!("{ENVIRONMENT_SELECT} WHERE p.code = $1 AND e.code = $2");
    let row = client
        .query_opt(&sql, &[&project.as_str(), &code.as_str()])
        .await?;
    Ok(row.as_ref().map(EnvironmentRecord::from_row))
}

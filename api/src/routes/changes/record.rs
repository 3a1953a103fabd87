//! A change as read from the database, and its JSON:API resource.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use gantry_shared::db::CachedStatements;
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::jsonapi::{Identifier, Resource};
use utoipa::ToSchema;

/// The columns every change read selects (with its project's and environment's codes).
pub(super) const CHANGE_SELECT: &str = "SELECT c.id, p.code AS project_code, e.code AS environment_code, \
     c.git_remote_name, c.git_rev, c.commit_sha, c.action, c.metadata, c.status_code, c.created_by, \
     c.created_at, c.started_at, c.finished_at, c.retried_from \
     FROM changes c JOIN projects p ON p.id = c.project_id JOIN environments e ON e.id = c.environment_id";

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeAttributes {
    pub project_code: String,
    pub environment_code: String,
    pub git_remote_name: String,
    pub git_rev: String,
    pub commit_sha: Option<String>,
    pub action: String,
    pub metadata: Value,
    pub status_code: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub retried_from: Option<Uuid>,
}

#[derive(Debug)]
pub struct ChangeRecord {
    pub id: Uuid,
    pub attributes: ChangeAttributes,
}

impl ChangeRecord {
    pub(super) fn from_row(row: &Row) -> Self {
        Self {
            id: row.get("id"),
            attributes: ChangeAttributes {
                project_code: row.get("project_code"),
                environment_code: row.get("environment_code"),
                git_remote_name: row.get("git_remote_name"),
                git_rev: row.get("git_rev"),
                commit_sha: row.get("commit_sha"),
                action: row.get("action"),
                metadata: row.get("metadata"),
                status_code: row.get("status_code"),
                created_by: row.get("created_by"),
                created_at: row.get("created_at"),
                started_at: row.get("started_at"),
                finished_at: row.get("finished_at"),
                retried_from: row.get("retried_from"),
            },
        }
    }

    pub fn into_resource(self) -> Resource<ChangeAttributes> {
        let id = self.id;
        let project = self.attributes.project_code.clone();
        let environment = self.attributes.environment_code.clone();
        Resource::new(
            "changes",
            id.to_string(),
            self.attributes,
            format!("/api/changes/{id}"),
        )
        .related(
            "project",
            Some(Identifier::new("projects", project.clone())),
            Some(format!("/api/projects/{project}")),
        )
        .related(
            "environment",
            Some(Identifier::new("environments", environment.clone())),
            Some(format!(
                "/api/projects/{project}/environments/{environment}"
            )),
        )
        .link("log_lines", format!("/api/changes/{id}/log_lines"))
        .link("properties", format!("/api/changes/{id}/properties"))
    }
}

pub(super) async fn select_change(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<ChangeRecord>, tokio_postgres::Error> {
    let sql = format!("{CHANGE_SELECT} WHERE c.id = $1");
    let row = client.query_opt_cached(&sql, &[&id]).await?;
    Ok(row.as_ref().map(ChangeRecord::from_row))
}

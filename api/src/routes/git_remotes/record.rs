//! A Git remote as read from the database (credentials only as "set or not"), and its resource.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use gantry_shared::domain::Code;
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::jsonapi::{Identifier, Resource};
use utoipa::ToSchema;

/// What a set credential reads as.
pub const HIDDEN: &str = "{{hidden}}";

/// The columns every remote read selects. The ciphertexts themselves are never read by the API.
pub(super) const GIT_REMOTE_SELECT: &str = "SELECT r.id, r.name, r.url, r.username, \
     r.password IS NOT NULL AS has_password, r.ssh_key_data IS NOT NULL AS has_ssh_key_data, \
     r.archived, r.created_at, r.updated_at, p.code AS project_code \
     FROM git_remotes r JOIN projects p ON p.id = r.project_id";

#[derive(Debug, Serialize, ToSchema)]
pub struct GitRemoteAttributes {
    pub name: String,
    pub project_code: String,
    pub url: String,
    pub user: Option<String>,
    pub password: Option<&'static str>,
    pub ssh_key_data: Option<&'static str>,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug)]
pub struct GitRemoteRecord {
    pub id: Uuid,
    pub attributes: GitRemoteAttributes,
}

impl GitRemoteRecord {
    pub(super) fn from_row(row: &Row) -> Self {
        let hidden = |set: bool| set.then_some(HIDDEN);
        Self {
            id: row.get("id"),
            attributes: GitRemoteAttributes {
                name: row.get("name"),
                project_code: row.get("project_code"),
                url: row.get("url"),
                user: row.get("username"),
                password: hidden(row.get("has_password")),
                ssh_key_data: hidden(row.get("has_ssh_key_data")),
                archived: row.get("archived"),
                created_at: row.get("created_at"),
                updated_at: row.get("updated_at"),
            },
        }
    }

    pub fn into_resource(self) -> Resource<GitRemoteAttributes> {
        let project = self.attributes.project_code.clone();
        let link = format!("/api/projects/{project}/git_remotes/{}", self.id);
        Resource::new("git_remotes", self.id.to_string(), self.attributes, link).related(
            "project",
            Some(Identifier::new("projects", project.clone())),
            Some(format!("/api/projects/{project}")),
        )
    }
}

/// Remote `id` of project `project`, if it belongs to it.
pub(super) async fn select_git_remote(
    client: &impl GenericClient,
    project: &Code,
    id: Uuid,
) -> Result<Option<GitRemoteRecord>, tokio_postgres::Error> {
    let sql = format!("{GIT_REMOTE_SELECT} WHERE p.code = $1 AND r.id = $2");
    let row = client.query_opt(&sql, &[&project.as_str(), &id]).await?;
    Ok(row.as_ref().map(GitRemoteRecord::from_row))
}

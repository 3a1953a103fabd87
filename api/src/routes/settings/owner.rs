//! Whose settings a request is about, read (or locked) with the documents above them.

use deadpool_postgres::GenericClient;
use gantry_shared::db::CachedStatements;
use gantry_shared::domain::Code;
use gantry_shared::project_settings::{EffectiveSettings, SettingsDocument};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::error::{ApiError, Context};
use crate::jsonapi::Resource;
use crate::routes::paths;
use utoipa::ToSchema;

/// A project, or an environment of one, by code.
#[derive(Debug, Clone)]
pub enum Owner {
    Project(Code),
    Environment(Code, Code),
}

impl Owner {
    pub fn project(path: &str) -> Result<Self, ApiError> {
        Ok(Owner::Project(paths::code(path, "project")?))
    }

    pub fn environment(project: &str, environment: &str) -> Result<Self, ApiError> {
        Ok(Owner::Environment(
            paths::code(project, "project")?,
            paths::code(environment, "environment")?,
        ))
    }

    /// The owner's path under `/api`, which its settings' links and audit events use.
    pub fn path(&self) -> String {
        match self {
            Owner::Project(p) => format!("/projects/{p}"),
            Owner::Environment(p, e) => format!("/projects/{p}/environments/{e}"),
        }
    }

    fn not_found(&self) -> ApiError {
        match self {
            Owner::Project(p) => paths::not_found("project", p.as_str()),
            Owner::Environment(p, e) => {
                ApiError::NotFound(format!("environment `{e}` of project `{p}` not found"))
            }
        }
    }

    /// The owner's current settings (its row locked when `lock`), or a 404.
    pub async fn load(&self, client: &impl GenericClient, lock: bool) -> Result<Current, ApiError> {
        let lock = if lock { " FOR NO KEY UPDATE OF o" } else { "" };
        let row = match self {
            Owner::Project(p) => {
                let sql = format!(
                    "SELECT o.id, o.settings, o.settings_version, NULL::jsonb, o.updated_at \
                     FROM projects o WHERE o.code = $1{lock}"
                );
                client.query_opt(&sql, &[&p.as_str()]).await
            }
            Owner::Environment(p, e) => {
                let sql = format!(
                    "SELECT o.id, o.settings, o.settings_version, p.settings, o.updated_at \
                     FROM environments o JOIN projects p ON p.id = o.project_id \
                     WHERE p.code = $1 AND o.code = $2{lock}"
                );
                client.query_opt(&sql, &[&p.as_str(), &e.as_str()]).await
            }
        }
        .context("loading the settings")?
        .ok_or_else(|| self.not_found())?;
        Ok(Current {
            id: row.get(0),
            document: row.get(1),
            version: row.get(2),
            project: row.get(3),
            updated_at: row.get(4),
        })
    }

    /// Stores `document` as the next version after `version` (the row is locked); returns it.
    pub async fn write(
        &self,
        client: &impl GenericClient,
        id: Uuid,
        version: i64,
        document: &Value,
        user: &str,
    ) -> Result<i64, ApiError> {
        let (table, column) = match self {
            Owner::Project(_) => ("projects", "project_id"),
            Owner::Environment(..) => ("environments", "environment_id"),
        };
        let sql = format!(
            "WITH o AS (UPDATE {table} SET settings = $2, settings_version = $3 + 1, updated_at = now() \
             WHERE id = $1 AND settings_version = $3 RETURNING id, settings_version) \
             INSERT INTO settings_versions ({column}, version, document, created_by) \
             SELECT id, settings_version, $2, $4 FROM o RETURNING version"
        );
        let row = client
            .query_opt_cached(&sql, &[&id, document, &version, &user])
            .await
            .context("writing the settings")?;
        row.map(|r| r.get(0))
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the locked settings version moved")))
    }
}

/// An owner's settings as stored.
pub struct Current {
    pub id: Uuid,
    pub document: Value,
    pub version: i64,
    /// For an environment, its project's document.
    pub project: Option<Value>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsAttributes {
    /// The owner's own document.
    pub data: Value,
    pub version: i64,
    /// Every setting as it applies to this owner's changes: its document over its project's
    /// (for an environment) over the server's defaults.
    pub effective: EffectiveSettings,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl Current {
    pub fn into_resource(
        self,
        owner: &Owner,
        defaults: &EffectiveSettings,
    ) -> Resource<SettingsAttributes> {
        let project = self
            .project
            .as_ref()
            .map(SettingsDocument::stored)
            .unwrap_or_default();
        let own = SettingsDocument::stored(&self.document);
        let effective = match owner {
            Owner::Project(_) => defaults.clone().under(&own),
            Owner::Environment(..) => defaults.clone().resolve(&project, &own),
        };
        let path = owner.path();
        let id = path.trim_start_matches("/projects/").to_owned();
        let attributes = SettingsAttributes {
            data: self.document,
            version: self.version,
            effective,
            updated_at: self.updated_at,
        };
        Resource::new("settings", id, attributes, format!("/api{path}/settings"))
            .link("versions", format!("/api{path}/settings/versions"))
    }
}

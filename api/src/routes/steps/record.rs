//! A step as read from the database, and its JSON:API resource.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::jsonapi::{Identifier, Resource};
use utoipa::ToSchema;

/// The columns every step read selects (the encrypted properties only when shown).
pub(super) const STEP_COLUMNS: &str = "id, change_id, parent_id, position, action, name, \
     child_execution_strategy, status_code, attempt, created_at, started_at, finished_at, exit_code, \
     project_properties_version, environment_properties_version";

#[derive(Debug, Serialize, ToSchema)]
pub struct StepAttributes {
    pub action: String,
    pub name: String,
    pub status_code: String,
    pub attempt: i32,
    pub position: i32,
    pub child_execution_strategy: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub project_properties_version: Option<i64>,
    pub environment_properties_version: Option<i64>,
}

#[derive(Debug)]
pub struct StepRecord {
    pub id: Uuid,
    pub change_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub attributes: StepAttributes,
}

impl StepRecord {
    pub(super) fn from_row(row: &Row) -> Self {
        Self {
            id: row.get("id"),
            change_id: row.get("change_id"),
            parent_id: row.get("parent_id"),
            attributes: StepAttributes {
                action: row.get("action"),
                name: row.get("name"),
                status_code: row.get("status_code"),
                attempt: row.get("attempt"),
                position: row.get("position"),
                child_execution_strategy: row.get("child_execution_strategy"),
                started_at: row.get("started_at"),
                finished_at: row.get("finished_at"),
                exit_code: row.get("exit_code"),
                created_at: row.get("created_at"),
                project_properties_version: row.get("project_properties_version"),
                environment_properties_version: row.get("environment_properties_version"),
            },
        }
    }

    /// The resource, with `attributes` (the step's own or extended ones, see `show`).
    pub fn into_resource_with<A>(self, extend: impl FnOnce(StepAttributes) -> A) -> Resource<A> {
        let link = format!("/api/steps/{}", self.id);
        let parent = self
            .parent_id
            .map(|p| Identifier::new("steps", p.to_string()));
        let parent_link = self.parent_id.map(|p| format!("/api/steps/{p}"));
        Resource::new("steps", self.id.to_string(), extend(self.attributes), link)
            .related("parent", parent, parent_link)
            .related(
                "change",
                Some(Identifier::new("changes", self.change_id.to_string())),
                Some(format!("/api/changes/{}", self.change_id)),
            )
            .link("log_lines", format!("/api/steps/{}/log_lines", self.id))
    }

    pub fn into_resource(self) -> Resource<StepAttributes> {
        self.into_resource_with(|attributes| attributes)
    }
}

/// Every step of a change, in creation order.
pub async fn select_steps_of_change(
    client: &impl GenericClient,
    change_id: Uuid,
) -> Result<Vec<StepRecord>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {STEP_COLUMNS} FROM steps WHERE change_id = $1 ORDER BY created_at, position, id"
    );
    let rows = client.query(&sql, &[&change_id]).await?;
    Ok(rows.iter().map(StepRecord::from_row).collect())
}

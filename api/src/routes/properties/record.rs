//! A properties document's resource, and the unencrypted facts about it (owner, last update).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use gantry_shared::store::Owner;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::jsonapi::Resource;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct PropertiesAttributes {
    pub data: Value,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

pub fn properties_resource(
    id: Uuid,
    attributes: PropertiesAttributes,
) -> Resource<PropertiesAttributes> {
    Resource::new(
        "properties",
        id.to_string(),
        attributes,
        format!("/api/properties/{id}"),
    )
    .link("versions", format!("/api/properties/{id}/versions"))
}

/// Who owns a properties document and when it last changed.
pub(super) struct PropertiesInfo {
    pub owner: Owner,
    pub updated_at: DateTime<Utc>,
}

pub(super) async fn select_properties_info(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<PropertiesInfo>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT project_id, environment_id, updated_at FROM properties WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(row.and_then(|row| {
        // The table's CHECK constraint sets exactly one of the two owner columns.
        let owner = match (row.get(0), row.get(1)) {
            (Some(project), _) => Owner::Project(project),
            (None, Some(environment)) => Owner::Environment(environment),
            (None, None) => return None,
        };
        Some(PropertiesInfo {
            owner,
            updated_at: row.get(2),
        })
    }))
}

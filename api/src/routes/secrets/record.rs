//! A secret's resource: its name, its keys and its timestamps, never its values.

use chrono::{DateTime, Utc};
use gantry_shared::secrets::{self, Secret};
use serde::Serialize;

use crate::error::ApiError;
use crate::jsonapi::Resource;
use crate::routes::paths;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretAttributes {
    pub name: String,
    /// The variable names, sorted.
    pub keys: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SecretAttributes {
    pub fn of(secret: Secret) -> Self {
        Self {
            name: secret.name,
            // A BTreeMap's keys come sorted.
            keys: secret.values.into_keys().collect(),
            created_at: secret.created_at,
            updated_at: secret.updated_at,
        }
    }
}

pub fn secret_resource(attributes: SecretAttributes) -> Resource<SecretAttributes> {
    let name = attributes.name.clone();
    Resource::new(
        "secrets",
        name.clone(),
        attributes,
        format!("/api/secrets/{name}"),
    )
}

/// A secret name from the path of a read or a delete: an invalid one names nothing (404).
pub(super) fn existing_name(raw: &str) -> Result<&str, ApiError> {
    secrets::validate_name(raw)
        .map(|()| raw)
        .map_err(|_| paths::not_found("secret", raw))
}

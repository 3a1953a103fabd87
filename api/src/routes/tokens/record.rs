//! A token as read from the database (never the token itself), and who may manage it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Role, User};
use crate::error::ApiError;
use crate::jsonapi::Resource;

/// The columns every token read selects.
pub(super) const TOKEN_SELECT: &str = "SELECT t.id, t.user_name, t.role, t.project_id, \
     p.code AS project_code, t.created_by, t.created_at, t.expires_at, t.revoked_at \
     FROM api_tokens t LEFT JOIN projects p ON p.id = t.project_id";

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenAttributes {
    pub user_name: String,
    pub role: Role,
    /// The project the token is for; `null`: every project.
    pub project_code: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The token, shown once: in the response that made it (absent afterwards).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

pub(super) struct TokenRecord {
    pub id: Uuid,
    pub project_id: Option<Uuid>,
    pub attributes: TokenAttributes,
}

impl TokenRecord {
    pub(super) fn from_row(row: &Row) -> Self {
        Self {
            id: row.get("id"),
            project_id: row.get("project_id"),
            attributes: TokenAttributes {
                user_name: row.get("user_name"),
                role: Role::parse(row.get("role")).unwrap_or(Role::Viewer),
                project_code: row.get("project_code"),
                created_by: row.get("created_by"),
                created_at: row.get("created_at"),
                expires_at: row.get("expires_at"),
                revoked_at: row.get("revoked_at"),
                token: None,
            },
        }
    }

    pub(super) fn into_resource(self) -> Resource<TokenAttributes> {
        Resource::new(
            "tokens",
            self.id.to_string(),
            self.attributes,
            format!("/api/tokens/{}", self.id),
        )
    }
}

/// Passes when `user` may manage tokens for `project` (`None`: every project): an admin of every
/// project, or an admin of that one project.
pub(super) fn require_manager(user: &User, project: Option<Uuid>) -> Result<(), ApiError> {
    match project {
        Some(project) if !user.is_server(Role::Admin) => user.require(Role::Admin, project, || {
            ApiError::Forbidden("tokens of other projects cannot be managed with this token".into())
        }),
        _ => user.require_server(Role::Admin),
    }
}

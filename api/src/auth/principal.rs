//! Who is calling and what they may do. A token carries one role on one project, or on every
//! project; roles are ordered — a viewer reads, an operator also runs changes (create, cancel,
//! retry, continue) and edits properties and settings, an admin may do everything, including
//! secrets and tokens. A project the caller may not see is answered like a missing one (404),
//! so nothing leaks; a visible project with too low a role is a 403.

use gantry_shared::store::Author;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A role, on one project or (`project: None`) on every project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub role: Role,
    pub project: Option<Uuid>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    name: String,
    grant: Grant,
}

impl User {
    pub fn new(name: String, grant: Grant) -> Self {
        Self { name, grant }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn grant(&self) -> Grant {
        self.grant
    }

    /// The user as the author of a properties version.
    pub fn author(&self) -> Author<'_> {
        Author {
            name: &self.name,
            step_id: None,
        }
    }

    /// The one project this user is confined to, if any (lists show only its rows).
    pub fn confined_to(&self) -> Option<Uuid> {
        self.grant.project
    }

    /// Whether the user has `role` on every project.
    pub fn is_server(&self, role: Role) -> bool {
        self.grant.project.is_none() && self.grant.role >= role
    }

    pub fn sees(&self, project: Uuid) -> bool {
        self.grant.project.is_none_or(|p| p == project)
    }

    /// Passes when the user has `role` on `project`; `missing` is the 404 of a project the user
    /// cannot see (the same a missing resource gets), a 403 when the role is too low.
    pub fn require(
        &self,
        role: Role,
        project: Uuid,
        missing: impl FnOnce() -> ApiError,
    ) -> Result<(), ApiError> {
        if !self.sees(project) {
            return Err(missing());
        }
        self.require_role(role)
    }

    /// Passes when the user has `role` on every project (secrets, the audit log, project creation).
    pub fn require_server(&self, role: Role) -> Result<(), ApiError> {
        if self.grant.project.is_some() {
            return Err(ApiError::Forbidden(format!(
                "this needs a token for every project with role {}; the token is for one project",
                role.as_str()
            )));
        }
        self.require_role(role)
    }

    /// Passes when the user's role (wherever it applies) is at least `role`.
    pub fn require_role(&self, role: Role) -> Result<(), ApiError> {
        if self.grant.role >= role {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "this needs role {}; the token has role {}",
            role.as_str(),
            self.grant.role.as_str()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, project: Option<Uuid>) -> User {
        User::new("u".into(), Grant { role, project })
    }

    fn missing() -> ApiError {
        ApiError::NotFound("no such project".into())
    }

    #[test]
    fn roles_are_ordered_and_a_project_token_sees_only_its_project() {
        let (mine, other) = (Uuid::now_v7(), Uuid::now_v7());
        let operator = user(Role::Operator, Some(mine));
        assert!(operator.require(Role::Viewer, mine, missing).is_ok());
        assert!(operator.require(Role::Operator, mine, missing).is_ok());
        assert!(matches!(
            operator.require(Role::Admin, mine, missing),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            operator.require(Role::Viewer, other, missing),
            Err(ApiError::NotFound(_))
        ));
        assert!(matches!(
            operator.require_server(Role::Viewer),
            Err(ApiError::Forbidden(_))
        ));
        let viewer = user(Role::Viewer, None);
        assert!(viewer.require(Role::Viewer, other, missing).is_ok());
        assert!(viewer.require_server(Role::Viewer).is_ok());
        assert!(matches!(
            viewer.require(Role::Operator, other, missing),
            Err(ApiError::Forbidden(_))
        ));
        assert!(user(Role::Admin, None).require_server(Role::Admin).is_ok());
    }
}

//! What each route needs, declared beside the route in the router's table and checked before the
//! handler runs, so no route can forget it: the route names the role and where its project is
//! (a code or an id in the path). A caller with that role on every project passes without a
//! lookup; a caller confined to one project passes when the path leads to that project.

use std::collections::HashMap;

use actix_web::http::Method;
use deadpool_postgres::GenericClient;
use gantry_shared::domain::Code;
use uuid::Uuid;

use super::principal::{Role, User};
use crate::error::{ApiError, Context};
use crate::routes::{paths, projects};
use crate::state::AppState;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any authenticated caller (`/api/info`, the default Dockerfile).
    Anyone,
    /// This role on every project (secrets, the audit log, creating projects).
    Server(Role),
    /// This role on the project the path leads to.
    Project(Role, Via),
    /// This role on some project (or all), and the handler decides the rest: the project is in
    /// the body, or a list shows only what the caller sees, or (tokens) what may be done depends
    /// on the token asked for.
    Handler(Role),
}

/// Where in the path a route's project is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `{project}`: its code.
    Code,
    /// `{id}` of a change.
    Change,
    /// `{id}` of a step.
    Step,
    /// `{id}` of a properties document (a project's or an environment's).
    Properties,
}

/// Every `/api` route's access, by method and path pattern (as the router matched it).
#[derive(Debug, Default)]
pub struct AccessTable(HashMap<String, HashMap<Method, Access>>);

impl AccessTable {
    pub fn insert(&mut self, method: Method, pattern: String, access: Access) {
        self.0.entry(pattern).or_default().insert(method, access);
    }

    pub fn get(&self, method: &Method, pattern: &str) -> Option<Access> {
        self.0.get(pattern)?.get(method).copied()
    }
}

/// Passes when `user` may call a route with this access at `path` (matched by `pattern`).
pub async fn check(
    state: &AppState,
    user: &User,
    access: Access,
    pattern: &str,
    path: &str,
) -> Result<(), ApiError> {
    match access {
        Access::Anyone => Ok(()),
        Access::Handler(role) => user.require_role(role),
        Access::Server(role) => user.require_server(role),
        Access::Project(role, _) if user.is_server(role) => Ok(()),
        Access::Project(role, via) => {
            let (name, raw) = via.segment(pattern, path);
            let missing = || paths::not_found(via.what(), &raw);
            let client = state.client().await?;
            let project = via
                .project_of(&client, &raw)
                .await
                .context("finding the project of a request")?
                .ok_or_else(missing)?;
            tracing::debug!(%project, name, "checking access");
            user.require(role, project, missing)
        }
    }
}

impl Via {
    fn what(self) -> &'static str {
        match self {
            Via::Code => "project",
            Via::Change => "change",
            Via::Step => "step",
            Via::Properties => "properties",
        }
    }

    fn parameter(self) -> &'static str {
        match self {
            Via::Code => "project",
            _ => "id",
        }
    }

    /// The path segment where `pattern` has this parameter.
    fn segment(self, pattern: &str, path: &str) -> (&'static str, String) {
        let name = self.parameter();
        let wanted = format!("{{{name}}}");
        let raw = pattern
            .split('/')
            .zip(path.split('/'))
            .find(|(p, _)| *p == wanted)
            .map(|(_, value)| value.to_owned())
            .unwrap_or_default();
        (name, raw)
    }

    /// The project this segment leads to, if it names anything.
    async fn project_of(
        self,
        client: &impl GenericClient,
        raw: &str,
    ) -> Result<Option<Uuid>, tokio_postgres::Error> {
        let sql = match self {
            Via::Code => {
                let Ok(code) = Code::parse(raw) else {
                    return Ok(None);
                };
                return projects::select_project_id(client, &code).await;
            }
            Via::Change => "SELECT project_id FROM changes WHERE id = $1",
            Via::Step => {
                "SELECT c.project_id FROM steps s JOIN changes c ON c.id = s.change_id \
                 WHERE s.id = $1"
            }
            Via::Properties => {
                "SELECT COALESCE(p.project_id, e.project_id) FROM properties p \
                 LEFT JOIN environments e ON e.id = p.environment_id WHERE p.id = $1"
            }
        };
        let Ok(id) = Uuid::parse_str(raw) else {
            return Ok(None);
        };
        let row = client.query_opt(sql, &[&id]).await?;
        Ok(row.map(|r| r.get(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_segment_is_read_where_the_pattern_names_the_parameter() {
        let (name, raw) = Via::Code.segment(
            "/api/projects/{project}/environments/{environment}",
            "/api/projects/web/environments/prod",
        );
        assert_eq!((name, raw.as_str()), ("project", "web"));
        let (_, raw) = Via::Change.segment("/api/changes/{id}/retry", "/api/changes/abc/retry");
        assert_eq!(raw, "abc");
    }
}

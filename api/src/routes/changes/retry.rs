//! `POST /api/changes/{id}/retry`: a new change of the same action on the same commit, linked to
//! the one it retries by `retried_from` (DESIGN §3). Only a change that ended in `error` or was
//! cancelled is retried (422 otherwise). Like a created change it starts `initializing`; the
//! planner then copies the steps that succeeded as `success` with their times and lets the rest
//! run again (see the worker's `planner::retry`).

use actix_web::{HttpResponse, web};
use deadpool_postgres::GenericClient;
use gantry_shared::db::CachedStatements;
use gantry_shared::domain::{ChangeStatus, Code};
use gantry_shared::lifecycle;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use super::create::{NewChange, Origin, insert};
use crate::auth::User;
use crate::domain::{ActionName, GitRev, RemoteName};
use crate::error::{ApiError, Context, Problem};
use crate::jsonapi;
use crate::routes::paths;
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/api/changes/{id}/retry",
    tag = "changes",
    summary = "Run a failed or cancelled change again from the same commit; succeeded steps are kept.",
    params(crate::openapi::params::IdPath),
    responses(
        (status = 201, description = "The new change (`retried_from` names this one).", body = crate::jsonapi::Single<super::record::ChangeAttributes>),
        (status = 404, description = "No such change."),
        (status = 422, description = "The change is not in error or cancelled."),
    ),
)]
#[tracing::instrument(skip_all, fields(change = %path, user = user.name(), change_id = tracing::field::Empty), err(level = "info"))]
pub async fn retry_change(
    state: web::Data<AppState>,
    user: User,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = paths::uuid(&path, "change")?;
    let client = state.client().await?;
    let row = select_retried(&client, id)
        .await
        .context("loading the change")?
        .ok_or_else(|| paths::not_found("change", &path))?;
    let old = Retried::from_row(id, &row).map_err(ApiError::Internal)?;
    lifecycle::retryable(old.status).map_err(|detail| {
        ApiError::Unprocessable(Problem {
            detail,
            source: None,
        })
    })?;
    let origin = Origin::Retry {
        from: id,
        commit_sha: old.commit_sha.as_deref(),
    };
    let created = insert(&state, &client, &old.change, user.name(), origin).await?;
    Ok(jsonapi::created(created.into_resource()))
}

/// The change to retry, as a new change of the same targets, revision, action and metadata.
struct Retried {
    status: ChangeStatus,
    commit_sha: Option<String>,
    change: NewChange,
}

async fn select_retried(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<Row>, tokio_postgres::Error> {
    client
        .query_opt_cached(
            "SELECT c.status_code, c.commit_sha, p.code, e.code, c.git_remote_name, c.git_rev, \
             c.action, c.metadata FROM changes c JOIN projects p ON p.id = c.project_id \
             JOIN environments e ON e.id = c.environment_id WHERE c.id = $1",
            &[&id],
        )
        .await
}

impl Retried {
    /// Stored values passed these checks when the change was created.
    fn from_row(id: Uuid, row: &Row) -> anyhow::Result<Self> {
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            anyhow::anyhow!("the stored {what} of change {id} is invalid: {e}")
        };
        let status = row
            .get::<_, &str>(0)
            .parse()
            .map_err(|e| invalid("status", &e))?;
        let change = NewChange {
            project: Code::parse(row.get(2)).map_err(|e| invalid("project code", &e))?,
            environment: Code::parse(row.get(3)).map_err(|e| invalid("environment code", &e))?,
            remote: RemoteName::parse(row.get(4)).map_err(|e| invalid("git remote name", &e))?,
            git_rev: GitRev::parse(row.get(5)).map_err(|e| invalid("git revision", &e))?,
            action: ActionName::parse(row.get(6)).map_err(|e| invalid("action", &e))?,
            metadata: row.get::<_, Value>(7),
        };
        Ok(Self {
            status,
            commit_sha: row.get(1),
            change,
        })
    }
}

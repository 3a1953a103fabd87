//! `POST /api/changes`: one transaction inserts the change (`initializing`), its audit event and
//! the outbox message that asks a planner to initialise it; after the commit the relay is woken.

use actix_web::{HttpResponse, web};
use deadpool_postgres::GenericClient;
use gantry_shared::db::CachedStatements;
use gantry_shared::domain::{ChangeStatus, Code};
use gantry_shared::messages::Message;
use gantry_shared::{outbox, telemetry};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::record::select_change;
use crate::audit::{self, Event};
use crate::auth::User;
use crate::body::{JsonApiBody, UniqueKeys};
use crate::domain::{ActionName, GitRev, RemoteName};
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateChangeAttributes {
    project_code: String,
    environment_code: String,
    git_remote_name: String,
    git_rev: String,
    action: Option<String>,
    metadata: Option<UniqueKeys>,
}

struct NewChange {
    project: Code,
    environment: Code,
    remote: RemoteName,
    git_rev: GitRev,
    action: ActionName,
    /// A JSON object.
    metadata: Value,
}

impl TryFrom<CreateChangeAttributes> for NewChange {
    type Error = ApiError;

    fn try_from(a: CreateChangeAttributes) -> Result<Self, ApiError> {
        let metadata = match a.metadata.map(|m| m.0) {
            None => Value::Object(Map::new()),
            Some(object @ Value::Object(_)) => object,
            Some(_) => {
                return Err(ApiError::invalid_attribute(
                    "metadata",
                    "must be a JSON object",
                ));
            }
        };
        Ok(Self {
            project: Code::parse(&a.project_code)
                .map_err(|e| ApiError::invalid_attribute("project_code", e))?,
            environment: Code::parse(&a.environment_code)
                .map_err(|e| ApiError::invalid_attribute("environment_code", e))?,
            remote: RemoteName::parse(&a.git_remote_name)
                .map_err(|e| ApiError::invalid_attribute("git_remote_name", e))?,
            git_rev: GitRev::parse(&a.git_rev)
                .map_err(|e| ApiError::invalid_attribute("git_rev", e))?,
            action: match a.action {
                Some(action) => ActionName::parse(&action)
                    .map_err(|e| ApiError::invalid_attribute("action", e))?,
                None => ActionName::default_action(),
            },
            metadata,
        })
    }
}

#[tracing::instrument(skip_all, fields(user = user.name(), change_id = tracing::field::Empty), err(level = "info"))]
pub async fn create_change(
    state: web::Data<AppState>,
    user: User,
    JsonApiBody(attributes): JsonApiBody<CreateChangeAttributes>,
) -> Result<HttpResponse, ApiError> {
    let change = NewChange::try_from(attributes)?;
    let mut client = state.client().await?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    let (project_id, environment_id) = resolve_targets(&tx, &change).await?;
    let id = Uuid::now_v7();
    tracing::Span::current().record("change_id", tracing::field::display(id));
    let event = Event {
        kind: "api:changes:create",
        actor: user.name(),
        target: format!("/changes/{id}"),
        payload: json!({
            "project_code": change.project.as_str(),
            "environment_code": change.environment.as_str(),
            "git_rev": change.git_rev.as_str(),
            "action": change.action.as_str(),
        }),
    };
    insert_change(&tx, id, project_id, environment_id, &change, user.name())
        .await
        .context("inserting the change")?;
    // One round trip for the three: the connection pipelines them (none depends on another). A
    // statement that must run after another is awaited first: joined `*_cached` calls keep their
    // order only while all of them are prepared already.
    let plan = Message::PlanChangeV1 { change_id: id };
    let (_, created, _) = tokio::try_join!(
        async {
            outbox::insert_message(&tx, &plan)
                .await
                .context("queueing the plan message")
        },
        async { select_change(&tx, id).await.context("reading the change") },
        async {
            audit::insert_event(&tx, &event)
                .await
                .context("recording the event")
        },
    )?;
    let created = created
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the new change was not found")))?;
    tx.commit().await.context("committing the transaction")?;
    state.outbox.notify();
    metrics::counter!(gantry_shared::metrics::names::CHANGES_CREATED).increment(1);
    Ok(jsonapi::created(created.into_resource()))
}

/// The project and environment ids, after checking that they and the remote exist and are not
/// archived. The rows stay share-locked until commit, so none can be deleted under the change.
async fn resolve_targets(
    client: &impl GenericClient,
    change: &NewChange,
) -> Result<(Uuid, Uuid), ApiError> {
    // One round trip when all three exist (the common case); otherwise the lookups one by one
    // say which is missing.
    let row = client
        .query_opt_cached(
            "SELECT p.id, p.archived, e.id, e.archived, r.archived FROM projects p \
             JOIN environments e ON e.project_id = p.id AND e.code = $2 \
             JOIN git_remotes r ON r.project_id = p.id AND r.name = $3 \
             WHERE p.code = $1 FOR KEY SHARE OF p, e FOR SHARE OF r",
            &[
                &change.project.as_str(),
                &change.environment.as_str(),
                &change.remote.as_str(),
            ],
        )
        .await
        .context("loading the project, environment and git remote")?;
    if let Some(row) = row {
        refuse_archived(
            "project_code",
            "project",
            change.project.as_str(),
            row.get(1),
        )?;
        refuse_archived(
            "environment_code",
            "environment",
            change.environment.as_str(),
            row.get(3),
        )?;
        refuse_archived(
            "git_remote_name",
            "git remote",
            change.remote.as_str(),
            row.get(4),
        )?;
        return Ok((row.get(0), row.get(2)));
    }
    resolve_targets_one_by_one(client, change).await
}

async fn resolve_targets_one_by_one(
    client: &impl GenericClient,
    change: &NewChange,
) -> Result<(Uuid, Uuid), ApiError> {
    let (project_id, archived) = select_project_target(client, &change.project)
        .await
        .context("loading the project")?
        .ok_or_else(|| {
            ApiError::invalid_attribute(
                "project_code",
                format!("`{}` names no project", change.project),
            )
        })?;
    refuse_archived("project_code", "project", change.project.as_str(), archived)?;
    let (environment_id, archived) =
        select_environment_target(client, project_id, &change.environment)
            .await
            .context("loading the environment")?
            .ok_or_else(|| {
                let detail = format!(
                    "`{}` names no environment of project {}",
                    change.environment, change.project
                );
                ApiError::invalid_attribute("environment_code", detail)
            })?;
    refuse_archived(
        "environment_code",
        "environment",
        change.environment.as_str(),
        archived,
    )?;
    let archived = select_git_remote_target(client, project_id, &change.remote)
        .await
        .context("loading the git remote")?
        .ok_or_else(|| {
            let detail = format!(
                "`{}` names no git remote of project {}",
                change.remote.as_str(),
                change.project
            );
            ApiError::invalid_attribute("git_remote_name", detail)
        })?;
    refuse_archived(
        "git_remote_name",
        "git remote",
        change.remote.as_str(),
        archived,
    )?;
    Ok((project_id, environment_id))
}

fn refuse_archived(
    attribute: &str,
    what: &str,
    name: &str,
    archived: bool,
) -> Result<(), ApiError> {
    match archived {
        true => Err(ApiError::invalid_attribute(
            attribute,
            format!("`{name}` names an archived {what}"),
        )),
        false => Ok(()),
    }
}

async fn select_project_target(
    client: &impl GenericClient,
    code: &Code,
) -> Result<Option<(Uuid, bool)>, tokio_postgres::Error> {
    let row = client
        .query_opt_cached(
            "SELECT id, archived FROM projects WHERE code = $1 FOR KEY SHARE",
            &[&code.as_str()],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

async fn select_environment_target(
    client: &impl GenericClient,
    project_id: Uuid,
    code: &Code,
) -> Result<Option<(Uuid, bool)>, tokio_postgres::Error> {
    let row = client
        .query_opt_cached(
            "SELECT id, archived FROM environments WHERE project_id = $1 AND code = $2 FOR KEY SHARE",
            &[&project_id, &code.as_str()],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

async fn select_git_remote_target(
    client: &impl GenericClient,
    project_id: Uuid,
    name: &RemoteName,
) -> Result<Option<bool>, tokio_postgres::Error> {
    let row = client
        .query_opt_cached(
            "SELECT archived FROM git_remotes WHERE project_id = $1 AND name = $2 FOR SHARE",
            &[&project_id, &name.as_str()],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

async fn insert_change(
    client: &impl GenericClient,
    id: Uuid,
    project_id: Uuid,
    environment_id: Uuid,
    change: &NewChange,
    created_by: &str,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute_cached(
            "INSERT INTO changes (id, project_id, environment_id, git_remote_name, git_rev, action, metadata, \
             status_code, created_by, traceparent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &id,
                &project_id,
                &environment_id,
                &change.remote.as_str(),
                &change.git_rev.as_str(),
                &change.action.as_str(),
                &change.metadata,
                &ChangeStatus::Initializing.as_str(),
                &created_by,
                &telemetry::current_traceparent(),
            ],
        )
        .await
}

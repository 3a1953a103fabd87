//! `POST /api/changes`: one statement inserts the change (`initializing`), its audit event and
//! the outbox message that asks a planner to initialise it; after its commit the relay is woken.
//! Creations arriving together share that statement and its message ([`super::batch`]). With an
//! `Idempotency-Key` the statement runs, for this change alone, in a transaction that also
//! records the key ([`super::idempotency`]).

use actix_web::{HttpRequest, HttpResponse, web};
use deadpool_postgres::GenericClient;
use gantry_shared::db::CachedStatements;
use gantry_shared::domain::{ChangeStatus, Code};
use gantry_shared::messages::Message;
use gantry_shared::outbox::OutboxRow;
use gantry_shared::telemetry;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::batch::{Batched, Creation};
use super::idempotency;
use super::record::ChangeRecord;
use crate::auth::{Role, User};
use crate::body::{JsonApiBody, UniqueKeys};
use crate::domain::{ActionName, GitRev, RemoteName};
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::state::AppState;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChangeAttributes {
    project_code: String,
    environment_code: String,
    git_remote_name: String,
    git_rev: String,
    action: Option<String>,
    /// Any JSON object, kept with the change.
    #[schema(value_type = Option<Object>)]
    metadata: Option<UniqueKeys>,
}

#[derive(Clone)]
pub(super) struct NewChange {
    pub project: Code,
    pub environment: Code,
    pub remote: RemoteName,
    pub git_rev: GitRev,
    pub action: ActionName,
    /// A JSON object.
    pub metadata: Value,
}

/// Where a new change comes from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Origin<'a> {
    /// `POST /api/changes`.
    Create,
    /// `POST /api/changes/{id}/retry`: the change it retries, and the commit that one resolved
    /// (the retry runs the same commit), if it got that far.
    Retry {
        from: Uuid,
        commit_sha: Option<&'a str>,
    },
}

impl Origin<'_> {
    fn event(self) -> &'static str {
        match self {
            Origin::Create => "api:changes:create",
            Origin::Retry { .. } => "api:changes:retry",
        }
    }
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

#[utoipa::path(
    post,
    path = "/api/changes",
    tag = "changes",
    summary = "Run an action from a Git revision against an environment.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retrying safe: a request with a key already used (by this user) with the same attributes gets that change back (200) instead of a new one; with other attributes, a 422. Keys are remembered for `api.idempotency_key_hours` (24 by default).")),
    request_body = crate::body::RequestDocument<CreateChangeAttributes>,
    responses(
        (status = 201, description = "The new change, `pending` until a worker plans it.", body = crate::jsonapi::Single<super::record::ChangeAttributes>),
        (status = 200, description = "The change an earlier request with this `Idempotency-Key` made.", body = crate::jsonapi::Single<super::record::ChangeAttributes>),
        (status = 422, description = "No such project, environment, remote or action."),
    ),
)]
#[tracing::instrument(skip_all, fields(user = user.name(), change_id = tracing::field::Empty), err(level = "info"))]
pub async fn create_change(
    state: web::Data<AppState>,
    user: User,
    req: HttpRequest,
    JsonApiBody(attributes): JsonApiBody<CreateChangeAttributes>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency::key_of(&req)?;
    let change = NewChange::try_from(attributes)?;
    if !user.is_server(Role::Operator) {
        let client = state.client().await?;
        require_operator(&client, &user, &change).await?;
    }
    let Some(key) = key else {
        let created = create_batched(&state, &change, user.name()).await?;
        return Ok(jsonapi::created(created.into_resource()));
    };
    let mut client = state.client().await?;
    let digest = idempotency::digest(&change);
    if let Some(earlier) = idempotency::replay(&client, user.name(), &key, &digest).await? {
        return Ok(jsonapi::ok(earlier.into_resource()));
    }
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    let created = insert(&state, &tx, &change, user.name(), Origin::Create).await?;
    if idempotency::claim(&tx, user.name(), &key, &digest, created.id).await? {
        tx.commit().await.context("committing the change")?;
        state.outbox.notify();
        return Ok(jsonapi::created(created.into_resource()));
    }
    // Another request with this key committed first: this change is rolled back, that one shown.
    drop(tx);
    match idempotency::replay(&client, user.name(), &key, &digest).await? {
        Some(earlier) => Ok(jsonapi::ok(earlier.into_resource())),
        None => Err(ApiError::Conflict(format!(
            "another request with this {} is in flight; retry",
            idempotency::HEADER
        ))),
    }
}

/// Creates the change with the next batch of creations; when the batch found no valid target for
/// it, or failed, the change is created on its own (which says which target is missing).
async fn create_batched(
    state: &AppState,
    change: &NewChange,
    user: &str,
) -> Result<ChangeRecord, ApiError> {
    let id = Uuid::now_v7();
    tracing::Span::current().record("change_id", tracing::field::display(id));
    let creation = Creation::new(id, change, user, event_payload(change, Origin::Create));
    match state.creations.create(creation).await {
        Batched::Created(created) => Ok(counted(state, *created)),
        Batched::NoTarget | Batched::Failed => {
            let client = state.client().await?;
            insert(state, &client, change, user, Origin::Create).await
        }
    }
}

/// A change just committed with its plan message: the relay is woken, the change counted.
fn counted(state: &AppState, created: ChangeRecord) -> ChangeRecord {
    state.outbox.notify();
    metrics::counter!(gantry_shared::metrics::names::CHANGES_CREATED).increment(1);
    created
}

/// The payload of a creation's audit event.
fn event_payload(change: &NewChange, origin: Origin<'_>) -> Value {
    let retried_from = match origin {
        Origin::Create => None,
        Origin::Retry { from, .. } => Some(from),
    };
    json!({
        "project_code": change.project.as_str(),
        "environment_code": change.environment.as_str(),
        "git_rev": change.git_rev.as_str(),
        "action": change.action.as_str(),
        "retried_from": retried_from,
    })
}

/// Inserts a new change with its plan message and audit event, or says which of its targets is
/// missing or archived.
pub(super) async fn insert(
    state: &AppState,
    client: &impl GenericClient,
    change: &NewChange,
    user: &str,
    origin: Origin<'_>,
) -> Result<ChangeRecord, ApiError> {
    let id = Uuid::now_v7();
    tracing::Span::current().record("change_id", tracing::field::display(id));
    // When the insert found no valid target, the lookups say which is missing or archived; if
    // they find none, one came back (unarchived) in between: the insert is tried again.
    for _ in 0..3 {
        if let Some(created) = insert_change(client, id, change, user, origin)
            .await
            .context("inserting the change")?
        {
            return Ok(counted(state, created));
        }
        resolve_targets_one_by_one(client, change).await?;
    }
    Err(ApiError::Conflict(
        "the project, environment or git remote kept changing while the change was created; try again"
            .to_owned(),
    ))
}

/// Inserts the change (`initializing`), the outbox message that asks a planner to plan it and
/// its audit event, in one statement (one round trip, committed on its own), if its project,
/// environment and git remote exist and are not archived; otherwise nothing.
///
/// The target rows are not locked: the foreign keys keep the project and the environment from
/// being deleted under the change, and a planner fails a change whose remote was deleted in
/// between. Share locks on the same three rows, taken by every creation of a project, make
/// PostgreSQL create a new multixact of all the creations in flight for each one; on this
/// machine kind that cost stayed within the noise of `create --size medium` (three interleaved
/// runs each: 1544 against 1681 creations/s closed loop, 1427 against 1302 open loop, medians).
async fn insert_change(
    client: &impl GenericClient,
    id: Uuid,
    change: &NewChange,
    created_by: &str,
    origin: Origin<'_>,
) -> Result<Option<ChangeRecord>, tokio_postgres::Error> {
    let (retried_from, commit_sha) = match origin {
        Origin::Create => (None, None),
        Origin::Retry { from, commit_sha } => (Some(from), commit_sha),
    };
    let message = OutboxRow::of(&Message::PlanChangeV1 { change_id: id });
    let event = event_payload(change, origin);
    let row = client
        .query_opt_cached(
            "WITH target AS ( \
               SELECT p.id AS project_id, e.id AS environment_id FROM projects p \
               JOIN environments e ON e.project_id = p.id AND e.code = $2 \
               JOIN git_remotes r ON r.project_id = p.id AND r.name = $3 \
               WHERE p.code = $1 AND NOT (p.archived OR e.archived OR r.archived) \
               ), \
             c AS ( \
               INSERT INTO changes (id, project_id, environment_id, git_remote_name, git_rev, action, \
               metadata, status_code, created_by, traceparent, retried_from, commit_sha) \
               SELECT $4, project_id, environment_id, $3, $5, $6, $7, $8, $9, $10, $16, $17 FROM target \
               RETURNING id, git_remote_name, git_rev, commit_sha, action, metadata, status_code, \
               created_by, created_at, started_at, finished_at, retried_from), \
             message AS ( \
               INSERT INTO outbox (exchange, routing_key, payload, headers) \
               SELECT $11, $12, $13, $14 FROM c), \
             event AS ( \
               INSERT INTO events (type, actor, target, payload) \
               SELECT $18, $9, '/changes/' || c.id, $15 FROM c) \
             SELECT c.*, $1 AS project_code, $2 AS environment_code FROM c",
            &[
                &change.project.as_str(),
                &change.environment.as_str(),
                &change.remote.as_str(),
                &id,
                &change.git_rev.as_str(),
                &change.action.as_str(),
                &change.metadata,
                &ChangeStatus::Initializing.as_str(),
                &created_by,
                &telemetry::current_traceparent(),
                &message.exchange,
                &message.routing_key,
                &message.payload,
                &message.headers,
                &event,
                &retried_from,
                &commit_sha,
                &origin.event(),
            ],
        )
        .await?;
    Ok(row.as_ref().map(ChangeRecord::from_row))
}

/// Says which of the change's project, environment and git remote is missing or archived; `Ok`
/// when none is (any more).
/// A caller confined to one project may create changes there as an operator; another project is
/// answered as if it did not exist.
async fn require_operator(
    client: &impl GenericClient,
    user: &User,
    change: &NewChange,
) -> Result<(), ApiError> {
    let missing = || no_project(change);
    let (project_id, _) = select_project_target(client, &change.project)
        .await
        .context("loading the project")?
        .ok_or_else(missing)?;
    user.require(Role::Operator, project_id, missing)
}

fn no_project(change: &NewChange) -> ApiError {
    ApiError::invalid_attribute(
        "project_code",
        format!("`{}` names no project", change.project),
    )
}

async fn resolve_targets_one_by_one(
    client: &impl GenericClient,
    change: &NewChange,
) -> Result<(), ApiError> {
    let (project_id, archived) = select_project_target(client, &change.project)
        .await
        .context("loading the project")?
        .ok_or_else(|| no_project(change))?;
    refuse_archived("project_code", "project", change.project.as_str(), archived)?;
    let archived = select_environment_target(client, project_id, &change.environment)
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
    )
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
            "SELECT id, archived FROM projects WHERE code = $1",
            &[&code.as_str()],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

async fn select_environment_target(
    client: &impl GenericClient,
    project_id: Uuid,
    code: &Code,
) -> Result<Option<bool>, tokio_postgres::Error> {
    let row = client
        .query_opt_cached(
            "SELECT archived FROM environments WHERE project_id = $1 AND code = $2",
            &[&project_id, &code.as_str()],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

async fn select_git_remote_target(
    client: &impl GenericClient,
    project_id: Uuid,
    name: &RemoteName,
) -> Result<Option<bool>, tokio_postgres::Error> {
    let row = client
        .query_opt_cached(
            "SELECT archived FROM git_remotes WHERE project_id = $1 AND name = $2",
            &[&project_id, &name.as_str()],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

//! `DELETE /api/changes/{id}`: cancels a change (DESIGN §3). One transaction under the change's
//! lock writes what the state machine decides — the change `cancelled`, every non-final step
//! `cancelled` (final ones keep their status), a log line and the audit events — and the messages
//! for what the API does not do itself: `stop_change_v1`, a broadcast on which the workers running
//! its steps kill their containers, and `start_next_changes_v1`, on which a planner starts what may
//! start in the environment it freed. The API never talks to Docker.

use actix_web::{HttpResponse, web};
use deadpool_postgres::GenericClient;
use gantry_shared::db::CachedStatements;
use gantry_shared::domain::ChangeStatus;
use gantry_shared::lifecycle::{ChangeEvent, StepEvent, change_transition};
use gantry_shared::logs::TxLog;
use gantry_shared::messages::Message;
use gantry_shared::outbox;
use gantry_shared::transitions::{self, TransitionError};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, Event};
use crate::auth::User;
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::paths;
use crate::state::AppState;

#[utoipa::path(
    delete,
    path = "/api/changes/{id}",
    tag = "changes",
    summary = "Cancel a change: running steps are stopped, the others cancelled.",
    params(crate::openapi::params::IdPath),
    responses(
        (status = 204, description = "Cancelled."),
        (status = 404, description = "No such change."),
        (status = 422, description = "The change is already final."),
    ),
)]
#[tracing::instrument(skip_all, fields(change = %path, user = user.name()), err(level = "info"))]
pub async fn cancel_change(
    state: web::Data<AppState>,
    user: User,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = paths::uuid(&path, "change")?;
    let mut client = state.client().await?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    let status = lock_change(&tx, id)
        .await
        .context("locking the change")?
        .ok_or_else(|| paths::not_found("change", &path))?;
    let effects = change_transition(status, ChangeEvent::Cancel)
        .map_err(TransitionError::Refused)
        .context("cancelling the change")?
        .effects;
    let log = TxLog::default();
    let (_, change) = transitions::change(&tx, &log, user.name(), id, ChangeEvent::Cancel)
        .await
        .context("cancelling the change")?
        .ok_or_else(|| ApiError::Conflict(format!("change {id} moved under its lock")))?;
    let steps = match effects.cancel_steps {
        true => transitions::steps_of_change(&tx, &log, user.name(), id, StepEvent::Cancel)
            .await
            .context("cancelling the steps")?,
        false => 0,
    };
    log.push(
        id,
        None,
        &[&format!(
            "Change cancelled by {}: {steps} unfinished step(s) cancelled",
            user.name()
        )],
    );
    let mut messages = Vec::new();
    if effects.stop_containers {
        messages.push(Message::StopChangeV1 { change_id: id });
    }
    if effects.release_environment {
        messages.push(Message::StartNextChangesV1 {
            environment_id: change.environment_id,
        });
    }
    for message in &messages {
        outbox::insert_message(&tx, message)
            .await
            .context("queueing the cancellation's messages")?;
    }
    log.flush(&tx).await.context("logging the cancellation")?;
    let event = Event {
        kind: "api:changes:cancel",
        actor: user.name(),
        target: format!("/changes/{id}"),
        payload: json!({ "from": status.as_str(), "steps_cancelled": steps }),
    };
    audit::commit(tx, &event).await?;
    log.notify(&state.notifier);
    state.outbox.notify();
    Ok(jsonapi::no_content())
}

/// Locks the change; its status, or `None` when there is no such change.
async fn lock_change(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<ChangeStatus>, tokio_postgres::Error> {
    let row = client
        .query_opt_cached(
            "SELECT status_code FROM changes WHERE id = $1 FOR NO KEY UPDATE",
            &[&id],
        )
        .await?;
    Ok(row.and_then(|r| r.get::<_, &str>(0).parse().ok()))
}

//! `POST /api/steps/{id}/continue`: a waiting step (a manifest child `wait`) succeeds (DESIGN §3).
//! Under its change's lock the step moves `waiting` → `success` as the state machine allows (422
//! otherwise), with a log line and the audit events, and a `roll_up_v1` message lets the results
//! role move its parent on: the next sibling starts, or the parent finishes.

use actix_web::{HttpResponse, web};
use deadpool_postgres::GenericClient;
use gantry_shared::db::CachedStatements;
use gantry_shared::domain::StepStatus;
use gantry_shared::lifecycle::StepEvent;
use gantry_shared::logs::TxLog;
use gantry_shared::messages::Message;
use gantry_shared::outbox;
use gantry_shared::transitions::{self, Record, StepRef};
use serde_json::json;
use uuid::Uuid;

use super::record::{STEP_COLUMNS, StepRecord};
use crate::audit::{self, Event};
use crate::auth::User;
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::paths;
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/api/steps/{id}/continue",
    tag = "steps",
    summary = "Resume a waiting step.",
    params(crate::openapi::params::IdPath),
    responses(
        (status = 200, description = "The step, resumed.", body = crate::jsonapi::Single<super::record::StepAttributes>),
        (status = 404, description = "No such step."),
        (status = 422, description = "The step is not waiting."),
    ),
)]
#[tracing::instrument(skip_all, fields(step = %path, user = user.name()), err(level = "info"))]
pub async fn continue_step(
    state: web::Data<AppState>,
    user: User,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = paths::uuid(&path, "step")?;
    let mut client = state.client().await?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    let (step, name) = lock_step(&tx, id)
        .await
        .context("locking the step")?
        .ok_or_else(|| paths::not_found("step", &path))?;
    let log = TxLog::default();
    let record = Record {
        command_finished: true,
        ..Record::default()
    };
    transitions::step(&tx, &log, user.name(), &step, StepEvent::Continue, record)
        .await
        .context("continuing the step")?;
    let line = format!("===> Step \"{name}\" continued by {}", user.name());
    log.push(step.change_id, Some(id), &[&line]);
    let message = Message::RollUpV1 {
        change_id: step.change_id,
        step_id: id,
    };
    outbox::insert_message(&tx, &message)
        .await
        .context("queueing the roll-up")?;
    log.flush(&tx).await.context("logging the continue")?;
    let event = Event {
        kind: "api:steps:continue",
        actor: user.name(),
        target: format!("/steps/{id}"),
        payload: json!({ "change_id": step.change_id }),
    };
    audit::commit(tx, &event).await?;
    log.notify(&state.notifier);
    state.outbox.notify();
    let sql = format!("SELECT {STEP_COLUMNS} FROM steps WHERE id = $1");
    let row = client
        .query_one(&sql, &[&id])
        .await
        .context("reading the step")?;
    Ok(jsonapi::ok(StepRecord::from_row(&row).into_resource()))
}

/// Locks the step's change, then the step (the order of every transaction that changes a step
/// tree); the step and its name, or `None` when there is no such step.
async fn lock_step(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<(StepRef, String)>, tokio_postgres::Error> {
    client
        .execute_cached(
            "SELECT 1 FROM changes WHERE id = (SELECT change_id FROM steps WHERE id = $1) FOR NO KEY UPDATE",
            &[&id],
        )
        .await?;
    let row = client
        .query_opt_cached(
            "SELECT change_id, status_code, attempt, name FROM steps WHERE id = $1 FOR NO KEY UPDATE",
            &[&id],
        )
        .await?;
    Ok(row.map(|r| {
        let step = StepRef {
            id,
            change_id: r.get(0),
            status: r.get::<_, &str>(1).parse().unwrap_or(StepStatus::Error),
            attempt: r.get(2),
        };
        (step, r.get(3))
    }))
}

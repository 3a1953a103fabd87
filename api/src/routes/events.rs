//! `GET /api/events`: the audit log, newest first, paged with `page[after]=<id>`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::Value;

use crate::error::{ApiError, Context};
use crate::jsonapi::{self, Resource};
use crate::query::{ListQuery, ListSpec};
use crate::state::AppState;

const SPEC: ListSpec = ListSpec::paged(50, 500);

/// JSON:API reserves `type` for the resource type, so the event's own type is `event_type`.
#[derive(Debug, Serialize)]
struct EventAttributes {
    event_type: String,
    actor: String,
    target: String,
    payload: Value,
    created_at: DateTime<Utc>,
}

struct EventRow {
    id: i64,
    attributes: EventAttributes,
}

#[tracing::instrument(skip_all, err(level = "info"))]
pub async fn list_events(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = ListQuery::parse(&req, &SPEC)?;
    let before = query.after_integer()?;
    let client = state.client().await?;
    let rows = select_events(&client, before, query.fetch_limit())
        .await
        .context("listing events")?;
    let page = query.page(rows, "/api/events", |e| e.id.to_string());
    Ok(jsonapi::list(page, |e| {
        Resource::unlinked("events", e.id.to_string(), e.attributes)
    }))
}

async fn select_events(
    client: &impl GenericClient,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<EventRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id, type, actor, target, payload, created_at FROM events \
             WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
            &[&before, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| EventRow {
            id: r.get(0),
            attributes: EventAttributes {
                event_type: r.get(1),
                actor: r.get(2),
                target: r.get(3),
                payload: r.get(4),
                created_at: r.get(5),
            },
        })
        .collect())
}

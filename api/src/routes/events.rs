//! `GET /api/events`: the audit log — one event per mutating request and per change or step
//! transition — newest first, filtered by type, target, actor and time, paged with
//! `page[after]=<id>`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use gantry_shared::db::CachedStatements;
use serde::Serialize;
use serde_json::Value;

use crate::error::{ApiError, Context};
use crate::jsonapi::{self, Resource};
use crate::query::{ListQuery, ListSpec, filter_timestamp};
use crate::state::AppState;
use utoipa::ToSchema;

const SPEC: ListSpec = ListSpec {
    filters: &[
        "event_type_eq",
        "event_type_in",
        "target_eq",
        "actor_eq",
        "created_at_gt",
        "created_at_lt",
    ],
    ..ListSpec::paged(50, 500)
};

crate::openapi::list_query!(EventListQuery, SPEC);

/// The filters of the audit log.
#[derive(Default)]
struct Filters {
    types: Option<Vec<String>>,
    target: Option<String>,
    actor: Option<String>,
    after: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
}

impl Filters {
    fn parse(filters: &[(String, String)]) -> Result<Self, ApiError> {
        let mut parsed = Filters::default();
        for (key, value) in filters {
            let parameter = format!("filter[{key}]");
            match key.as_str() {
                "event_type_eq" => parsed.types = Some(vec![value.clone()]),
                "event_type_in" => {
                    parsed.types = Some(value.split(',').map(str::to_owned).collect())
                }
                "target_eq" => parsed.target = Some(value.clone()),
                "actor_eq" => parsed.actor = Some(value.clone()),
                "created_at_gt" => parsed.after = Some(filter_timestamp(key, value)?),
                "created_at_lt" => parsed.before = Some(filter_timestamp(key, value)?),
                other => {
                    return Err(ApiError::bad_parameter(
                        &parameter,
                        format!("unknown filter `{other}`"),
                    ));
                }
            }
        }
        Ok(parsed)
    }
}

/// JSON:API reserves `type` for the resource type, so the event's own type is `event_type`.
#[derive(Debug, Serialize, ToSchema)]
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

#[utoipa::path(
    get,
    path = "/api/events",
    tag = "events",
    summary = "The audit events, newest first, filtered and paged.",
    params(EventListQuery),
    responses(
        (status = 200, description = "A page of events.", body = crate::jsonapi::List<EventAttributes>),
    ),
)]
#[tracing::instrument(skip_all, err(level = "info"))]
pub async fn list_events(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = ListQuery::parse(&req, &SPEC)?;
    let filters = Filters::parse(&query.filters)?;
    let before = query.after_integer()?;
    let client = state.client().await?;
    let rows = select_events(&client, &filters, before, query.fetch_limit())
        .await
        .context("listing events")?;
    let page = query.page(rows, "/api/events", |e| e.id.to_string());
    Ok(jsonapi::list(page, |e| {
        Resource::unlinked("events", e.id.to_string(), e.attributes)
    }))
}

async fn select_events(
    client: &impl GenericClient,
    filters: &Filters,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<EventRow>, tokio_postgres::Error> {
    // Through `events_type` or `events_target` when filtered so, else newest first by id.
    let rows = client
        .query_cached(
            "SELECT id, type, actor, target, payload, created_at FROM events \
             WHERE ($1::bigint IS NULL OR id < $1) AND ($3::text[] IS NULL OR type = ANY($3)) \
             AND ($4::text IS NULL OR target = $4) AND ($5::text IS NULL OR actor = $5) \
             AND ($6::timestamptz IS NULL OR created_at > $6) \
             AND ($7::timestamptz IS NULL OR created_at < $7) ORDER BY id DESC LIMIT $2",
            &[
                &before,
                &limit,
                &filters.types,
                &filters.target,
                &filters.actor,
                &filters.after,
                &filters.before,
            ],
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

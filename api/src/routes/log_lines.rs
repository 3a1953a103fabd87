//! `GET /api/changes/{id}/log_lines` and `GET /api/steps/{id}/log_lines`: log lines in the order
//! they were written (`seq`, numbered per change), filtered by step, stream and time, paged with
//! `page[after]=<seq of the last line seen>`; with `follow=true`, the same lines as Server-Sent
//! Events until the change (or step) is final, resumable with `Last-Event-ID` (see `follow`).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use gantry_shared::db::CachedStatements;
use uuid::Uuid;

use crate::error::{ApiError, Context};
use crate::follow::{self, LogLine, Scope};
use crate::jsonapi::{self, Resource};
use crate::query::{ListQuery, ListSpec, filter_timestamp};
use crate::routes::paths;
use crate::state::AppState;

const CHANGE_FILTERS: &[&str] = &["step_id_eq", "stream_eq", "logged_at_gt", "logged_at_lt"];
const STEP_FILTERS: &[&str] = &["stream_eq", "logged_at_gt", "logged_at_lt"];

const CHANGE_SPEC: ListSpec = ListSpec {
    filters: CHANGE_FILTERS,
    flags: &["follow"],
    ..ListSpec::paged(1000, 10_000)
};

crate::openapi::list_query!(ChangeLogQuery, CHANGE_SPEC);
const STEP_SPEC: ListSpec = ListSpec {
    filters: STEP_FILTERS,
    flags: &["follow"],
    ..ListSpec::paged(1000, 10_000)
};

crate::openapi::list_query!(StepLogQuery, STEP_SPEC);

/// The streams a line can come from.
const STREAMS: [&str; 3] = ["system", "stdout", "stderr"];

#[utoipa::path(
    get,
    path = "/api/changes/{id}/log_lines",
    tag = "log_lines",
    summary = "A change's log lines in order, paged; with `follow=true`, a Server-Sent Events stream of them until the change is final (resumable with `Last-Event-ID`).",
    params(crate::openapi::params::IdPath, ChangeLogQuery, ("Last-Event-ID" = Option<i64>, Header, description = "With `follow=true`: the last line number received; the stream resumes after it.")),
    responses(
        (status = 200, description = "A page of log lines, or with `follow=true` a stream of `log_line` events (`id` = the line number) and a final `end` event.", content(
            (crate::jsonapi::List<crate::follow::LogLine> = "application/vnd.api+json"),
            (crate::openapi::LogEvent = "text/event-stream"),
        )),
        (status = 404, description = "No such change."),
    ),
)]
#[tracing::instrument(skip_all, fields(change = %path), err(level = "info"))]
pub async fn list_change_log_lines(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = paths::uuid(&path, "change")?;
    let query = ListQuery::parse(&req, &CHANGE_SPEC)?;
    let client = state.client().await?;
    if !change_exists(&client, id)
        .await
        .context("looking up the change")?
    {
        return Err(paths::not_found("change", &path));
    }
    let filters = Filters::parse(&query)?;
    let scope = match filters.step_id {
        Some(step_id) => {
            let of_change = change_of_step(&client, step_id)
                .await
                .context("looking up the step")?;
            if of_change != Some(id) {
                return Err(ApiError::bad_parameter(
                    "filter[step_id_eq]",
                    format!("change {id} has no step {step_id}"),
                ));
            }
            Scope::Step {
                change_id: id,
                step_id,
            }
        }
        None => Scope::Change(id),
    };
    respond(
        &state,
        &req,
        &client,
        &query,
        &filters,
        scope,
        &format!("/api/changes/{id}/log_lines"),
    )
    .await
}

#[utoipa::path(
    get,
    path = "/api/steps/{id}/log_lines",
    tag = "log_lines",
    summary = "A step's log lines, as for a change.",
    params(crate::openapi::params::IdPath, StepLogQuery, ("Last-Event-ID" = Option<i64>, Header, description = "With `follow=true`: the last line number received; the stream resumes after it.")),
    responses(
        (status = 200, description = "A page of log lines, or with `follow=true` a stream of `log_line` events (`id` = the line number) and a final `end` event.", content(
            (crate::jsonapi::List<crate::follow::LogLine> = "application/vnd.api+json"),
            (crate::openapi::LogEvent = "text/event-stream"),
        )),
        (status = 404, description = "No such step."),
    ),
)]
#[tracing::instrument(skip_all, fields(step = %path), err(level = "info"))]
pub async fn list_step_log_lines(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = paths::uuid(&path, "step")?;
    let query = ListQuery::parse(&req, &STEP_SPEC)?;
    let client = state.client().await?;
    let change_id = change_of_step(&client, id)
        .await
        .context("looking up the step")?
        .ok_or_else(|| paths::not_found("step", &path))?;
    let filters = Filters::parse(&query)?;
    let scope = Scope::Step {
        change_id,
        step_id: id,
    };
    respond(
        &state,
        &req,
        &client,
        &query,
        &filters,
        scope,
        &format!("/api/steps/{id}/log_lines"),
    )
    .await
}

async fn respond(
    state: &AppState,
    req: &HttpRequest,
    client: &impl GenericClient,
    query: &ListQuery,
    filters: &Filters,
    scope: Scope,
    path: &str,
) -> Result<HttpResponse, ApiError> {
    if query.flag("follow") {
        if filters.stream.is_some() || filters.after.is_some() || filters.before.is_some() {
            return Err(ApiError::bad_parameter(
                "follow",
                "`follow=true` streams every line of the log; it takes no stream or time filter",
            ));
        }
        let after = resume_point(req, query)?;
        return Ok(follow::follow(state.logs.clone(), scope, after));
    }
    let after = query.after_integer()?.unwrap_or(0);
    let rows = select_log_lines(client, scope, filters, after, query.fetch_limit())
        .await
        .context("reading log lines")?;
    let page = query.page(rows, path, |line| line.seq.to_string());
    Ok(jsonapi::list(page, |l| {
        Resource::unlinked("log_lines", l.id.to_string(), l)
    }))
}

/// Where a follower resumes: after its `Last-Event-ID` (what an SSE client sends when it
/// reconnects), else after `page[after]`, else from the first line.
fn resume_point(req: &HttpRequest, query: &ListQuery) -> Result<i64, ApiError> {
    if let Some(value) = req.headers().get("Last-Event-ID") {
        return value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|v| *v >= 0)
            .ok_or_else(|| {
                ApiError::bad_header(
                    "Last-Event-ID",
                    "`Last-Event-ID` must be the id of an event this stream sent",
                )
            });
    }
    Ok(query.after_integer()?.unwrap_or(0))
}

/// The filters of a log list.
struct Filters {
    step_id: Option<Uuid>,
    stream: Option<String>,
    after: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
}

impl Filters {
    fn parse(query: &ListQuery) -> Result<Self, ApiError> {
        let mut filters = Filters {
            step_id: None,
            stream: None,
            after: None,
            before: None,
        };
        for (key, value) in &query.filters {
            let parameter = format!("filter[{key}]");
            match key.as_str() {
                "step_id_eq" => {
                    filters.step_id = Some(value.parse().map_err(|_| {
                        ApiError::bad_parameter(
                            &parameter,
                            format!("`{value}` in `{parameter}` is not a step id"),
                        )
                    })?)
                }
                "stream_eq" if STREAMS.contains(&value.as_str()) => {
                    filters.stream = Some(value.clone())
                }
                "stream_eq" => {
                    return Err(ApiError::bad_parameter(
                        &parameter,
                        format!(
                            "`{parameter}` must be one of {}, got `{value}`",
                            STREAMS.join(", ")
                        ),
                    ));
                }
                "logged_at_gt" => filters.after = Some(filter_timestamp(key, value)?),
                "logged_at_lt" => filters.before = Some(filter_timestamp(key, value)?),
                other => {
                    return Err(ApiError::bad_parameter(
                        &parameter,
                        format!("unknown filter `{other}`"),
                    ));
                }
            }
        }
        Ok(filters)
    }
}

async fn change_exists(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_one_cached(
            "SELECT EXISTS (SELECT 1 FROM changes WHERE id = $1)",
            &[&id],
        )
        .await?
        .get(0))
}

async fn change_of_step(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<Uuid>, tokio_postgres::Error> {
    Ok(client
        .query_opt_cached("SELECT change_id FROM steps WHERE id = $1", &[&id])
        .await?
        .map(|r| r.get(0)))
}

async fn select_log_lines(
    client: &impl GenericClient,
    scope: Scope,
    filters: &Filters,
    after: i64,
    limit: i64,
) -> Result<Vec<LogLine>, tokio_postgres::Error> {
    // Through the change's (change_id, seq) index, or the step's (step_id, seq).
    let (sql, id) = match scope {
        Scope::Change(id) => (
            "SELECT id, seq, step_id, logged_at, stream, text FROM log_lines \
             WHERE change_id = $1 AND seq > $2 AND ($4::text IS NULL OR stream = $4) \
             AND ($5::timestamptz IS NULL OR logged_at > $5) \
             AND ($6::timestamptz IS NULL OR logged_at < $6) ORDER BY seq LIMIT $3",
            id,
        ),
        Scope::Step { step_id, .. } => (
            "SELECT id, seq, step_id, logged_at, stream, text FROM log_lines \
             WHERE step_id = $1 AND seq > $2 AND ($4::text IS NULL OR stream = $4) \
             AND ($5::timestamptz IS NULL OR logged_at > $5) \
             AND ($6::timestamptz IS NULL OR logged_at < $6) ORDER BY seq LIMIT $3",
            step_id,
        ),
    };
    let rows = client
        .query_cached(
            sql,
            &[
                &id,
                &after,
                &limit,
                &filters.stream,
                &filters.after,
                &filters.before,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| LogLine {
            id: r.get(0),
            seq: r.get(1),
            step_id: r.get(2),
            logged_at: r.get(3),
            stream: r.get(4),
            text: r.get(5),
        })
        .collect())
}

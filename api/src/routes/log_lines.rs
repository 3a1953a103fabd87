//! `GET /api/changes/{id}/log_lines` and `GET /api/steps/{id}/log_lines`: log lines in the order
//! they were written, paged with `page[after]=<id of the last line seen>` (also how a client
//! polls for new lines).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use uuid::Uuid;

use crate::error::{ApiError, Context};
use crate::jsonapi::{self, Resource};
use crate::query::{ListQuery, ListSpec};
use crate::routes::paths;
use crate::state::AppState;

const SPEC: ListSpec = ListSpec::paged(1000, 10_000);

#[derive(Debug, Serialize)]
struct LogLineAttributes {
    step_id: Option<Uuid>,
    logged_at: DateTime<Utc>,
    stream: String,
    text: String,
}

struct LogLine {
    id: i64,
    attributes: LogLineAttributes,
}

/// Whose lines to read.
#[derive(Clone, Copy)]
enum Scope {
    Change(Uuid),
    Step(Uuid),
}

#[tracing::instrument(skip_all, fields(change = %path), err(level = "info"))]
pub async fn list_change_log_lines(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = paths::uuid(&path, "change")?;
    list(
        &state,
        &req,
        Scope::Change(id),
        &format!("/api/changes/{id}/log_lines"),
    )
    .await
}

#[tracing::instrument(skip_all, fields(step = %path), err(level = "info"))]
pub async fn list_step_log_lines(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = paths::uuid(&path, "step")?;
    list(
        &state,
        &req,
        Scope::Step(id),
        &format!("/api/steps/{id}/log_lines"),
    )
    .await
}

async fn list(
    state: &AppState,
    req: &HttpRequest,
    scope: Scope,
    path: &str,
) -> Result<HttpResponse, ApiError> {
    let query = ListQuery::parse(req, &SPEC)?;
    let after = query.after_integer()?.unwrap_or(0);
    let client = state.client().await?;
    if !owner_exists(&client, scope)
        .await
        .context("looking up the log's owner")?
    {
        return Err(match scope {
            Scope::Change(id) => paths::not_found("change", &id.to_string()),
            Scope::Step(id) => paths::not_found("step", &id.to_string()),
        });
    }
    let rows = select_log_lines(&client, scope, after, query.fetch_limit())
        .await
        .context("reading log lines")?;
    let page = query.page(rows, path, |line| line.id.to_string());
    Ok(jsonapi::list(page, |l| {
        Resource::unlinked("log_lines", l.id.to_string(), l.attributes)
    }))
}

async fn owner_exists(
    client: &impl GenericClient,
    scope: Scope,
) -> Result<bool, tokio_postgres::Error> {
    let (sql, id) = match scope {
        Scope::Change(id) => ("SELECT EXISTS (SELECT 1 FROM changes WHERE id = $1)", id),
        Scope::Step(id) => ("SELECT EXISTS (SELECT 1 FROM steps WHERE id = $1)", id),
    };
    Ok(client.query_one(sql, &[&id]).await?.get(0))
}

async fn select_log_lines(
    client: &impl GenericClient,
    scope: Scope,
    after: i64,
    limit: i64,
) -> Result<Vec<LogLine>, tokio_postgres::Error> {
    let (sql, id) = match scope {
        Scope::Change(id) => (
            "SELECT id, step_id, logged_at, stream, text FROM log_lines \
             WHERE change_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            id,
        ),
        Scope::Step(id) => (
            "SELECT id, step_id, logged_at, stream, text FROM log_lines \
             WHERE step_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            id,
        ),
    };
    let rows = client.query(sql, &[&id, &after, &limit]).await?;
    Ok(rows
        .iter()
        .map(|r| LogLine {
            id: r.get(0),
            attributes: LogLineAttributes {
                step_id: r.get(1),
                logged_at: r.get(2),
                stream: r.get(3),
                text: r.get(4),
            },
        })
        .collect())
}

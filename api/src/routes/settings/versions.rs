//! `GET …/settings/versions`: the history of an owner's settings, newest first, with the
//! documents (they hold no secret).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::owner::Owner;
use crate::error::{ApiError, Context};
use crate::jsonapi::{self, Resource};
use crate::query::{ListQuery, ListSpec};
use crate::state::AppState;
use utoipa::ToSchema;

const SPEC: ListSpec = ListSpec::paged(50, 500);

crate::openapi::list_query!(SettingsVersionListQuery, SPEC);

#[derive(Debug, Serialize, ToSchema)]
struct SettingsVersion {
    data: Value,
    version: i64,
    created_at: DateTime<Utc>,
    created_by: String,
}

#[utoipa::path(
    get,
    path = "/api/projects/{project}/settings/versions",
    tag = "settings",
    summary = "The versions of a project's settings, newest first.",
    params(crate::openapi::params::ProjectPath, SettingsVersionListQuery),
    responses(
        (status = 200, description = "A page of versions.", body = crate::jsonapi::List<SettingsVersion>),
        (status = 404, description = "No such project."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path), err(level = "info"))]
pub async fn list_project_settings_versions(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    list(&state, Owner::project(&path)?, &req).await
}

#[utoipa::path(
    get,
    path = "/api/projects/{project}/environments/{environment}/settings/versions",
    tag = "settings",
    summary = "The versions of an environment's settings, newest first.",
    params(crate::openapi::params::EnvironmentPath, SettingsVersionListQuery),
    responses(
        (status = 200, description = "A page of versions.", body = crate::jsonapi::List<SettingsVersion>),
        (status = 404, description = "No such project or environment."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path.0, environment = %path.1), err(level = "info"))]
pub async fn list_environment_settings_versions(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    list(&state, Owner::environment(&path.0, &path.1)?, &req).await
}

async fn list(state: &AppState, owner: Owner, req: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let query = ListQuery::parse(req, &SPEC)?;
    let before = query.after_integer()?;
    let client = state.client().await?;
    let current = owner.load(&client, false).await?;
    let rows = select_versions(&client, &owner, current.id, before, query.fetch_limit())
        .await
        .context("listing settings versions")?;
    let path = format!("/api{}/settings/versions", owner.path());
    let page = query.page(rows, &path, |v| v.version.to_string());
    let id = owner.path().trim_start_matches("/projects/").to_owned();
    Ok(jsonapi::list(page, |v| {
        Resource::unlinked("settings_versions", format!("{id}:{}", v.version), v)
    }))
}

async fn select_versions(
    client: &impl GenericClient,
    owner: &Owner,
    id: Uuid,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<SettingsVersion>, tokio_postgres::Error> {
    let column = match owner {
        Owner::Project(_) => "project_id",
        Owner::Environment(..) => "environment_id",
    };
    let sql = format!(
        "SELECT document, version, created_at, created_by FROM settings_versions \
         WHERE {column} = $1 AND ($2::bigint IS NULL OR version < $2) ORDER BY version DESC LIMIT $3"
    );
    let rows = client.query(&sql, &[&id, &before, &limit]).await?;
    Ok(rows
        .iter()
        .map(|r| SettingsVersion {
            data: r.get(0),
            version: r.get(1),
            created_at: r.get(2),
            created_by: r.get(3),
        })
        .collect())
}

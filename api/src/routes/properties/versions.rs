//! `GET /api/properties/{id}/versions`: the history, newest first, without the documents.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use uuid::Uuid;

use super::record::select_properties_info;
use crate::error::{ApiError, Context};
use crate::jsonapi::{self, Identifier, Resource};
use crate::query::{ListQuery, ListSpec};
use crate::routes::paths;
use crate::state::AppState;
use utoipa::ToSchema;

const SPEC: ListSpec = ListSpec::paged(50, 500);

crate::openapi::list_query!(VersionListQuery, SPEC);

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionSummary {
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub step_id: Option<Uuid>,
}

/// The resource of one version of properties `id`, with the given attributes.
pub(super) fn version_resource<A>(id: Uuid, version: i64, attributes: A) -> Resource<A> {
    let link = format!("/api/properties/{id}/versions/{version}");
    Resource::new(
        "properties_versions",
        format!("{id}:{version}"),
        attributes,
        link,
    )
    .related(
        "properties",
        Some(Identifier::new("properties", id.to_string())),
        Some(format!("/api/properties/{id}")),
    )
}

#[utoipa::path(
    get,
    path = "/api/properties/{id}/versions",
    tag = "properties",
    summary = "The versions of a properties document, newest first.",
    params(crate::openapi::params::IdPath, VersionListQuery),
    responses(
        (status = 200, description = "A page of versions.", body = crate::jsonapi::List<VersionSummary>),
        (status = 404, description = "No such properties."),
    ),
)]
#[tracing::instrument(skip_all, fields(properties = %path), err(level = "info"))]
pub async fn list_versions(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = paths::uuid(&path, "properties")?;
    let query = ListQuery::parse(&req, &SPEC)?;
    let after = query.after_integer()?;
    let client = state.client().await?;
    select_properties_info(&client, id)
        .await
        .context("loading the properties")?
        .ok_or_else(|| paths::not_found("properties", &path))?;
    let rows = select_versions(&client, id, after, query.fetch_limit())
        .await
        .context("listing versions")?;
    let page = query.page(rows, &format!("/api/properties/{id}/versions"), |v| {
        v.version.to_string()
    });
    Ok(jsonapi::list(page, |v| version_resource(id, v.version, v)))
}

async fn select_versions(
    client: &impl GenericClient,
    id: Uuid,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<VersionSummary>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT version, created_at, created_by, step_id FROM properties_versions \
             WHERE properties_id = $1 AND ($2::bigint IS NULL OR version < $2) ORDER BY version DESC LIMIT $3",
            &[&id, &before, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| VersionSummary {
            version: r.get(0),
            created_at: r.get(1),
            created_by: r.get(2),
            step_id: r.get(3),
        })
        .collect())
}

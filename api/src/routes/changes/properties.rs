//! `GET /api/changes/{id}/properties`: the point-in-time copy of the project and environment
//! properties a change used — the versions recorded on the change when its first step started,
//! read from the immutable history. Before that (or if no step ever started) both are `null` and
//! `meta.detail` says why.

use actix_web::{HttpResponse, web};
use deadpool_postgres::GenericClient;
use gantry_shared::crypto::Cipher;
use gantry_shared::db::CachedStatements;
use gantry_shared::store;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::error::{ApiError, Context};
use crate::jsonapi::{self, Identifier, Resource};
use crate::routes::paths;
use crate::state::AppState;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangePropertiesAttributes {
    pub project: UsedProperties,
    pub environment: UsedProperties,
}

/// One level's properties as the change used them; `version` and `data` are `null` until then.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsedProperties {
    pub properties_id: Uuid,
    pub version: Option<i64>,
    pub data: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
struct ChangePropertiesMeta {
    /// Whether the change has started a step, i.e. fixed the versions it uses.
    started: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/changes/{id}/properties",
    tag = "changes",
    summary = "The properties versions a change uses.",
    params(crate::openapi::params::IdPath),
    responses(
        (status = 200, description = "The project and environment properties the change runs with.", body = crate::jsonapi::WithMeta<ChangePropertiesAttributes, ChangePropertiesMeta>),
        (status = 404, description = "No such change."),
    ),
)]
#[tracing::instrument(skip_all, fields(change = %path), err(level = "info"))]
pub async fn show_change_properties(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = paths::uuid(&path, "change")?;
    let client = state.client().await?;
    let used = select_used_versions(&client, id)
        .await
        .context("loading the change")?
        .ok_or_else(|| paths::not_found("change", &path))?;
    let project = read_level(&client, &state.cipher, used.project).await?;
    let environment = read_level(&client, &state.cipher, used.environment).await?;
    let started = project.version.is_some() && environment.version.is_some();
    let detail = (!started).then(|| match used.finished {
        true => format!("change {id} ended without starting a step, so it used no properties"),
        false => format!(
            "change {id} has not started a step yet; the properties versions it uses are \
             recorded when its first step starts"
        ),
    });
    let attributes = ChangePropertiesAttributes {
        project,
        environment,
    };
    let resource = Resource::new(
        "change_properties",
        id.to_string(),
        attributes,
        format!("/api/changes/{id}/properties"),
    )
    .related(
        "change",
        Some(Identifier::new("changes", id.to_string())),
        Some(format!("/api/changes/{id}")),
    );
    Ok(jsonapi::ok_with_meta(
        resource,
        ChangePropertiesMeta { started, detail },
    ))
}

/// A level's properties id and the version the change recorded, if any.
type Level = (Uuid, Option<i64>);

async fn read_level(
    client: &impl GenericClient,
    cipher: &Cipher,
    (properties_id, version): Level,
) -> Result<UsedProperties, ApiError> {
    let data = match version {
        None => None,
        Some(version) => {
            let (document, ..) =
                store::load_version(client, cipher, properties_id, version)
                    .await
                    .context("loading the properties version the change used")?
                    .ok_or_else(|| {
                        ApiError::Internal(anyhow::anyhow!(
                            "version {version} of properties {properties_id}, used by a change, is missing"
                        ))
                    })?;
            Some(document)
        }
    };
    Ok(UsedProperties {
        properties_id,
        version,
        data,
    })
}

struct UsedVersions {
    project: Level,
    environment: Level,
    finished: bool,
}

async fn select_used_versions(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<UsedVersions>, tokio_postgres::Error> {
    let row = client
        .query_opt_cached(
            "SELECT pp.id, c.project_properties_version, ep.id, c.environment_properties_version, \
             c.finished_at IS NOT NULL \
             FROM changes c JOIN properties pp ON pp.project_id = c.project_id \
             JOIN properties ep ON ep.environment_id = c.environment_id WHERE c.id = $1",
            &[&id],
        )
        .await?;
    Ok(row.map(|row| UsedVersions {
        project: (row.get(0), row.get(1)),
        environment: (row.get(2), row.get(3)),
        finished: row.get(4),
    }))
}

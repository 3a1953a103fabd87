//! `POST /api/tokens`: a new token, shown once.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use gantry_shared::domain::Code;
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::record::{TOKEN_SELECT, TokenRecord, require_manager};
use crate::audit::{self, Event};
use crate::auth::{Role, User, token_digest};
use crate::body::JsonApiBody;
use crate::domain::Name;
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::projects;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenAttributes {
    /// Who the token is for: the `actor` of what it does.
    user_name: String,
    role: Role,
    /// The one project the token is for; absent or `null`: every project.
    #[schema(pattern = "^[a-z0-9_]{1,50}$")]
    project_code: Option<String>,
    /// When the token stops working; absent: never (until revoked).
    expires_at: Option<DateTime<Utc>>,
}

#[utoipa::path(
    post,
    path = "/api/tokens",
    tag = "tokens",
    summary = "Make an API token with a role on one project or on every project; the token is in this response only.",
    request_body = crate::body::RequestDocument<CreateTokenAttributes>,
    responses(
        (status = 201, description = "The new token, with `token` set (shown once).", body = crate::jsonapi::Single<super::record::TokenAttributes>),
        (status = 403, description = "The caller may not manage tokens of that scope."),
        (status = 422, description = "No such project, or an expiry in the past."),
    ),
)]
#[tracing::instrument(skip_all, fields(user = user.name()), err(level = "info"))]
pub async fn create_token(
    state: web::Data<AppState>,
    user: User,
    JsonApiBody(attributes): JsonApiBody<CreateTokenAttributes>,
) -> Result<HttpResponse, ApiError> {
    let name = Name::parse(attributes.user_name)
        .map_err(|e| ApiError::invalid_attribute("user_name", e))?;
    if attributes.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(ApiError::invalid_attribute(
            "expires_at",
            "must be in the future",
        ));
    }
    let mut client = state.client().await?;
    let project = match &attributes.project_code {
        Some(code) => Some(project_id(&client, &user, code).await?),
        None => None,
    };
    require_manager(&user, project)?;
    let token = new_token();
    let id = Uuid::now_v7();
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    let row = tx
        .query_one(
            "INSERT INTO api_tokens (id, user_name, token_digest, role, project_id, created_by, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &id,
                &name.as_str(),
                &token_digest(&token),
                &attributes.role.as_str(),
                &project,
                &user.name(),
                &attributes.expires_at,
            ],
        )
        .await
        .context("inserting the token")?;
    let created = select_token(&tx, row.get(0)).await?;
    let event = Event {
        kind: "api:tokens:create",
        actor: user.name(),
        target: format!("/tokens/{id}"),
        payload: json!({
            "user_name": name.as_str(),
            "role": attributes.role,
            "project_code": attributes.project_code,
        }),
    };
    audit::commit(tx, &event).await?;
    let mut created = created;
    created.attributes.token = Some(token);
    Ok(jsonapi::created(created.into_resource()))
}

/// 256 random bits from the operating system, hex-encoded after a recognisable prefix.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("gty_{}", hex::encode(bytes))
}

/// The project `code` names, if the caller can see it (one it cannot is answered like a missing
/// one).
async fn project_id(
    client: &impl GenericClient,
    user: &User,
    code: &str,
) -> Result<Uuid, ApiError> {
    let missing =
        || ApiError::invalid_attribute("project_code", format!("`{code}` names no project"));
    let code = Code::parse(code).map_err(|_| missing())?;
    projects::select_project_id(client, &code)
        .await
        .context("loading the project")?
        .filter(|id| user.sees(*id))
        .ok_or_else(missing)
}

async fn select_token(client: &impl GenericClient, id: Uuid) -> Result<TokenRecord, ApiError> {
    let sql = format!("{TOKEN_SELECT} WHERE t.id = $1");
    let row = client
        .query_one(&sql, &[&id])
        .await
        .context("reading the token")?;
    Ok(TokenRecord::from_row(&row))
}

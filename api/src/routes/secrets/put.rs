//! `PUT /api/secrets/{name}`: sets the whole key/value map, creating the secret (201) or
//! replacing its map (200). A refused name or map stores nothing.

use actix_web::{HttpResponse, web};
use gantry_shared::secrets::{self, InvalidSecret};
use serde::Deserialize;
use serde_json::json;

use super::record::{SecretAttributes, secret_resource};
use crate::audit::{self, Event};
use crate::auth::User;
use crate::body::{JsonApiBody, UniqueKeys, pointer_token};
use crate::error::{ApiError, Context, ErrorSource, Problem};
use crate::jsonapi;
use crate::state::AppState;
use utoipa::ToSchema;

const DATA_POINTER: &str = "/data/attributes/data";

/// The body's attributes; its `Debug` leaves out the values it carries.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSecretAttributes {
    /// Variable names and their values.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    data: UniqueKeys,
}

impl std::fmt::Debug for PutSecretAttributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutSecretAttributes")
            .finish_non_exhaustive()
    }
}

#[utoipa::path(
    put,
    path = "/api/secrets/{name}",
    tag = "secrets",
    summary = "Create or replace a secret's variables (encrypted at rest).",
    params(crate::openapi::params::SecretPath),
    request_body = crate::body::RequestDocument<PutSecretAttributes>,
    responses(
        (status = 200, description = "The replaced secret.", body = crate::jsonapi::Single<super::record::SecretAttributes>),
        (status = 201, description = "The new secret.", body = crate::jsonapi::Single<super::record::SecretAttributes>),
    ),
)]
#[tracing::instrument(skip_all, fields(secret = %path, user = user.name()), err(level = "info"))]
pub async fn put_secret(
    state: web::Data<AppState>,
    user: User,
    path: web::Path<String>,
    JsonApiBody(attributes): JsonApiBody<PutSecretAttributes>,
) -> Result<HttpResponse, ApiError> {
    let name = path.as_str();
    secrets::validate_name(name).map_err(refused)?;
    let values = secrets::parse_values(&attributes.data.0).map_err(refused)?;
    let mut client = state.client().await?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    let stored = secrets::put(&tx, &state.cipher, name, &values)
        .await
        .context("storing the secret")?;
    let keys: Vec<String> = values.into_keys().collect();
    let event = Event {
        kind: if stored.created {
            "api:secrets:create"
        } else {
            "api:secrets:update"
        },
        actor: user.name(),
        target: format!("/secrets/{name}"),
        payload: json!({ "name": name, "keys": keys }),
    };
    audit::commit(tx, &event).await?;
    let resource = secret_resource(SecretAttributes {
        name: name.to_owned(),
        keys,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    });
    Ok(match stored.created {
        true => jsonapi::created(resource),
        false => jsonapi::ok(resource),
    })
}

/// A 422 pointing at what to fix: the key of a bad entry, else the whole map (or, for the name,
/// nowhere in the body: it is in the path).
fn refused(error: InvalidSecret) -> ApiError {
    let pointer = match &error {
        InvalidSecret::Name(_) => None,
        InvalidSecret::Key(key)
        | InvalidSecret::Value(key)
        | InvalidSecret::Nul(key)
        | InvalidSecret::TooShort(key) => Some(format!("{DATA_POINTER}/{}", pointer_token(key))),
        InvalidSecret::NotAnObject | InvalidSecret::TooLarge { .. } => {
            Some(DATA_POINTER.to_owned())
        }
    };
    ApiError::Unprocessable(Problem {
        detail: error.to_string(),
        source: pointer.map(ErrorSource::Pointer),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pointer_of(data: serde_json::Value) -> Option<ErrorSource> {
        match secrets::parse_values(&data).map_err(refused) {
            Err(ApiError::Unprocessable(problem)) => problem.source,
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn a_refused_map_points_at_the_offending_key_or_the_whole_map() {
        let at = |p: &str| Some(ErrorSource::Pointer(p.to_owned()));
        assert_eq!(
            pointer_of(json!({ "OK": "x-value", "a/b": "y" })),
            at("/data/attributes/data/a~1b")
        );
        assert_eq!(
            pointer_of(json!({ "PORT": 5432 })),
            at("/data/attributes/data/PORT")
        );
        assert_eq!(pointer_of(json!(["A"])), at("/data/attributes/data"));
    }
}

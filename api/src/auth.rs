//! Bearer-token authentication of every `/api` route. The configured admin token authenticates as
//! `admin`; other tokens are looked up by their SHA-256 digest in `api_tokens` (never stored in
//! clear) and must be neither revoked nor expired. The user's name becomes `created_by`/`actor`.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use deadpool_postgres::GenericClient;
use gantry_shared::db::CachedStatements;
use gantry_shared::store::Author;
use sha2::{Digest, Sha256};
use std::future::{Ready, ready};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, Context};
use crate::state::AppState;

/// The name of the user the configured admin token authenticates.
pub const ADMIN_USER: &str = "admin";

/// The authenticated user of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User(String);

impl User {
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The user as the author of a properties version.
    pub fn author(&self) -> Author<'_> {
        Author {
            name: &self.0,
            step_id: None,
        }
    }
}

/// Middleware: authenticates the request or answers 401; handlers then extract [`User`].
pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("the application state is not configured"))
        })?;
    let user = authenticate(&state, req.headers()).await?;
    tracing::Span::current().record("user", user.name());
    req.extensions_mut().insert(user);
    next.call(req).await
}

#[tracing::instrument(skip_all, err(level = "info"))]
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<User, ApiError> {
    let token = bearer_token(headers).ok_or(ApiError::Unauthorized)?;
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if bool::from(digest.ct_eq(&state.admin_token_digest)) {
        return Ok(User(ADMIN_USER.to_owned()));
    }
    let client = state.client().await?;
    select_token_user(&client, &hex::encode(digest))
        .await
        .context("looking up an API token")?
        .map(User)
        .ok_or(ApiError::Unauthorized)
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

async fn select_token_user(
    client: &impl GenericClient,
    digest: &str,
) -> Result<Option<String>, tokio_postgres::Error> {
    let row = client
        .query_opt_cached(
            "SELECT user_name FROM api_tokens WHERE token_digest = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > now())",
            &[&digest],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

impl FromRequest for User {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<User>()
                .cloned()
                .ok_or(ApiError::Unauthorized),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_required() {
        assert_eq!(bearer_token(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("Basic abc")), None);
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}

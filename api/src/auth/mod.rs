//! Bearer-token authentication and authorisation of every `/api` route. The configured admin
//! token authenticates as `admin` with the admin role on every project; other tokens are looked
//! up by their SHA-256 digest in `api_tokens` (never stored in clear), must be neither revoked nor
//! expired, and carry a role on one project or on all ([`principal`]). What each route needs is
//! declared in the router's table and checked here before the handler runs ([`access`]).
//! Failed authentications are rate-limited per address ([`limiter`]); every refused request
//! (401, 403, 404 of a project the caller may not see, 429) is recorded as an `api:refused`
//! event. The user's name becomes `created_by`/`actor`.

pub mod access;
mod limiter;
pub mod principal;

use std::future::{Ready, ready};
use std::net::IpAddr;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError, web};
use deadpool_postgres::GenericClient;
use gantry_shared::db::CachedStatements;
use ipnet::IpNet;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

pub use access::{Access, AccessTable, Via};
pub use limiter::FailureLimiter;
pub use principal::{Grant, Role, User};

use crate::audit;
use crate::error::{ApiError, Context};
use crate::state::AppState;

/// The name of the user the configured admin token authenticates.
pub const ADMIN_USER: &str = "admin";

/// Middleware: authenticates and authorises the request or answers with the refusal; handlers
/// then extract [`User`].
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
    let (user, admitted) = admit(&state, &req).await;
    match admitted {
        Ok(()) => {
            let user = user.expect("an admitted request has a user");
            tracing::Span::current().record("user", user.name());
            req.extensions_mut().insert(user);
            next.call(req).await
        }
        // Only a window's first 429 is recorded: the rest of a flood writes nothing.
        Err(Refusal::Again(refusal)) => Err(refusal.into()),
        Err(Refusal::Record(refusal)) => {
            record_refusal(&state, &req, user.as_ref(), &refusal).await;
            Err(refusal.into())
        }
    }
}

/// A refused request: to record as an `api:refused` event, or one of a flood already recorded.
enum Refusal {
    Record(ApiError),
    Again(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal::Record(error)
    }
}

/// The caller (when the token is good) and whether the route lets them in.
async fn admit(state: &AppState, req: &ServiceRequest) -> (Option<User>, Result<(), Refusal>) {
    let address = client_address(state, req);
    if let Some(blocked) = address.and_then(|a| state.auth_failures.blocked(a)) {
        let refusal = ApiError::TooManyRequests {
            retry_after: blocked.retry_after,
        };
        return match blocked.first {
            true => (None, Err(Refusal::Record(refusal))),
            false => (None, Err(Refusal::Again(refusal))),
        };
    }
    let user = match authenticate(state, req.headers()).await {
        Ok(user) => user,
        Err(error) => {
            if let (ApiError::Unauthorized, Some(address)) = (&error, address) {
                state.auth_failures.record(address);
            }
            return (None, Err(error.into()));
        }
    };
    // An admin of every project passes every route's check: no lookup.
    if user.is_server(Role::Admin) {
        return (Some(user), Ok(()));
    }
    let access = req
        .app_data::<web::Data<AccessTable>>()
        .zip(req.match_pattern())
        .and_then(|(table, pattern)| Some((table.get(req.method(), &pattern)?, pattern)));
    let checked = match access {
        Some((access, pattern)) => access::check(state, &user, access, &pattern, req.path()).await,
        // No route matched: the handlers answer 404 or 405 themselves.
        None => Ok(()),
    };
    (Some(user), checked.map_err(Refusal::from))
}

fn client_address(state: &AppState, req: &ServiceRequest) -> Option<IpAddr> {
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    address_behind_proxies(
        req.peer_addr().map(|a| a.ip()),
        &forwarded.join(","),
        &state.api.trusted_proxies,
    )
}

/// The client's address: the connection's peer, unless that is a trusted proxy; then the
/// rightmost address of `X-Forwarded-For` that is not a trusted proxy (the entries left of it
/// were written by the client itself and may say anything). A malformed entry ends the walk at
/// the last address read.
fn address_behind_proxies(
    peer: Option<IpAddr>,
    forwarded_for: &str,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let is_trusted = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
    let mut client = peer?;
    if !is_trusted(&client) {
        return Some(client);
    }
    for entry in forwarded_for.rsplit(',').filter(|e| !e.trim().is_empty()) {
        let Ok(address) = entry.trim().parse::<IpAddr>() else {
            break;
        };
        client = address;
        if !is_trusted(&client) {
            break;
        }
    }
    Some(client)
}

/// The `api:refused` event of a refused request (best effort: a failure is logged, the refusal
/// still answered).
async fn record_refusal(
    state: &AppState,
    req: &ServiceRequest,
    user: Option<&User>,
    refusal: &ApiError,
) {
    let status = refusal.status_code().as_u16();
    if ![401, 403, 404, 429].contains(&status) {
        return;
    }
    let actor = user.map_or("anonymous", User::name);
    let payload = json!({
        "method": req.method().as_str(),
        "status": status,
        "address": client_address(state, req).map(|a| a.to_string()),
    });
    let event = audit::Event {
        kind: "api:refused",
        actor,
        target: req.path().to_owned(),
        payload,
    };
    let recorded = async {
        let client = state.client().await?;
        audit::record(&client, &event).await
    };
    if let Err(error) = recorded.await {
        tracing::warn!(%error, "a refused request was not recorded");
    }
}

#[tracing::instrument(skip_all, err(level = "info"))]
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<User, ApiError> {
    let token = bearer_token(headers).ok_or(ApiError::Unauthorized)?;
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if bool::from(digest.ct_eq(&state.admin_token_digest)) {
        return Ok(admin());
    }
    let client = state.client().await?;
    select_token_user(&client, &hex::encode(digest))
        .await
        .context("looking up an API token")?
        .ok_or(ApiError::Unauthorized)
}

/// The user of the configured admin token.
pub fn admin() -> User {
    User::new(
        ADMIN_USER.to_owned(),
        Grant {
            role: Role::Admin,
            project: None,
        },
    )
}

/// The SHA-256 digest, in hex, under which a token is stored.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
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
) -> Result<Option<User>, tokio_postgres::Error> {
    let row = client
        .query_opt_cached(
            "SELECT user_name, role, project_id FROM api_tokens WHERE token_digest = $1 \
             AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
            &[&digest],
        )
        .await?;
    Ok(row.and_then(|r| {
        let role = Role::parse(r.get(1))?;
        let project: Option<Uuid> = r.get(2);
        Some(User::new(r.get(0), Grant { role, project }))
    }))
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

    #[test]
    fn behind_trusted_proxies_the_client_is_the_nearest_untrusted_forwarded_address() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let client = |peer: &str, header: &str| address_behind_proxies(ip(peer), header, &trusted);
        // A peer that is no proxy is the client, whatever it claims.
        assert_eq!(client("192.0.2.7", "198.51.100.1"), ip("192.0.2.7"));
        // Through one proxy, and through two (the client's own entries left of them ignored).
        assert_eq!(client("10.1.2.3", "198.51.100.1"), ip("198.51.100.1"));
        assert_eq!(
            client("10.1.2.3", "203.0.113.66, 198.51.100.1, 10.9.9.9"),
            ip("198.51.100.1")
        );
        assert_eq!(client("::1", "198.51.100.1"), ip("198.51.100.1"));
        // No header, a malformed entry, only proxies: the last address read.
        assert_eq!(client("10.1.2.3", ""), ip("10.1.2.3"));
        assert_eq!(client("10.1.2.3", "nonsense, 10.4.4.4"), ip("10.4.4.4"));
        assert_eq!(client("10.1.2.3", "10.4.4.4"), ip("10.4.4.4"));
        // Without trusted proxies the header is never read.
        assert_eq!(
            address_behind_proxies(ip("10.1.2.3"), "198.51.100.1", &[]),
            ip("10.1.2.3")
        );
    }
}

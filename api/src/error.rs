//! The one error type of the HTTP boundary and its one `ResponseError` impl: JSON:API error
//! documents (`{"errors":[{"status","title","detail","source"}]}`). Client errors say exactly what
//! to fix; every 5xx body is opaque and its cause chain goes to the log instead, except that
//! stored data which no longer decrypts is named as such (never shown), so an operator learns at
//! once that a row was tampered with or a key is missing instead of chasing "internal error".

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use gantry_shared::crypto::CryptoError;
use gantry_shared::db::{self, DbErrorKind};
use gantry_shared::secrets::SecretError;
use gantry_shared::store::StoreError;
use gantry_shared::transitions::TransitionError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::jsonapi::MEDIA_TYPE;

/// Where in the request a client error is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErrorSource {
    /// A JSON pointer into the request body, e.g. `/data/attributes/code`.
    Pointer(String),
    /// A query parameter, e.g. `filter[status_code_eq]`.
    Parameter(String),
    /// A request header, e.g. `If-Match`.
    Header(String),
}

/// A client error's explanation and, when known, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub detail: String,
    pub source: Option<ErrorSource>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(Problem),
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(Problem),
    #[error("too many failed authentications from this address; retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("the database is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Stored ciphertext that does not decrypt: the detail says what and why (never the data),
    /// the cause chain goes to the log.
    #[error("{detail}")]
    Undecryptable {
        detail: String,
        #[source]
        cause: anyhow::Error,
    },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest(Problem {
            detail: detail.into(),
            source: None,
        })
    }

    pub fn bad_parameter(parameter: &str, detail: impl Into<String>) -> Self {
        Self::BadRequest(Problem {
            detail: detail.into(),
            source: Some(ErrorSource::Parameter(parameter.into())),
        })
    }

    pub fn bad_header(name: &str, detail: impl Into<String>) -> Self {
        Self::BadRequest(Problem {
            detail: detail.into(),
            source: Some(ErrorSource::Header(name.into())),
        })
    }

    /// A 422 pointing into the request body.
    pub fn invalid(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Unprocessable(Problem {
            detail: detail.into(),
            source: Some(ErrorSource::Pointer(pointer.into())),
        })
    }

    /// A 422 about one attribute: `"<name> <reason>"` pointing at `/data/attributes/<name>`.
    pub fn invalid_attribute(name: &str, reason: impl std::fmt::Display) -> Self {
        Self::invalid(
            format!("/data/attributes/{name}"),
            format!("{name} {reason}"),
        )
    }

    /// A 500 saying that the stored `what` ("properties", "secret `db`") cannot be read and why.
    pub fn undecryptable(what: &str, error: CryptoError, doing: &'static str) -> Self {
        let detail = match &error {
            CryptoError::Tampered => format!(
                "the stored {what} failed an integrity check (tampered with, or bound to another record) \
                 and cannot be read; restore it from a backup or set it again"
            ),
            CryptoError::UnknownKey(key_id) => format!(
                "the stored {what} is encrypted with key `{key_id}`, which is not configured; \
                 add it to encryption.previous_keys"
            ),
            CryptoError::BadKey(_) | CryptoError::Malformed | CryptoError::Json(_) => format!(
                "the stored {what} is damaged (not a valid ciphertext) and cannot be read; \
                 restore it from a backup or set it again"
            ),
        };
        Self::Undecryptable {
            detail,
            cause: anyhow::Error::new(error).context(doing),
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::Unprocessable(_) => "Invalid attribute",
            ApiError::Undecryptable { .. } => "Unreadable stored data",
            ApiError::Unavailable(_) => "Service unavailable",
            other => other.status_code().canonical_reason().unwrap_or("Error"),
        }
    }

    /// The detail shown to the client: the message for client errors, nothing internal for 5xx.
    fn public_detail(&self) -> String {
        match self {
            ApiError::Unavailable(_) => {
                "The service is temporarily unavailable; retry shortly.".into()
            }
            ApiError::Internal(_) => "An internal error occurred; it has been logged.".into(),
            ApiError::Unauthorized => {
                "A valid bearer token is required: send `Authorization: Bearer <token>`.".into()
            }
            other => other.to_string(),
        }
    }

    fn source_of(&self) -> Option<&ErrorSource> {
        match self {
            ApiError::BadRequest(p) | ApiError::Unprocessable(p) => p.source.as_ref(),
            _ => None,
        }
    }
}

/// The body of every error response: one JSON:API error object.
#[derive(Serialize, ToSchema)]
pub struct ErrorDocument<'a> {
    #[schema(min_items = 1, max_items = 1)]
    errors: [ErrorObject<'a>; 1],
}

#[derive(Serialize, ToSchema)]
struct ErrorObject<'a> {
    status: String,
    title: &'static str,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a ErrorSource>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) | ApiError::Undecryptable { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed")
            }
            ApiError::Undecryptable { cause, .. } => {
                tracing::error!(error = format!("{cause:#}"), "stored data does not decrypt")
            }
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = format!("{cause:#}"), "database unavailable")
            }
            _ => {}
        }
        let status = self.status_code();
        let document = ErrorDocument {
            errors: [ErrorObject {
                status: status.as_u16().to_string(),
                title: self.title(),
                detail: self.public_detail(),
                source: self.source_of(),
            }],
        };
        let mut response = HttpResponse::build(status);
        response.content_type(MEDIA_TYPE);
        match self {
            ApiError::Unauthorized => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
            }
            ApiError::TooManyRequests { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            _ => {}
        }
        response.json(document)
    }
}

/// Says what was being done when a lower layer failed, and classifies the failure: an
/// unreachable database is a 503, anything else unexpected a 500.
pub trait Context<T> {
    fn context(self, doing: &'static str) -> Result<T, ApiError>;
}

fn from_kind(kind: DbErrorKind, error: anyhow::Error) -> ApiError {
    match kind {
        DbErrorKind::Unavailable | DbErrorKind::Retryable => ApiError::Unavailable(error),
        DbErrorKind::UniqueViolation | DbErrorKind::ForeignKeyViolation | DbErrorKind::Other => {
            ApiError::Internal(error)
        }
    }
}

/// A database error, classified, with what was being done.
fn from_db(error: tokio_postgres::Error, doing: &'static str) -> ApiError {
    from_kind(
        db::classify(&error),
        anyhow::Error::new(error).context(doing),
    )
}

impl<T> Context<T> for Result<T, tokio_postgres::Error> {
    fn context(self, doing: &'static str) -> Result<T, ApiError> {
        self.map_err(|e| from_db(e, doing))
    }
}

impl<T> Context<T> for Result<T, deadpool_postgres::PoolError> {
    fn context(self, doing: &'static str) -> Result<T, ApiError> {
        self.map_err(|e| from_kind(db::classify_pool(&e), anyhow::Error::new(e).context(doing)))
    }
}

impl<T> Context<T> for Result<T, StoreError> {
    fn context(self, doing: &'static str) -> Result<T, ApiError> {
        self.map_err(|e| match e {
            StoreError::NotFound(id) => ApiError::NotFound(format!("properties {id} not found")),
            StoreError::Db(db) => from_db(db, doing),
            StoreError::Crypto(_, crypto) => ApiError::undecryptable("properties", crypto, doing),
        })
    }
}

impl<T> Context<T> for Result<T, SecretError> {
    fn context(self, doing: &'static str) -> Result<T, ApiError> {
        self.map_err(|e| match e {
            SecretError::Db(db) => from_db(db, doing),
            SecretError::Crypto(name, crypto) => {
                ApiError::undecryptable(&format!("secret `{name}`"), crypto, doing)
            }
        })
    }
}

impl<T> Context<T> for Result<T, CryptoError> {
    fn context(self, doing: &'static str) -> Result<T, ApiError> {
        self.map_err(|e| ApiError::undecryptable("data", e, doing))
    }
}

impl<T> Context<T> for Result<T, TransitionError> {
    fn context(self, doing: &'static str) -> Result<T, ApiError> {
        self.map_err(|e| match e {
            TransitionError::Refused(refused) => ApiError::Unprocessable(Problem {
                detail: refused.to_string(),
                source: None,
            }),
            TransitionError::Moved(what) => ApiError::Conflict(format!(
                "{what} changed while this request was handled; try again"
            )),
            TransitionError::Db(db) => from_db(db, doing),
        })
    }
}

/// Turns a unique violation into the given conflict, anything else into [`Context::context`].
pub fn conflict_on_unique<T>(
    result: Result<T, tokio_postgres::Error>,
    conflict: impl FnOnce() -> String,
    doing: &'static str,
) -> Result<T, ApiError> {
    match result {
        Err(e) if db::classify(&e) == DbErrorKind::UniqueViolation => {
            Err(ApiError::Conflict(conflict()))
        }
        other => other.context(doing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail_of(error: CryptoError) -> String {
        ApiError::undecryptable("secret `db`", error, "reading").public_detail()
    }

    #[test]
    fn undecryptable_data_is_a_500_that_says_why() {
        let tampered = ApiError::undecryptable("properties", CryptoError::Tampered, "reading");
        assert_eq!(tampered.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(tampered.public_detail().starts_with(
            "the stored properties failed an integrity check (tampered with, or bound to another record)"
        ));
        assert!(detail_of(CryptoError::UnknownKey("k0".into())).contains("key `k0`"));
        assert!(detail_of(CryptoError::Malformed).contains("secret `db` is damaged"));
    }
}

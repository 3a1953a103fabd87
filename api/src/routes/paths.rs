//! Identifiers in URL paths. A malformed one names nothing, so it is a 404 like an unknown one.

use gantry_shared::domain::Code;
use uuid::Uuid;

use crate::error::ApiError;

/// A project or environment code from the path; `what` is "project" or "environment".
pub fn code(raw: &str, what: &str) -> Result<Code, ApiError> {
    Code::parse(raw).map_err(|_| not_found(what, raw))
}

/// A UUID from the path.
pub fn uuid(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| not_found(what, raw))
}

pub fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::NotFound(format!("{what} `{id}` not found"))
}

//! Reading PATCH attributes: each is absent (`None`, keep), `null` (`Some(None)`) or a value.

use crate::domain::Invalid;
use crate::error::ApiError;

/// An attribute that cannot be null: absent keeps the current value.
pub fn required<T>(name: &str, value: Option<Option<T>>) -> Result<Option<T>, ApiError> {
    match value {
        Some(None) => Err(ApiError::invalid_attribute(name, "must not be null")),
        Some(Some(value)) => Ok(Some(value)),
        None => Ok(None),
    }
}

/// A nullable attribute: `null` clears it, a value is parsed.
pub fn optional<T>(
    name: &str,
    value: Option<Option<String>>,
    parse: impl FnOnce(String) -> Result<T, Invalid>,
) -> Result<Option<Option<T>>, ApiError> {
    match value {
        None => Ok(None),
        Some(None) => Ok(Some(None)),
        Some(Some(value)) => parse(value)
            .map(|v| Some(Some(v)))
            .map_err(|e| ApiError::invalid_attribute(name, e)),
    }
}

/// An immutable attribute: it may be repeated with its current value, not changed.
pub fn immutable(name: &str, current: &str, value: Option<Option<String>>) -> Result<(), ApiError> {
    match value {
        None => Ok(()),
        Some(Some(value)) if value == current => Ok(()),
        Some(_) => Err(ApiError::invalid_attribute(name, "cannot be changed")),
    }
}

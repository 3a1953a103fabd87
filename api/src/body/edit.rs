//! What a PATCH of a versioned document (properties, settings) asks for: a whole new document
//! (`{"data":{"attributes":{"data":{…}, "version":N}}}`) or an RFC 6902 patch
//! (`application/json-patch+json`), and the version it was made against (`version` and/or
//! `If-Match`, which must agree when both are given).

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web;
use json_patch::Patch;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{MediaType, UniqueKeys, max_body_bytes, parse_json, parse_resource, read_body};
use crate::error::{ApiError, Problem};

/// A whole new document and, optionally, the version it was made against.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDocumentAttributes {
    #[schema(value_type = Object)]
    data: UniqueKeys,
    #[schema(minimum = 1)]
    version: Option<i64>,
}

/// The change to make.
pub enum Edit {
    Replace(Value),
    Patch(Patch),
}

pub struct EditRequest {
    pub edit: Edit,
    /// The version the edit was made against; `None` means unconditional.
    pub expected_version: Option<i64>,
}

impl EditRequest {
    pub async fn read(req: &HttpRequest, payload: &mut web::Payload) -> Result<Self, ApiError> {
        let media = MediaType::of(req, &[MediaType::Json, MediaType::JsonPatch])?;
        let header_version = if_match(req)?;
        let body = read_body(req, payload, max_body_bytes(req)?).await?;
        let (edit, body_version) = match media {
            MediaType::JsonPatch => (Edit::Patch(parse_json::<Patch>(&body)?), None),
            MediaType::Json => {
                let attributes: UpdateDocumentAttributes = parse_resource(&body)?;
                let UniqueKeys(data) = attributes.data;
                if !data.is_object() {
                    return Err(ApiError::invalid_attribute("data", "must be a JSON object"));
                }
                if attributes.version.is_some_and(|v| v < 1) {
                    return Err(ApiError::invalid_attribute(
                        "version",
                        "must be a positive integer",
                    ));
                }
                (Edit::Replace(data), attributes.version)
            }
        };
        let expected_version = match (header_version, body_version) {
            (Some(h), Some(b)) if h != b => {
                return Err(ApiError::bad_request(format!(
                    "If-Match names version {h} but the body names version {b}; send one version"
                )));
            }
            (h, b) => h.or(b),
        };
        Ok(Self {
            edit,
            expected_version,
        })
    }
}

impl Edit {
    /// The new document, given the current one.
    pub fn apply(self, current: &Value) -> Result<Value, ApiError> {
        match self {
            Edit::Replace(document) => Ok(document),
            Edit::Patch(patch) => {
                let patched = gantry_shared::properties::apply_patch(current, &patch).map_err(
                    |conflict| {
                        ApiError::Unprocessable(Problem {
                            detail: conflict.to_string(),
                            source: None,
                        })
                    },
                )?;
                match patched.is_object() {
                    true => Ok(patched),
                    false => Err(ApiError::Unprocessable(Problem {
                        detail: "the patched document must still be a JSON object".into(),
                        source: None,
                    })),
                }
            }
        }
    }
}

/// `If-Match: "3"` (or `3`); `*` matches any version.
fn if_match(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let invalid = || ApiError::bad_header("If-Match", "If-Match must be a version such as \"3\"");
    let text = value.to_str().map_err(|_| invalid())?.trim();
    if text == "*" {
        return Ok(None);
    }
    let bare = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    match bare.parse::<i64>() {
        Ok(version) if version >= 1 => Ok(Some(version)),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn parse(value: &str) -> Result<Option<i64>, ApiError> {
        if_match(
            &TestRequest::default()
                .insert_header((header::IF_MATCH, value))
                .to_http_request(),
        )
    }

    #[test]
    fn if_match_accepts_quoted_and_bare_versions() {
        assert_eq!(parse("\"3\"").unwrap(), Some(3));
        assert_eq!(parse("3").unwrap(), Some(3));
        assert_eq!(parse("*").unwrap(), None);
        assert!(parse("W/\"3\"").is_err());
        assert!(parse("\"0\"").is_err());
        assert!(parse("three").is_err());
    }
}

//! Reading a body: its media type and its bytes, up to `api.max_body_bytes`.

use actix_web::HttpRequest;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use crate::error::ApiError;

/// The request media types the API reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// `application/json` or `application/vnd.api+json`: a JSON:API document.
    Json,
    /// `application/json-patch+json`: an RFC 6902 patch (properties only).
    JsonPatch,
}

impl MediaType {
    /// The media type of the request, or 415 when it is missing or not one of `accepted`.
    pub fn of(req: &HttpRequest, accepted: &[MediaType]) -> Result<Self, ApiError> {
        let raw = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = raw
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let found = match essence.as_str() {
            "application/json" | "application/vnd.api+json" => Some(MediaType::Json),
            "application/json-patch+json" => Some(MediaType::JsonPatch),
            _ => None,
        };
        match found {
            Some(media) if accepted.contains(&media) => Ok(media),
            _ => {
                let names: Vec<&str> = accepted.iter().flat_map(|m| m.names()).copied().collect();
                let shown = if raw.is_empty() {
                    "none".to_owned()
                } else {
                    format!("`{raw}`")
                };
                Err(ApiError::UnsupportedMediaType(format!(
                    "the request body must be sent with Content-Type {}; got {shown}",
                    names.join(" or ")
                )))
            }
        }
    }

    fn names(&self) -> &'static [&'static str] {
        match self {
            MediaType::Json => &["application/vnd.api+json", "application/json"],
            MediaType::JsonPatch => &["application/json-patch+json"],
        }
    }
}

/// Reads the whole body, refusing (413) more than `limit` bytes without buffering them.
pub async fn read_body<S>(
    req: &HttpRequest,
    payload: &mut S,
    limit: usize,
) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "the request body is larger than the {limit} bytes allowed"
        ))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(format!("the request body could not be read: {e}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

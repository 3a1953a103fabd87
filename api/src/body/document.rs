//! JSON:API request documents: `{"data":{"type"?,"id"?,"attributes":{…}}}`, parsed into a typed
//! attributes struct (which denies unknown fields). Syntax errors are 400s; a document that is
//! JSON but not what the route expects is a 422 whose `source.pointer` names the member.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::error::Category;
use utoipa::ToSchema;

use super::{MediaType, guard, read_body};
use crate::error::ApiError;
use crate::state::AppState;

/// A request document: `{"data":{"attributes":{…}}}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestDocument<A> {
    data: RequestData<A>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestData<A> {
    // Accepted for JSON:API clients that send them; the route decides type and id.
    #[serde(rename = "type")]
    _kind: Option<String>,
    // Described as a string (what JSON:API ids are); any value is accepted and ignored.
    #[serde(rename = "id")]
    #[schema(value_type = Option<String>)]
    _id: Option<serde_json::Value>,
    attributes: A,
}

/// Parses any JSON body after the [`guard`] checks.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    guard::check(body)?;
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    let parsed: T = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let pointer = pointer(e.path());
        let inner = e.into_inner();
        match inner.classify() {
            Category::Data => ApiError::invalid(pointer, inner.to_string()),
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::bad_request(format!("the request body is not valid JSON: {inner}"))
            }
        }
    })?;
    Ok(parsed)
}

/// Parses a JSON:API document and returns its `data.attributes`.
pub fn parse_resource<A: DeserializeOwned>(body: &[u8]) -> Result<A, ApiError> {
    parse_json::<RequestDocument<A>>(body).map(|document| document.data.attributes)
}

/// A key as a JSON pointer reference token (RFC 6901).
pub(crate) fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        let token = match segment {
            Segment::Seq { index } => index.to_string(),
            Segment::Map { key } => pointer_token(key),
            Segment::Enum { variant } => variant.clone(),
            Segment::Unknown => break,
        };
        pointer.push('/');
        pointer.push_str(&token);
    }
    pointer
}

/// Deserialises a field that distinguishes "absent" (`None`, with `#[serde(default)]`) from
/// `null` (`Some(None)`): a PATCH clears an optional attribute with `null` and keeps it when absent.
pub fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    de: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(de).map(Some)
}

/// The attributes of a JSON:API request body, read within `api.max_body_bytes`.
pub struct JsonApiBody<A>(pub A);

impl<A: DeserializeOwned + 'static> FromRequest for JsonApiBody<A> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            MediaType::of(&req, &[MediaType::Json])?;
            let limit = max_body_bytes(&req)?;
            let body = read_body(&req, &mut payload, limit).await?;
            parse_resource(&body).map(JsonApiBody)
        })
    }
}

/// The configured body limit of this application.
pub fn max_body_bytes(req: &HttpRequest) -> Result<usize, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .map(|state| state.api.max_body_bytes)
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("the application state is not configured"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Attributes {
        #[serde(rename = "code")]
        _code: String,
    }

    fn error_of(body: &str) -> ApiError {
        parse_resource::<Attributes>(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn an_unknown_attribute_is_refused_with_a_pointer_at_it() {
        let error = error_of(r#"{"data":{"attributes":{"code":"a","colour":"red"}}}"#);
        assert!(
            matches!(error, ApiError::Unprocessable(p) if p.source == Some(crate::error::ErrorSource::Pointer("/data/attributes/colour".into())))
        );
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert!(matches!(error_of(r#"{"data":"#), ApiError::BadRequest(_)));
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        let error = error_of(r#"{"data":{"attributes":{"code":"a","a/b~c":1}}}"#);
        assert!(
            matches!(error, ApiError::Unprocessable(p) if p.source == Some(crate::error::ErrorSource::Pointer("/data/attributes/a~1b~0c".into())))
        );
    }
}

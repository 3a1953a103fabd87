//! What every operation shares, added to the generated document in one pass: `/api` operations
//! speak JSON:API (`application/vnd.api+json`, and request bodies also as `application/json`,
//! which the API accepts as a synonym), need the bearer token, and answer errors with an
//! [`ErrorDocument`]; `4XX` stands for the client errors any request can meet (a bad token,
//! an unknown query parameter, a body too large).

use utoipa::openapi::path::Operation;
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, Content, OpenApi, Ref, RefOr};
use utoipa::{Modify, PartialSchema, ToSchema};

use crate::error::ErrorDocument;
use crate::jsonapi::MEDIA_TYPE;

const JSON: &str = "application/json";
const BEARER: &str = "bearer";

pub struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi
            .components
            .get_or_insert_with(|| ComponentsBuilder::new().build());
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`api.admin_token` in the configuration).",
                    ))
                    .build(),
            ),
        );
        let mut schemas = vec![(ErrorDocument::name().into_owned(), ErrorDocument::schema())];
        ErrorDocument::schemas(&mut schemas);
        components.schemas.extend(schemas);
        openapi.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
        for (path, item) in openapi.paths.paths.iter_mut() {
            let api = path.starts_with("/api/");
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                if api {
                    json_api(operation);
                }
            }
        }
    }
}

/// Media types, error bodies and the catch-all client error of one `/api` operation.
fn json_api(operation: &mut Operation) {
    if let Some(RefOr::T(body)) = operation.request_body.as_mut() {
        both_json_media_types(body);
    }
    let responses = &mut operation.responses.responses;
    responses.entry("4XX".to_owned()).or_insert_with(|| {
        RefOr::T(error_response(
            "A client error; `errors[0].detail` says what to fix.",
        ))
    });
    responses.entry("503".to_owned()).or_insert_with(|| {
        RefOr::T(error_response(
            "The database is unavailable; retry after `Retry-After` seconds.",
        ))
    });
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if let Some(content) = response.content.shift_remove(JSON) {
            response.content.insert(MEDIA_TYPE.to_owned(), content);
        }
        let error = status.starts_with('4') || status.starts_with('5');
        if error && response.content.is_empty() {
            response
                .content
                .insert(MEDIA_TYPE.to_owned(), RefOr::T(error_content()));
        }
    }
}

fn both_json_media_types(body: &mut RequestBody) {
    let content = body
        .content
        .get(MEDIA_TYPE)
        .or_else(|| body.content.get(JSON))
        .cloned();
    if let Some(content) = content {
        body.content
            .entry(MEDIA_TYPE.to_owned())
            .or_insert_with(|| content.clone());
        body.content.entry(JSON.to_owned()).or_insert(content);
    }
}

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(MEDIA_TYPE, error_content())
        .build()
}

fn error_content() -> Content {
    Content::new(Some(Ref::from_schema_name(ErrorDocument::name())))
}

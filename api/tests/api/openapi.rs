//! The OpenAPI document: it describes exactly the router's routes, with a parameter for every
//! path segment, and is served without a token.

use std::collections::BTreeSet;

use gantry_api::openapi::document;
use gantry_api::router::operations;
use serde_json::Value;

use crate::helpers::{expect_status, spawn_app};

const METHODS: [&str; 5] = ["get", "put", "post", "patch", "delete"];

fn document_json() -> Value {
    serde_json::to_value(document()).unwrap()
}

fn documented_operations(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(move |m| (m.to_string(), path.clone()))
        })
        .collect()
}

#[test]
fn every_route_of_the_router_is_in_the_openapi_document_and_nothing_else() {
    let routed: BTreeSet<(String, String)> = operations()
        .into_iter()
        .map(|(method, path, _)| (method.as_str().to_lowercase(), path))
        .collect();
    let documented = documented_operations(&document_json());

    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the document: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );
    assert!(
        routed.len() >= 46,
        "the table lists {} operations",
        routed.len()
    );
}

#[test]
fn every_path_segment_has_a_path_parameter_and_every_operation_a_success_response() {
    let document = document_json();
    for (method, path) in documented_operations(&document) {
        let operation = &document["paths"][&path][&method];
        let declared: BTreeSet<&str> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        let in_template: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        assert_eq!(declared, in_template, "{method} {path}");
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{method} {path} has no success response"
        );
    }
}

#[test]
fn api_operations_need_the_bearer_token_and_the_probes_do_not() {
    let document = document_json();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["security"][0]["bearer"], serde_json::json!([]));
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for path in ["/health", "/ready", "/metrics", "/api-docs/openapi.json"] {
        assert_eq!(
            document["paths"][path]["get"]["security"],
            serde_json::json!([{}]),
            "{path} is open"
        );
    }
    let errors = &document["paths"]["/api/projects"]["post"]["responses"]["4XX"];
    assert_eq!(
        errors["content"]["application/vnd.api+json"]["schema"]["$ref"],
        "#/components/schemas/ErrorDocument"
    );
}

#[tokio::test]
async fn the_document_is_served_without_a_token() {
    let app = spawn_app().await;

    let response = app
        .client
        .get(app.url("/api-docs/openapi.json"))
        .send()
        .await
        .unwrap();

    let served = expect_status(response, 200).await;
    assert_eq!(served, document_json());
}

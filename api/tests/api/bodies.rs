//! Hostile and malformed request bodies (RELIABILITY S15): a clear 4xx and nothing changed.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, expect_status, first_error, spawn_app};

async fn post_raw(
    app: &TestApp,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.request(Method::POST, "/api/projects")
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A PATCH of `path` with a hand-written JSON body.
async fn patch_raw(app: &TestApp, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    app.request(Method::PATCH, path)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn detail_of(response: reqwest::Response, status: u16) -> String {
    let document = expect_status(response, status).await;
    first_error(&document)["detail"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn invalid_json_is_a_bad_request_with_the_parser_message() {
    let app = spawn_app().await;

    let detail = detail_of(
        post_raw(&app, "application/json", r#"{"data": {"attributes": "#).await,
        400,
    )
    .await;

    assert!(
        detail.starts_with("the request body is not valid JSON"),
        "{detail}"
    );
    assert_eq!(app.count("projects").await, 0);
}

#[tokio::test]
async fn invalid_utf8_is_a_bad_request() {
    let app = spawn_app().await;
    let body = b"{\"data\":{\"attributes\":{\"code\":\"demo\",\"name\":\"\xff\xfe\"}}}".to_vec();

    detail_of(post_raw(&app, "application/json", body).await, 400).await;

    assert_eq!(app.count("projects").await, 0);
}

#[tokio::test]
async fn unknown_fields_are_refused_wherever_they_are() {
    let app = spawn_app().await;
    let bodies = [
        (
            json!({ "data": { "attributes": { "code": "demo", "name": "Demo", "owner": "x" } } }),
            "/data/attributes/owner",
        ),
        (
            json!({ "data": { "attributes": { "code": "demo", "name": "Demo" }, "extra": 1 } }),
            "/data/extra",
        ),
        (
            json!({ "data": { "attributes": { "code": "demo", "name": "Demo" } }, "meta": {} }),
            "/meta",
        ),
    ];

    for (body, pointer) in bodies {
        let document = expect_status(app.post_json("/api/projects", &body).await, 422).await;

        assert_eq!(first_error(&document)["source"]["pointer"], pointer);
        assert!(
            first_error(&document)["detail"]
                .as_str()
                .unwrap()
                .contains("unknown field")
        );
    }
    assert_eq!(app.count("projects").await, 0);
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let app = spawn_app().await;
    let limit = app.settings.api.max_body_bytes;
    let name = "x".repeat(limit);
    let body = json!({ "data": { "attributes": { "code": "demo", "name": name } } }).to_string();

    let detail = detail_of(post_raw(&app, "application/json", body).await, 413).await;

    assert!(detail.contains(&limit.to_string()), "{detail}");
    assert_eq!(app.count("projects").await, 0);
}

#[tokio::test]
async fn a_streamed_oversized_body_without_a_length_is_refused_with_413() {
    let app = spawn_app().await;
    let chunk = vec![b' '; 64 * 1024];
    let chunks = (app.settings.api.max_body_bytes / chunk.len()) + 2;
    let stream = futures_util::stream::iter(
        (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );

    let response = app
        .request(Method::POST, "/api/projects")
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;

    // The server may answer and close before the client finished sending.
    if let Ok(response) = response {
        assert_eq!(response.status(), 413);
    }
    assert_eq!(app.count("projects").await, 0);
}

#[tokio::test]
async fn deeply_nested_json_is_refused_with_a_clear_message() {
    let app = spawn_app().await;
    let path = app.project_properties().await;
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let body = format!(r#"{{"data":{{"attributes":{{"data":{{"deep":{deep}}}}}}}}}"#);

    let response = patch_raw(&app, &path, body).await;

    let detail = detail_of(response, 400).await;
    assert!(detail.contains("levels deep"), "{detail}");
    assert_eq!(app.count("properties_versions").await, 1);
}

#[tokio::test]
async fn integers_beyond_64_bits_are_refused_instead_of_rounded() {
    let app = spawn_app().await;
    let path = app.project_properties().await;
    let body = r#"{"data":{"attributes":{"data":{"big":123456789012345678901234567890}}}}"#;

    let response = patch_raw(&app, &path, body).await;

    let detail = detail_of(response, 400).await;
    assert!(detail.contains("64-bit"), "{detail}");
    assert_eq!(app.count("properties_versions").await, 1);
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_is_refused_with_415() {
    let app = spawn_app().await;
    let body = json!({ "data": { "attributes": { "code": "demo", "name": "Demo" } } }).to_string();

    let detail = detail_of(post_raw(&app, "text/plain", body.clone()).await, 415).await;
    let missing = app
        .request(Method::POST, "/api/projects")
        .body(body)
        .send()
        .await
        .unwrap();

    assert!(detail.contains("application/vnd.api+json"), "{detail}");
    expect_status(missing, 415).await;
    assert_eq!(app.count("projects").await, 0);
}

#[tokio::test]
async fn the_json_api_media_type_is_accepted() {
    let app = spawn_app().await;
    let body =
        json!({ "data": { "type": "projects", "attributes": { "code": "demo", "name": "Demo" } } })
            .to_string();

    let response = post_raw(&app, "application/vnd.api+json", body).await;

    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.api+json"
    );
    expect_status(response, 201).await;
}

#[tokio::test]
async fn a_document_without_data_is_refused_with_a_pointer_at_the_root() {
    let app = spawn_app().await;

    let document = expect_status(
        app.post_json("/api/projects", &json!({ "code": "demo" }))
            .await,
        422,
    )
    .await;

    assert_eq!(first_error(&document)["source"]["pointer"], "/code");
}

#[tokio::test]
async fn a_repeated_key_in_a_properties_document_is_refused_not_silently_dropped() {
    let app = spawn_app().await;
    let path = app.project_properties().await;
    let body = r#"{"data":{"attributes":{"data":{"db":{"host":"a","host":"b"}}}}}"#;

    let response = patch_raw(&app, &path, body).await;

    let document = expect_status(response, 422).await;
    let detail = first_error(&document)["detail"].as_str().unwrap();
    assert!(detail.contains("duplicate key `host`"), "{detail}");
    assert_eq!(
        first_error(&document)["source"]["pointer"],
        "/data/attributes/data/db"
    );
    assert_eq!(app.count("properties_versions").await, 1);
}

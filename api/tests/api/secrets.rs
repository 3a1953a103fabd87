//! Secrets: set with PUT (created or replaced), shown by keys only, validated, deleted.

use gantry_shared::secrets;
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_status, first_error, ids, spawn_app};

/// The status and the raw text of a response, which must not contain `value`.
async fn text_without(response: Response, value: &str) -> (u16, String) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert!(!text.contains(value), "a secret value was returned: {text}");
    (status, text)
}

async fn stored_values(app: &TestApp, name: &str) -> Option<Vec<(String, String)>> {
    secrets::load(&app.db().await, &app.cipher(), name)
        .await
        .unwrap()
        .map(|s| s.values.into_iter().collect())
}

#[tokio::test]
async fn a_new_secret_answers_201_with_its_sorted_keys_and_never_its_values() {
    let app = spawn_app().await;
    let (password, key) = ("canary-db-password-1", "canary-api-key-2");

    let response = app
        .put_secret("db", json!({ "DB_PASSWORD": password, "API_KEY": key }))
        .await;

    assert_eq!(
        response.headers()["location"].to_str().unwrap(),
        "/api/secrets/db"
    );
    let (status, text) = text_without(response, "canary").await;
    assert_eq!(status, 201, "{text}");
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document["data"]["type"], "secrets");
    assert_eq!(document["data"]["id"], "db");
    assert_eq!(document["data"]["links"]["self"], "/api/secrets/db");
    let attributes = &document["data"]["attributes"];
    assert_eq!(attributes["name"], "db");
    assert_eq!(attributes["keys"], json!(["API_KEY", "DB_PASSWORD"]));
    assert!(attributes["created_at"].is_string() && attributes["updated_at"].is_string());
    let (status, text) = text_without(app.get("/api/secrets/db").await, "canary").await;
    assert_eq!(status, 200);
    let shown: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(shown["data"]["attributes"], *attributes);
    assert_eq!(
        stored_values(&app, "db").await.unwrap(),
        [
            ("API_KEY".to_owned(), key.to_owned()),
            ("DB_PASSWORD".to_owned(), password.to_owned())
        ]
    );
    let (actor, target, payload) = app.event("api:secrets:create").await;
    assert_eq!((actor.as_str(), target.as_str()), ("admin", "/secrets/db"));
    assert_eq!(payload["keys"], json!(["API_KEY", "DB_PASSWORD"]));
    assert!(!payload.to_string().contains("canary"), "{payload}");
}

#[tokio::test]
async fn putting_an_existing_secret_replaces_its_whole_map_and_answers_200() {
    let app = spawn_app().await;
    expect_status(
        app.put_secret("db", json!({ "OLD": "canary-old" })).await,
        201,
    )
    .await;

    let response = app.put_secret("db", json!({ "NEW": "canary-new" })).await;

    let (status, text) = text_without(response, "canary").await;
    assert_eq!(status, 200, "{text}");
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document["data"]["attributes"]["keys"], json!(["NEW"]));
    assert_eq!(
        stored_values(&app, "db").await.unwrap(),
        [("NEW".to_owned(), "canary-new".to_owned())]
    );
    let (_, _, payload) = app.event("api:secrets:update").await;
    assert_eq!(payload, json!({ "name": "db", "keys": ["NEW"] }));
}

#[tokio::test]
async fn the_secret_list_shows_names_and_keys_sorted_by_name_and_pages() {
    let app = spawn_app().await;
    for name in ["beta", "alpha", "gamma"] {
        let data = json!({ "Z": "canary-z", "A": "canary-a" });
        expect_status(app.put_secret(name, data).await, 201).await;
    }

    let (status, text) = text_without(app.get("/api/secrets?limit=2").await, "canary").await;

    assert_eq!(status, 200, "{text}");
    let first: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(ids(&first), ["alpha", "beta"]);
    assert_eq!(first["data"][0]["attributes"]["keys"], json!(["A", "Z"]));
    let second = app.next_page(&first).await;
    assert_eq!(ids(&second), ["gamma"]);
    assert!(second["links"]["next"].is_null());
}

#[tokio::test]
async fn invalid_secrets_are_refused_with_422_and_a_pointer_and_store_nothing() {
    let app = spawn_app().await;
    expect_status(
        app.put_secret("kept", json!({ "A": "canary-kept" })).await,
        201,
    )
    .await;
    let cases: [(&str, String, Option<&str>, &str); 7] = [
        (
            "kept",
            data(json!({ "API-KEY": "x" })),
            Some("/data/attributes/data/API-KEY"),
            "not a valid environment variable name",
        ),
        (
            "kept",
            data(json!({ "PORT": 5432 })),
            Some("/data/attributes/data/PORT"),
            "must have a string value",
        ),
        (
            "kept",
            data(json!(["A"])),
            Some("/data/attributes/data"),
            "must be a JSON object",
        ),
        (
            "kept",
            r#"{"data":{"attributes":{"data":{"A":"x","A":"y"}}}}"#.to_owned(),
            Some("/data/attributes/data"),
            "duplicate key `A`",
        ),
        (
            "kept",
            r#"{"data":{"attributes":{"data":{},"extra":1}}}"#.to_owned(),
            Some("/data/attributes/extra"),
            "unknown field",
        ),
        (
            "kept",
            data(json!({ "PIN": "123" })),
            Some("/data/attributes/data/PIN"),
            "the value of secret key \"PIN\" is shorter than 4 characters",
        ),
        (
            "-bad",
            data(json!({ "A": "x" })),
            None,
            "secret name \"-bad\" is invalid",
        ),
    ];

    for (name, body, pointer, detail) in cases {
        let document = expect_status(app.put_raw_secret(name, &body).await, 422).await;

        let error = first_error(&document);
        assert_eq!(
            error["source"]["pointer"].as_str(),
            pointer,
            "{body}: {error}"
        );
        assert!(
            error["detail"].as_str().unwrap().contains(detail),
            "{body}: {error}"
        );
    }
    assert_eq!(
        stored_values(&app, "kept").await.unwrap(),
        [("A".to_owned(), "canary-kept".to_owned())]
    );
    assert_eq!(app.count("secrets").await, 1);
    let events = "events WHERE type LIKE 'api:secrets:%'";
    assert_eq!(app.count(events).await, 1);
}

fn data(data: Value) -> String {
    json!({ "data": { "attributes": { "data": data } } }).to_string()
}

#[tokio::test]
async fn a_deleted_secret_answers_204_and_is_then_not_found() {
    let app = spawn_app().await;
    expect_status(app.put_secret("db", json!({ "A": "x-value" })).await, 201).await;

    expect_status(app.delete("/api/secrets/db").await, 204).await;

    expect_status(app.get("/api/secrets/db").await, 404).await;
    expect_status(app.delete("/api/secrets/db").await, 404).await;
    assert_eq!(app.count("secrets").await, 0);
    let (_, target, _) = app.event("api:secrets:delete").await;
    assert_eq!(target, "/secrets/db");
}

#[tokio::test]
async fn unknown_and_invalid_secret_names_are_not_found() {
    let app = spawn_app().await;

    for path in [
        "/api/secrets/missing",
        "/api/secrets/-bad",
        "/api/secrets/a..b%20c",
    ] {
        let document = expect_status(app.get(path).await, 404).await;
        assert!(
            first_error(&document)["detail"]
                .as_str()
                .unwrap()
                .starts_with("secret `")
        );
    }
}

#[tokio::test]
async fn secret_routes_need_a_token() {
    let app = spawn_app().await;
    expect_status(app.put_secret("db", json!({ "A": "x-value" })).await, 201).await;

    for (method, path) in [
        (Method::GET, "/api/secrets"),
        (Method::GET, "/api/secrets/db"),
        (Method::PUT, "/api/secrets/db"),
        (Method::DELETE, "/api/secrets/db"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .json(&json!({ "data": { "attributes": { "data": { "B": "y" } } } }))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status().as_u16(), 401, "{method} {path}");
    }
    assert_eq!(
        stored_values(&app, "db").await.unwrap(),
        [("A".to_owned(), "x-value".to_owned())]
    );
}

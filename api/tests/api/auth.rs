//! Every /api route needs a valid bearer token (RELIABILITY S14).

use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::helpers::{TestApp, expect_status, first_error, spawn_app};

/// Routes that exist and one that does not (the table-driven matrix of every route is in
/// `access.rs`): probing unknown paths reveals nothing either.
fn routes() -> Vec<(Method, String)> {
    [
        (Method::GET, "/api/info".to_owned()),
        (Method::POST, "/api/projects".to_owned()),
        (Method::PATCH, "/api/projects/demo".to_owned()),
        (Method::GET, format!("/api/changes/{}", Uuid::now_v7())),
        (Method::GET, "/api/no_such_route".to_owned()),
    ]
    .into()
}

async fn assert_unauthorized(app: &TestApp, token: Option<&str>) {
    for (method, path) in routes() {
        let mut request = app
            .client
            .request(method.clone(), app.url(&path))
            .json(&json!({}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }

        let response = request.send().await.unwrap();

        assert_eq!(response.status(), 401, "{method} {path} with {token:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(first_error(&body)["status"], "401", "{method} {path}");
    }
}

#[tokio::test]
async fn api_routes_and_unknown_paths_refuse_a_request_without_a_token() {
    let app = spawn_app().await;

    assert_unauthorized(&app, None).await;

    assert_eq!(app.count("projects").await, 0);
}

#[tokio::test]
async fn api_routes_and_unknown_paths_refuse_a_bad_token() {
    let app = spawn_app().await;
    let almost = format!("{}x", app.token);

    assert_unauthorized(&app, Some("not-the-token")).await;
    assert_unauthorized(&app, Some(&almost)).await;

    assert_eq!(app.count("projects").await, 0);
}

async fn insert_token(app: &TestApp, token: &str, user: &str, revoked: bool, expired: bool) {
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    app.db()
        .await
        .execute(
            "INSERT INTO api_tokens (id, user_name, token_digest, revoked_at, expires_at, role, created_by) \
             VALUES ($1, $2, $3, CASE WHEN $4 THEN now() END, \
             CASE WHEN $5 THEN now() - interval '1 minute' END, 'admin', 'admin')",
            &[&Uuid::now_v7(), &user, &digest, &revoked, &expired],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stored_api_token_authenticates_as_its_user() {
    let app = spawn_app().await;
    insert_token(&app, "mary-token-0123456789", "mary", false, false).await;

    let response = app
        .client
        .get(app.url("/api/info"))
        .bearer_auth("mary-token-0123456789")
        .send()
        .await
        .unwrap();

    let body = expect_status(response, 200).await;
    assert_eq!(body["data"]["attributes"]["user"], "mary");
}

#[tokio::test]
async fn revoked_and_expired_api_tokens_are_refused() {
    let app = spawn_app().await;
    insert_token(&app, "revoked-token-0123456789", "rita", true, false).await;
    insert_token(&app, "expired-token-0123456789", "erin", false, true).await;

    for token in ["revoked-token-0123456789", "expired-token-0123456789"] {
        let response = app
            .client
            .get(app.url("/api/info"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 401, "{token}");
    }
}

#[tokio::test]
async fn the_token_user_is_recorded_as_the_actor_of_what_it_creates() {
    let app = spawn_app().await;
    insert_token(&app, "mary-token-0123456789", "mary", false, false).await;
    let body = json!({ "data": { "attributes": { "code": "demo", "name": "Demo" } } });

    let response = app
        .client
        .post(app.url("/api/projects"))
        .bearer_auth("mary-token-0123456789")
        .json(&body)
        .send()
        .await
        .unwrap();

    expect_status(response, 201).await;
    let (actor, _, _) = app.event("api:projects:create").await;
    assert_eq!(actor, "mary");
}

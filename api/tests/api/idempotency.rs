//! `Idempotency-Key` on `POST /api/changes`: a retried creation gets the change the first one
//! made, never a second one.

use serde_json::{Value, json};

use crate::helpers::{TestApp, change_attributes, expect_status, first_error, spawn_app};

async fn create(app: &TestApp, key: &str, attributes: Value) -> reqwest::Response {
    app.request(reqwest::Method::POST, "/api/changes")
        .header("Idempotency-Key", key)
        .json(&json!({ "data": { "attributes": attributes } }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_repeated_request_with_the_same_key_gets_the_first_change_back() {
    let app = spawn_app().await;
    app.create_change_targets().await;

    let first = expect_status(create(&app, "k-1", change_attributes(json!({}))).await, 201).await;
    // The same attributes, written in another order, are the same request.
    let reordered = json!({ "git_rev": "main", "git_remote_name": "origin", "environment_code": "dev", "project_code": "demo" });
    let again = expect_status(create(&app, "k-1", reordered).await, 200).await;

    assert_eq!(again["data"]["id"], first["data"]["id"]);
    assert_eq!(app.count("changes").await, 1);
    assert_eq!(app.count("outbox").await, 1, "one plan message");
}

#[tokio::test]
async fn a_key_reused_for_other_attributes_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    expect_status(create(&app, "k-1", change_attributes(json!({}))).await, 201).await;

    let other = create(&app, "k-1", change_attributes(json!({ "git_rev": "v2" }))).await;

    let body = expect_status(other, 422).await;
    assert_eq!(first_error(&body)["source"]["header"], "Idempotency-Key");
    assert_eq!(app.count("changes").await, 1);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_make_one_change() {
    let app = spawn_app().await;
    app.create_change_targets().await;

    let requests = (0..8).map(|_| create(&app, "burst", change_attributes(json!({}))));
    let responses = futures_util::future::join_all(requests).await;

    let mut ids = Vec::new();
    let mut created = 0;
    for response in responses {
        let status = response.status().as_u16();
        assert!([200, 201].contains(&status), "{status}");
        created += usize::from(status == 201);
        let body: Value = response.json().await.unwrap();
        ids.push(body["data"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(created, 1);
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(app.count("changes").await, 1);
}

#[tokio::test]
async fn a_malformed_key_is_a_400_and_no_key_creates_every_time() {
    let app = spawn_app().await;
    app.create_change_targets().await;

    let long = "k".repeat(256);
    let refused = expect_status(create(&app, &long, change_attributes(json!({}))).await, 400).await;
    app.create_change().await;
    app.create_change().await;

    assert_eq!(first_error(&refused)["source"]["header"], "Idempotency-Key");
    assert_eq!(app.count("changes").await, 2);
}

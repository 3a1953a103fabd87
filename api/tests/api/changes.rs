//! Changes: creation through the outbox and its validation.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{
    change_attributes as attributes, expect_status, first_error, spawn_app, uuid_of,
};

#[tokio::test]
async fn creating_a_change_answers_201_in_initializing_with_a_plan_message_in_the_outbox() {
    let app = spawn_app().await;
    app.create_change_targets().await;

    let response = app
        .post_change(attributes(
            json!({ "action": "deploy", "metadata": { "ticket": "OPS-1" } }),
        ))
        .await;

    let document = expect_status(response, 201).await;
    let data = &document["data"];
    let id = uuid_of(&document);
    assert_eq!(data["type"], "changes");
    let attributes = &data["attributes"];
    assert_eq!(attributes["status_code"], "initializing");
    assert_eq!(attributes["action"], "deploy");
    assert_eq!(attributes["metadata"], json!({ "ticket": "OPS-1" }));
    assert_eq!(attributes["created_by"], "admin");
    assert_eq!(
        (
            attributes["project_code"].as_str(),
            attributes["environment_code"].as_str()
        ),
        (Some("demo"), Some("dev"))
    );
    assert!(attributes["commit_sha"].is_null() && attributes["started_at"].is_null());
    let row = app
        .db()
        .await
        .query_one("SELECT routing_key, payload FROM outbox", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "gantry.changes");
    let payload: Value = serde_json::from_slice(&row.get::<_, Vec<u8>>(1)).unwrap();
    assert_eq!(
        payload,
        json!({ "type": "plan_changes_v1", "change_ids": [id] })
    );
    let (_, target, _) = app.event("api:changes:create").await;
    assert_eq!(target, format!("/changes/{id}"));
}

#[tokio::test]
async fn the_relay_publishes_the_plan_message() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    app.create_change().await;

    let deadline = Instant::now() + Duration::from_secs(15);
    let published = loop {
        let row = app
            .db()
            .await
            .query_one("SELECT published_at IS NOT NULL FROM outbox", &[])
            .await
            .unwrap();
        if row.get::<_, bool>(0) || Instant::now() > deadline {
            break row.get::<_, bool>(0);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    assert!(published, "the outbox row was not published within 15 s");
}

#[tokio::test]
async fn a_change_without_action_or_metadata_runs_the_default_action_with_empty_metadata() {
    let app = spawn_app().await;
    app.create_change_targets().await;

    let document = expect_status(app.post_change(attributes(json!({}))).await, 201).await;

    assert_eq!(document["data"]["attributes"]["action"], "default");
    assert_eq!(document["data"]["attributes"]["metadata"], json!({}));
}

#[tokio::test]
async fn unknown_or_archived_targets_are_refused_with_a_pointer_and_nothing_is_written() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    app.create_project("old").await;
    app.patch_json(
        "/api/projects/old",
        &json!({ "data": { "attributes": { "archived": true } } }),
    )
    .await;
    // All three exist but one is archived: refused on the single-query path as well.
    app.create_environment("demo", "stale").await;
    app.patch_json(
        "/api/projects/demo/environments/stale",
        &json!({ "data": { "attributes": { "archived": true } } }),
    )
    .await;
    let cases = [
        (
            json!({ "environment_code": "stale" }),
            "/data/attributes/environment_code",
        ),
        (
            json!({ "project_code": "nope" }),
            "/data/attributes/project_code",
        ),
        (
            json!({ "project_code": "old" }),
            "/data/attributes/project_code",
        ),
        (
            json!({ "environment_code": "prod" }),
            "/data/attributes/environment_code",
        ),
        (
            json!({ "git_remote_name": "fork" }),
            "/data/attributes/git_remote_name",
        ),
        (
            json!({ "git_rev": "has space" }),
            "/data/attributes/git_rev",
        ),
        (json!({ "git_rev": "" }), "/data/attributes/git_rev"),
        (
            json!({ "git_rev": "a".repeat(256) }),
            "/data/attributes/git_rev",
        ),
        (json!({ "action": "" }), "/data/attributes/action"),
        (json!({ "metadata": [1] }), "/data/attributes/metadata"),
        (json!({ "colour": "red" }), "/data/attributes/colour"),
    ];

    for (overrides, pointer) in cases {
        let response = app.post_change(attributes(overrides.clone())).await;

        let error = expect_status(response, 422).await;
        assert_eq!(
            first_error(&error)["source"]["pointer"],
            pointer,
            "{overrides}"
        );
    }
    assert_eq!(app.count("changes").await, 0);
    assert_eq!(app.count("outbox").await, 0);
}

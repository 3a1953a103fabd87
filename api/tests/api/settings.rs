//! Project and environment settings: versioned like properties, environment over project over
//! the server's defaults.

use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_status, first_error, spawn_app};

fn body(data: Value, version: Option<i64>) -> Value {
    let mut attributes = json!({ "data": data });
    if let Some(version) = version {
        attributes["version"] = json!(version);
    }
    json!({ "data": { "type": "settings", "attributes": attributes } })
}

async fn patch(app: &TestApp, path: &str, data: Value, version: Option<i64>) -> reqwest::Response {
    app.patch_json(path, &body(data, version)).await
}

const PROJECT: &str = "/api/projects/demo/settings";
const ENVIRONMENT: &str = "/api/projects/demo/environments/dev/settings";

#[tokio::test]
async fn new_owners_have_empty_settings_and_the_server_defaults_in_effect() {
    let app = spawn_app().await;
    app.create_change_targets().await;

    let project = expect_status(app.get(PROJECT).await, 200).await;

    let attributes = &project["data"]["attributes"];
    assert_eq!(project["data"]["type"], "settings");
    assert_eq!(attributes["data"], json!({}));
    assert_eq!(attributes["version"], 1);
    let worker = &app.settings.worker;
    assert_eq!(
        attributes["effective"],
        json!({
            "allow_parallel_changes": false,
            "step_timeout": worker.step_timeout_seconds,
            "runner_image": worker.runner_image,
            "runner_network": worker.runner_network,
            "memory_bytes": worker.memory_bytes,
            "cpus": worker.nano_cpus as f64 / 1e9,
            "pids_limit": worker.pids_limit,
        })
    );
    assert_eq!(
        project["data"]["links"]["versions"],
        format!("{PROJECT}/versions")
    );
    let environment = expect_status(app.get(ENVIRONMENT).await, 200).await;
    assert_eq!(environment["data"]["id"], "demo/environments/dev");
    assert_eq!(
        environment["data"]["attributes"]["effective"],
        attributes["effective"]
    );
}

#[tokio::test]
async fn the_environment_wins_over_the_project_which_wins_over_the_defaults() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    let project = json!({"runner_image": "team/python-runner:3", "step_timeout": 600, "allow_parallel_changes": true});
    expect_status(patch(&app, PROJECT, project, Some(1)).await, 200).await;

    let updated = patch(
        &app,
        ENVIRONMENT,
        json!({"step_timeout": 60, "cpus": 0.5}),
        None,
    )
    .await;

    let environment = expect_status(updated, 200).await;
    let effective = &environment["data"]["attributes"]["effective"];
    assert_eq!(environment["data"]["attributes"]["version"], 2);
    assert_eq!(effective["runner_image"], "team/python-runner:3");
    assert_eq!(effective["step_timeout"], 60);
    assert_eq!(effective["cpus"], 0.5);
    assert_eq!(effective["allow_parallel_changes"], true);
    assert_eq!(
        effective["runner_network"],
        app.settings.worker.runner_network
    );
    let targets: Vec<(String, String, Value)> = app
        .db()
        .await
        .query(
            "SELECT actor, target, payload FROM events WHERE type = 'api:settings:update' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        targets,
        [
            (
                "admin".into(),
                "/projects/demo/settings".into(),
                json!({"version": 2})
            ),
            (
                "admin".into(),
                "/projects/demo/environments/dev/settings".into(),
                json!({"version": 2})
            ),
        ]
    );
}

#[tokio::test]
async fn a_stale_version_is_refused_with_412_and_every_version_is_kept() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    expect_status(
        patch(&app, PROJECT, json!({"pids_limit": 100}), Some(1)).await,
        200,
    )
    .await;

    let stale = patch(&app, PROJECT, json!({"pids_limit": 50}), Some(1)).await;

    let body = expect_status(stale, 412).await;
    assert_eq!(
        first_error(&body)["detail"],
        "Version mismatch, the settings are now at version 2 whilst these modifications were made \
         to version 1. Please fetch the latest version of the settings and reapply the edits."
    );
    let patched = app
        .request(reqwest::Method::PATCH, PROJECT)
        .header("Content-Type", "application/json-patch+json")
        .header("If-Match", "\"2\"")
        .body(r#"[{"op": "add", "path": "/memory_bytes", "value": 104857600}]"#)
        .send()
        .await
        .unwrap();
    let current = expect_status(patched, 200).await;
    assert_eq!(
        current["data"]["attributes"]["data"],
        json!({"pids_limit": 100, "memory_bytes": 104857600})
    );
    let versions = expect_status(app.get(&format!("{PROJECT}/versions")).await, 200).await;
    let listed: Vec<(i64, Value)> = versions["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["attributes"]["version"].as_i64().unwrap(),
                v["attributes"]["data"].clone(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (3, json!({"pids_limit": 100, "memory_bytes": 104857600})),
            (2, json!({"pids_limit": 100})),
            (1, json!({})),
        ]
    );
    let events = app
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM events WHERE type = 'api:settings:update'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(events, 2);
}

#[tokio::test]
async fn invalid_settings_are_refused_pointing_at_the_key_and_change_nothing() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    let cases = [
        (
            json!({"runner_network": "host"}),
            "/data/attributes/data/runner_network",
        ),
        (
            json!({"step_timeout": 0}),
            "/data/attributes/data/step_timeout",
        ),
        (
            json!({"memory_bytes": 1000}),
            "/data/attributes/data/memory_bytes",
        ),
        (
            json!({"runner_image": "not an image"}),
            "/data/attributes/data/runner_image",
        ),
        (json!({"paralel": true}), "/data/attributes/data/paralel"),
    ];
    for (data, pointer) in cases {
        let response = patch(&app, ENVIRONMENT, data.clone(), None).await;

        let body = expect_status(response, 422).await;
        assert_eq!(first_error(&body)["source"]["pointer"], pointer, "{data}");
    }
    let current = expect_status(app.get(ENVIRONMENT).await, 200).await;
    assert_eq!(current["data"]["attributes"]["version"], 1);
    assert_eq!(current["data"]["attributes"]["data"], json!({}));
    let missing = app
        .get("/api/projects/demo/environments/nope/settings")
        .await;
    assert_eq!(missing.status(), 404);
}

//! A change read with its steps, and a step read with the properties it ran with.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestApp, expect_status, spawn_app};

async fn insert_step(
    app: &TestApp,
    change: Uuid,
    parent: Option<Uuid>,
    position: i32,
    name: &str,
) -> Uuid {
    let id = Uuid::now_v7();
    app.db()
        .await
        .execute(
            "INSERT INTO steps (id, change_id, parent_id, position, action, name, has_command, status_code, \
             project_properties_version, environment_properties_version) \
             VALUES ($1, $2, $3, $4, $5, $5, true, 'pending', 1, 1)",
            &[&id, &change, &parent, &position, &name],
        )
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn a_change_can_be_read_with_all_its_steps_included() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    let change = app.create_change().await;
    let root = insert_step(&app, change, None, 0, "default").await;
    let child = insert_step(&app, change, Some(root), 0, "build").await;

    let plain = expect_status(app.get(&format!("/api/changes/{change}")).await, 200).await;
    let document = expect_status(
        app.get(&format!("/api/changes/{change}?include=steps"))
            .await,
        200,
    )
    .await;

    assert!(plain["included"].is_null());
    let included = document["included"].as_array().unwrap();
    assert_eq!(included.len(), 2);
    let step = included
        .iter()
        .find(|s| s["id"] == child.to_string())
        .unwrap();
    assert_eq!(step["type"], "steps");
    assert_eq!(step["attributes"]["name"], "build");
    assert_eq!(step["attributes"]["status_code"], "pending");
    assert_eq!(step["attributes"]["child_execution_strategy"], "sequential");
    assert_eq!(step["attributes"]["project_properties_version"], 1);
    assert_eq!(
        step["relationships"]["parent"]["data"]["id"],
        root.to_string()
    );
    assert_eq!(
        step["relationships"]["change"]["data"]["id"],
        change.to_string()
    );
    let root_step = included
        .iter()
        .find(|s| s["id"] == root.to_string())
        .unwrap();
    assert!(root_step["relationships"]["parent"]["data"].is_null());
    expect_status(
        app.get(&format!("/api/changes/{change}?include=logs"))
            .await,
        400,
    )
    .await;
}

#[tokio::test]
async fn unknown_and_malformed_change_ids_are_not_found() {
    let app = spawn_app().await;

    expect_status(
        app.get(&format!("/api/changes/{}", Uuid::now_v7())).await,
        404,
    )
    .await;
    expect_status(app.get("/api/changes/not-a-uuid").await, 404).await;
    expect_status(app.get("/api/steps/not-a-uuid").await, 404).await;
}

#[tokio::test]
async fn a_step_shows_the_properties_it_ran_with() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    let change = app.create_change().await;
    let step = insert_step(&app, change, None, 0, "default").await;
    let merged = json!({ "app": { "port": 8080 } });
    let sealed = app
        .cipher()
        .encrypt_json(&merged, &gantry_shared::crypto::step_properties_aad(step));
    app.db()
        .await
        .execute(
            "UPDATE steps SET properties = $2 WHERE id = $1",
            &[&step, &sealed],
        )
        .await
        .unwrap();

    let document = expect_status(app.get(&format!("/api/steps/{step}")).await, 200).await;

    assert_eq!(document["data"]["attributes"]["properties"], merged);
    assert_eq!(document["data"]["attributes"]["name"], "default");
    assert_eq!(
        document["data"]["links"]["self"],
        format!("/api/steps/{step}")
    );
}

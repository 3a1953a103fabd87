//! `GET /api/changes/{id}/properties`: the properties versions a change used, read from history.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{
    TestApp, expect_status, first_error, properties_id, properties_path, spawn_app,
};

/// Sets the versions a change used, as the worker does when its first step is claimed.
async fn set_used_versions(app: &TestApp, change: Uuid, project: i64, environment: i64) {
    let sql = "UPDATE changes SET project_properties_version = $2, environment_properties_version = $3 \
               WHERE id = $1";
    app.db()
        .await
        .execute(sql, &[&change, &project, &environment])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_started_change_shows_the_versions_it_used_not_the_current_ones() {
    let app = spawn_app().await;
    let project = properties_path(&app.create_project("demo").await);
    let environment = properties_path(&app.create_environment("demo", "dev").await);
    app.create_git_remote("demo", "origin").await;
    app.patch_properties(&project, json!({ "a": 1 })).await;
    app.patch_properties(&environment, json!({ "e": "used" }))
        .await;
    let change = app.create_change().await;
    set_used_versions(&app, change, 2, 2).await;
    app.patch_properties(&project, json!({ "a": 2 })).await;

    let path = format!("/api/changes/{change}/properties");
    let document = expect_status(app.get(&path).await, 200).await;

    let data = &document["data"];
    assert_eq!(data["type"], "change_properties");
    assert_eq!(data["id"], change.to_string());
    assert_eq!(data["links"]["self"], path);
    assert_eq!(
        data["relationships"]["change"]["links"]["related"],
        format!("/api/changes/{change}")
    );
    assert_eq!(
        data["attributes"],
        json!({
            "project": { "properties_id": properties_id(&project), "version": 2, "data": { "a": 1 } },
            "environment": { "properties_id": properties_id(&environment), "version": 2, "data": { "e": "used" } },
        })
    );
    assert_eq!(document["meta"], json!({ "started": true }));
    let shown = expect_status(app.get(&format!("/api/changes/{change}")).await, 200).await;
    assert_eq!(shown["data"]["links"]["properties"], path);
}

#[tokio::test]
async fn a_change_that_has_not_started_shows_no_versions_and_says_why() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    let change = app.create_change().await;
    let path = format!("/api/changes/{change}/properties");

    let document = expect_status(app.get(&path).await, 200).await;

    for level in ["project", "environment"] {
        let used = &document["data"]["attributes"][level];
        assert!(used["properties_id"].is_string(), "{level}");
        assert!(
            used["version"].is_null() && used["data"].is_null(),
            "{level}"
        );
    }
    assert_eq!(document["meta"]["started"], false);
    assert_eq!(
        document["meta"]["detail"],
        format!(
            "change {change} has not started a step yet; the properties versions it uses are \
             recorded when its first step starts"
        )
    );
    let finish = "UPDATE changes SET status_code = 'cancelled', finished_at = now() WHERE id = $1";
    app.db().await.execute(finish, &[&change]).await.unwrap();
    let document = expect_status(app.get(&path).await, 200).await;
    assert_eq!(
        document["meta"]["detail"],
        format!("change {change} ended without starting a step, so it used no properties")
    );
}

#[tokio::test]
async fn the_properties_of_an_unknown_change_are_not_found() {
    let app = spawn_app().await;

    for id in [Uuid::now_v7().to_string(), "not-a-uuid".to_owned()] {
        let path = format!("/api/changes/{id}/properties");
        let document = expect_status(app.get(&path).await, 404).await;
        assert_eq!(
            first_error(&document)["detail"],
            format!("change `{id}` not found")
        );
    }
}

//! Properties: the in-use refusal, reserved-key validation and the audit event.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{
    expect_status, first_error, properties_document as document, properties_path, spawn_app,
};

#[tokio::test]
async fn properties_in_use_by_an_active_change_are_refused_with_409() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    let project = expect_status(app.get("/api/projects/demo").await, 200).await;
    let environment =
        expect_status(app.get("/api/projects/demo/environments/dev").await, 200).await;
    let change = app.create_change().await;
    app.set_change_status(change, "pending").await;

    for (owner, level) in [(&project, "project"), (&environment, "environment")] {
        let path = properties_path(owner);

        let response = app
            .patch_json(&path, &document(json!({ "a": 1 }), None))
            .await;

        let error = expect_status(response, 409).await;
        assert_eq!(
            first_error(&error)["detail"],
            format!(
                "The {level} properties are in use by an active change ({change}); retry when it has finished."
            )
        );
    }
    assert_eq!(app.count("properties_versions").await, 2);
}

#[tokio::test]
async fn properties_of_finished_changes_and_of_other_environments_can_be_edited() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    let other = app.create_environment("demo", "prod").await;
    let change: Uuid = app.create_change().await;
    app.set_change_status(change, "running").await;
    let other_path = properties_path(&other);

    let other_environment = app
        .patch_json(&other_path, &document(json!({ "a": 1 }), None))
        .await;
    app.set_change_status(change, "success").await;
    let project = expect_status(app.get("/api/projects/demo").await, 200).await;
    let project_path = properties_path(&project);
    let after_finish = app
        .patch_json(&project_path, &document(json!({ "b": 2 }), None))
        .await;

    expect_status(other_environment, 200).await;
    expect_status(after_finish, 200).await;
}

#[tokio::test]
async fn properties_data_must_be_an_object_with_valid_reserved_keys() {
    let app = spawn_app().await;
    let path = app.project_properties().await;
    let cases = [
        (json!([1, 2]), "/data/attributes/data"),
        (
            json!({ "gantry": { "env": { "PORT": 8080 } } }),
            "/data/attributes/data/gantry/env",
        ),
        (
            json!({ "gantry": { "files": { "/etc/passwd": { "content": "x" } } } }),
            "/data/attributes/data/gantry/files",
        ),
    ];

    for (data, pointer) in cases {
        let response = app.patch_json(&path, &document(data.clone(), None)).await;

        let error = expect_status(response, 422).await;
        assert_eq!(first_error(&error)["source"]["pointer"], pointer, "{data}");
    }
    assert_eq!(app.count("properties_versions").await, 1);
}

#[tokio::test]
async fn an_update_is_recorded_as_an_event_and_unknown_properties_are_not_found() {
    let app = spawn_app().await;
    let path = app.project_properties().await;

    expect_status(
        app.patch_json(&path, &document(json!({ "a": 1 }), None))
            .await,
        200,
    )
    .await;
    let missing = app
        .patch_json(
            &format!("/api/properties/{}", Uuid::now_v7()),
            &document(json!({}), None),
        )
        .await;

    expect_status(missing, 404).await;
    let (actor, _, payload) = app.event("api:properties:update").await;
    assert_eq!(actor, "admin");
    assert_eq!(payload["version"], 2);
}

/// The shared path-safety corpus at API write time: a refused path is a 422 naming the path and
/// the reason and writes nothing; an accepted path is stored.
#[tokio::test]
async fn the_path_safety_corpus_is_checked_when_properties_are_written() {
    let app = spawn_app().await;
    let path = app.project_properties().await;
    let corpus: serde_json::Value = serde_json::from_str(include_str!(
        "../../../shared/testdata/gantry_files_paths.json"
    ))
    .expect("the corpus is JSON");
    let mut accepted = 0;

    for case in corpus["cases"].as_array().expect("cases") {
        let file = case["path"]
            .as_str()
            .expect("a path")
            .replace("{home}", "/opt/gantry")
            .replace("{scratch}", "/tmp/scratch");
        let data = json!({ "gantry": { "files": { file.clone(): { "content": "x" } } } });

        let response = app.patch_json(&path, &document(data, None)).await;

        match case["refused"].as_str() {
            Some(reason) => {
                let error = expect_status(response, 422).await;
                let error = first_error(&error);
                let expected = format!("`gantry.files` path {file:?} is refused: {reason}");
                let detail = error["detail"].as_str().unwrap_or_default();
                assert!(detail.starts_with(&expected), "{file:?}: {detail}");
                assert_eq!(
                    error["source"]["pointer"],
                    "/data/attributes/data/gantry/files"
                );
            }
            None => {
                expect_status(response, 200).await;
                accepted += 1;
            }
        }
    }
    assert_eq!(app.count("properties_versions").await, 1 + accepted);
}

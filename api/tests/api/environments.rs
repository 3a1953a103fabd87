//! Environments: nested under their project, addressed by code.

use serde_json::json;

use crate::helpers::{expect_status, first_error, ids, spawn_app};

#[tokio::test]
async fn creating_an_environment_returns_it_with_its_properties_and_project() {
    let app = spawn_app().await;
    app.create_project("demo").await;
    let body = json!({ "data": { "type": "environments", "attributes": { "code": "dev", "name": "Development" } } });

    let response = app
        .post_json("/api/projects/demo/environments", &body)
        .await;

    let document = expect_status(response, 201).await;
    let data = &document["data"];
    assert_eq!(data["id"], "dev");
    assert_eq!(data["type"], "environments");
    assert_eq!(data["attributes"]["project_code"], "demo");
    assert_eq!(data["links"]["self"], "/api/projects/demo/environments/dev");
    assert_eq!(data["relationships"]["project"]["data"]["id"], "demo");
    let related = data["relationships"]["properties"]["links"]["related"]
        .as_str()
        .unwrap();
    expect_status(app.get(related).await, 200).await;
    assert_eq!(app.count("properties").await, 2);
}

#[tokio::test]
async fn environment_codes_are_unique_per_project_only() {
    let app = spawn_app().await;
    app.create_project("one").await;
    app.create_project("two").await;
    app.create_environment("one", "dev").await;
    app.create_environment("two", "dev").await;

    let response = app
        .post_json(
            "/api/projects/one/environments",
            &json!({ "data": { "attributes": { "code": "dev", "name": "Again" } } }),
        )
        .await;

    let document = expect_status(response, 409).await;
    assert_eq!(
        first_error(&document)["detail"],
        "an environment with code dev already exists in project one"
    );
}

#[tokio::test]
async fn invalid_environment_attributes_and_unknown_projects_are_refused() {
    let app = spawn_app().await;
    app.create_project("demo").await;

    let bad_code = app
        .post_json(
            "/api/projects/demo/environments",
            &json!({ "data": { "attributes": { "code": "Dev!", "name": "x" } } }),
        )
        .await;
    let no_project = app
        .post_json(
            "/api/projects/none/environments",
            &json!({ "data": { "attributes": { "code": "dev", "name": "x" } } }),
        )
        .await;

    assert_eq!(
        first_error(&expect_status(bad_code, 422).await)["source"]["pointer"],
        "/data/attributes/code"
    );
    expect_status(no_project, 404).await;
    assert_eq!(app.count("environments").await, 0);
}

#[tokio::test]
async fn environments_are_listed_shown_patched_and_deleted() {
    let app = spawn_app().await;
    app.create_project("demo").await;
    app.create_environment("demo", "prod").await;
    app.create_environment("demo", "dev").await;

    let list = expect_status(app.get("/api/projects/demo/environments").await, 200).await;
    let patched = app
        .patch_json(
            "/api/projects/demo/environments/dev",
            &json!({ "data": { "attributes": { "name": "Dev", "archived": true } } }),
        )
        .await;
    let deleted = app.delete("/api/projects/demo/environments/prod").await;

    assert_eq!(ids(&list), ["dev", "prod"]);
    let patched = expect_status(patched, 200).await;
    assert_eq!(patched["data"]["attributes"]["name"], "Dev");
    assert_eq!(patched["data"]["attributes"]["archived"], true);
    expect_status(deleted, 204).await;
    expect_status(app.get("/api/projects/demo/environments/prod").await, 404).await;
}

#[tokio::test]
async fn an_environment_with_changes_cannot_be_deleted() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    app.create_change().await;

    let response = app.delete("/api/projects/demo/environments/dev").await;

    expect_status(response, 409).await;
    expect_status(app.get("/api/projects/demo/environments/dev").await, 200).await;
}

//! Projects: create, read, list, update, delete, and their validation errors.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{expect_status, first_error, ids, spawn_app};

#[tokio::test]
async fn creating_a_project_returns_it_with_its_properties_and_records_an_event() {
    let app = spawn_app().await;
    let body = json!({ "data": { "type": "projects", "attributes": {
        "code": "demo", "name": "Demo Project", "description": "The demo" } } });

    let response = app.post_json("/api/projects", &body).await;

    assert_eq!(response.headers()["location"], "/api/projects/demo");
    let document = expect_status(response, 201).await;
    let data = &document["data"];
    assert_eq!(data["id"], "demo");
    assert_eq!(data["type"], "projects");
    assert_eq!(data["attributes"]["name"], "Demo Project");
    assert_eq!(data["attributes"]["description"], "The demo");
    assert_eq!(data["attributes"]["archived"], false);
    assert_eq!(data["links"]["settings"], "/api/projects/demo/settings");
    assert_eq!(data["links"]["self"], "/api/projects/demo");
    let properties_id = data["relationships"]["properties"]["data"]["id"]
        .as_str()
        .unwrap();
    assert_eq!(
        data["relationships"]["properties"]["links"]["related"],
        format!("/api/properties/{properties_id}")
    );
    let properties = expect_status(
        app.get(&format!("/api/properties/{properties_id}")).await,
        200,
    )
    .await;
    assert_eq!(properties["data"]["attributes"]["version"], 1);
    assert_eq!(properties["data"]["attributes"]["data"], json!({}));
    let (actor, target, _) = app.event("api:projects:create").await;
    assert_eq!((actor, target), ("admin".into(), "/projects/demo".into()));
}

#[tokio::test]
async fn a_duplicate_project_code_is_a_conflict() {
    let app = spawn_app().await;
    app.create_project("demo").await;

    let response = app
        .post_json(
            "/api/projects",
            &json!({ "data": { "attributes": { "code": "demo", "name": "Again" } } }),
        )
        .await;

    let document = expect_status(response, 409).await;
    assert_eq!(
        first_error(&document)["detail"],
        "a project with code demo already exists"
    );
    assert_eq!(app.count("projects").await, 1);
    assert_eq!(app.count("properties").await, 1);
}

#[tokio::test]
async fn invalid_project_attributes_are_refused_with_a_pointer() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({ "code": "Demo", "name": "x" }),
            "/data/attributes/code",
        ),
        (json!({ "code": "", "name": "x" }), "/data/attributes/code"),
        (
            json!({ "code": "demo", "name": "" }),
            "/data/attributes/name",
        ),
        (
            json!({ "code": "demo", "name": "x".repeat(201) }),
            "/data/attributes/name",
        ),
        (
            json!({ "code": "demo", "name": 5 }),
            "/data/attributes/name",
        ),
        (json!({ "code": "demo" }), "/data/attributes"),
        (
            json!({ "code": "demo", "name": "x", "archived": true }),
            "/data/attributes/archived",
        ),
    ];

    for (attributes, pointer) in cases {
        let response = app
            .post_json(
                "/api/projects",
                &json!({ "data": { "attributes": attributes } }),
            )
            .await;

        let document = expect_status(response, 422).await;
        assert_eq!(
            first_error(&document)["source"]["pointer"],
            pointer,
            "{attributes}"
        );
    }
    assert_eq!(app.count("projects").await, 0);
}

#[tokio::test]
async fn projects_are_listed_by_code_and_paged() {
    let app = spawn_app().await;
    for code in ["gamma", "alpha", "beta"] {
        app.create_project(code).await;
    }

    let first = expect_status(app.get("/api/projects?limit=2").await, 200).await;
    let second = app.next_page(&first).await;

    assert_eq!(ids(&first), ["alpha", "beta"]);
    assert_eq!(ids(&second), ["gamma"]);
    assert!(second["links"]["next"].is_null());
}

#[tokio::test]
async fn an_unknown_or_malformed_project_code_is_not_found() {
    let app = spawn_app().await;

    for path in ["/api/projects/nothing", "/api/projects/NOT-A-CODE"] {
        let document = expect_status(app.get(path).await, 404).await;

        assert_eq!(first_error(&document)["status"], "404");
    }
}

#[tokio::test]
async fn patching_a_project_changes_only_the_given_attributes() {
    let app = spawn_app().await;
    app.post_json("/api/projects", &json!({ "data": { "attributes": { "code": "demo", "name": "Demo", "description": "old" } } })).await;

    let response = app
        .patch_json(
            "/api/projects/demo",
            &json!({ "data": { "attributes": { "name": "Renamed", "archived": true } } }),
        )
        .await;

    let document = expect_status(response, 200).await;
    let attributes = &document["data"]["attributes"];
    assert_eq!(attributes["name"], "Renamed");
    assert_eq!(attributes["archived"], true);
    assert_eq!(attributes["description"], "old");
    let cleared = app
        .patch_json(
            "/api/projects/demo",
            &json!({ "data": { "attributes": { "description": null } } }),
        )
        .await;
    assert!(expect_status(cleared, 200).await["data"]["attributes"]["description"].is_null());
}

#[tokio::test]
async fn a_project_code_cannot_be_changed_and_a_name_cannot_be_null() {
    let app = spawn_app().await;
    app.create_project("demo").await;

    let code = app
        .patch_json(
            "/api/projects/demo",
            &json!({ "data": { "attributes": { "code": "other" } } }),
        )
        .await;
    let name = app
        .patch_json(
            "/api/projects/demo",
            &json!({ "data": { "attributes": { "name": null } } }),
        )
        .await;

    assert_eq!(
        first_error(&expect_status(code, 422).await)["source"]["pointer"],
        "/data/attributes/code"
    );
    assert_eq!(
        first_error(&expect_status(name, 422).await)["source"]["pointer"],
        "/data/attributes/name"
    );
    assert_eq!(
        expect_status(app.get("/api/projects/demo").await, 200).await["data"]["attributes"]["name"],
        "Project demo"
    );
}

#[tokio::test]
async fn a_project_without_changes_can_be_deleted_with_its_properties() {
    let app = spawn_app().await;
    app.create_project("demo").await;
    app.create_environment("demo", "dev").await;

    let response = app.delete("/api/projects/demo").await;

    expect_status(response, 204).await;
    expect_status(app.get("/api/projects/demo").await, 404).await;
    assert_eq!(app.count("properties").await, 0);
    assert_eq!(app.count("environments").await, 0);
}

#[tokio::test]
async fn a_project_with_changes_cannot_be_deleted() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    let change: Uuid = app.create_change().await;

    let response = app.delete("/api/projects/demo").await;

    let document = expect_status(response, 409).await;
    assert!(
        first_error(&document)["detail"]
            .as_str()
            .unwrap()
            .contains("has changes")
    );
    expect_status(app.get(&format!("/api/changes/{change}")).await, 200).await;
}

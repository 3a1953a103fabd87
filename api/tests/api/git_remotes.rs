//! Git remotes: URL rules, hidden credentials, ciphertext at rest.

use gantry_shared::crypto::git_remote_aad;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestApp, expect_status, first_error, spawn_app, uuid_of};

async fn stored_credentials(app: &TestApp, id: Uuid) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let row = app
        .db()
        .await
        .query_one(
            "SELECT password, ssh_key_data FROM git_remotes WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn credentials_are_hidden_in_responses_and_encrypted_at_rest() {
    let app = spawn_app().await;
    app.create_project("demo").await;
    let body = json!({ "data": { "attributes": {
        "name": "origin", "url": "https://example.com/demo.git", "user": "deploy",
        "password": "canary-password-123", "ssh_key_data": "-----BEGIN canary-key-456-----" } } });

    let response = app.post_json("/api/projects/demo/git_remotes", &body).await;

    let document = expect_status(response, 201).await;
    let attributes = &document["data"]["attributes"];
    assert_eq!(attributes["password"], "{{hidden}}");
    assert_eq!(attributes["ssh_key_data"], "{{hidden}}");
    assert_eq!(attributes["user"], "deploy");
    let id = uuid_of(&document);
    let (password, key) = stored_credentials(&app, id).await;
    let (password, key) = (password.unwrap(), key.unwrap());
    assert!(
        !password.windows(6).any(|w| w == b"canary") && !key.windows(6).any(|w| w == b"canary")
    );
    let cipher = app.cipher();
    assert_eq!(
        cipher
            .decrypt_str(&password, &git_remote_aad(id, "password"))
            .unwrap(),
        "canary-password-123"
    );
    assert!(
        cipher
            .decrypt_str(&password, &git_remote_aad(id, "ssh_key_data"))
            .is_err()
    );
    let shown = expect_status(
        app.get(&format!("/api/projects/demo/git_remotes/{id}"))
            .await,
        200,
    )
    .await;
    assert!(!shown.to_string().contains("canary"));
}

#[tokio::test]
async fn a_remote_without_credentials_shows_them_as_null() {
    let app = spawn_app().await;
    app.create_project("demo").await;

    let document = app.create_git_remote("demo", "origin").await;

    assert!(document["data"]["attributes"]["password"].is_null());
    assert!(document["data"]["attributes"]["ssh_key_data"].is_null());
    assert_eq!(
        stored_credentials(&app, uuid_of(&document)).await,
        (None, None)
    );
}

#[tokio::test]
async fn urls_with_other_schemes_are_refused_with_a_clear_message() {
    let app = spawn_app().await;
    app.create_project("demo").await;

    for url in [
        "http://example.com/demo.git",
        "ftp://example.com/demo.git",
        "ext::sh -c evil",
        "relative/path",
    ] {
        let body = json!({ "data": { "attributes": { "name": "origin", "url": url } } });

        let document = expect_status(
            app.post_json("/api/projects/demo/git_remotes", &body).await,
            422,
        )
        .await;

        assert_eq!(
            first_error(&document)["source"]["pointer"],
            "/data/attributes/url",
            "{url}"
        );
        assert!(
            first_error(&document)["detail"]
                .as_str()
                .unwrap()
                .starts_with("url "),
            "{url}"
        );
    }
    assert_eq!(app.count("git_remotes").await, 0);
}

#[tokio::test]
async fn local_paths_file_ssh_and_scp_like_urls_are_accepted() {
    let app = spawn_app().await;
    app.create_project("demo").await;
    let urls = [
        "/srv/git/demo.git",
        "file:///srv/git/demo.git",
        "ssh://git@example.com/demo.git",
        "git@example.com:org/demo.git",
    ];

    for (index, url) in urls.iter().enumerate() {
        let body =
            json!({ "data": { "attributes": { "name": format!("remote-{index}"), "url": url } } });

        let document = expect_status(
            app.post_json("/api/projects/demo/git_remotes", &body).await,
            201,
        )
        .await;

        assert_eq!(document["data"]["attributes"]["url"], *url);
    }
}

#[tokio::test]
async fn remote_names_are_unique_per_project() {
    let app = spawn_app().await;
    app.create_project("demo").await;
    app.create_git_remote("demo", "origin").await;

    let body = json!({ "data": { "attributes": { "name": "origin", "url": "/srv/other.git" } } });
    let document = expect_status(
        app.post_json("/api/projects/demo/git_remotes", &body).await,
        409,
    )
    .await;

    assert_eq!(
        first_error(&document)["detail"],
        "a git remote named origin already exists in project demo"
    );
}

#[tokio::test]
async fn patching_credentials_keeps_hidden_ones_and_clears_null_ones() {
    let app = spawn_app().await;
    app.create_project("demo").await;
    let body = json!({ "data": { "attributes": { "name": "origin", "url": "/srv/a.git", "password": "p1", "ssh_key_data": "k1" } } });
    let id = uuid_of(
        &expect_status(
            app.post_json("/api/projects/demo/git_remotes", &body).await,
            201,
        )
        .await,
    );
    let (password_before, _) = stored_credentials(&app, id).await;
    let path = format!("/api/projects/demo/git_remotes/{id}");

    let patch = json!({ "data": { "attributes": { "password": "{{hidden}}", "ssh_key_data": null, "url": "/srv/b.git" } } });
    let document = expect_status(app.patch_json(&path, &patch).await, 200).await;

    assert_eq!(document["data"]["attributes"]["password"], "{{hidden}}");
    assert!(document["data"]["attributes"]["ssh_key_data"].is_null());
    assert_eq!(document["data"]["attributes"]["url"], "/srv/b.git");
    let (password_after, key_after) = stored_credentials(&app, id).await;
    assert_eq!(password_after, password_before);
    assert_eq!(key_after, None);
}

#[tokio::test]
async fn a_remote_name_cannot_be_changed_and_a_remote_can_be_deleted() {
    let app = spawn_app().await;
    app.create_project("demo").await;
    let id = uuid_of(&app.create_git_remote("demo", "origin").await);
    let path = format!("/api/projects/demo/git_remotes/{id}");

    let rename = app
        .patch_json(
            &path,
            &json!({ "data": { "attributes": { "name": "fork" } } }),
        )
        .await;
    let deleted = app.delete(&path).await;

    assert_eq!(
        first_error(&expect_status(rename, 422).await)["source"]["pointer"],
        "/data/attributes/name"
    );
    expect_status(deleted, 204).await;
    expect_status(app.get(&path).await, 404).await;
    expect_status(
        app.get("/api/projects/demo/git_remotes/not-a-uuid").await,
        404,
    )
    .await;
}

#[tokio::test]
async fn a_remote_used_by_an_unfinished_change_cannot_be_deleted() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    app.create_change().await;
    let list = expect_status(app.get("/api/projects/demo/git_remotes").await, 200).await;
    let id = list["data"][0]["id"].as_str().unwrap().to_owned();

    let response = app
        .delete(&format!("/api/projects/demo/git_remotes/{id}"))
        .await;

    expect_status(response, 409).await;
    assert_eq!(app.count("git_remotes").await, 1);
}

//! Properties: optimistic versioning (If-Match or `version`), JSON Patch bodies and the history.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, expect_status, first_error, properties_document as document, spawn_app,
};

async fn patch_if_match(
    app: &TestApp,
    path: &str,
    if_match: &str,
    body: &Value,
) -> reqwest::Response {
    app.request(Method::PATCH, path)
        .header("If-Match", if_match)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn json_patch(app: &TestApp, path: &str, ops: &Value) -> reqwest::Response {
    app.request(Method::PATCH, path)
        .header("Content-Type", "application/json-patch+json")
        .body(ops.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_patch_with_the_current_if_match_succeeds_and_bumps_the_version() {
    let app = spawn_app().await;
    let path = app.project_properties().await;
    let data =
        json!({ "basic_prop": "some value", "parent_prop": { "nested_prop": "some other value" } });

    let response = patch_if_match(&app, &path, "\"1\"", &document(data.clone(), None)).await;

    let updated = expect_status(response, 200).await;
    assert_eq!(updated["data"]["attributes"]["version"], 2);
    assert_eq!(updated["data"]["attributes"]["data"], data);
    let shown = expect_status(app.get(&path).await, 200).await;
    assert_eq!(shown["data"]["attributes"]["version"], 2);
    assert_eq!(shown["data"]["attributes"]["data"], data);
    assert_eq!(
        shown["data"]["links"]["versions"],
        format!("{path}/versions")
    );
}

#[tokio::test]
async fn a_stale_if_match_is_refused_with_412_and_the_exact_message() {
    let app = spawn_app().await;
    let path = app.project_properties().await;
    expect_status(
        patch_if_match(&app, &path, "1", &document(json!({ "a": 1 }), None)).await,
        200,
    )
    .await;

    let response = patch_if_match(&app, &path, "\"1\"", &document(json!({ "a": 2 }), None)).await;

    let error = expect_status(response, 412).await;
    assert_eq!(
        first_error(&error)["detail"],
        "Version mismatch, the properties are now at version 2 whilst these modifications were made to version 1. \
         Please fetch the latest version of the properties and reapply the edits."
    );
    let shown = expect_status(app.get(&path).await, 200).await;
    assert_eq!(shown["data"]["attributes"]["data"], json!({ "a": 1 }));
    assert_eq!(app.count("properties_versions").await, 2);
}

#[tokio::test]
async fn a_version_in_the_body_works_like_if_match() {
    let app = spawn_app().await;
    let path = app.project_properties().await;

    let current = app
        .patch_json(&path, &document(json!({ "a": 1 }), Some(1)))
        .await;
    let stale = app
        .patch_json(&path, &document(json!({ "a": 2 }), Some(1)))
        .await;

    assert_eq!(
        expect_status(current, 200).await["data"]["attributes"]["version"],
        2
    );
    let error = expect_status(stale, 412).await;
    assert!(
        first_error(&error)["detail"]
            .as_str()
            .unwrap()
            .starts_with("Version mismatch, the properties are now at version 2")
    );
}

#[tokio::test]
async fn if_match_and_body_version_that_disagree_are_a_bad_request() {
    let app = spawn_app().await;
    let path = app.project_properties().await;

    let response =
        patch_if_match(&app, &path, "\"1\"", &document(json!({ "a": 1 }), Some(2))).await;

    expect_status(response, 400).await;
    assert_eq!(app.count("properties_versions").await, 1);
}

#[tokio::test]
async fn a_patch_without_a_version_is_unconditional() {
    let app = spawn_app().await;
    let path = app.project_properties().await;

    for value in 1..=3 {
        let response = app
            .patch_json(&path, &document(json!({ "n": value }), None))
            .await;

        assert_eq!(
            expect_status(response, 200).await["data"]["attributes"]["version"],
            value + 1
        );
    }
}

#[tokio::test]
async fn a_json_patch_body_is_applied_to_the_current_document() {
    let app = spawn_app().await;
    let path = app.project_properties().await;
    app.patch_json(
        &path,
        &document(json!({ "keep": true, "list": [1, 2] }), None),
    )
    .await;

    let ops = json!([{ "op": "add", "path": "/new_element", "value": "test_value" }, { "op": "remove", "path": "/list" }]);
    let response = json_patch(&app, &path, &ops).await;

    let updated = expect_status(response, 200).await;
    assert_eq!(updated["data"]["attributes"]["version"], 3);
    assert_eq!(
        updated["data"]["attributes"]["data"],
        json!({ "keep": true, "new_element": "test_value" })
    );
}

#[tokio::test]
async fn a_json_patch_that_does_not_apply_is_refused_naming_the_operation() {
    let app = spawn_app().await;
    let path = app.project_properties().await;

    let ops = json!([{ "op": "add", "path": "/a", "value": 1 }, { "op": "replace", "path": "/missing/key", "value": 2 }]);
    let response = json_patch(&app, &path, &ops).await;

    let error = expect_status(response, 422).await;
    let detail = first_error(&error)["detail"].as_str().unwrap();
    assert!(
        detail.contains("replace") && detail.contains("/missing/key"),
        "{detail}"
    );
    assert_eq!(
        expect_status(app.get(&path).await, 200).await["data"]["attributes"]["version"],
        1
    );
}

#[tokio::test]
async fn the_version_history_is_contiguous_and_each_version_returns_what_was_written() {
    let app = spawn_app().await;
    let path = app.project_properties().await;
    let mut written = vec![json!({})];
    for n in 1..=4 {
        let data = json!({ "n": n });
        expect_status(
            app.patch_json(&path, &document(data.clone(), Some(n)))
                .await,
            200,
        )
        .await;
        written.push(data);
    }

    let first = expect_status(app.get(&format!("{path}/versions?limit=3")).await, 200).await;
    let second = app.next_page(&first).await;

    let versions: Vec<i64> = [&first, &second]
        .iter()
        .flat_map(|page| {
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["attributes"]["version"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(versions, [5, 4, 3, 2, 1]);
    assert_eq!(first["data"][0]["attributes"]["created_by"], "admin");
    for (index, expected) in written.iter().enumerate() {
        let version = expect_status(
            app.get(&format!("{path}/versions/{}", index + 1)).await,
            200,
        )
        .await;
        assert_eq!(version["data"]["attributes"]["data"], *expected);
        assert_eq!(version["data"]["attributes"]["version"], index as i64 + 1);
    }
    expect_status(app.get(&format!("{path}/versions/6")).await, 404).await;
    expect_status(app.get(&format!("{path}/versions/zero")).await, 404).await;
}

/// RELIABILITY S10: concurrent read-modify-write cycles with If-Match, retrying on 412.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_with_if_match_lose_nothing_and_keep_versions_contiguous() {
    let app = std::sync::Arc::new(spawn_app().await);
    let path = app.project_properties().await;
    let (clients, increments) = (20, 10);

    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (app, path) = (app.clone(), path.clone());
            tokio::spawn(async move {
                for _ in 0..increments {
                    loop {
                        let current = expect_status(app.get(&path).await, 200).await;
                        let version = current["data"]["attributes"]["version"].as_i64().unwrap();
                        let n = current["data"]["attributes"]["data"]["n"]
                            .as_i64()
                            .unwrap_or(0);
                        let body = document(json!({ "n": n + 1 }), None);
                        let response =
                            patch_if_match(&app, &path, &format!("\"{version}\""), &body).await;
                        match response.status().as_u16() {
                            200 => break,
                            412 => continue,
                            other => panic!("unexpected status {other}"),
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    let current = expect_status(app.get(&path).await, 200).await;
    assert_eq!(
        current["data"]["attributes"]["data"]["n"],
        clients * increments
    );
    assert_eq!(
        current["data"]["attributes"]["version"],
        clients * increments + 1
    );
    let versions: Vec<i64> = app
        .db()
        .await
        .query(
            "SELECT version FROM properties_versions ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        versions,
        (1..=clients * increments + 1).collect::<Vec<i64>>()
    );
}

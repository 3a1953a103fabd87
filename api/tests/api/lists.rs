//! Log lines and the audit log.

use gantry_shared::logs::{self, Line, Stream};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{TestApp, expect_status, first_error, spawn_app};

/// Appends lines to the change's log as the worker does (numbered in order).
async fn insert_log_lines(app: &TestApp, change: Uuid, step: Option<Uuid>, texts: &[&str]) {
    let lines: Vec<Line> = texts
        .iter()
        .map(|text| Line {
            at: chrono::Utc::now(),
            stream: Stream::Stdout,
            text: text.to_string(),
        })
        .collect();
    logs::append(&app.db().await, change, step, &lines)
        .await
        .unwrap();
}

pub fn texts(document: &Value) -> Vec<String> {
    document["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["attributes"]["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn change_log_lines_are_read_in_order_and_paged_by_their_number() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    let change = app.create_change().await;
    insert_log_lines(&app, change, None, &["one", "two", "three"]).await;

    let first = expect_status(
        app.get(&format!("/api/changes/{change}/log_lines?limit=2"))
            .await,
        200,
    )
    .await;
    let second = app.next_page(&first).await;

    assert_eq!(texts(&first), ["one", "two"]);
    assert_eq!(texts(&second), ["three"]);
    assert_eq!(first["data"][0]["type"], "log_lines");
    assert_eq!(first["data"][0]["attributes"]["stream"], "stdout");
    assert!(first["data"][0]["attributes"]["logged_at"].is_string());
    let seqs: Vec<i64> = [&first, &second]
        .iter()
        .flat_map(|page| page["data"].as_array().unwrap().clone())
        .map(|l| l["attributes"]["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    let after_last = expect_status(
        app.get(&format!("/api/changes/{change}/log_lines?page[after]=3"))
            .await,
        200,
    )
    .await;
    assert!(texts(&after_last).is_empty());
}

#[tokio::test]
async fn step_log_lines_hold_only_that_steps_lines() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    let change = app.create_change().await;
    let step = Uuid::now_v7();
    app.db()
        .await
        .execute(
            "INSERT INTO steps (id, change_id, position, action, name, has_command, status_code) \
             VALUES ($1, $2, 0, 'default', 'default', true, 'running')",
            &[&step, &change],
        )
        .await
        .unwrap();
    insert_log_lines(&app, change, None, &["===> planning"]).await;
    insert_log_lines(&app, change, Some(step), &["hello"]).await;

    let document = expect_status(app.get(&format!("/api/steps/{step}/log_lines")).await, 200).await;

    assert_eq!(texts(&document), ["hello"]);
    assert_eq!(
        document["data"][0]["attributes"]["step_id"],
        step.to_string()
    );
    expect_status(
        app.get(&format!("/api/steps/{}/log_lines", Uuid::now_v7()))
            .await,
        404,
    )
    .await;
    expect_status(
        app.get(&format!("/api/changes/{change}/log_lines?page[after]=x"))
            .await,
        400,
    )
    .await;
}

#[tokio::test]
async fn events_are_listed_newest_first_and_paged() {
    let app = spawn_app().await;
    for code in ["a", "b", "c"] {
        app.create_project(code).await;
    }

    let first = expect_status(app.get("/api/events?limit=2").await, 200).await;
    let second = app.next_page(&first).await;

    let targets: Vec<&str> = [&first, &second]
        .iter()
        .flat_map(|d| {
            d["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["attributes"]["target"].as_str().unwrap())
        })
        .collect();
    assert_eq!(targets, ["/projects/c", "/projects/b", "/projects/a"]);
    assert_eq!(first["data"][0]["type"], "events");
    assert_eq!(
        first["data"][0]["attributes"]["event_type"],
        "api:projects:create"
    );
    assert_eq!(first["data"][0]["attributes"]["actor"], "admin");
}

#[tokio::test]
async fn events_are_filtered_by_type_target_actor_and_time() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    let change = app.create_change().await;
    let middle = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    expect_status(app.delete(&format!("/api/changes/{change}")).await, 204).await;
    app.create_project("other").await;
    let listed = |query: String| {
        let app = &app;
        async move {
            let page = expect_status(app.get(&format!("/api/events?{query}")).await, 200).await;
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["attributes"]["event_type"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339().replace('+', "%2B");

    assert_eq!(
        listed(format!("filter[target_eq]=/changes/{change}")).await,
        [
            "api:changes:cancel",
            "change:cancelled",
            "api:changes:create"
        ]
    );
    assert_eq!(
        listed("filter[event_type_in]=api:projects:create,change:cancelled".into()).await,
        [
            "api:projects:create",
            "change:cancelled",
            "api:projects:create"
        ]
    );
    assert_eq!(
        listed(format!(
            "filter[created_at_gt]={}&filter[event_type_eq]=api:projects:create",
            at(middle)
        ))
        .await,
        ["api:projects:create"]
    );
    assert_eq!(
        listed(format!("filter[created_at_lt]={}", at(middle)))
            .await
            .last()
            .unwrap(),
        "api:projects:create"
    );
    assert!(listed("filter[actor_eq]=nobody".into()).await.is_empty());
    assert_eq!(
        listed("filter[actor_eq]=gantry".into()).await,
        Vec::<String>::new()
    );
    for bad in ["filter[created_at_gt]=yesterday", "filter[kind_eq]=x"] {
        assert_eq!(
            app.get(&format!("/api/events?{bad}")).await.status(),
            400,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn a_nul_character_in_a_cursor_or_a_filter_is_a_400_naming_the_parameter() {
    let app = spawn_app().await;

    for path in [
        "/api/secrets?page%5Bafter%5D=a%00b",
        "/api/projects?page%5Bafter%5D=%00",
        "/api/changes?filter%5Baction_eq%5D=x%00",
    ] {
        let body = expect_status(app.get(path).await, 400).await;
        assert!(
            first_error(&body)["detail"]
                .as_str()
                .unwrap()
                .contains("NUL"),
            "{path}: {body}"
        );
    }
}

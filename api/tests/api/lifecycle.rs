//! Cancel, retry and continue as the API alone does them (no worker): what they write, what they
//! refuse and the messages they leave for the workers. End to end, through Docker, in the
//! worker's `lifecycle` tests.

use gantry_shared::messages::Message;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, expect_status, first_error, spawn_app, uuid_of};

/// Inserts a step of `change` in `status` behind the API's back, as a planner would.
async fn insert_step(app: &TestApp, change: Uuid, parent: Option<Uuid>, status: &str) -> Uuid {
    let id = Uuid::now_v7();
    let position = app
        .db()
        .await
        .query_one(
            "SELECT count(*)::int FROM steps WHERE change_id = $1",
            &[&change],
        )
        .await
        .unwrap()
        .get::<_, i32>(0);
    app.db()
        .await
        .execute(
            "INSERT INTO steps (id, change_id, parent_id, position, action, name, has_command, status_code) \
             VALUES ($1, $2, $3, $4, 'job', 'job', true, $5)",
            &[&id, &change, &parent, &position, &status],
        )
        .await
        .unwrap();
    id
}

async fn statuses(app: &TestApp, change: Uuid) -> Vec<String> {
    app.db()
        .await
        .query(
            "SELECT status_code FROM steps WHERE change_id = $1 ORDER BY position",
            &[&change],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn change_status(app: &TestApp, change: Uuid) -> String {
    let document = expect_status(app.get(&format!("/api/changes/{change}")).await, 200).await;
    document["data"]["attributes"]["status_code"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn cancelling_cancels_every_unfinished_step_keeps_finished_ones_and_tells_the_workers() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    let change = app.create_change().await;
    app.set_change_status(change, "running").await;
    let root = insert_step(&app, change, None, "running").await;
    for status in ["success", "running", "queued", "pending", "waiting"] {
        insert_step(&app, change, Some(root), status).await;
    }
    let before = app.outbox().await.len();

    let response = app.delete(&format!("/api/changes/{change}")).await;

    assert_eq!(response.status(), 204);
    assert_eq!(change_status(&app, change).await, "cancelled");
    assert_eq!(
        statuses(&app, change).await,
        [
            "cancelled",
            "success",
            "cancelled",
            "cancelled",
            "cancelled",
            "cancelled"
        ]
    );
    let finished: bool = app
        .db()
        .await
        .query_one(
            "SELECT finished_at IS NOT NULL FROM changes WHERE id = $1",
            &[&change],
        )
        .await
        .unwrap()
        .get(0);
    assert!(finished);
    let environment: Uuid = app
        .db()
        .await
        .query_one(
            "SELECT environment_id FROM changes WHERE id = $1",
            &[&change],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        app.outbox().await[before..],
        [
            Message::StopChangeV1 { change_id: change },
            Message::StartNextChangesV1 {
                environment_id: environment
            }
        ]
    );
    let (actor, target, payload) = app.event("api:changes:cancel").await;
    assert_eq!(
        (actor.as_str(), target),
        ("admin", format!("/changes/{change}"))
    );
    assert_eq!(payload, json!({"from": "running", "steps_cancelled": 5}));
    let step_events: i64 = app
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM events WHERE type = 'step:cancelled' AND actor = 'admin'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(step_events, 5);
    let log = expect_status(
        app.get(&format!("/api/changes/{change}/log_lines")).await,
        200,
    )
    .await;
    assert_eq!(
        log["data"][0]["attributes"]["text"],
        "Change cancelled by admin: 5 unfinished step(s) cancelled"
    );
}

#[tokio::test]
async fn a_change_not_yet_planned_is_cancelled_too() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    let change = app.create_change().await;

    let response = app.delete(&format!("/api/changes/{change}")).await;

    assert_eq!(response.status(), 204);
    assert_eq!(change_status(&app, change).await, "cancelled");
}

#[tokio::test]
async fn cancelling_a_final_change_is_refused_with_422_and_changes_nothing() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    for status in ["success", "error", "cancelled"] {
        let change = app.create_change().await;
        app.set_change_status(change, status).await;
        let events = app.count("events").await;

        let response = app.delete(&format!("/api/changes/{change}")).await;

        let body = expect_status(response, 422).await;
        assert_eq!(
            first_error(&body)["detail"],
            format!("the change is {status}: only a change that has not finished can be cancelled")
        );
        assert_eq!(change_status(&app, change).await, status);
        assert_eq!(app.count("events").await, events);
    }
    let unknown = app
        .delete(&format!("/api/changes/{}", Uuid::now_v7()))
        .await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn a_retry_is_a_new_change_on_the_same_commit_linked_to_the_one_it_retries() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    let change = app.create_change().await;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    app.db()
        .await
        .execute(
            "UPDATE changes SET status_code = 'error', commit_sha = $2, metadata = '{\"ticket\": 7}' \
             WHERE id = $1",
            &[&change, &sha],
        )
        .await
        .unwrap();

    let response = app
        .post_json(&format!("/api/changes/{change}/retry"), &json!({}))
        .await;

    let created = expect_status(response, 201).await;
    let attributes = &created["data"]["attributes"];
    assert_eq!(attributes["status_code"], "initializing");
    assert_eq!(attributes["retried_from"], change.to_string());
    assert_eq!(attributes["commit_sha"], sha);
    assert_eq!(attributes["git_rev"], "main");
    assert_eq!(attributes["metadata"], json!({"ticket": 7}));
    let retry = uuid_of(&created);
    assert_ne!(retry, change);
    assert_eq!(
        app.outbox().await.last(),
        Some(&Message::PlanChangeV1 { change_id: retry })
    );
    let (actor, target, payload) = app.event("api:changes:retry").await;
    assert_eq!(
        (actor.as_str(), target),
        ("admin", format!("/changes/{retry}"))
    );
    assert_eq!(payload["retried_from"], change.to_string());
    assert_eq!(change_status(&app, change).await, "error");
}

#[tokio::test]
async fn only_a_change_that_failed_or_was_cancelled_is_retried() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    for status in ["initializing", "pending", "queued", "running", "success"] {
        let change = app.create_change().await;
        app.set_change_status(change, status).await;
        let changes = app.count("changes").await;

        let response = app
            .post_json(&format!("/api/changes/{change}/retry"), &json!({}))
            .await;

        let body = expect_status(response, 422).await;
        assert_eq!(
            first_error(&body)["detail"],
            format!(
                "the change is {status}: only a change that ended in error or was cancelled can be retried"
            )
        );
        assert_eq!(app.count("changes").await, changes);
    }
}

#[tokio::test]
async fn continuing_a_waiting_step_succeeds_it_and_asks_for_its_roll_up() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    let change = app.create_change().await;
    app.set_change_status(change, "running").await;
    let root = insert_step(&app, change, None, "running").await;
    let waiting = insert_step(&app, change, Some(root), "waiting").await;

    let response = app
        .post_json(&format!("/api/steps/{waiting}/continue"), &json!({}))
        .await;

    let step = expect_status(response, 200).await;
    assert_eq!(step["data"]["attributes"]["status_code"], "success");
    assert!(step["data"]["attributes"]["finished_at"].is_string());
    assert_eq!(
        app.outbox().await.last(),
        Some(&Message::RollUpV1 {
            change_id: change,
            step_id: waiting
        })
    );
    let (actor, target, _) = app.event("api:steps:continue").await;
    assert_eq!(
        (actor.as_str(), target),
        ("admin", format!("/steps/{waiting}"))
    );
    let (actor, _, payload) = app.event("step:success").await;
    assert_eq!(actor, "admin");
    assert_eq!(payload["from"], "waiting");
}

#[tokio::test]
async fn continuing_a_step_that_is_not_waiting_is_refused_with_422() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    let change = app.create_change().await;
    let running = insert_step(&app, change, None, "running").await;
    let messages = app.outbox().await.len();

    let response = app
        .post_json(&format!("/api/steps/{running}/continue"), &json!({}))
        .await;

    let body: Value = expect_status(response, 422).await;
    assert_eq!(
        first_error(&body)["detail"],
        "the step is running: it cannot continue"
    );
    assert_eq!(statuses(&app, change).await, ["running"]);
    assert_eq!(app.outbox().await.len(), messages);
    let unknown = app
        .post_json(
            &format!("/api/steps/{}/continue", Uuid::now_v7()),
            &json!({}),
        )
        .await;
    assert_eq!(unknown.status(), 404);
}

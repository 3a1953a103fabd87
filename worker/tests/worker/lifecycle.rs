//! The change lifecycle end to end (DESIGN §3): cancel, retry, wait steps, one change at a time per
//! environment (or several), through real containers.

use std::time::{Duration, Instant};

use bollard::query_parameters::InspectContainerOptions;
use chrono::{DateTime, Utc};
use gantry_testkit::TestStack;
use serde_json::{Value, json};

use crate::helpers::{assert_logged, assert_status, spawn_stack, step_named, step_statuses};

/// The containers (running or not) the steps of `change` were given to that still exist.
async fn containers_of(stack: &TestStack, change: &str) -> Vec<String> {
    let docker = gantry_worker::runner::connect_docker().await.unwrap();
    let mut existing = Vec::new();
    for name in stack.containers_of(change).await {
        if docker
            .inspect_container(&name, None::<InspectContainerOptions>)
            .await
            .is_ok()
        {
            existing.push(name);
        }
    }
    existing
}

/// Waits until `change` has `count` running containers.
async fn wait_for_containers(stack: &TestStack, change: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let running = stack
            .db()
            .await
            .query_one(
                "SELECT count(*) FROM steps WHERE change_id = $1::text::uuid AND status_code = 'running' \
                 AND has_command",
                &[&change],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        if running as usize == count && containers_of(stack, change).await.len() == count {
            // The containers exist; their processes start right after.
            tokio::time::sleep(Duration::from_millis(500)).await;
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {count} containers of {change}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Cancels `change`; returns how long its containers took to be gone after the request.
async fn cancel_and_time(stack: &TestStack, change: &str) -> Duration {
    let started = Instant::now();
    let (status, body) = stack
        .request(
            reqwest::Method::DELETE,
            &format!("/api/changes/{change}"),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    loop {
        if containers_of(stack, change).await.is_empty() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "containers left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status_of(stack: &TestStack, change: &str) -> String {
    let body = stack.get(&format!("/api/changes/{change}")).await;
    body["data"]["attributes"]["status_code"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_sleeping_step_kills_its_container_at_once_and_the_next_change_starts() {
    let mut stack = spawn_stack().await;
    stack
        .project_with_manifest(
            "actions:\n  default:\n    steps: [sleepy, never]\n  sleepy:\n    run: 'echo started; sleep 60'\n  never:\n    run: 'true'\n  quick:\n    run: 'echo quick'\n",
        )
        .await;
    let change = stack.create_change("default", "main").await;
    wait_for_containers(&stack, &change, 1).await;
    let next = stack.create_change("quick", "main").await;
    wait_for_status(&stack, &next, "pending").await;

    let gone = cancel_and_time(&stack, &change).await;

    assert!(gone < Duration::from_secs(2), "the container took {gone:?}");
    let document = stack.wait_final(&change).await;
    assert_status(&stack, &change, &document, "cancelled").await;
    assert_eq!(
        step_statuses(&document),
        [
            ("default".into(), "cancelled".into()),
            ("never".into(), "cancelled".into()),
            ("sleepy".into(), "cancelled".into()),
        ]
    );
    let next_document = stack.wait_final(&next).await;
    assert_status(&stack, &next, &next_document, "success").await;
    let log = stack.log(&change).await;
    assert_logged(
        &log,
        "Change cancelled by admin: 3 unfinished step(s) cancelled",
    );
    assert_logged(
        &log,
        "===> Step \"sleepy\" was cancelled with its change: its container was stopped",
    );
    let (status, body) = stack
        .request(
            reqwest::Method::DELETE,
            &format!("/api/changes/{change}"),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_parallel_change_kills_every_running_container() {
    let mut stack = spawn_stack().await;
    stack
        .project_with_manifest(
            "actions:\n  default:\n    steps: [a, b, c]\n    run_as: parallel\n  a:\n    run: 'sleep 60'\n  b:\n    run: 'sleep 60'\n  c:\n    run: 'sleep 60'\n",
        )
        .await;
    let change = stack.create_change("default", "main").await;
    wait_for_containers(&stack, &change, 3).await;

    let gone = cancel_and_time(&stack, &change).await;

    assert!(
        gone < Duration::from_secs(2),
        "the containers took {gone:?}"
    );
    let document = stack.wait_final(&change).await;
    assert!(
        step_statuses(&document)
            .iter()
            .all(|(_, status)| status == "cancelled"),
        "{document}"
    );
    stack.stop().await;
}

/// The second of three sequential steps fails until an environment property fixes it; the retry
/// copies the first as it ran and runs the other two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_copies_the_succeeded_step_and_runs_the_failed_one_and_the_rest() {
    let mut stack = spawn_stack().await;
    let (_, env_props) = stack
        .project_with_manifest(
            "actions:\n  default:\n    steps: [one, two, three]\n  one:\n    run: 'echo one'\n  two:\n    run: 'test \"$FIXED\" = yes'\n  three:\n    run: 'echo three'\n",
        )
        .await;
    let (failed, first) = stack.run_change("default", "main").await;
    assert_status(&stack, &failed, &first, "error").await;
    stack
        .set_properties(&env_props, json!({"gantry": {"env": {"FIXED": "yes"}}}))
        .await;

    let (status, created) = stack
        .request(
            reqwest::Method::POST,
            &format!("/api/changes/{failed}/retry"),
            None,
        )
        .await;

    assert_eq!(status, 201, "{created}");
    let retry = created["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["data"]["attributes"]["retried_from"], failed);
    let second = stack.wait_final(&retry).await;
    assert_status(&stack, &retry, &second, "success").await;
    assert_eq!(
        second["data"]["attributes"]["commit_sha"],
        first["data"]["attributes"]["commit_sha"]
    );
    let (old_one, new_one) = (step_named(&first, "one"), step_named(&second, "one"));
    assert_ne!(old_one["id"], new_one["id"]);
    for field in [
        "status_code",
        "started_at",
        "finished_at",
        "exit_code",
        "attempt",
    ] {
        assert_eq!(
            new_one["attributes"][field], old_one["attributes"][field],
            "the copied step's {field}"
        );
    }
    let retried_at = time(&second["data"]["attributes"]["created_at"]);
    for name in ["two", "three"] {
        let step = step_named(&second, name);
        assert_eq!(step["attributes"]["status_code"], "success", "{name}");
        assert!(
            time(&step["attributes"]["started_at"]) > retried_at,
            "{name} ran again"
        );
    }
    assert_eq!(
        step_named(&first, "three")["attributes"]["status_code"],
        "aborted"
    );
    let log = stack.log(&retry).await;
    assert_logged(
        &log,
        &format!("Retry of change {failed}: 1 step(s) copied as succeeded, 2 to run again"),
    );
    assert!(log.iter().any(|l| l == "three"), "{log:#?}");
    assert!(
        !log.iter().any(|l| l == "one"),
        "the copied step did not run: {log:#?}"
    );
    assert_eq!(status_of(&stack, &failed).await, "error");
    stack.stop().await;
}

/// Two changes of one environment run one after the other, in creation order; with
/// `allow_parallel_changes` on the environment they overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_of_one_environment_run_in_creation_order_unless_parallel_changes_are_allowed() {
    let mut stack = spawn_stack().await;
    stack
        .project_with_manifest("actions:\n  default:\n    run: 'sleep 2'\n")
        .await;
    let span = |document: &Value| {
        (
            time(&document["data"]["attributes"]["started_at"]),
            time(&document["data"]["attributes"]["finished_at"]),
        )
    };
    let (a, b) = (
        stack.create_change("default", "main").await,
        stack.create_change("default", "main").await,
    );
    let (a, b) = (
        span(&stack.wait_final(&a).await),
        span(&stack.wait_final(&b).await),
    );
    assert!(
        b.0 >= a.1,
        "the second started {} before the first ended {}",
        b.0,
        a.1
    );

    stack
        .set_environment_settings("dev", json!({"allow_parallel_changes": true}))
        .await;
    let (c, d) = (
        stack.create_change("default", "main").await,
        stack.create_change("default", "main").await,
    );
    let (c, d) = (
        span(&stack.wait_final(&c).await),
        span(&stack.wait_final(&d).await),
    );
    assert!(c.0 < d.1 && d.0 < c.1, "they did not overlap: {c:?} {d:?}");
    stack.stop().await;
}

/// A wait step holds its change (running, its environment locked, its properties in use) until
/// it is continued; then the change goes on, and the next change of the environment runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_step_holds_the_change_until_it_is_continued() {
    let mut stack = spawn_stack().await;
    let (project_props, _) = stack
        .project_with_manifest(
            "actions:\n  default:\n    steps: [first, wait, last]\n  first:\n    run: 'echo first'\n  last:\n    run: 'echo last'\n  quick:\n    run: 'true'\n",
        )
        .await;
    let change = stack.create_change("default", "main").await;
    let waiting = wait_for_step(&stack, &change, "wait", "waiting").await;
    let next = stack.create_change("quick", "main").await;
    wait_for_status(&stack, &next, "pending").await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    assert_eq!(status_of(&stack, &change).await, "running");
    assert_eq!(
        status_of(&stack, &next).await,
        "pending",
        "the environment is held"
    );
    let (status, _) = stack
        .request(
            reqwest::Method::PATCH,
            &format!("/api/properties/{project_props}"),
            Some(json!({"data": {"attributes": {"data": {"x": 1}}}})),
        )
        .await;
    assert_eq!(
        status, 409,
        "the properties are in use by the waiting change"
    );
    let document = stack
        .get(&format!("/api/changes/{change}?include=steps"))
        .await;
    let first = step_named(&document, "first")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = stack
        .request(
            reqwest::Method::POST,
            &format!("/api/steps/{first}/continue"),
            None,
        )
        .await;
    assert_eq!(status, 422, "only a waiting step is continued");

    let (status, body) = stack
        .request(
            reqwest::Method::POST,
            &format!("/api/steps/{waiting}/continue"),
            None,
        )
        .await;

    assert_eq!(status, 200, "{body}");
    let document = stack.wait_final(&change).await;
    assert_status(&stack, &change, &document, "success").await;
    let log = stack.log(&change).await;
    assert_logged(&log, "===> Step \"wait\" continued by admin");
    assert_logged(&log, "last");
    let next_document = stack.wait_final(&next).await;
    assert_status(&stack, &next, &next_document, "success").await;
    let (status, _) = stack
        .request(
            reqwest::Method::POST,
            &format!("/api/steps/{waiting}/continue"),
            None,
        )
        .await;
    assert_eq!(status, 422, "a continued step is not waiting any more");
    stack.stop().await;
}

/// A parallel group whose other child failed does not wait for a continue: the change fails, and
/// the waiting step is aborted with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_parallel_group_does_not_wait_for_its_waiting_sibling() {
    let mut stack = spawn_stack().await;
    stack
        .project_with_manifest(
            "actions:\n  default:\n    steps: [wait, bad]\n    run_as: parallel\n  bad:\n    run: 'exit 3'\n",
        )
        .await;

    let (change, document) = stack.run_change("default", "main").await;

    assert_status(&stack, &change, &document, "error").await;
    assert_eq!(
        step_statuses(&document),
        [
            ("bad".into(), "error".into()),
            ("default".into(), "error".into()),
            ("wait".into(), "aborted".into()),
        ]
    );
    assert_logged(
        &stack.log(&change).await,
        "1 pending or waiting step(s) aborted",
    );
    stack.stop().await;
}

/// Waits until the change is planned into `status`.
async fn wait_for_status(stack: &TestStack, change: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while status_of(stack, change).await != status {
        assert!(Instant::now() < deadline, "change {change} never {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the change's step `name` has `status`; returns its id.
async fn wait_for_step(stack: &TestStack, change: &str, name: &str, status: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let document = stack
            .get(&format!("/api/changes/{change}?include=steps"))
            .await;
        let step = document["included"]
            .as_array()
            .and_then(|steps| steps.iter().find(|s| s["attributes"]["name"] == name));
        if let Some(step) = step
            && step["attributes"]["status_code"] == status
        {
            return step["id"].as_str().unwrap().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "step {name} never {status}: {document}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

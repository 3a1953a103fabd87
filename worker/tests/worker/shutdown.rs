//! Graceful shutdown: a worker told to stop takes no more work, lets its running steps finish
//! for the grace period, then stops their containers and hands the steps back, so another worker
//! runs them at once instead of after a lease.

use std::time::{Duration, Instant};

use gantry_shared::settings::{Role, Settings};
use gantry_testkit::TestStack;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::helpers::spawn_stack_with;

/// A worker with only the runner role, stopped by the returned token.
async fn runner(settings: &Settings) -> (CancellationToken, JoinHandle<()>) {
    let mut settings = settings.clone();
    settings.worker.roles = vec![Role::Runner];
    settings.worker.shutdown_grace_seconds = 1;
    let worker = gantry_worker::Worker::build(settings).await.unwrap();
    let stop = CancellationToken::new();
    (stop.clone(), tokio::spawn(worker.run_until_stopped(stop)))
}

/// The change's only step once `ready` says so (polled for up to 60 s).
async fn step_when(stack: &TestStack, change: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = stack
            .get(&format!("/api/changes/{change}?include=steps"))
            .await;
        let step = body["included"][0].clone();
        if ready(&step) {
            return step;
        }
        assert!(
            Instant::now() < deadline,
            "the step never got there: {step}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn running_attempt(step: &Value, attempt: i64) -> bool {
    step["attributes"]["status_code"] == "running" && step["attributes"]["attempt"] == attempt
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_worker_hands_its_running_step_back_after_the_grace_period() {
    let mut stack = spawn_stack_with(|settings| {
        settings.worker.roles = vec![Role::Planner, Role::Results];
        // The handed-back attempt does not count: a lost one after it still leaves a retry.
        settings.worker.max_attempts = 2;
    })
    .await;
    stack
        .project_with_manifest("actions:\n  default:\n    run: 'sleep 60'\n")
        .await;
    let (stop_first, first) = runner(&stack.settings).await;
    let change = stack.create_change("default", "main").await;
    step_when(&stack, &change, |s| running_attempt(s, 1)).await;

    let stopping = Instant::now();
    stop_first.cancel();
    first.await.unwrap();
    let stopped_in = stopping.elapsed();
    let (stop_second, second) = runner(&stack.settings).await;
    let step = step_when(&stack, &change, |s| running_attempt(s, 2)).await;

    // One second of grace, then the container is stopped and the step handed back.
    assert!(
        (Duration::from_secs(1)..Duration::from_secs(10)).contains(&stopped_in),
        "{stopped_in:?}"
    );
    assert_eq!(step["attributes"]["status_code"], "running");
    let log = stack.log(&change).await;
    assert!(
        log.iter().any(|l| l.contains(
            "is shutting down: attempt 1 of step \"default\" was stopped and handed back"
        )),
        "{log:#?}"
    );
    assert!(
        !log.iter()
            .any(|l| l.contains("was cancelled with its change")),
        "{log:#?}"
    );
    // Attempt 2 is lost (its lease taken from it and expired, as a dead worker's would be): the
    // step, one failed attempt into a budget of two, runs a third time, not system_error.
    let step_id = step["id"].as_str().unwrap();
    stack
        .sql(&format!(
            "UPDATE steps SET lease_owner = 'a-dead-worker', lease_expires_at = now() - \
             interval '1 second' WHERE id = '{step_id}'"
        ))
        .await;
    step_when(&stack, &change, |s| running_attempt(s, 3)).await;
    let (status, _) = stack
        .request(
            reqwest::Method::DELETE,
            &format!("/api/changes/{change}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let cancelled = stack.wait_final(&change).await;
    assert_eq!(cancelled["data"]["attributes"]["status_code"], "cancelled");
    stop_second.cancel();
    second.await.unwrap();
    stack.stop().await;
}

//! `GET /api/workers`: each worker reports its host, version, roles and load; one that stopped
//! reporting shows as lost, one shut down gracefully as stopped.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use gantry_testkit::TestStack;

use crate::helpers::spawn_stack_with;

async fn workers(stack: &TestStack, query: &str) -> Vec<Value> {
    stack.get(&format!("/api/workers{query}")).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

fn by_id<'a>(workers: &'a [Value], id: &str) -> &'a Value {
    workers
        .iter()
        .find(|w| w["id"] == id)
        .unwrap_or_else(|| panic!("no worker {id} in {workers:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_report_their_host_load_and_heartbeat_and_show_lost_and_stopped() {
    let mut stack = spawn_stack_with(|settings| {
        settings.worker.heartbeat_seconds = 1;
        settings.worker.host = "host-a".into();
    })
    .await;
    stack
        .project_with_manifest("actions:\n  default:\n    run: sleep 3\n")
        .await;
    // A step runs: the next heartbeat counts it.
    let change_id = stack.create_change("default", "main").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let running = loop {
        let all = workers(&stack, "").await;
        let busy = all
            .iter()
            .find(|w| w["attributes"]["running_steps"].as_i64() > Some(0))
            .cloned();
        if let Some(worker) = busy {
            break worker;
        }
        assert!(
            Instant::now() < deadline,
            "no worker reported a running step: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let attributes = &running["attributes"];
    assert_eq!(attributes["host"], "host-a");
    assert_eq!(attributes["version"], gantry_shared::VERSION);
    assert_eq!(
        attributes["roles"],
        serde_json::json!(["planner", "runner", "results"])
    );
    assert_eq!(attributes["status"], "alive");
    assert_eq!(attributes["concurrency"], stack.settings.worker.concurrency);
    assert_eq!(attributes["running_steps"], 1);
    assert!(attributes["memory_bytes"].as_i64() > Some(1 << 20));
    assert!(attributes["load_average"].as_f64().is_some());
    assert!(running["id"].as_str().unwrap().starts_with("host-a-"));
    stack.wait_final(&change_id).await;

    // A second worker (results only) shuts down gracefully: it shows as stopped.
    let mut settings = stack.settings.clone();
    settings.worker.roles = vec![gantry_shared::settings::Role::Results];
    settings.worker.host = "host-b".into();
    settings.worker.metrics_port = 0;
    let second = gantry_worker::Worker::build(settings).await.unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(second.run_until_stopped(stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !workers(&stack, "")
        .await
        .iter()
        .any(|w| w["attributes"]["host"] == "host-b")
    {
        assert!(
            Instant::now() < deadline,
            "the second worker never reported"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    task.await.unwrap();
    // And one died long ago: it shows as lost.
    stack
        .sql(
            "INSERT INTO workers (id, host, version, roles, concurrency, heartbeat_seconds, \
             started_at, heartbeat_at) VALUES ('host-c-1', 'host-c', '0.0.1', '{runner}', 4, 10, \
             now() - interval '1 hour', now() - interval '31 seconds')",
        )
        .await;

    let all = workers(&stack, "").await;
    let statuses: Vec<(&str, &str)> = all
        .iter()
        .map(|w| {
            (
                w["attributes"]["host"].as_str().unwrap(),
                w["attributes"]["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(statuses.contains(&("host-a", "alive")), "{statuses:?}");
    assert!(statuses.contains(&("host-b", "stopped")), "{statuses:?}");
    assert!(statuses.contains(&("host-c", "lost")), "{statuses:?}");
    let lost = workers(&stack, "?filter[status_eq]=lost").await;
    assert_eq!(lost.len(), 1);
    assert_eq!(by_id(&lost, "host-c-1")["attributes"]["running_steps"], 0);
    let first = workers(&stack, "?limit=1").await;
    assert_eq!(first.len(), 1);
    let (status, body) = stack
        .request(
            reqwest::Method::GET,
            "/api/workers?filter[status_eq]=sleeping",
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("not a worker status"), "{body}");
    stack.stop().await;
}

//! The worker while its dependencies fail (RELIABILITY.md S5, S8): a message whose handler failed
//! because the database was away waits for it instead of spending the queue's delivery limit, and
//! only messages that can never be processed reach the dead-letter queues.

use std::time::{Duration, Instant};

use gantry_shared::amqp::{self, Topology};
use gantry_shared::messages::{Message, Queue};
use gantry_testkit::{Gate, TestStack, spawn_stack_with_worker_database};
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::spawn_stack;

const TWO_STEPS: &str = r#"
actions:
  default:
    steps: [one, two]
  one:
    run: gantry-runner properties set project /one 1
  two:
    run: echo two
"#;

/// Messages in every dead-letter queue of the stack, from `GET /api/info`.
async fn dead_letters(stack: &TestStack) -> u64 {
    let info = stack.get("/api/info").await;
    let queues = info["data"]["attributes"]["dead_letters"]
        .as_object()
        .unwrap_or_else(|| panic!("the api reads the dead-letter queues: {info}"))
        .clone();
    queues.values().map(|n| n.as_u64().unwrap()).sum()
}

async fn change_status(stack: &TestStack, change_id: &str) -> Value {
    stack.get(&format!("/api/changes/{change_id}")).await["data"]["attributes"]["status_code"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_created_while_the_workers_database_is_away_runs_once_it_is_back() {
    let gate = Gate::to_local_port(5432).await;
    let port = gate.port();
    let mut stack = spawn_stack_with_worker_database(
        |_| {},
        |url| url.replacen("127.0.0.1:5432", &format!("127.0.0.1:{port}"), 1),
    )
    .await;
    stack.project_with_manifest(TWO_STEPS).await;
    // The worker is up: it has planned and run a change through the gate.
    stack.run_change("default", "main").await;

    gate.close();
    let change_id = stack.create_change("default", "main").await;
    // The api (on the database directly) published the plan message; the worker's planner fails
    // on every attempt for as long as the gate is closed: five immediate redeliveries would
    // dead-letter the message in milliseconds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(change_status(&stack, &change_id).await, "initializing");
    assert_eq!(
        dead_letters(&stack).await,
        0,
        "the plan message was dead-lettered"
    );

    gate.open();
    let reopened = Instant::now();
    let change = stack.wait_final(&change_id).await;

    assert_eq!(change["data"]["attributes"]["status_code"], "success");
    assert!(
        reopened.elapsed() < Duration::from_secs(30),
        "the change ended {:?} after the database came back",
        reopened.elapsed()
    );
    assert_eq!(dead_letters(&stack).await, 0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_at_once_and_the_work_goes_on() {
    let mut stack = spawn_stack().await;
    stack.project_with_manifest(TWO_STEPS).await;
    let connection = amqp::connect(&stack.settings.amqp, "gantry-test-poison")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let topology = Topology::new(&stack.settings.amqp);
    let unknown_step = serde_json::to_vec(&Message::RunStepV1 {
        change_id: Uuid::new_v4(),
        step_id: Uuid::new_v4(),
    })
    .unwrap();
    let sent = Instant::now();
    for payload in [b"not json".to_vec(), unknown_step] {
        channel
            .basic_publish(
                "".into(),
                topology.queue(Queue::Steps).as_str().into(),
                BasicPublishOptions::default(),
                &payload,
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    // Neither can ever be processed: each goes to the dead-letter queue on its first delivery,
    // not after the delivery limit's retries.
    let deadline = sent + Duration::from_secs(5);
    while dead_letters(&stack).await < 2 {
        assert!(Instant::now() < deadline, "not dead-lettered within 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, change) = stack.run_change("default", "main").await;

    assert_eq!(change["data"]["attributes"]["status_code"], "success");
    assert_eq!(dead_letters(&stack).await, 2);
    stack.stop().await;
}

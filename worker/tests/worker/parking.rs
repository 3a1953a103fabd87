//! Parked step containers (issue 18): started before any step is claimed, running nothing until
//! one is given its step, one container per step, and gone with their worker.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    TopOptions,
};
use gantry_shared::project_settings::EffectiveSettings;
use gantry_testkit::TestStack;
use gantry_worker::runner::container::{self, Shape};

use crate::helpers::{assert_status, spawn_stack_with};

/// The running parked containers of `worker`, by name.
async fn parked_of(docker: &Docker, worker: &str) -> Vec<String> {
    let label = format!("gantry.worker={worker}");
    let filters = HashMap::from([("label", vec!["gantry.parked=true", label.as_str()])]);
    let options = ListContainersOptionsBuilder::default()
        .filters(&filters)
        .build();
    docker
        .list_containers(Some(options))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|c| Some(c.names?.first()?.trim_start_matches('/').to_owned()))
        .collect()
}

/// Every container (running or not) labelled with `worker`.
async fn containers_of_worker(docker: &Docker, worker: &str) -> usize {
    let label = format!("gantry.worker={worker}");
    let filters = HashMap::from([("label", vec![label.as_str()])]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    docker.list_containers(Some(options)).await.unwrap().len()
}

async fn worker_id(stack: &TestStack) -> String {
    stack
        .db()
        .await
        .query_one("SELECT id FROM workers", &[])
        .await
        .unwrap()
        .get(0)
}

/// Waits until `worker` has `count` parked containers; their names.
async fn wait_parked(docker: &Docker, worker: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let parked = parked_of(docker, worker).await;
        if parked.len() == count {
            return parked;
        }
        assert!(
            Instant::now() < deadline,
            "{} parked containers, not {count}",
            parked.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_run_in_containers_parked_before_their_claim_and_parked_ones_go_with_the_worker() {
    let mut stack = spawn_stack_with(|s| s.worker.parked_containers = 2).await;
    stack
        .project_with_manifest("actions:\n  default:\n    run: 'echo ran-in-$HOSTNAME'\n")
        .await;
    let docker = gantry_worker::runner::connect_docker().await.unwrap();
    let (first, document) = stack.run_change("default", "main").await;
    assert_status(&stack, &first, &document, "success").await;
    let worker = worker_id(&stack).await;

    // After a step of a shape, the worker parks that many of its shape, and holds no more.
    let parked = wait_parked(&docker, &worker, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(parked_of(&docker, &worker).await.len(), 2);
    for name in &parked {
        // Running, and running nothing but the runner waiting for its step.
        let top = docker
            .top_processes(name, None::<TopOptions>)
            .await
            .unwrap();
        let processes = top.processes.unwrap_or_default();
        assert_eq!(processes.len(), 1, "{processes:?}");
        assert!(
            processes[0].join(" ").contains("gantry-runner park"),
            "{processes:?}"
        );
        let inspected = docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
            .unwrap();
        let host = inspected.host_config.unwrap();
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(host.memory, Some(stack.settings.worker.memory_bytes));
        assert_eq!(host.network_mode.as_deref(), Some("none"));
    }

    let (second, document) = stack.run_change("default", "main").await;
    assert_status(&stack, &second, &document, "success").await;
    let ran_in = stack.containers_of(&second).await;
    assert_eq!(ran_in.len(), 1);
    assert!(
        parked.contains(&ran_in[0]),
        "{ran_in:?} not one of {parked:?}"
    );
    // One container per step: the one that ran it is gone, and another took its place.
    let deadline = Instant::now() + Duration::from_secs(10);
    while docker
        .inspect_container(&ran_in[0], None::<InspectContainerOptions>)
        .await
        .is_ok()
    {
        assert!(Instant::now() < deadline, "the used container stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = wait_parked(&docker, &worker, 2).await;
    assert!(!again.contains(&ran_in[0]));
    let first_log = stack.log(&first).await;
    let second_log = stack.log(&second).await;
    let host_line = |log: &[String]| log.iter().find(|l| l.starts_with("ran-in-")).cloned();
    // Both ran and printed their host: a test that does not read the line cannot tell them apart.
    assert!(host_line(&first_log).is_some(), "{first_log:?}");
    assert!(host_line(&second_log).is_some(), "{second_log:?}");
    assert_ne!(
        host_line(&first_log),
        host_line(&second_log),
        "two steps, two containers"
    );

    stack.stop().await;
    assert_eq!(
        containers_of_worker(&docker, &worker).await,
        0,
        "the stopped worker left containers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_container_its_worker_lets_go_of_exits_without_running_anything() {
    let settings = gantry_testkit::test_settings().worker;
    let docker = gantry_worker::runner::connect_docker().await.unwrap();
    let shape = Shape {
        image: settings.runner_image.clone(),
        limits: EffectiveSettings::defaults(&settings),
    };
    let parked = container::park(&docker, &settings, &shape, "parking-test")
        .await
        .unwrap();
    let name = parked.name.clone();
    // As when its worker dies: the attachment closes, and with it the runner's stdin.
    drop(parked);
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        let state = docker
            .inspect_container(&name, None::<InspectContainerOptions>)
            .await
            .unwrap()
            .state
            .unwrap();
        if state.running == Some(false) {
            break state.exit_code;
        }
        assert!(Instant::now() < deadline, "the let-go container still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(code, Some(86), "exited unused");
    let remove = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    docker.remove_container(&name, Some(remove)).await.unwrap();
}

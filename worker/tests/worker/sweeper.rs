//! The orphan sweeper: labelled step containers nobody owns any more are removed; containers of
//! live attempts, of steps this installation does not know, and unlabelled ones are kept.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, RemoveContainerOptionsBuilder,
};
use uuid::Uuid;

use crate::helpers::{assert_status, spawn_stack_with};

/// A created (never started) container of the runner image with these labels.
async fn container(docker: &Docker, labels: &[(&str, String)]) -> String {
    let name = format!("gantry-sweeper-test-{}", Uuid::now_v7());
    let body = ContainerCreateBody {
        image: Some("gantry-runner:local".to_owned()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect::<HashMap<_, _>>(),
        ),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    docker
        .create_container(Some(options), body)
        .await
        .unwrap()
        .id
}

fn step_labels(step: &str, attempt: i32) -> Vec<(&'static str, String)> {
    vec![
        ("gantry", "true".to_owned()),
        ("gantry.step_id", step.to_owned()),
        ("gantry.attempt", attempt.to_string()),
    ]
}

async fn exists(docker: &Docker, id: &str) -> bool {
    docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .is_ok()
}

/// Waits up to 15 s (the sweeper runs every second) until none of `ids` exists.
async fn wait_gone(docker: &Docker, ids: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    for id in ids {
        while exists(docker, id).await && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn remove(docker: &Docker, id: &str) {
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    let _ = docker.remove_container(id, Some(options)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_step_containers_are_removed_and_no_other_container_is_touched() {
    let mut stack =
        spawn_stack_with(|settings| settings.worker.orphan_sweep_interval_seconds = 1).await;
    stack
        .project_with_manifest("actions:\n  default:\n    run: 'true'\n")
        .await;
    let (change_id, change) = stack.run_change("default", "main").await;
    assert_status(&stack, &change_id, &change, "success").await;
    let finished = change["included"][0]["id"].as_str().unwrap().to_owned();
    let live = Uuid::now_v7().to_string();
    stack
        .sql(&format!(
            "INSERT INTO steps (id, change_id, position, action, name, has_command, status_code, \
             attempt, lease_owner, lease_expires_at) VALUES ('{live}', '{change_id}', 1, 'job', \
             'job', true, 'running', 1, 'elsewhere', now() + interval '1 hour')"
        ))
        .await;
    // Running without a lease: its outcome was handed over and is not applied yet.
    let handed_over = Uuid::now_v7().to_string();
    stack
        .sql(&format!(
            "INSERT INTO steps (id, change_id, position, action, name, has_command, status_code, \
             attempt) VALUES ('{handed_over}', '{change_id}', 2, 'job', 'job2', true, 'running', 1)"
        ))
        .await;
    let docker = gantry_worker::runner::connect_docker().await.unwrap();

    let of_handed_over_step = container(&docker, &step_labels(&handed_over, 1)).await;
    let of_finished_step = container(&docker, &step_labels(&finished, 1)).await;
    let of_stale_attempt = container(&docker, &step_labels(&live, 0)).await;
    let of_live_attempt = container(&docker, &step_labels(&live, 1)).await;
    let of_unknown_step = container(&docker, &step_labels(&Uuid::now_v7().to_string(), 1)).await;
    let unlabelled = container(&docker, &[]).await;

    wait_gone(&docker, &[&of_finished_step, &of_stale_attempt]).await;
    assert!(
        !exists(&docker, &of_finished_step).await,
        "a finished step's container is removed"
    );
    assert!(
        !exists(&docker, &of_stale_attempt).await,
        "an older attempt's container is removed"
    );
    assert!(
        exists(&docker, &of_live_attempt).await,
        "a live attempt's container is kept"
    );
    assert!(
        exists(&docker, &of_unknown_step).await,
        "another installation's container is kept"
    );
    assert!(
        exists(&docker, &unlabelled).await,
        "an unlabelled container is kept"
    );

    // Its worker died: the lease runs out, and the container is an orphan too.
    stack
        .sql(&format!(
            "UPDATE steps SET lease_expires_at = now() - interval '1 second' WHERE id = '{live}'"
        ))
        .await;
    wait_gone(&docker, &[&of_live_attempt]).await;
    assert!(
        !exists(&docker, &of_live_attempt).await,
        "an expired lease's container is removed"
    );
    assert!(exists(&docker, &of_unknown_step).await);
    assert!(exists(&docker, &unlabelled).await);
    remove(&docker, &of_unknown_step).await;
    remove(&docker, &of_handed_over_step).await;
    remove(&docker, &unlabelled).await;
    stack.stop().await;
}

/// Containers of parked steps: a recorded container is an orphan by its step as a labelled one
/// is; a parked container no step took is removed once its worker stopped, and kept while its
/// worker reports, whatever its state; one of a worker this installation does not know is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_and_parked_containers_are_swept_by_their_step_and_their_worker() {
    let mut stack =
        spawn_stack_with(|settings| settings.worker.orphan_sweep_interval_seconds = 1).await;
    stack
        .project_with_manifest("actions:\n  default:\n    run: 'true'\n")
        .await;
    let (change_id, change) = stack.run_change("default", "main").await;
    assert_status(&stack, &change_id, &change, "success").await;
    let finished = change["included"][0]["id"].as_str().unwrap().to_owned();
    let live = Uuid::now_v7().to_string();
    stack
        .sql(&format!(
            "INSERT INTO steps (id, change_id, position, action, name, has_command, status_code, \
             attempt, lease_owner, lease_expires_at) VALUES ('{live}', '{change_id}', 1, 'job', \
             'job', true, 'running', 2, 'elsewhere', now() + interval '1 hour')"
        ))
        .await;
    stack
        .sql(
            "INSERT INTO workers (id, host, version, roles, concurrency, heartbeat_seconds, stopped_at) \
             VALUES ('stopped-worker', 'h', '0', '{runner}', 1, 10, now()), \
             ('live-worker', 'h', '0', '{runner}', 1, 3600, NULL)",
        )
        .await;
    let docker = gantry_worker::runner::connect_docker().await.unwrap();
    let named = |name: &str| {
        vec![
            ("gantry", "true".to_owned()),
            ("gantry.worker", name.to_owned()),
        ]
    };
    let parked = |worker: &str| {
        vec![
            ("gantry", "true".to_owned()),
            ("gantry.parked", "true".to_owned()),
            ("gantry.worker", worker.to_owned()),
        ]
    };
    // Recorded for the step attempt it ran.
    let of_finished_step = container(&docker, &named("live-worker")).await;
    let of_earlier_attempt = container(&docker, &named("live-worker")).await;
    let of_live_attempt = container(&docker, &named("live-worker")).await;
    for (id, step, attempt) in [
        (&of_finished_step, &finished, 1),
        (&of_earlier_attempt, &live, 1),
        (&of_live_attempt, &live, 2),
    ] {
        let name = name_of(&docker, id).await;
        stack
            .sql(&format!(
                "INSERT INTO step_containers (container, step_id, attempt, worker_id) \
                 VALUES ('{name}', '{step}', {attempt}, 'live-worker')"
            ))
            .await;
    }
    let parked_by_stopped = container(&docker, &parked("stopped-worker")).await;
    let parked_by_live = container(&docker, &parked("live-worker")).await;
    let parked_by_stranger = container(&docker, &parked("another-installation")).await;

    wait_gone(
        &docker,
        &[&of_finished_step, &of_earlier_attempt, &parked_by_stopped],
    )
    .await;
    assert!(
        !exists(&docker, &of_finished_step).await,
        "a finished step's container goes"
    );
    assert!(
        !exists(&docker, &of_earlier_attempt).await,
        "an earlier attempt's container goes"
    );
    assert!(
        !exists(&docker, &parked_by_stopped).await,
        "a stopped worker's parked container goes"
    );
    assert!(
        exists(&docker, &of_live_attempt).await,
        "a live attempt's container stays"
    );
    assert!(
        exists(&docker, &parked_by_live).await,
        "a live worker's parked container stays"
    );
    assert!(
        exists(&docker, &parked_by_stranger).await,
        "an unknown worker's container stays"
    );
    for id in [of_live_attempt, parked_by_live, parked_by_stranger] {
        remove(&docker, &id).await;
    }
    stack.stop().await;
}

async fn name_of(docker: &Docker, id: &str) -> String {
    docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .unwrap()
        .name
        .unwrap()
        .trim_start_matches('/')
        .to_owned()
}

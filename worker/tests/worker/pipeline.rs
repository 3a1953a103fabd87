use serde_json::json;

use crate::helpers::{
    assert_status_logged, change_events, spawn_stack, spawn_stack_with, step_statuses,
};

const TREE: &str = r#"
actions:
  default:
    run: echo "hello from $GANTRY_ACTION"
    steps: [first, pair]
  first:
    run: gantry-runner properties set project /first '"done"'
  pair:
    steps: [left, right]
    run_as: parallel
  left:
    run: gantry-runner properties set project /left 1
  right:
    run: gantry-runner properties set environment /right 2
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_with_sequential_and_parallel_children_runs_through_docker_to_success() {
    let mut stack = spawn_stack().await;
    let (project_props, env_props) = stack.project_with_manifest(TREE).await;

    let (change_id, change) = stack.run_change("default", "main").await;

    let log = stack.log(&change_id).await;
    assert_status_logged(&change, "success", &log);
    let statuses = step_statuses(&change);
    let expected: Vec<(String, String)> = ["default", "first", "left", "pair", "right"]
        .iter()
        .map(|n| (n.to_string(), "success".to_string()))
        .collect();
    assert_eq!(statuses, expected);
    for line in [
        "hello from default",
        "===> Starting step processing for step \"first\"",
        "===> Starting step \"first\"",
        "===> Enqueuing step \"pair\" to run next, this and 0 other child steps left to run for step \"default\"",
        "===> Finished step \"left\"",
        "===> All child steps have finished for step \"pair\"",
        "Change finished with status success",
    ] {
        assert!(
            log.iter().any(|l| l == line),
            "missing {line:?} in log:\n{}",
            log.join("\n")
        );
    }
    assert!(
        log.iter()
            .any(|l| l.starts_with("===> Starting image build for step")
                || l.starts_with("===> Reusing image"))
    );

    let (version, document) = stack.properties(&project_props).await;
    assert_eq!(document, json!({"first": "done", "left": 1}));
    assert_eq!(
        version, 3,
        "one version per step that changed the project properties"
    );
    let (version, document) = stack.properties(&env_props).await;
    assert_eq!((version, document), (2, json!({"right": 2})));
    let versions = stack
        .get(&format!("/api/properties/{project_props}/versions"))
        .await;
    let mut numbers: Vec<i64> = versions["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["attributes"]["version"].as_i64().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(numbers, vec![1, 2, 3]);
    assert_eq!(
        change_events(&stack, &change_id).await,
        vec![
            ("api:changes:create".into(), "admin".into()),
            ("change:pending".into(), "gantry".into()),
            ("change:queued".into(), "gantry".into()),
            ("change:running".into(), "gantry".into()),
            ("change:success".into(), "gantry".into())
        ]
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_change_on_the_same_commit_reuses_the_step_image() {
    let mut stack = spawn_stack().await;
    stack
        .project_with_manifest("actions:\n  default:\n    run: echo cached\n")
        .await;

    let first = stack.create_change("default", "main").await;
    assert_eq!(
        stack.wait_final(&first).await["data"]["attributes"]["status_code"],
        "success"
    );
    let second = stack.create_change("default", "main").await;
    let change = stack.wait_final(&second).await;

    assert_eq!(change["data"]["attributes"]["status_code"], "success");
    let log = stack.log(&second).await;
    assert!(
        log.iter()
            .any(|l| l.starts_with("===> Reusing image gantry-step:")),
        "log:\n{}",
        log.join("\n")
    );
    assert!(
        !log.iter()
            .any(|l| l.starts_with("===> Starting image build"))
    );
    assert!(log.iter().any(|l| l == "cached"));
    stack.stop().await;
}

/// The planner shares one fetch between changes, but never with a change created after the
/// fetch started: a branch pushed to between two changes runs its new commit in the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_created_after_a_push_runs_the_pushed_commit() {
    let stack = spawn_stack().await;
    let repo = gantry_testkit::Repo::new(&[(
        ".gantry/actions.yaml",
        "actions:\n  default:\n    run: echo before the push\n",
    )]);
    stack.project_with_repo(&repo.path()).await;
    let (first_id, first) = stack.run_change("default", "main").await;
    let log = stack.log(&first_id).await;
    assert_status_logged(&first, "success", &log);
    assert!(log.iter().any(|l| l == "before the push"));

    let pushed = repo.commit(
        &[(
            ".gantry/actions.yaml",
            "actions:\n  default:\n    run: echo after the push\n",
        )],
        "second",
    );
    let (second_id, second) = stack.run_change("default", "main").await;

    let log = stack.log(&second_id).await;
    assert_status_logged(&second, "success", &log);
    assert_eq!(second["data"]["attributes"]["commit_sha"], pushed.as_str());
    assert_ne!(first["data"]["attributes"]["commit_sha"], pushed.as_str());
    assert!(log.iter().any(|l| l == "after the push"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_image_removed_behind_the_workers_back_is_rebuilt_on_the_retry() {
    // Without parked containers: one parked before the removal would run the step from the
    // removed image's layers, which the engine keeps while a container uses them.
    let mut stack = spawn_stack_with(|s| s.worker.parked_containers = 0).await;
    stack
        .project_with_manifest("actions:\n  default:\n    run: echo image-removed-then-rebuilt\n")
        .await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (id, change) = stack.run_change("default", "main").await;
        runs.push((id, change["data"]["attributes"]["status_code"].clone()));
    }
    assert!(runs.iter().all(|(_, status)| status == "success"));
    // The second change reused the image: its tag is in the log, and the worker remembers it.
    let log = stack.log(&runs[1].0).await;
    let tag = log
        .iter()
        .find_map(|l| l.strip_prefix("===> Reusing image "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no reuse line in:\n{}", log.join("\n")))
        .to_owned();
    let docker = gantry_worker::runner::connect_docker().await.unwrap();
    let force = bollard::query_parameters::RemoveImageOptionsBuilder::default()
        .force(true)
        .build();
    docker.remove_image(&tag, Some(force), None).await.unwrap();

    let (third, change) = stack.run_change("default", "main").await;

    let log = stack.log(&third).await;
    let retried = log
        .iter()
        .any(|l| l.starts_with("Attempt 1 failed") && l.ends_with("the step will run again"));
    assert!(
        change["data"]["attributes"]["status_code"] == "success" && retried,
        "log:\n{}",
        log.join("\n")
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("===> Starting image build"))
    );
    assert!(log.iter().any(|l| l == "image-removed-then-rebuilt"));
    stack.stop().await;
}

/// A step that prints far more than the stored cap, as fast as it can: the change succeeds, and
/// its log holds a gap-free, in-order prefix of the output up to the cap, then the marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chatty_steps_output_is_stored_in_order_without_gaps_up_to_the_cap() {
    const CAP: usize = 50_000;
    let mut stack = spawn_stack_with(|s| s.worker.max_log_bytes_per_step = CAP).await;
    stack
        .project_with_manifest(
            "actions:\n  default:\n    run: 'i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); done'\n",
        )
        .await;

    let (change_id, change) = stack.run_change("default", "main").await;

    assert_eq!(change["data"]["attributes"]["status_code"], "success");
    let log = stack.log(&change_id).await;
    let output: Vec<&String> = log.iter().filter(|l| l.starts_with("line-")).collect();
    let expected: Vec<String> = (0..output.len()).map(|i| format!("line-{i}")).collect();
    assert!(
        output
            .iter()
            .map(|l| l.as_str())
            .eq(expected.iter().map(String::as_str)),
        "the output has gaps or is out of order: {:?}",
        &output[..output.len().min(20)]
    );
    let stored: usize = output.iter().map(|l| l.len()).sum();
    // The image build's output, stored before the step's, counts towards the cap too.
    assert!(
        stored <= CAP && stored > CAP * 9 / 10,
        "{stored} bytes of output stored for a cap of {CAP}"
    );
    let marker = format!(
        "[log truncated: the step wrote more than {CAP} bytes; further output is not stored]"
    );
    let at = log.iter().position(|l| *l == marker).expect("the marker");
    assert!(
        log[at + 1..].iter().all(|l| !l.starts_with("line-")),
        "output after the marker"
    );
    stack.stop().await;
}

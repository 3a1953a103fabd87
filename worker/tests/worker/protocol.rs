//! The step protocol files travel both ways: straight through the step's volume directory when
//! the engine is local (the default here), through the Docker API otherwise; a result that is not
//! a regular file fails the step either way.

use serde_json::json;

use crate::helpers::spawn_stack_with;

const SET_PROPERTY: &str =
    "actions:\n  default:\n    run: gantry-runner properties set project /via '\"protocol\"'\n";

/// An image whose entrypoint leaves a symlink to a host-looking file as the result.
const SYMLINKED_RESULT: &[(&str, &str)] = &[
    (
        ".gantry/actions.yaml",
        "actions:\n  default:\n    run: \"true\"\n",
    ),
    (
        ".gantry/Dockerfile",
        "ARG GANTRY_BASE_RUNNER\nFROM ${GANTRY_BASE_RUNNER}\nADD --chown=10001:10001 repo.tar /opt/gantry/\n\
         ENTRYPOINT [\"/bin/sh\", \"-c\", \"ln -s /etc/passwd /opt/gantry/.gantry/step_result.json\"]\n",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_local_volume_access_the_context_and_result_go_through_the_docker_api() {
    step_edits_a_property_with_its_files_copied_by(false, "docker_api").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_local_volume_access_the_context_and_result_go_through_the_volume() {
    step_edits_a_property_with_its_files_copied_by(true, "volume").await;
}

/// A step reads its context and its property edit comes back; both copies took `route`, none
/// the other (the worker counts them).
async fn step_edits_a_property_with_its_files_copied_by(local_volume_access: bool, route: &str) {
    let mut stack = spawn_stack_with(|s| s.worker.local_volume_access = local_volume_access).await;
    let (project_props, _) = stack.project_with_manifest(SET_PROPERTY).await;

    let (_, change) = stack.run_change("default", "main").await;

    assert_eq!(change["data"]["attributes"]["status_code"], "success");
    assert_eq!(
        stack.properties(&project_props).await,
        (2, json!({"via": "protocol"}))
    );
    let text = stack.scrape(&stack.worker_metrics_url()).await;
    for direction in ["in", "out"] {
        let series = format!(
            "gantry_step_protocol_copies_total{{direction=\"{direction}\",route=\"{route}\"}} 1"
        );
        assert!(text.contains(&series), "no `{series}` in:\n{text}");
    }
    let copies = text
        .lines()
        .filter(|l| l.starts_with("gantry_step_protocol_copies_total{"))
        .count();
    assert_eq!(copies, 2, "{text}");
    stack.stop().await;
}

async fn symlinked_result_fails_the_step(local_volume_access: bool) {
    let stack = spawn_stack_with(|s| s.worker.local_volume_access = local_volume_access).await;
    let repo = gantry_testkit::Repo::new(SYMLINKED_RESULT);
    let (project_props, _) = stack.project_with_repo(&repo.path()).await;

    let (change_id, change) = stack.run_change("default", "main").await;

    assert_eq!(change["data"]["attributes"]["status_code"], "error");
    let log = stack.log(&change_id).await;
    assert!(
        log.iter().any(|l| l
            .contains("step_result.json is not a regular file (symlinks and devices are refused)")),
        "log:\n{}",
        log.join("\n")
    );
    assert!(
        !log.iter().any(|l| l.contains("root:")),
        "the link was followed"
    );
    assert_eq!(stack.properties(&project_props).await, (1, json!({})));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_result_fails_the_step_when_read_from_the_volume() {
    symlinked_result_fails_the_step(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_result_fails_the_step_when_read_through_the_docker_api() {
    symlinked_result_fails_the_step(false).await;
}

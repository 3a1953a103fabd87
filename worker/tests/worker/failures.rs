use serde_json::json;

use crate::helpers::{
    assert_logged, assert_status_logged, change_events, flipped_last_byte, spawn_stack,
    step_statuses,
};

const FAILING: &str = r#"
actions:
  default:
    steps: [ok, bad, never]
  ok:
    run: gantry-runner properties set project /ok true
  bad:
    run: gantry-runner properties set project /bad true && exit 3
  never:
    run: echo never
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_aborts_its_pending_siblings_and_its_property_edits_are_not_applied() {
    let mut stack = spawn_stack().await;
    let (project_props, _) = stack.project_with_manifest(FAILING).await;

    let (change_id, change) = stack.run_change("default", "main").await;

    assert_eq!(change["data"]["attributes"]["status_code"], "error");
    let statuses = step_statuses(&change);
    assert_eq!(
        statuses,
        vec![
            ("bad".into(), "error".into()),
            ("default".into(), "error".into()),
            ("never".into(), "aborted".into()),
            ("ok".into(), "success".into())
        ]
    );
    let bad = change["included"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["attributes"]["name"] == "bad")
        .unwrap();
    assert_eq!(bad["attributes"]["exit_code"], 3);
    let log = stack.log(&change_id).await;
    assert_logged(
        &log,
        "Failed running step runner container: Step failed with status code: 3",
    );
    assert!(!log.iter().any(|l| l == "never"));
    assert_eq!(
        stack.properties(&project_props).await,
        (2, json!({"ok": true}))
    );
    assert_eq!(
        change_events(&stack, &change_id).await,
        vec![
            ("api:changes:create".into(), "admin".into()),
            ("change:pending".into(), "gantry".into()),
            ("change:queued".into(), "gantry".into()),
            ("change:running".into(), "gantry".into()),
            ("change:error".into(), "gantry".into())
        ]
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_git_revision_ends_the_change_in_error_with_the_reason_logged() {
    let mut stack = spawn_stack().await;
    stack
        .project_with_manifest("actions:\n  default:\n    run: 'true'\n")
        .await;

    let (change_id, change) = stack.run_change("default", "no-such-branch").await;

    assert_eq!(change["data"]["attributes"]["status_code"], "error");
    assert!(change["data"]["attributes"]["commit_sha"].is_null());
    let log = stack.log(&change_id).await;
    assert!(
        log.iter()
            .any(|l| l.contains("revision \"no-such-branch\" was not found")),
        "log:\n{}",
        log.join("\n")
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_action_in_the_manifest_ends_the_change_in_error() {
    let mut stack = spawn_stack().await;
    stack
        .project_with_manifest("actions:\n  default:\n    steps: [missing]\n")
        .await;

    let (change_id, change) = stack.run_change("default", "main").await;

    assert_eq!(change["data"]["attributes"]["status_code"], "error");
    let log = stack.log(&change_id).await;
    assert!(
        log.iter().any(|l| l.contains("missing")),
        "log:\n{}",
        log.join("\n")
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_past_its_timeout_is_killed_and_fails_with_the_reason_and_its_container_is_removed()
{
    let mut stack = spawn_stack().await;
    stack
        .project_with_manifest(
            "actions:\n  default:\n    run: echo waiting && sleep 60\n    timeout: 2\n",
        )
        .await;

    let (change_id, change) = stack.run_change("default", "main").await;

    assert_eq!(change["data"]["attributes"]["status_code"], "error");
    let log = stack.log(&change_id).await;
    assert_logged(&log, "The step timed out after 2 seconds and was killed");
    assert!(log.iter().any(|l| l == "waiting"));
    let containers = stack.containers_of(&change_id).await;
    assert_eq!(containers.len(), 1, "{containers:?}");
    let inspected = std::process::Command::new("docker")
        .args(["inspect", &containers[0]])
        .output()
        .unwrap();
    assert!(
        !inspected.status.success(),
        "the step container was left behind"
    );
    stack.stop().await;
}

/// Tampered ciphertext is detected by the worker too, and ends the work with the reason instead
/// of a retry loop: retrying cannot make it readable. Here the environment properties a step
/// needs fail authentication (one flipped byte).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_properties_fail_the_step_with_the_reason_instead_of_retrying() {
    let mut stack = spawn_stack().await;
    let (_, environment_props) = stack
        .project_with_manifest("actions:\n  default:\n    run: echo ran\n")
        .await;
    stack
        .sql(&format!(
            "UPDATE properties SET document = {} WHERE id = '{environment_props}'",
            flipped_last_byte("document")
        ))
        .await;

    let (change_id, change) = stack.run_change("default", "main").await;

    let log = stack.log(&change_id).await;
    assert_status_logged(&change, "error", &log);
    assert_logged(
        &log,
        "The step cannot run: the stored environment properties cannot be read (the ciphertext failed authentication (tampered with, or bound to another record))",
    );
    assert!(!log.iter().any(|l| l == "ran"));
    let step = &change["included"][0]["attributes"];
    assert_eq!(step["attempt"], 1, "not retried: {step}");
    stack.stop().await;
}

/// The planner reads the Git remote's credentials; unreadable ones end the change in `error`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_git_credentials_end_the_change_in_error_with_the_reason() {
    let mut stack = spawn_stack().await;
    stack
        .project_with_manifest("actions:\n  default:\n    run: echo ran\n")
        .await;
    // An envelope sealed under a key this deployment does not have.
    stack
        .sql(&format!(
            "UPDATE git_remotes SET password = '\\x01036f6c64{}'::bytea",
            "00".repeat(36)
        ))
        .await;

    let (change_id, change) = stack.run_change("default", "main").await;

    let log = stack.log(&change_id).await;
    assert_status_logged(&change, "error", &log);
    assert!(
        log.iter().any(|l| l.contains(
            "The Git remote's stored credentials cannot be read (the ciphertext was encrypted with key \"old\", which is not configured)"
        )),
        "log:\n{}",
        log.join("\n")
    );
    stack.stop().await;
}

/// A change is created without locking its Git remote, and the remote's deletion refuses only
/// changes committed before it: a change whose remote is gone by the time it is planned ends in
/// `error` with the reason, instead of staying `initializing`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_git_remote_was_deleted_before_planning_ends_in_error_with_the_reason() {
    let mut stack = spawn_stack().await;
    stack
        .project_with_manifest("actions:\n  default:\n    run: echo ran\n")
        .await;
    // What a creation racing the deletion of its remote leaves: the change and its plan message,
    // naming a remote that no longer exists.
    let row = stack
        .db()
        .await
        .query_one(
            "WITH c AS (INSERT INTO changes (id, project_id, environment_id, git_remote_name, git_rev, \
             action, status_code, created_by) SELECT gen_random_uuid(), project_id, id, 'deleted', \
             'main', 'default', 'initializing', 'admin' FROM environments RETURNING id) \
             INSERT INTO outbox (exchange, routing_key, payload, headers) SELECT 'gantry', \
             'gantry.changes', convert_to(json_build_object('type', 'plan_change_v1', 'change_id', id)::text, \
             'UTF8'), '{}' FROM c RETURNING convert_from(payload, 'UTF8')::json->>'change_id'",
            &[],
        )
        .await
        .unwrap();
    let change_id: String = row.get(0);

    let change = stack.wait_final(&change_id).await;

    let log = stack.log(&change_id).await;
    assert_status_logged(&change, "error", &log);
    assert_logged(
        &log,
        "ERROR: the change cannot run: its git remote `deleted` was deleted after the change was created",
    );
    assert!(!log.iter().any(|l| l == "ran"));
    stack.stop().await;
}

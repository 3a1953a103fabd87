//! Runner secrets end to end: injected into the step's process, masked in the stored log, named
//! only by database properties; and a step whose property updates break a reserved key fails
//! without saving them.

use serde_json::json;

use crate::helpers::{
    assert_status, assert_status_logged, assert_step_updates_refused, put_secret, sha256_hex,
    spawn_stack, step_statuses,
};

/// Upper case and `_`, so that no fragment of it can occur in ids, hashes or timestamps.
const SECRET: &str = "GSK_QM4TZR9WXB2LPV7NHC";
const MASK: &str = "********";

/// The log joined, for messages.
fn joined(log: &[String]) -> String {
    log.join("\n")
}

/// Prints the secret alone, inside a longer line, in two writes 0.3 s apart, across the
/// 16 KiB point where both Docker and the worker cut lines, and its hash (which proves the value
/// the process saw without showing it).
fn leaking_manifest() -> String {
    let (head, tail) = SECRET.split_at(7);
    format!(
        r#"
actions:
  default:
    run: |
      printf '%s\n' "$API_KEY"
      echo "Authorization: Bearer $API_KEY (sent)"
      printf 'split:{head}'; sleep 0.3; printf '{tail}:end\n'
      printf '%16379s' '' | tr ' ' x; printf '%s\n' "$API_KEY"
      printf '%s' "$API_KEY" | sha256sum
      echo "other=$OTHER"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_secret_reaches_the_step_wins_over_a_property_and_is_masked_in_the_log() {
    let mut stack = spawn_stack().await;
    put_secret(&stack, "api", json!({ "API_KEY": SECRET })).await;
    let (project_props, env_props) = stack.project_with_manifest(&leaking_manifest()).await;
    stack
        .set_properties(
            &project_props,
            json!({"gantry": {"env": {"API_KEY": "from-properties", "OTHER": "plain"}}}),
        )
        .await;
    stack
        .set_properties(
            &env_props,
            json!({"gantry": {"env:runner_secrets": ["api"]}}),
        )
        .await;

    let (change_id, change) = stack.run_change("default", "main").await;

    let log = stack.log(&change_id).await;
    assert_status_logged(&change, "success", &log);
    let fragments: Vec<&str> = (0..=SECRET.len() - 5).map(|i| &SECRET[i..i + 5]).collect();
    for line in &log {
        assert!(
            fragments.iter().all(|f| !line.contains(f)),
            "a fragment of the secret is in the log line {line:?}"
        );
    }
    let has = |line: &str| log.iter().any(|l| l == line);
    assert!(has(MASK), "the plain line is not masked:\n{}", joined(&log));
    assert!(has(&format!("Authorization: Bearer {MASK} (sent)")));
    assert!(has(&format!("split:{MASK}:end")));
    let long = format!("{}{MASK}", "x".repeat(16379));
    let at = log
        .iter()
        .position(|l| long.starts_with(l.as_str()) && l.len() > 16000)
        .expect("the 16 KiB line is stored");
    assert_eq!(format!("{}{}", log[at], log[at + 1]), long);
    let hash = sha256_hex(SECRET);
    assert!(
        log.iter().any(|l| l.starts_with(&hash)),
        "the process did not see the secret's value (expected sha256 {hash}):\n{}",
        joined(&log)
    );
    assert!(has("other=plain"), "properties still reach the env");
    stack.stop().await;
}

const PRINT_KEY: &str = r#"
actions:
  default:
    run: echo "API_KEY=[${API_KEY:-unset}]"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_named_in_repository_files_are_ignored() {
    let mut stack = spawn_stack().await;
    put_secret(&stack, "api", json!({ "API_KEY": SECRET })).await;
    stack
        .project_with_files(
            PRINT_KEY,
            &[(
                ".gantry/properties.yaml",
                "gantry:\n  env:runner_secrets: [api]\n  env:build_secrets: [api]\n",
            )],
        )
        .await;

    let (change_id, change) = stack.run_change("default", "main").await;

    let log = stack.log(&change_id).await;
    assert_status_logged(&change, "success", &log);
    assert!(
        log.iter().any(|l| l == "API_KEY=[unset]"),
        "the secret was injected:\n{}",
        joined(&log)
    );
    assert!(
        log.iter().any(|l| l
            .starts_with("===> Ignoring \"gantry.env:runner_secrets\" in .gantry/properties.yaml")),
        "{}",
        joined(&log)
    );
    // The build secrets were not offered either: the image was built without BuildKit.
    assert!(
        !log.iter().any(|l| l.contains("Building with BuildKit")),
        "{}",
        joined(&log)
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_fails_the_step_with_a_clear_message() {
    let mut stack = spawn_stack().await;
    let (project_props, _) = stack.project_with_manifest(PRINT_KEY).await;
    stack
        .set_properties(
            &project_props,
            json!({"gantry": {"env:runner_secrets": ["missing-one"]}}),
        )
        .await;

    let (change_id, change) = stack.run_change("default", "main").await;

    assert_status(&stack, &change_id, &change, "error").await;
    assert_eq!(
        step_statuses(&change),
        vec![("default".into(), "error".into())]
    );
    let log = stack.log(&change_id).await;
    let expected = "The secret \"missing-one\" named in gantry.env:runner_secrets does not exist; create it with PUT /api/secrets/missing-one";
    assert!(log.iter().any(|l| l == expected), "log:\n{}", joined(&log));
    assert!(
        !log.iter().any(|l| l.starts_with("API_KEY=")),
        "the action ran:\n{}",
        joined(&log)
    );
    stack.stop().await;
}

const NUMERIC_PORT: &str = r#"
actions:
  default:
    run: gantry-runner properties set environment /region '"eu"' && gantry-runner properties set project /gantry/env/PORT 8080
"#;

/// The step's valid environment update is not saved either: a result applies whole or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_leaving_an_env_property_a_number_fails_and_saves_neither_owner() {
    assert_step_updates_refused(
        NUMERIC_PORT,
        "The step's updates to the project properties are invalid: `gantry.env.PORT` must be a string, found a number",
    )
    .await;
}

const ADD_SECRET_REFERENCE: &str = r#"
actions:
  default:
    run: gantry-runner properties set environment '/gantry/env:runner_secrets' '["stolen"]'
"#;

/// Secret references are the user's to set: a step (repository code) that adds one to the
/// database properties fails and saves nothing, as repository files naming secrets are ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_may_not_add_a_secret_reference_to_the_properties() {
    assert_step_updates_refused(
        ADD_SECRET_REFERENCE,
        "The step's updates to the environment properties are invalid: `gantry.env:runner_secrets` may only be changed by a user through the API, not by a step",
    )
    .await;
}

const UNSAFE_FILE: &str = r#"
actions:
  default:
    run: gantry-runner properties set environment '/gantry/files/~1etc~1cron.d~1job' '{"content":"x"}'
"#;

/// A step's patch is checked like a user's update: a `gantry.files` path outside the writable
/// places fails the step, naming the path, and saves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_storing_an_unsafe_file_path_fails_and_saves_nothing() {
    assert_step_updates_refused(
        UNSAFE_FILE,
        "The step's updates to the environment properties are invalid: `gantry.files` path \"/etc/cron.d/job\" is refused: files may only be written under /opt/gantry or /tmp",
    )
    .await;
}

//! Build secrets end to end: offered to the step image build through BuildKit as
//! `RUN --mount=type=secret,id=<key>`, later secrets winning on the same key, found in neither the
//! image's history nor any of its layers; a rotated secret rebuilds the image with the new value;
//! the default Dockerfile works too; a failing `RUN` fails the step with BuildKit's reason.

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::ListImagesOptionsBuilder;
use futures_util::TryStreamExt;
use gantry_testkit::TestStack;
use serde_json::{Value, json};

use crate::helpers::{
    assert_status_logged, contains, put_secret, sha256_hex, spawn_stack, step_named,
};

/// Upper case and `_`, so that no fragment of them can occur in ids, hashes or timestamps.
const SECRET: &str = "GBS_7KQ2XW9RTM4PLZ";
const ROTATED: &str = "GBS_N3VD8HYC5JFQ2S";
/// The same key in a secret listed earlier: it loses to `SECRET`.
const SHADOWED: &str = "GBS_W6TB9MRK3XPQ7L";

/// The default Dockerfile's lines plus a `RUN` that keeps only the hash of the secret.
const HASHING_DOCKERFILE: &str = r#"ARG GANTRY_BASE_RUNNER
FROM ${GANTRY_BASE_RUNNER}
ADD --chown=10001:10001 repo.tar /opt/gantry/
COPY --chown=10001:10001 step_context_env.json /opt/gantry/.gantry/step_context_env.json
RUN --mount=type=secret,id=BUILD_TOKEN,uid=10001 sha256sum /run/secrets/BUILD_TOKEN | cut -d ' ' -f 1 > /opt/gantry/token.sha
"#;

const PRINT_HASH: &str = "actions:\n  default:\n    run: cat /opt/gantry/token.sha\n";

/// Runs the `default` action; returns the change and its log, checking the change's status.
async fn run(stack: &TestStack, expected_status: &str) -> (Value, Vec<String>) {
    let (change_id, change) = stack.run_change("default", "main").await;
    let log = stack.log(&change_id).await;
    assert_status_logged(&change, expected_status, &log);
    (change, log)
}

fn has_line(log: &[String], wanted: impl Fn(&str) -> bool) -> bool {
    log.iter().any(|l| wanted(l))
}

/// The tags of the step images built for `commit` (their `gantry.commit` label).
async fn step_images(docker: &Docker, commit: &str) -> Vec<String> {
    let label = format!("gantry.commit={commit}");
    let filters = HashMap::from([("label", vec![label.as_str()])]);
    let options = ListImagesOptionsBuilder::default()
        .filters(&filters)
        .build();
    let images = docker.list_images(Some(options)).await.unwrap();
    images.into_iter().flat_map(|i| i.repo_tags).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_secret_is_readable_in_run_in_no_layer_or_history_and_a_rotation_rebuilds() {
    let mut stack = spawn_stack().await;
    put_secret(&stack, "shadowed", json!({ "BUILD_TOKEN": SHADOWED })).await;
    put_secret(&stack, "build-token", json!({ "BUILD_TOKEN": SECRET })).await;
    let (project_props, _) = stack
        .project_with_files(PRINT_HASH, &[(".gantry/Dockerfile", HASHING_DOCKERFILE)])
        .await;
    stack
        .set_properties(
            &project_props,
            json!({"gantry": {"env:build_secrets": ["shadowed", "build-token"]}}),
        )
        .await;

    let (change, log) = run(&stack, "success").await;

    let expected = sha256_hex(SECRET);
    assert!(
        has_line(&log, |l| l == expected),
        "the step did not print the hash of the later secret's value; log:\n{}",
        log.join("\n")
    );
    assert!(has_line(&log, |l| l.starts_with(
        "===> Building with BuildKit, offering the build secrets BUILD_TOKEN "
    )));
    assert!(has_line(&log, |l| l.starts_with(
        "===> Using \".gantry/Dockerfile\" to build the image"
    )));
    assert!(!has_line(&log, |l| l.contains(SECRET) || l.contains(SHADOWED)));
    assert_eq!(
        gantry_worker::runner::buildkit::secret_dirs_of(std::process::id()),
        Vec::<std::path::PathBuf>::new(),
        "the build secret files outlived the build"
    );
    let docker = Docker::connect_with_socket_defaults().unwrap();
    let commit = change["data"]["attributes"]["commit_sha"].as_str().unwrap();
    let tags = step_images(&docker, commit).await;
    assert_eq!(tags.len(), 1, "{tags:?}");
    let history = docker.image_history(&tags[0]).await.unwrap();
    let commands: Vec<&str> = history.iter().map(|h| h.created_by.as_str()).collect();
    assert!(
        commands
            .iter()
            .any(|c| c.contains("sha256sum /run/secrets/BUILD_TOKEN")),
        "{commands:#?}"
    );
    assert!(
        !commands
            .iter()
            .any(|c| c.contains(SECRET) || c.contains(SHADOWED))
    );
    let saved: Vec<u8> = docker
        .export_image(&tags[0])
        .map_ok(|chunk| chunk.to_vec())
        .try_concat()
        .await
        .unwrap();
    assert!(
        contains(&saved, &expected),
        "the scan must find what the layers hold"
    );
    assert!(
        !contains(&saved, SECRET),
        "the secret is in the saved image"
    );
    assert!(!contains(&saved, SHADOWED));

    assert_eq!(
        put_secret(&stack, "build-token", json!({ "BUILD_TOKEN": ROTATED })).await,
        200
    );
    let (_, rotated) = run(&stack, "success").await;

    let expected = sha256_hex(ROTATED);
    assert!(
        has_line(&rotated, |l| l == expected),
        "the rotated secret did not reach the rebuilt image; log:\n{}",
        rotated.join("\n")
    );
    assert_eq!(step_images(&docker, commit).await.len(), 2);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_dockerfile_builds_with_build_secrets_and_the_image_is_reused() {
    let mut stack = spawn_stack().await;
    put_secret(&stack, "build-token", json!({ "BUILD_TOKEN": SECRET })).await;
    // The repository checkout and the env file come from the default Dockerfile's ADD and COPY.
    let manifest = "actions:\n  default:\n    run: stat -c 'owner=%u' /opt/gantry/.gantry/actions.yaml && test -s /opt/gantry/.gantry/step_context_env.json\n";
    let (project_props, _) = stack.project_with_manifest(manifest).await;
    stack
        .set_properties(
            &project_props,
            json!({"gantry": {"env:build_secrets": ["build-token"]}}),
        )
        .await;

    let (_, first) = run(&stack, "success").await;
    let (_, second) = run(&stack, "success").await;

    let built_with_buildkit =
        |log: &[String]| has_line(log, |l| l.starts_with("===> Building with BuildKit"));
    assert!(built_with_buildkit(&first), "log:\n{}", first.join("\n"));
    assert!(
        has_line(&first, |l| l == "owner=10001"),
        "log:\n{}",
        first.join("\n")
    );
    assert!(!has_line(&first, |l| l.starts_with("===> Using ")));
    assert!(!built_with_buildkit(&second));
    assert!(has_line(&second, |l| l
        .starts_with("===> Reusing image gantry-step:")));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_run_with_a_build_secret_fails_the_step_with_buildkits_reason() {
    let mut stack = spawn_stack().await;
    put_secret(&stack, "build-token", json!({ "BUILD_TOKEN": SECRET })).await;
    let dockerfile = "ARG GANTRY_BASE_RUNNER\nFROM ${GANTRY_BASE_RUNNER}\n\
        RUN --mount=type=secret,id=BUILD_TOKEN,uid=10001 test \"$(cat /run/secrets/BUILD_TOKEN)\" = not-the-token\n";
    let (project_props, _) = stack
        .project_with_files(PRINT_HASH, &[(".gantry/Dockerfile", dockerfile)])
        .await;
    stack
        .set_properties(
            &project_props,
            json!({"gantry": {"env:build_secrets": ["build-token"]}}),
        )
        .await;

    let (change, log) = run(&stack, "error").await;

    let reason = "The step image build failed: executor failed running [/bin/sh -c test \"$(cat /run/secrets/BUILD_TOKEN)\" = not-the-token]: exit code: 1";
    assert!(
        has_line(&log, |l| l.contains(reason)),
        "log:\n{}",
        log.join("\n")
    );
    let step = step_named(&change, "default");
    assert_eq!(
        step["attributes"]["attempt"], 1,
        "a Dockerfile failure is not retried"
    );
    stack.stop().await;
}

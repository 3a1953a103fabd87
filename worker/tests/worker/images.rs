//! Step images (DESIGN §5.1): a custom `.gantry/Dockerfile` with its build output and build args, a
//! specialised runner image chosen by an environment's settings (the runner images seed), the
//! container limits of the settings, and the collector of unused step images.

use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, InspectContainerOptions, RemoveImageOptionsBuilder,
};
use futures_util::StreamExt;
use gantry_testkit::{Repo, TestStack};
use serde_json::json;

use crate::helpers::{assert_logged, assert_status, spawn_stack, spawn_stack_with};

/// The default Dockerfile's lines, then a file made of the build args.
const BUILD_ARGS_DOCKERFILE: &str = r#"ARG GANTRY_BASE_RUNNER
FROM ${GANTRY_BASE_RUNNER}
ARG GIT_REV
ARG GIT_SHA
ARG GANTRY_VERSION
ARG GANTRY_BASE_RUNNER
ADD --chown=10001:10001 repo.tar /opt/gantry/
COPY --chown=10001:10001 step_context_env.json /opt/gantry/.gantry/step_context_env.json
RUN echo "rev=$GIT_REV sha=$GIT_SHA version=$GANTRY_VERSION base=$GANTRY_BASE_RUNNER" > /opt/gantry/build-args.txt
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_dockerfile_adds_a_file_the_step_reads_with_the_build_args_and_its_output_is_logged()
 {
    let mut stack = spawn_stack().await;
    stack
        .project_with_files(
            "actions:\n  default:\n    run: cat /opt/gantry/build-args.txt\n",
            &[(".gantry/Dockerfile", BUILD_ARGS_DOCKERFILE)],
        )
        .await;

    let (change_id, change) = stack.run_change("default", "main").await;

    assert_status(&stack, &change_id, &change, "success").await;
    let sha = change["data"]["attributes"]["commit_sha"].as_str().unwrap();
    let log = stack.log(&change_id).await;
    assert_logged(
        &log,
        "===> Using \".gantry/Dockerfile\" to build the image for step \"default\"",
    );
    // The classic builder's own output, streamed into the step log.
    assert!(
        log.iter()
            .any(|l| l.starts_with("Step 9/") && l.contains(": RUN echo \"rev=$GIT_REV")),
        "{log:#?}"
    );
    assert_logged(
        &log,
        &format!(
            "rev=main sha={sha} version={} base={}",
            gantry_shared::VERSION,
            stack.settings.worker.runner_image
        ),
    );
    stack.stop().await;
}

/// A runner image derived from the offline base image with a marker file: what a team builds as a
/// specialised runner.
async fn build_specialised_runner(docker: &Docker, base: &str, tag: &str) {
    let dockerfile = format!(
        "FROM {base}\nUSER 0:0\nRUN echo specialised > /etc/runner-flavour\nUSER 10001:10001\n"
    );
    let mut context = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    context
        .append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
        .unwrap();
    let options = BuildImageOptionsBuilder::default()
        .t(tag)
        .networkmode("none")
        .rm(true)
        .build();
    let mut build = docker.build_image(
        options,
        None,
        Some(bollard::body_full(context.into_inner().unwrap().into())),
    );
    while let Some(item) = build.next().await {
        let info = item.expect("the specialised runner builds");
        assert!(info.error_detail.is_none(), "{info:?}");
    }
}

/// The running step container of `change`, inspected.
async fn running_container(
    stack: &TestStack,
    docker: &Docker,
    change: &str,
) -> bollard::models::ContainerInspectResponse {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        for name in stack.containers_of(change).await {
            let inspected = docker
                .inspect_container(&name, None::<InspectContainerOptions>)
                .await
                .unwrap();
            if inspected.state.as_ref().and_then(|s| s.running) == Some(true) {
                return inspected;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no running container of {change}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `runner_image` of one environment's settings makes its steps run in that image, with that
/// environment's limits, while another environment of the project keeps the defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environments_runner_image_and_limits_apply_to_its_steps_only() {
    let mut stack = spawn_stack().await;
    let docker = gantry_worker::runner::connect_docker().await.unwrap();
    let tag = format!("gantry-test-runner:{}", uuid::Uuid::now_v7().simple());
    build_specialised_runner(&docker, &stack.settings.worker.runner_image, &tag).await;
    stack
        .project_with_manifest(
            "actions:\n  default:\n    run: 'cat /etc/runner-flavour 2>/dev/null || echo default-runner; sleep 2'\n",
        )
        .await;
    stack
        .post(
            "/api/projects/demo/environments",
            json!({"code": "special", "name": "Specialised"}),
        )
        .await;
    stack
        .set_environment_settings(
            "special",
            json!({"runner_image": tag, "memory_bytes": 100 << 20, "pids_limit": 64, "cpus": 0.5}),
        )
        .await;

    let special = create_change(&stack, "special").await;
    let inspected = running_container(&stack, &docker, &special).await;
    let special_document = stack.wait_final(&special).await;
    let (default_id, default_document) = stack.run_change("default", "main").await;

    assert_status(&stack, &special, &special_document, "success").await;
    assert_status(&stack, &default_id, &default_document, "success").await;
    assert_logged(&stack.log(&special).await, "specialised");
    assert_logged(&stack.log(&default_id).await, "default-runner");
    let host = inspected.host_config.unwrap();
    assert_eq!(host.memory, Some(100 << 20));
    assert_eq!(host.pids_limit, Some(64));
    assert_eq!(host.nano_cpus, Some(500_000_000));
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    let image = docker
        .inspect_image(&inspected.image.unwrap())
        .await
        .unwrap();
    let base = docker.inspect_image(&tag).await.unwrap();
    assert!(
        image.root_fs.unwrap().layers.unwrap()[..]
            .starts_with(&base.root_fs.unwrap().layers.unwrap()),
        "the step image is built on the specialised runner"
    );
    stack.stop().await;
    let _ = docker
        .remove_image(
            &tag,
            Some(RemoveImageOptionsBuilder::default().force(true).build()),
            None,
        )
        .await;
}

async fn create_change(stack: &TestStack, environment: &str) -> String {
    let body = stack
        .post(
            "/api/changes",
            json!({"project_code": "demo", "environment_code": environment,
                   "git_remote_name": "origin", "git_rev": "main", "action": "default"}),
        )
        .await;
    body["data"]["id"].as_str().unwrap().to_owned()
}

/// Whether the engine still has the image.
async fn exists(docker: &Docker, tag: &str) -> bool {
    docker.inspect_image(tag).await.is_ok()
}

/// The step image a change's step used, from its log.
async fn image_of(stack: &TestStack, change: &str) -> String {
    let log = stack.log(change).await;
    log.iter()
        .find_map(|l| {
            l.strip_prefix("Successfully tagged ").or_else(|| {
                l.strip_prefix("===> Reusing image ")
                    .and_then(|r| r.split(' ').next())
            })
        })
        .unwrap_or_else(|| panic!("no step image in {log:#?}"))
        .to_owned()
}

/// With a TTL of two seconds: the image of a finished change is removed (once the containers
/// parked for its steps expired, three seconds after its last step), the image of a step still
/// running is not (its container uses it) until that step is gone too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_step_images_are_collected_after_their_ttl_but_never_one_in_use() {
    let stack = spawn_stack_with(|s| {
        s.worker.image_ttl_seconds = 2;
        s.worker.image_gc_interval_seconds = 1;
        s.worker.parked_idle_seconds = 3;
    })
    .await;
    let docker = gantry_worker::runner::connect_docker().await.unwrap();
    let repo = Repo::new(&[(
        ".gantry/actions.yaml",
        "actions:\n  default:\n    run: 'true'\n",
    )]);
    stack.project_with_repo(&repo.path()).await;
    let (quick, _) = stack.run_change("default", "main").await;
    let old_image = image_of(&stack, &quick).await;
    // A second commit: another step image, used by a step that keeps running.
    repo.commit(
        &[(
            ".gantry/actions.yaml",
            "actions:\n  default:\n    run: 'sleep 60'\n",
        )],
        "sleep",
    );
    let sleeping = stack.create_change("default", "main").await;
    running_container(&stack, &docker, &sleeping).await;
    let new_image = image_of(&stack, &sleeping).await;
    assert_ne!(old_image, new_image);

    let deadline = Instant::now() + Duration::from_secs(30);
    while exists(&docker, &old_image).await {
        assert!(Instant::now() < deadline, "{old_image} was not collected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Well past its TTL while its container runs.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        exists(&docker, &new_image).await,
        "an image in use was removed"
    );

    let (status, _) = stack
        .request(
            reqwest::Method::DELETE,
            &format!("/api/changes/{sleeping}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let deadline = Instant::now() + Duration::from_secs(30);
    while exists(&docker, &new_image).await {
        assert!(
            Instant::now() < deadline,
            "{new_image} was not collected once unused"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The record goes right after the image (the collector removes, then forgets).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let records = stack
            .db()
            .await
            .query_one("SELECT count(*) FROM step_images", &[])
            .await
            .unwrap()
            .get::<_, i64>(0);
        if records == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the records of removed images stay"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.stop().await;
}

/// An environment's `step_timeout` applies to an action that sets no `timeout` of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environments_step_timeout_applies_when_the_action_sets_none() {
    let mut stack = spawn_stack().await;
    stack
        .project_with_manifest("actions:\n  default:\n    run: 'sleep 30'\n")
        .await;
    stack
        .set_environment_settings("dev", json!({"step_timeout": 1}))
        .await;

    let started = Instant::now();
    let (change_id, change) = stack.run_change("default", "main").await;

    assert_status(&stack, &change_id, &change, "error").await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_logged(
        &stack.log(&change_id).await,
        "The step timed out after 1 seconds and was killed",
    );
    stack.stop().await;
}

//! The properties seed's rules beyond its concurrent-steps examples (those are in `properties`),
//! end to end: the merge-order table of the repository files and database levels, `gantry.files`
//! paths from the repository, `store-file` / `remove-file`, and the building-images seed's remote
//! Docker host properties.

use serde_json::{Value, json};

use crate::helpers::{assert_status, assert_status_logged, sha256_hex, spawn_stack, step_named};

/// The eleven sources in merge order (DESIGN §4, the seed's list): nine repository files, then
/// the project and the environment.
const SOURCES: [&str; 11] = [
    ".gantry/properties.json",
    ".gantry/properties.toml",
    ".gantry/properties.yaml",
    ".gantry/projects/demo.json",
    ".gantry/projects/demo.toml",
    ".gantry/projects/demo.yaml",
    ".gantry/environments/dev.json",
    ".gantry/environments/dev.toml",
    ".gantry/environments/dev.yaml",
    "project",
    "environment",
];

/// Source `i` sets `winner.k<j>` to its own name for every `j >= i`, so `winner.k<j>` must end
/// up holding the name of source `j` exactly when later sources win. It also sets its own
/// `nested.from_<i>` (objects merge) and `list` (arrays are replaced, not concatenated).
fn source_properties(i: usize) -> Value {
    let name = SOURCES[i];
    let winners: serde_json::Map<String, Value> = (i..SOURCES.len())
        .map(|j| (format!("k{j:02}"), json!(name)))
        .collect();
    json!({
        "winner": winners,
        "nested": { format!("from_{i:02}"): true },
        "list": [i, i],
    })
}

fn as_toml(value: &Value) -> String {
    toml::to_string(value).expect("TOML-representable")
}

fn as_yaml(value: &Value) -> String {
    yaml_serde::to_string(value).expect("YAML-representable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_files_then_project_then_environment_merge_in_the_documented_order() {
    let mut stack = spawn_stack().await;
    let documents: Vec<(String, String)> = SOURCES[..9]
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let value = source_properties(i);
            let text = match path.rsplit('.').next() {
                Some("json") => value.to_string(),
                Some("toml") => as_toml(&value),
                _ => as_yaml(&value),
            };
            (path.to_string(), text)
        })
        .collect();
    let files: Vec<(&str, &str)> = documents
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let manifest = "actions:\n  show:\n    run: cat \"$GANTRY_PROPERTIES_DIR/merged.json\"\n";
    let (project_props, environment_props) = stack.project_with_files(manifest, &files).await;
    let project_version = stack
        .set_properties(&project_props, source_properties(9))
        .await;
    let environment_version = stack
        .set_properties(&environment_props, source_properties(10))
        .await;

    let (change_id, change) = stack.run_change("show", "main").await;

    assert_status(&stack, &change_id, &change, "success").await;
    let step_id = step_named(&change, "show")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let step = stack.get(&format!("/api/steps/{step_id}")).await;
    let attributes = &step["data"]["attributes"];
    let merged = &attributes["properties"];
    for (j, source) in SOURCES.iter().enumerate() {
        assert_eq!(
            merged["winner"][format!("k{j:02}")],
            json!(source),
            "k{j:02} must come from {source}; merged: {merged:#}"
        );
    }
    let nested = merged["nested"].as_object().expect("an object");
    assert_eq!(nested.len(), SOURCES.len(), "objects merge: {merged:#}");
    assert_eq!(merged["list"], json!([10, 10]), "arrays are replaced");
    assert_eq!(
        attributes["project_properties_version"],
        json!(project_version)
    );
    assert_eq!(
        attributes["environment_properties_version"],
        json!(environment_version)
    );
    let used = stack
        .get(&format!("/api/changes/{change_id}/properties"))
        .await;
    let used = &used["data"]["attributes"];
    assert_eq!(used["project"]["version"], json!(project_version));
    assert_eq!(used["project"]["data"], source_properties(9));
    assert_eq!(used["environment"]["version"], json!(environment_version));
    assert_eq!(used["environment"]["data"], source_properties(10));
    stack.stop().await;
}

const SSH_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n";
const KNOWN_HOSTS: &str = "docker-remote-host ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n";

/// The building-images seed's remote Docker host: `DOCKER_HOST` in the env properties and the
/// SSH key and known_hosts files (mode 0600, under `~/.ssh`) reach the step as given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_docker_host_properties_reach_the_step_as_given() {
    let mut stack = spawn_stack().await;
    let manifest = r#"
actions:
  remote:
    run: >-
      echo "DOCKER_HOST=$DOCKER_HOST" &&
      stat -c 'mode %a owner %u %n' ~/.ssh/id_rsa ~/.ssh/known_hosts &&
      sha256sum ~/.ssh/id_rsa ~/.ssh/known_hosts
"#;
    let (_, environment_props) = stack.project_with_manifest(manifest).await;
    stack
        .set_properties(
            &environment_props,
            json!({"gantry": {
                "env": {"DOCKER_HOST": "ssh://user@docker-remote-host"},
                "files": {
                    "~/.ssh/id_rsa": {"content": SSH_KEY, "mode": "0600"},
                    "~/.ssh/known_hosts": {"content": KNOWN_HOSTS, "mode": "0600"}
                }
            }}),
        )
        .await;

    let (change_id, change) = stack.run_change("remote", "main").await;

    let log = stack.log(&change_id).await;
    assert_status_logged(&change, "success", &log);
    let expected = [
        "DOCKER_HOST=ssh://user@docker-remote-host".to_owned(),
        "mode 600 owner 10001 /opt/gantry/.ssh/id_rsa".to_owned(),
        "mode 600 owner 10001 /opt/gantry/.ssh/known_hosts".to_owned(),
        format!("{}  /opt/gantry/.ssh/id_rsa", sha256_hex(SSH_KEY)),
        format!("{}  /opt/gantry/.ssh/known_hosts", sha256_hex(KNOWN_HOSTS)),
    ];
    for line in expected {
        assert!(
            log.contains(&line),
            "missing {line:?} in log:\n{}",
            log.join("\n")
        );
    }
    stack.stop().await;
}

/// A `gantry.files` path from a repository file is checked at step time: the step fails before
/// its command runs, naming the path and the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsafe_file_path_in_repository_properties_fails_the_step_naming_it() {
    let mut stack = spawn_stack().await;
    let manifest = "actions:\n  write:\n    run: echo the command ran\n";
    let properties = r#"{"gantry": {"files": {"~/../../etc/cron.d/x": {"content": "x"}}}}"#;
    stack
        .project_with_files(manifest, &[(".gantry/properties.json", properties)])
        .await;

    let (change_id, change) = stack.run_change("write", "main").await;

    let log = stack.log(&change_id).await;
    assert_status_logged(&change, "error", &log);
    assert!(
        log.iter().any(|l| l.contains("\"~/../../etc/cron.d/x\"")
            && l.contains("`..` components are not allowed")),
        "log:\n{}",
        log.join("\n")
    );
    assert!(!log.iter().any(|l| l == "the command ran"));
    stack.stop().await;
}

const STORE_FILES: &str = r#"
actions:
  save:
    run: >-
      printf 'host ssh-ed25519 AAAA\n' > ~/known_hosts && chmod 600 ~/known_hosts &&
      printf '\000\001binary' > /tmp/blob.bin &&
      gantry-runner store-file environment ~/known_hosts &&
      gantry-runner store-file project /tmp/blob.bin --format base64
  use:
    run: >-
      stat -c 'mode %a' ~/known_hosts && cat ~/known_hosts && od -An -c /tmp/blob.bin &&
      gantry-runner remove-file environment ~/known_hosts
"#;

/// The seed's `store_file!` / `remove_file!`: a file a step produced is kept in the owner's
/// `gantry.files` (mode kept, base64 when asked), written back for the next change's steps, and
/// removed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_stored_by_a_step_are_written_for_later_steps_and_can_be_removed() {
    let mut stack = spawn_stack().await;
    let (project_props, environment_props) = stack.project_with_manifest(STORE_FILES).await;

    let (save_id, save) = stack.run_change("save", "main").await;
    assert_status(&stack, &save_id, &save, "success").await;
    let (_, environment) = stack.properties(&environment_props).await;
    assert_eq!(
        environment,
        // The shell expanded `~` before gantry-runner saw the path.
        json!({"gantry": {"files": {"/opt/gantry/known_hosts": {
            "content": "host ssh-ed25519 AAAA\n", "mode": "0600", "format": "raw"}}}})
    );
    let (_, project) = stack.properties(&project_props).await;
    assert_eq!(
        project["gantry"]["files"]["/tmp/blob.bin"]["content"],
        "AAFiaW5hcnk="
    );
    assert_eq!(
        project["gantry"]["files"]["/tmp/blob.bin"]["format"],
        "base64"
    );

    let (use_id, used) = stack.run_change("use", "main").await;

    let log = stack.log(&use_id).await;
    assert_status_logged(&used, "success", &log);
    assert!(log.iter().any(|l| l == "mode 600"), "{}", log.join("\n"));
    assert!(log.iter().any(|l| l == "host ssh-ed25519 AAAA"));
    assert!(
        log.iter()
            .any(|l| l.contains("\\0 001   b   i   n   a   r   y")),
        "{}",
        log.join("\n")
    );
    let (_, environment) = stack.properties(&environment_props).await;
    assert_eq!(environment, json!({"gantry": {"files": {}}}));
    stack.stop().await;
}

//! The helper commands outside `run`: properties, store-file / remove-file, exec.

use crate::helpers::Step;
use serde_json::json;

/// A step that has been prepared by a `run` of a no-op action.
fn prepared(project: serde_json::Value) -> Step {
    let step = Step::new("actions:\n  noop: {run: 'true'}\n").with_properties(project, json!({}));
    step.run("noop").success();
    step
}

#[test]
fn properties_set_creates_intermediate_objects_and_refreshes_the_merged_view() {
    let step = prepared(json!({"keep": true}));

    step.runner(&["properties", "set", "environment", "/a/b/port", "8080"])
        .success();
    step.runner(&["properties", "set", "environment", "/a/name", "not json"])
        .success();

    let environment = step.properties_file("environment.json");
    assert_eq!(
        environment,
        json!({"a": {"b": {"port": 8080}, "name": "not json"}})
    );
    let shown = step.runner(&["properties", "show"]).success().stdout();
    let merged: serde_json::Value = serde_json::from_str(&shown).expect("JSON");
    assert_eq!(
        merged,
        json!({"keep": true, "a": {"b": {"port": 8080}, "name": "not json"}})
    );
    assert_eq!(step.properties_file("merged.json"), merged);
}

#[test]
fn an_invalid_pointer_is_a_clear_error() {
    let step = prepared(json!({"a": "text"}));

    let run = step.runner(&["properties", "set", "project", "/a/b", "1"]);

    assert_eq!(run.code(), Some(1));
    assert!(
        run.stderr().contains("the value at \"/a\" is a string"),
        "{}",
        run.stderr()
    );
}

#[test]
fn store_file_keeps_the_content_and_mode_and_remove_file_drops_it() {
    let step = prepared(json!({}));
    step.write("key.pem", "-----BEGIN KEY-----\n");
    std::fs::set_permissions(
        step.home.join("key.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let key = step.home.join("key.pem").display().to_string();

    step.runner(&["store-file", "project", "key.pem"]).success();
    step.runner(&["store-file", "project", "key.pem", "--format", "base64"])
        .success();

    let files = step.properties_file("project.json")["gantry"]["files"].clone();
    assert_eq!(
        files[&key],
        json!({"content": "LS0tLS1CRUdJTiBLRVktLS0tLQo=", "mode": "0600", "format": "base64"})
    );
    step.runner(&["remove-file", "project", &key]).success();
    assert_eq!(
        step.properties_file("project.json")["gantry"]["files"],
        json!({})
    );
    let missing = step.runner(&["remove-file", "project", &key]);
    assert_eq!(missing.code(), Some(1));
}

#[test]
fn exec_at_image_build_time_uses_the_build_context_env() {
    let step = Step::new("actions: {}\n");
    step.write(
        ".gantry/step_context_env.json",
        r#"{"env": {"BUILD_VAR": "from build"}, "context": {"project": {"code": "demo"}}}"#,
    );

    let run = step
        .runner(&["exec", "--", "sh", "-c", "echo \"$BUILD_VAR\""])
        .success();

    assert_eq!(run.stdout(), "from build\n");
}

#[test]
fn exec_of_a_missing_program_exits_127() {
    let step = Step::new("actions: {}\n");
    step.write(
        ".gantry/step_context_env.json",
        r#"{"env": {}, "context": {}}"#,
    );

    let run = step.runner(&["exec", "--", "no-such-program-here"]);

    assert_eq!(run.code(), Some(127));
    assert!(run.stderr().contains("cannot run \"no-such-program-here\""));
}

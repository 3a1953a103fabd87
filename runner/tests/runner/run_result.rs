//! `run`: what ends up in step_result.json.

use crate::helpers::Step;
use serde_json::json;

#[test]
fn properties_set_and_deleted_by_the_action_become_the_result_diffs() {
    let step = Step::new(
        "actions:\n  build:\n    run: gantry-runner properties set project /new_element test_value && gantry-runner properties delete environment /old\n",
    )
    .with_properties(json!({}), json!({"old": 1, "keep": 2}));

    step.run("build").success();

    let result = step.result();
    assert_eq!(
        result["project"]["properties_diff"],
        json!([{"op": "add", "path": "/new_element", "value": "test_value"}])
    );
    assert_eq!(
        result["environment"]["properties_diff"],
        json!([{"op": "remove", "path": "/old"}])
    );
    assert_eq!(result["step"]["properties"], json!({"old": 1, "keep": 2}));
    assert_eq!(
        result["steps"],
        json!({"children": [], "child_execution_strategy": null})
    );
}

#[test]
fn direct_edits_of_the_json_files_are_diffed() {
    let step = Step::new(
        "actions:\n  build:\n    run: |\n      printf '{\"a\": {\"b\": 2}}' > \"$GANTRY_PROPERTIES_DIR/project.json\"\n",
    )
    .with_properties(json!({"a": {"b": 1}}), json!({}));

    step.run("build").success();

    assert_eq!(
        step.result()["project"]["properties_diff"],
        json!([{"op": "replace", "path": "/a/b", "value": 2}])
    );
}

#[test]
fn children_added_at_run_time_are_in_the_result() {
    let step = Step::new(
        "actions:\n  build:\n    run: gantry-runner child add deploy && gantry-runner child add wait deploy --parallel\n  deploy: {}\n",
    );

    step.run("build").success();

    assert_eq!(
        step.result()["steps"],
        json!({
            "children": [{"action": "deploy"}, {"action": "wait"}, {"action": "deploy"}],
            "child_execution_strategy": "parallel"
        })
    );
}

#[test]
fn a_grouping_action_writes_a_result_with_empty_diffs() {
    let step = Step::new("actions:\n  default:\n    steps: [build]\n  build: {run: 'true'}\n");

    let run = step.run("default").success();

    assert!(
        run.stdout()
            .contains("===> Action \"default\" has no command")
    );
    let result = step.result();
    assert_eq!(result["project"]["properties_diff"], json!([]));
    assert_eq!(result["environment"]["properties_diff"], json!([]));
}

#[test]
fn a_failing_command_leaves_no_result_and_passes_its_exit_code() {
    let step = Step::new(
        "actions:\n  build:\n    run: gantry-runner properties set project /a 1; exit 7\n",
    );

    let run = step.run("build");

    assert_eq!(run.code(), Some(7));
    assert!(!step.has_result());
    assert!(
        run.stderr()
            .contains("gantry-runner: error: the command of action \"build\" failed (exit code 7)"),
        "{}",
        run.stderr()
    );
}

#[test]
fn an_ignored_failure_still_writes_the_result() {
    let step = Step::new("actions:\n  build:\n    run: exit 4\n    ignore_failure: true\n");

    let run = step.run("build").success();

    assert!(run.stdout().contains("failed (exit code 4); continuing"));
    assert!(step.has_result());
}

#[test]
fn invalid_json_left_by_the_action_exits_3_without_a_result() {
    let step = Step::new(
        "actions:\n  build:\n    run: echo '{broken' > \"$GANTRY_PROPERTIES_DIR/environment.json\"\n",
    );

    let run = step.run("build");

    assert_eq!(run.code(), Some(3));
    assert!(!step.has_result());
    assert!(
        run.stderr()
            .contains("environment.json is not valid JSON after the action ran")
    );
}

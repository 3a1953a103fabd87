//! The seed's "Changing properties in concurrent steps" examples, end to end: different
//! properties, the race on one property, conflict Scenarios 1 and 2.

use gantry_testkit::TestStack;
use serde_json::{Value, json};

use crate::helpers::{
    SEED_ORIGINAL, SEED_PATCH, SEED_PATCHED, assert_status, assert_status_logged,
    project_conflict_log, spawn_stack, step_named, step_statuses,
};

const DIFFERENT: &str = r#"
actions:
  default:
    run: gantry-runner properties set project /foo '"old_foo"' && gantry-runner properties set project /bar '"old_bar"'
    steps: [foo, bar]
    run_as: parallel
  foo:
    run: gantry-runner properties set project /foo '"new_foo"'
  bar:
    run: gantry-runner properties set project /bar '"new_bar"'
"#;

/// Runs the `default` action of `manifest`, whose parallel children `foo` and `bar` edit the
/// project properties, to success; checks that both children started from the version the
/// parent left (2) — side by side, not one after the other — and returns the stack, the project
/// properties id and the change.
async fn run_parallel_children(manifest: &str) -> (TestStack, String, Value) {
    let mut stack = spawn_stack().await;
    let (project_props, _) = stack.project_with_manifest(manifest).await;

    let (change_id, change) = stack.run_change("default", "main").await;

    assert_status(&stack, &change_id, &change, "success").await;
    for child in ["foo", "bar"] {
        assert_eq!(
            step_named(&change, child)["attributes"]["project_properties_version"],
            2,
            "{child} started from the parent's version, beside its sibling"
        );
    }
    (stack, project_props, change)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_steps_modifying_different_properties_are_both_merged() {
    let (stack, project_props, _) = run_parallel_children(DIFFERENT).await;

    let (version, document) = stack.properties(&project_props).await;
    assert_eq!(document, json!({"foo": "new_foo", "bar": "new_bar"}));
    assert_eq!(version, 4);
    stack.stop().await;
}

const RACE: &str = r#"
actions:
  default:
    run: gantry-runner properties set project /race '"initial value"'
    steps: [foo, bar]
    run_as: parallel
  foo:
    run: gantry-runner properties set project /race '"possible value 1"'
  bar:
    run: sleep 3 && gantry-runner properties set project /race '"possible value 2"'
"#;

/// "The final value of the race property will be the value assigned by the child step that
/// completes last": both patches apply (same key, last writer wins), nothing fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_steps_setting_the_same_property_leave_the_value_of_the_step_that_finished_last() {
    let (stack, project_props, change) = run_parallel_children(RACE).await;

    // Results are applied one at a time in the order the steps finish: the last one's value wins
    // and the other's stays in the history. (bar sleeps, so it is normally the last.)
    let finished = |name| {
        let at = step_named(&change, name)["attributes"]["finished_at"].clone();
        serde_json::from_value::<chrono::DateTime<chrono::Utc>>(at).expect("a finish time")
    };
    let (first, last) = match finished("bar") > finished("foo") {
        true => ("possible value 1", "possible value 2"),
        false => ("possible value 2", "possible value 1"),
    };
    let (version, document) = stack.properties(&project_props).await;
    assert_eq!(document, json!({ "race": last }));
    assert_eq!(version, 4, "one version per step: default, foo, bar");
    let (_, history) = stack
        .request(
            reqwest::Method::GET,
            &format!("/api/properties/{project_props}/versions/3"),
            None,
        )
        .await;
    assert_eq!(
        history["data"]["attributes"]["data"],
        json!({ "race": first }),
        "the value of the step that finished first is kept in the history"
    );
    stack.stop().await;
}

const SCENARIO_1: &str = r#"
actions:
  default:
    run: gantry-runner properties set project /parent '{"child":"value"}'
    steps: [foo, bar]
    run_as: parallel
  foo:
    run: gantry-runner properties delete project /parent
  bar:
    run: gantry-runner properties set project /parent/child '"new value"' && sleep 4
"#;

/// Runs a seed conflict scenario: `bar` patches `parent.child` and finishes last, after `foo`
/// made that patch inapplicable; `bar` fails with the four-document log showing `current` (the
/// pretty-printed current document), the change ends `error` and the properties are `after`.
async fn bar_conflicts(manifest: &str, current: &str, after: serde_json::Value) {
    let mut stack = spawn_stack().await;
    let (project_props, _) = stack.project_with_manifest(manifest).await;

    let (change_id, change) = stack.run_change("default", "main").await;

    let log = stack.log(&change_id).await;
    assert_status_logged(&change, "error", &log);
    assert_eq!(
        step_statuses(&change),
        vec![
            ("bar".into(), "error".into()),
            ("default".into(), "error".into()),
            ("foo".into(), "success".into())
        ]
    );
    let bar_id = step_named(&change, "bar")["id"].as_str().unwrap();
    let expected = project_conflict_log(
        &format!("[{bar_id}] bar"),
        SEED_ORIGINAL,
        SEED_PATCH,
        SEED_PATCHED,
        current,
    );
    assert!(
        log.iter().any(|l| l == &expected),
        "the conflict log is missing; log:\n{}",
        log.join("\n")
    );
    assert_eq!(
        stack.properties(&project_props).await,
        (3, after),
        "bar's patch was not applied"
    );
    stack.stop().await;
}

/// Scenario 1: one child deletes `parent`, the other patches `parent.child`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_property_another_parallel_step_edits_fails_the_later_step_with_the_four_document_log()
 {
    bar_conflicts(SCENARIO_1, "{}", json!({})).await;
}

const SCENARIO_2: &str = r#"
actions:
  default:
    run: gantry-runner properties set project /parent '{"child":"value"}'
    steps: [foo, bar]
    run_as: parallel
  foo:
    run: gantry-runner properties set project /parent '"I am now a string"'
  bar:
    run: gantry-runner properties set project /parent/child '"new value"' && sleep 4
"#;

/// Scenario 2: one child changes the type of `parent`, the other patches `parent.child`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_a_property_type_under_a_parallel_step_fails_it_with_the_four_document_log() {
    bar_conflicts(
        SCENARIO_2,
        "{\n  \"parent\": \"I am now a string\"\n}",
        json!({"parent": "I am now a string"}),
    )
    .await;
}

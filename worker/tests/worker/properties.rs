//! The seed's "Changing properties in concurrent steps" examples, end to end.

use serde_json::json;

use crate::helpers::{
    SEED_ORIGINAL, SEED_PATCH, SEED_PATCHED, project_conflict_log, spawn_stack, step_statuses,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_steps_modifying_different_properties_are_both_merged() {
    let mut stack = spawn_stack().await;
    let (project_props, _) = stack.project_with_manifest(DIFFERENT).await;

    let (change_id, change) = stack.run_change("default", "main").await;

    assert_eq!(
        change["data"]["attributes"]["status_code"],
        "success",
        "log:\n{}",
        stack.log(&change_id).await.join("\n")
    );
    for child in ["foo", "bar"] {
        let step = crate::helpers::step_named(&change, child);
        assert_eq!(
            step["attributes"]["project_properties_version"], 2,
            "{child} started from the parent's version, beside its sibling"
        );
    }
    let (version, document) = stack.properties(&project_props).await;
    assert_eq!(document, json!({"foo": "new_foo", "bar": "new_bar"}));
    assert_eq!(version, 4);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_property_another_parallel_step_edits_fails_the_later_step_with_the_four_document_log()
 {
    let mut stack = spawn_stack().await;
    let (project_props, _) = stack.project_with_manifest(SCENARIO_1).await;

    let (change_id, change) = stack.run_change("default", "main").await;

    assert_eq!(change["data"]["attributes"]["status_code"], "error");
    let statuses = step_statuses(&change);
    assert_eq!(
        statuses,
        vec![
            ("bar".into(), "error".into()),
            ("default".into(), "error".into()),
            ("foo".into(), "success".into())
        ]
    );
    let bar_id = change["included"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["attributes"]["name"] == "bar")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let expected = project_conflict_log(
        &format!("[{bar_id}] bar"),
        SEED_ORIGINAL,
        SEED_PATCH,
        SEED_PATCHED,
        "{}",
    );
    let log = stack.log(&change_id).await;
    assert!(
        log.iter().any(|l| l == &expected),
        "the conflict log is missing; log:\n{}",
        log.join("\n")
    );
    let (version, document) = stack.properties(&project_props).await;
    assert_eq!(
        (version, document),
        (3, json!({})),
        "bar's patch was not applied"
    );
    stack.stop().await;
}

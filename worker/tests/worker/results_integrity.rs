//! The results path keeps property values and secrets out of plain sight and never leaves a step
//! hanging: step results travel sealed through the outbox and the results queue, stored
//! properties that cannot be read fail the step with the reason, and the lines the results role
//! logs are masked with the step's secrets (or withheld when those cannot be read).

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gantry_testkit::TestStack;
use serde_json::{Value, json};

use crate::helpers::{
    assert_logged, assert_status, assert_status_logged, contains, flipped_last_byte, put_secret,
    spawn_stack,
};

/// Upper case and `_`, so that no fragment of it can occur in ids, hashes or timestamps.
const SECRET: &str = "GSK_RV8WQ3MZT6XKPB2HLN";
const MASK: &str = "********";

/// Runs `query` against the stack's database and returns the first column of every row.
async fn column(stack: &TestStack, query: &str) -> Vec<Vec<u8>> {
    stack
        .db()
        .await
        .query(query, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Runs `statement` until it changes a row: stages a fault at the moment its condition holds.
async fn when_staged(stack: &TestStack, statement: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while stack.sql(statement).await == 0 {
        assert!(Instant::now() < deadline, "never staged: {statement}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every way `text` can appear inside base64: its encoding at each of the three alignments to a
/// 3-byte group, without the characters that depend on the neighbouring bytes.
fn base64_forms(text: &str) -> Vec<String> {
    (0..3)
        .map(|offset| {
            let mut bytes = vec![b'x'; offset];
            bytes.extend_from_slice(text.as_bytes());
            let encoded = STANDARD.encode(&bytes);
            let skip = if offset == 0 { 0 } else { 4 };
            encoded[skip..encoded.len() - 4].to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_and_the_step_rows_never_hold_a_property_value_in_plain_text() {
    let mut stack = spawn_stack().await;
    let canary = format!("canary-{}", uuid::Uuid::new_v4().simple());
    let (project_props, _) = stack
        .project_with_manifest(&format!(
            "actions:\n  default:\n    run: gantry-runner properties set project /canary '\"{canary}\"'\n"
        ))
        .await;

    let (change_id, change) = stack.run_change("default", "main").await;

    assert_status(&stack, &change_id, &change, "success").await;
    assert_eq!(
        stack.properties(&project_props).await,
        (2, json!({"canary": canary}))
    );
    let payloads = column(&stack, "SELECT payload FROM outbox").await;
    let results: Vec<Value> = payloads
        .iter()
        .map(|p| serde_json::from_slice::<Value>(p).unwrap())
        .filter(|m| m["type"] == "step_result_v1")
        .collect();
    assert_eq!(
        results.len(),
        1,
        "the step's result went through the outbox"
    );
    assert!(results[0]["sealed_result"].is_string(), "{}", results[0]);
    let mut forms = base64_forms(&canary);
    forms.push(canary.clone());
    let steps = column(
        &stack,
        "SELECT properties FROM steps WHERE properties IS NOT NULL",
    )
    .await;
    assert_eq!(steps.len(), 1, "the step's merged properties are stored");
    for stored in payloads.iter().chain(&steps) {
        for form in &forms {
            assert!(
                !contains(stored, form),
                "{form:?} in {}",
                String::from_utf8_lossy(stored)
            );
        }
    }
    stack.stop().await;
}

/// The properties version a step received fails authentication once the step has run: retrying
/// cannot make it readable, so the step fails with the reason instead of its result looping
/// until dead-lettered (and the step staying `running` for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_received_version_fails_the_step_with_the_reason_instead_of_hanging() {
    let mut stack = spawn_stack().await;
    let (project_props, _) = stack
        .project_with_manifest(
            "actions:\n  default:\n    run: sleep 2 && gantry-runner properties set project /x 1\n",
        )
        .await;
    let change_id = stack.create_change("default", "main").await;
    when_staged(
        &stack,
        &format!(
            "UPDATE properties_versions v SET document = {} \
         FROM steps s JOIN changes c ON c.id = s.change_id JOIN properties p ON p.project_id = c.project_id \
         WHERE s.status_code = 'running' AND v.properties_id = p.id AND v.version = s.project_properties_version",
            flipped_last_byte("v.document")
        ),
    )
    .await;

    let change = tokio::time::timeout(Duration::from_secs(90), stack.wait_final(&change_id))
        .await
        .expect("the change ends instead of hanging");

    let log = stack.log(&change_id).await;
    assert_status_logged(&change, "error", &log);
    assert_logged(
        &log,
        "The step's updates to the project properties cannot be applied: the stored properties cannot be read (version 1, which the step received: the ciphertext failed authentication (tampered with, or bound to another record))",
    );
    assert_eq!(change["included"][0]["attributes"]["attempt"], 1);
    assert_eq!(stack.properties(&project_props).await, (1, json!({})));
    stack.stop().await;
}

/// Writes a child action named after the secret straight into the children file (`gantry-runner
/// child add` would refuse it in the container), so that the results role's own failure line
/// quotes the secret.
const CHILD_NAMED_AFTER_THE_SECRET: &str = r#"
actions:
  default:
    run: sleep 2 && printf '{"children":[{"action":"%s"}]}' "$TOKEN" > /opt/gantry/.gantry/children.json
"#;

/// Creates the secret, names it in the environment properties and runs the change.
async fn run_with_secret(stack: &mut TestStack, stage: Option<&str>) -> (String, Value) {
    put_secret(stack, "deploy", json!({ "TOKEN": SECRET })).await;
    let (_, environment_props) = stack
        .project_with_manifest(CHILD_NAMED_AFTER_THE_SECRET)
        .await;
    stack
        .set_properties(
            &environment_props,
            json!({"gantry": {"env:runner_secrets": ["deploy"]}}),
        )
        .await;
    let change_id = stack.create_change("default", "main").await;
    if let Some(statement) = stage {
        when_staged(stack, statement).await;
    }
    let change = stack.wait_final(&change_id).await;
    (change_id, change)
}

fn assert_no_secret(log: &[String]) {
    for line in log {
        assert!(!line.contains(SECRET), "the secret is in {line:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_line_of_the_results_role_is_masked_with_the_step_secrets() {
    let mut stack = spawn_stack().await;

    let (change_id, change) = run_with_secret(&mut stack, None).await;

    let log = stack.log(&change_id).await;
    assert_status_logged(&change, "error", &log);
    assert_logged(
        &log,
        &format!(
            "The step added the child action \"{MASK}\", which the actions manifest does not define"
        ),
    );
    assert_no_secret(&log);
    stack.stop().await;
}

/// The step's secret fails authentication by the time its result is applied: nothing can mask
/// the failure line, so it is withheld with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_line_is_withheld_when_the_step_secrets_cannot_be_read() {
    let mut stack = spawn_stack().await;
    let tamper = format!(
        "UPDATE secrets SET data = {} \
         WHERE name = 'deploy' AND EXISTS (SELECT 1 FROM steps WHERE status_code = 'running')",
        flipped_last_byte("data")
    );

    let (change_id, change) = run_with_secret(&mut stack, Some(&tamper)).await;

    let log = stack.log(&change_id).await;
    assert_status_logged(&change, "error", &log);
    assert_logged(
        &log,
        "The details of this failure are withheld: they may contain secret values, and the step's secrets, needed to mask them, cannot be read (secret \"deploy\" could not be decrypted: the ciphertext failed authentication (tampered with, or bound to another record))",
    );
    assert!(!log.iter().any(|l| l.contains("child action")));
    assert_no_secret(&log);
    stack.stop().await;
}

/// The results role sends its properties writes in one round trip with the COMMIT, so it cannot
/// look at the count of rows written: its statement must fail, not write nothing, when the
/// document is no longer at the version it patched; at the right version it writes both rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_locked_properties_write_fails_instead_of_writing_nothing_when_the_version_moved() {
    use gantry_shared::store::{WRITE_LOCKED, seal_next};
    let mut stack = spawn_stack().await;
    let (project_props, _) = stack
        .project_with_manifest("actions:\n  default:\n    run: 'true'\n")
        .await;
    let id: uuid::Uuid = project_props.parse().unwrap();
    let cipher = gantry_shared::crypto::Cipher::from_settings(&stack.settings.encryption).unwrap();
    let client = stack.db().await;
    let document = json!({"written": true});
    let write = |current: i64| {
        let sealed = seal_next(&cipher, id, current, &document);
        let (client, author) = (&client, "test");
        async move {
            let step_id: Option<uuid::Uuid> = None;
            client
                .execute(
                    WRITE_LOCKED,
                    &[&id, &current, &(current + 1), &sealed, &author, &step_id],
                )
                .await
        }
    };

    let moved = write(5).await.unwrap_err();
    assert_eq!(
        moved.code(),
        Some(&tokio_postgres::error::SqlState::NOT_NULL_VIOLATION),
        "{moved}"
    );
    assert_eq!(stack.properties(&project_props).await, (1, json!({})));

    assert_eq!(write(1).await.unwrap(), 1);
    assert_eq!(
        stack.properties(&project_props).await,
        (2, document.clone())
    );
    let history = column(
        &stack,
        &format!("SELECT version::text::bytea FROM properties_versions WHERE properties_id = '{id}' ORDER BY version"),
    )
    .await;
    assert_eq!(history, [b"1".to_vec(), b"2".to_vec()]);
    stack.stop().await;
}

//! The in-process stack comes from `gantry-testkit` (shared with the loadtest's tests); what only
//! the worker tests need lives here.

use gantry_testkit::TestStack;
use serde_json::{Value, json};

pub use gantry_testkit::{spawn_stack, spawn_stack_with};

/// Statuses of the change's steps by name, sorted.
pub fn step_statuses(change: &Value) -> Vec<(String, String)> {
    let mut statuses: Vec<(String, String)> = change["included"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter(|s| s["type"] == "steps")
                .map(|s| {
                    (
                        s["attributes"]["name"].as_str().unwrap().to_owned(),
                        s["attributes"]["status_code"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    statuses.sort();
    statuses
}

/// The step called `name` in a change document fetched with `?include=steps`.
pub fn step_named<'a>(change: &'a Value, name: &str) -> &'a Value {
    change["included"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["attributes"]["name"] == name))
        .unwrap_or_else(|| panic!("no step named {name} in {change}"))
}

/// Creates or replaces secret `name` through the API; returns the status (201 or 200).
pub async fn put_secret(stack: &TestStack, name: &str, data: Value) -> u16 {
    let (status, body) = stack
        .request(
            reqwest::Method::PUT,
            &format!("/api/secrets/{name}"),
            Some(json!({"data": {"attributes": {"data": data}}})),
        )
        .await;
    assert!(
        status == 200 || status == 201,
        "PUT /api/secrets/{name}: {status} {body}"
    );
    status
}

/// Runs the `default` action of `manifest`, whose step's property updates must be refused with
/// the log line `expected`: the change ends `error` and neither document changes.
pub async fn assert_step_updates_refused(manifest: &str, expected: &str) {
    let mut stack = spawn_stack().await;
    let (project_props, env_props) = stack.project_with_manifest(manifest).await;
    let before = (
        stack.properties(&project_props).await,
        stack.properties(&env_props).await,
    );

    let (change_id, change) = stack.run_change("default", "main").await;

    let log = stack.log(&change_id).await;
    assert_status_logged(&change, "error", &log);
    assert!(
        log.iter().any(|l| l == expected),
        "missing {expected:?}; log:\n{}",
        log.join("\n")
    );
    let after = (
        stack.properties(&project_props).await,
        stack.properties(&env_props).await,
    );
    assert_eq!(after, before, "nothing may be saved");
    stack.stop().await;
}

/// The four-document conflict log of DESIGN §4 for a project properties patch, written out
/// here independently of the code that produces it; the documents are pretty-printed JSON.
pub fn project_conflict_log(
    step: &str,
    original: &str,
    patch: &str,
    patched: &str,
    current: &str,
) -> String {
    format!(
        r#"ERROR: Updates made to the project properties in step "{step}" could not be applied.

Original project properties supplied to the step:
{original}

JSON Patch reflecting the updates made to the properties in the step (that cannot be applied):
{patch}

Patched original properties - that could not be saved because the project properties were modified outside this step:
{patched}

Current value of project properties (that the JSON Patch fails to apply to):
{current}

Please resolve this conflict manually and correct the project properties via the `gantry project set-properties` command. If applicable, retry the change to complete any remaining steps."#
    )
}

/// The seed's conflict scenarios: what both children received, the patch of the one that
/// finishes last (`parent.child` = "new value") and that patch applied to what it received.
pub const SEED_ORIGINAL: &str = "{\n  \"parent\": {\n    \"child\": \"value\"\n  }\n}";
pub const SEED_PATCH: &str = "[\n  {\n    \"op\": \"replace\",\n    \"path\": \"/parent/child\",\n    \"value\": \"new value\"\n  }\n]";
pub const SEED_PATCHED: &str = "{\n  \"parent\": {\n    \"child\": \"new value\"\n  }\n}";

/// Asserts that the change ended `status`, showing its log otherwise.
pub async fn assert_status(stack: &TestStack, change_id: &str, change: &Value, status: &str) {
    let actual = &change["data"]["attributes"]["status_code"];
    if actual != status {
        let log = stack.log(change_id).await;
        panic!(
            "change {change_id} ended {actual}, not {status}; log:\n{}",
            log.join("\n")
        );
    }
}

/// [`assert_status`] with the log already read.
pub fn assert_status_logged(change: &Value, status: &str, log: &[String]) {
    let actual = &change["data"]["attributes"]["status_code"];
    assert!(
        actual == status,
        "the change ended {actual}, not {status}; log:\n{}",
        log.join("\n")
    );
}

/// Asserts that the log has exactly the line `line`, showing the log otherwise.
#[track_caller]
pub fn assert_logged(log: &[String], line: &str) {
    assert!(
        log.iter().any(|l| l == line),
        "no line {line:?} in the log:\n{}",
        log.join("\n")
    );
}

/// Whether `needle` occurs in `haystack` (raw bytes: stored columns, messages, image archives).
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// SQL for `column` with its last byte flipped: a ciphertext that no longer authenticates.
pub fn flipped_last_byte(column: &str) -> String {
    format!(
        "set_byte({column}, length({column}) - 1, get_byte({column}, length({column}) - 1) # 1)"
    )
}

/// The SHA-256 of `text` in hex, as `sha256sum` prints it.
pub fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The audit events of a change, oldest first: (type, actor).
pub async fn change_events(stack: &TestStack, change_id: &str) -> Vec<(String, String)> {
    stack
        .db()
        .await
        .query(
            "SELECT type, actor FROM events WHERE target = $1 ORDER BY id",
            &[&format!("/changes/{change_id}")],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

//! The log text written when a step's properties patch cannot be applied (DESIGN §4, step 3).

use super::Owner;
use super::patch::apply_patch;
use json_patch::Patch;
use serde_json::Value;

/// The conflict report for one owner, exactly as DESIGN §4 specifies it (lines separated by `\n`,
/// no trailing newline). It gives the user the four documents needed to resolve the conflict by
/// hand: what the step received, its patch, what the step meant to save, and the current document.
///
/// "Patched original properties" is `patch` applied to `received`; should even that fail (a
/// malformed patch), the received document is shown unchanged rather than hiding the report.
pub fn conflict_log(
    owner: Owner,
    step_id: &str,
    step_name: &str,
    received: &Value,
    patch: &Patch,
    current: &Value,
) -> String {
    let patched = apply_patch(received, patch).unwrap_or_else(|_| received.clone());
    let owner = owner.as_str();
    format!(
        "ERROR: Updates made to the {owner} properties in step \"[{step_id}] {step_name}\" could not be applied.\n\
         \n\
         Original {owner} properties supplied to the step:\n\
         {received}\n\
         \n\
         JSON Patch reflecting the updates made to the properties in the step (that cannot be applied):\n\
         {patch}\n\
         \n\
         Patched original properties - that could not be saved because the {owner} properties were modified outside this step:\n\
         {patched}\n\
         \n\
         Current value of {owner} properties (that the JSON Patch fails to apply to):\n\
         {current}\n\
         \n\
         Please resolve this conflict manually and correct the {owner} properties via the `gantry {owner} set-properties` command. If applicable, retry the change to complete any remaining steps.",
        received = pretty(received),
        patch = pretty(patch),
        patched = pretty(&patched),
        current = pretty(current),
    )
}

fn pretty<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // Serialising a `Value` or a `Patch` cannot fail: their keys are strings and they hold no
    // non-finite floats. Fall back to an explicit marker rather than panicking in a log path.
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("<unprintable JSON: {e}>"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SEED_EXAMPLE: &str = r#"ERROR: Updates made to the project properties in step "[c5556d54-d98f-415e-9198-4134848fb93f] bar" could not be applied.

Original project properties supplied to the step:
{
  "parent": {
    "child": "value"
  }
}

JSON Patch reflecting the updates made to the properties in the step (that cannot be applied):
[
  {
    "op": "replace",
    "path": "/parent/child",
    "value": "new value"
  }
]

Patched original properties - that could not be saved because the project properties were modified outside this step:
{
  "parent": {
    "child": "new value"
  }
}

Current value of project properties (that the JSON Patch fails to apply to):
{}

Please resolve this conflict manually and correct the project properties via the `gantry project set-properties` command. If applicable, retry the change to complete any remaining steps."#;

    #[test]
    fn the_log_matches_the_seed_example() {
        let received = json!({"parent": {"child": "value"}});
        let patch = super::super::diff(&received, &json!({"parent": {"child": "new value"}}));
        let log = conflict_log(
            Owner::Project,
            "c5556d54-d98f-415e-9198-4134848fb93f",
            "bar",
            &received,
            &patch,
            &json!({}),
        );
        assert_eq!(log, SEED_EXAMPLE);
    }

    #[test]
    fn the_owner_word_is_used_throughout() {
        let log = conflict_log(
            Owner::Environment,
            "id",
            "step",
            &json!({}),
            &Patch::default(),
            &json!({}),
        );
        assert!(log.starts_with("ERROR: Updates made to the environment properties"));
        assert!(log.contains("`gantry environment set-properties`"));
        assert!(!log.contains("project"));
    }

    #[test]
    fn a_patch_that_does_not_apply_to_the_received_document_shows_it_unchanged() {
        let received = json!({"a": 1});
        let patch: Patch =
            serde_json::from_value(json!([{"op": "remove", "path": "/missing"}])).expect("patch");
        let log = conflict_log(Owner::Project, "id", "s", &received, &patch, &json!({}));
        let patched_section = log
            .split("modified outside this step:\n")
            .nth(1)
            .expect("section present");
        assert!(patched_section.starts_with("{\n  \"a\": 1\n}\n"));
    }
}

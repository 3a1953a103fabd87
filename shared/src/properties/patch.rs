//! RFC 6902 diffs of a step's edits and the optimistic apply of DESIGN §4 (core algorithm, step 2).
//!
//! # Semantics of applying a step's patch to a document that moved on
//!
//! A step's patch is computed by [`diff`] against the document it received. When another writer
//! changed the document in between, the patch is applied to the *current* document, operation by
//! operation, atomically (all or nothing). Per operation:
//!
//! * `add /a/b` sets `b` whether or not it exists, provided `/a` is still an object: two steps adding
//!   or changing *different* keys both land; two steps adding the *same* key: the last writer wins.
//! * `replace /a/b` needs `/a/b` to exist: a step changing a key another step deleted is a conflict
//!   (seed scenario 1), and so is one whose parent became a string (seed scenario 2). Two steps
//!   replacing the same existing key: the last writer wins.
//! * `remove /a/b` needs `/a/b` to exist: deleting a key another step already deleted is a conflict.
//!
//! Arrays are compared as whole values: a changed array is one `replace` of the array. Index-based
//! array operations (`remove /list/1`) would silently hit a different element once another writer
//! shifted the array, which DESIGN §4 forbids ("nothing is ever silently overwritten"); replacing the
//! array makes it a value like any scalar, with the same last-writer-wins rule (it matches the merge
//! rule too: arrays are replaced, not merged). `json_patch::diff` diffs arrays by index, hence this
//! small diff of our own.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::{Map, Value};

/// A step patch that cannot be applied: what the conflict log and the step log need.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the JSON Patch \"{op}\" operation at \"{path}\" cannot be applied: {error}")]
pub struct PatchConflict {
    /// The failing operation's name (`add`, `remove`, `replace`, `move`, `copy`, `test`).
    pub op: &'static str,
    /// The failing operation's JSON pointer.
    pub path: String,
    /// json-patch's own error text, e.g. `operation '/0' failed at path '/parent/child': path is invalid`.
    pub error: String,
}

/// The RFC 6902 patch turning `original` into `edited` (`add` for new keys, `remove` for deleted
/// keys, `replace` for changed values, arrays replaced whole — see the module docs).
pub fn diff(original: &Value, edited: &Value) -> Patch {
    let mut ops = Vec::new();
    diff_into(original, edited, &mut PointerBuf::new(), &mut ops);
    Patch(ops)
}

fn diff_into(original: &Value, edited: &Value, at: &mut PointerBuf, ops: &mut Vec<PatchOperation>) {
    match (original, edited) {
        (Value::Object(before), Value::Object(after)) => diff_objects(before, after, at, ops),
        _ if original == edited => {}
        _ => ops.push(PatchOperation::Replace(ReplaceOperation {
            path: at.clone(),
            value: edited.clone(),
        })),
    }
}

fn diff_objects(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    at: &mut PointerBuf,
    ops: &mut Vec<PatchOperation>,
) {
    for (key, after_value) in after {
        at.push_back(key.as_str());
        match before.get(key) {
            Some(before_value) => diff_into(before_value, after_value, at, ops),
            None => ops.push(PatchOperation::Add(AddOperation {
                path: at.clone(),
                value: after_value.clone(),
            })),
        }
        at.pop_back();
    }
    for key in before.keys().filter(|key| !after.contains_key(*key)) {
        at.push_back(key.as_str());
        ops.push(PatchOperation::Remove(RemoveOperation { path: at.clone() }));
        at.pop_back();
    }
}

/// Applies `patch` to a copy of `document`, atomically: either every operation applies or the
/// conflict names the first one that does not.
pub fn apply_patch(document: &Value, patch: &Patch) -> Result<Value, PatchConflict> {
    let mut patched = document.clone();
    json_patch::patch(&mut patched, patch).map_err(|error| {
        let op = patch.get(error.operation).map_or("unknown", op_name);
        PatchConflict {
            op,
            path: error.path.to_string(),
            error: error.to_string(),
        }
    })?;
    Ok(patched)
}

/// The new document for an owner after a step's `patch` (DESIGN §4, core algorithm step 2).
///
/// * An empty patch changes nothing: `current` is returned as it is, whatever the versions.
/// * When the owner is still at the version the step received, the result is the patched
///   `received` document (a patch that does not even apply to what the step received is a conflict).
/// * Otherwise the patch is applied to `current`, with the semantics in the module docs; a patch
///   that no longer applies is a conflict and nothing may be written.
pub fn apply_step_patch(
    received: &Value,
    received_version: i64,
    current: &Value,
    current_version: i64,
    patch: &Patch,
) -> Result<Value, PatchConflict> {
    if patch.is_empty() {
        return Ok(current.clone());
    }
    if received_version == current_version {
        apply_patch(received, patch)
    } else {
        apply_patch(current, patch)
    }
}

fn op_name(op: &PatchOperation) -> &'static str {
    match op {
        PatchOperation::Add(_) => "add",
        PatchOperation::Remove(_) => "remove",
        PatchOperation::Replace(_) => "replace",
        PatchOperation::Move(_) => "move",
        PatchOperation::Copy(_) => "copy",
        PatchOperation::Test(_) => "test",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch_of(ops: Value) -> Patch {
        serde_json::from_value(ops).expect("a valid patch")
    }

    #[test]
    fn diff_emits_add_remove_and_replace_for_object_keys() {
        let original = json!({"keep": 1, "change": {"deep": "old"}, "drop": true});
        let edited = json!({"keep": 1, "change": {"deep": "new"}, "new": "value"});
        assert_eq!(
            diff(&original, &edited),
            patch_of(json!([
                {"op": "replace", "path": "/change/deep", "value": "new"},
                {"op": "add", "path": "/new", "value": "value"},
                {"op": "remove", "path": "/drop"},
            ]))
        );
    }

    #[test]
    fn diff_replaces_a_changed_array_whole() {
        let patch = diff(&json!({"list": [1, 2, 3]}), &json!({"list": [1, 3]}));
        assert_eq!(
            patch,
            patch_of(json!([{"op": "replace", "path": "/list", "value": [1, 3]}]))
        );
    }

    #[test]
    fn diff_escapes_slashes_and_tildes_in_keys() {
        let patch = diff(&json!({}), &json!({"a/b~c": 1}));
        assert_eq!(
            patch,
            patch_of(json!([{"op": "add", "path": "/a~1b~0c", "value": 1}]))
        );
        assert_eq!(apply_patch(&json!({}), &patch), Ok(json!({"a/b~c": 1})));
    }

    #[test]
    fn the_same_version_yields_the_patched_original() {
        let received = json!({"a": 1});
        let patch = diff(&received, &json!({"a": 2}));
        let result = apply_step_patch(&received, 3, &received, 3, &patch);
        assert_eq!(result, Ok(json!({"a": 2})));
    }

    #[test]
    fn an_empty_patch_returns_the_current_document_unchanged() {
        let current = json!({"moved": "on"});
        let result = apply_step_patch(&json!({}), 1, &current, 5, &Patch::default());
        assert_eq!(result, Ok(current));
    }

    #[test]
    fn independent_keys_from_concurrent_steps_both_land() {
        let base = json!({"foo": "old_foo", "bar": "old_bar"});
        let foo = diff(&base, &json!({"foo": "new_foo", "bar": "old_bar"}));
        let bar = diff(&base, &json!({"foo": "old_foo", "bar": "new_bar"}));
        let after_foo = apply_step_patch(&base, 1, &base, 1, &foo).expect("foo applies");
        let after_bar = apply_step_patch(&base, 1, &after_foo, 2, &bar).expect("bar applies");
        assert_eq!(after_bar, json!({"foo": "new_foo", "bar": "new_bar"}));
    }

    #[test]
    fn the_same_key_from_concurrent_steps_is_last_writer_wins() {
        let base = json!({"race": "initial value"});
        let first = diff(&base, &json!({"race": "possible value 1"}));
        let second = diff(&base, &json!({"race": "possible value 2"}));
        let current = apply_patch(&base, &first).expect("first applies");
        let result = apply_step_patch(&base, 1, &current, 2, &second);
        assert_eq!(result, Ok(json!({"race": "possible value 2"})));
    }

    #[test]
    fn changing_a_child_of_a_deleted_parent_is_a_conflict() {
        let base = json!({"parent": {"child": "value"}});
        let bar = diff(&base, &json!({"parent": {"child": "new value"}}));
        let conflict = apply_step_patch(&base, 1, &json!({}), 2, &bar).expect_err("conflict");
        assert_eq!(conflict.op, "replace");
        assert_eq!(conflict.path, "/parent/child");
        assert!(
            conflict.error.contains("path is invalid"),
            "{}",
            conflict.error
        );
    }

    #[test]
    fn changing_a_child_of_a_parent_that_became_a_string_is_a_conflict() {
        let base = json!({"parent": {"child": "value"}});
        let bar = diff(&base, &json!({"parent": {"child": "new value"}}));
        let current = json!({"parent": "I am now a string"});
        let conflict = apply_step_patch(&base, 1, &current, 2, &bar).expect_err("conflict");
        assert_eq!(conflict.path, "/parent/child");
    }

    #[test]
    fn deleting_a_key_that_is_already_gone_is_a_conflict() {
        let base = json!({"gone": 1});
        let patch = diff(&base, &json!({}));
        let conflict = apply_step_patch(&base, 1, &json!({}), 2, &patch).expect_err("conflict");
        assert_eq!((conflict.op, conflict.path.as_str()), ("remove", "/gone"));
    }

    #[test]
    fn a_conflict_applies_nothing_even_when_earlier_operations_would() {
        let base = json!({"a": 1, "b": {"c": 1}});
        let patch = diff(&base, &json!({"a": 2, "b": {"c": 2}}));
        let current = json!({"a": 1, "b": "scalar"});
        assert!(apply_step_patch(&base, 1, &current, 2, &patch).is_err());
    }

    #[test]
    fn a_patch_that_does_not_apply_to_what_the_step_received_is_a_conflict() {
        let patch = patch_of(json!([{"op": "remove", "path": "/missing"}]));
        let result = apply_step_patch(&json!({}), 1, &json!({}), 1, &patch);
        assert_eq!(result.expect_err("conflict").path, "/missing");
    }
}

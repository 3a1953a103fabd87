//! Property-based tests of the merge / diff / patch laws the results role relies on.

use super::*;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-50i64..50).prop_map(Value::from),
        "[a-z]{0,3}".prop_map(Value::from),
    ]
}

/// Keys include `/` and `~` so that JSON pointer escaping is exercised.
fn key() -> impl Strategy<Value = String> {
    "[ab/~]{1,2}"
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(Value::Array),
            btree_map(key(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    btree_map(key(), value(), 0..5).prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// Edits of top-level keys `<prefix><key>`: `Some` sets the value, `None` deletes the key.
fn edits(prefix: &'static str) -> impl Strategy<Value = Vec<(String, Option<Value>)>> {
    btree_map(key(), proptest::option::of(value()), 0..4).prop_map(move |m| {
        m.into_iter()
            .map(|(k, v)| (format!("{prefix}{k}"), v))
            .collect()
    })
}

fn apply_edits(base: &Value, edits: &[(String, Option<Value>)]) -> Value {
    let mut map: Map<String, Value> = base.as_object().cloned().unwrap_or_default();
    for (key, edit) in edits {
        match edit {
            Some(value) => map.insert(key.clone(), value.clone()),
            None => map.remove(key),
        };
    }
    Value::Object(map)
}

proptest! {
    #[test]
    fn a_diff_applied_to_the_original_yields_the_edited_document(a in value(), b in value()) {
        prop_assert_eq!(apply_patch(&a, &diff(&a, &b)), Ok(b));
    }

    #[test]
    fn a_document_diffed_with_itself_is_an_empty_patch(a in value()) {
        prop_assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn merging_an_empty_object_is_the_identity(a in object()) {
        let mut merged = a.clone();
        deep_merge(&mut merged, &json!({}));
        prop_assert_eq!(&merged, &a);
        prop_assert_eq!(merge_levels(&[&json!({}), &a]), a);
    }

    #[test]
    fn the_later_level_wins_on_scalar_keys(a in object(), k in key(), s in leaf()) {
        let overlay = json!({ k.clone(): s.clone() });
        let merged = merge_levels(&[&a, &overlay]);
        prop_assert_eq!(merged.get(&k), Some(&s));
    }

    #[test]
    fn merging_keeps_every_key_of_both_levels(a in object(), b in object()) {
        let merged = merge_levels(&[&a, &b]);
        for key in a.as_object().into_iter().flatten().map(|(k, _)| k)
            .chain(b.as_object().into_iter().flatten().map(|(k, _)| k))
        {
            prop_assert!(merged.get(key).is_some(), "missing {}", key);
        }
    }

    #[test]
    fn the_same_version_yields_the_patched_original(
        base in object(), edited in object(), current in object(), version in 1i64..10,
    ) {
        let patch = diff(&base, &edited);
        let expected = if patch.is_empty() { current.clone() } else { edited };
        prop_assert_eq!(apply_step_patch(&base, version, &current, version, &patch), Ok(expected));
    }

    #[test]
    fn concurrent_edits_of_disjoint_top_level_keys_both_land(
        base in object(), first in edits("p"), second in edits("q"),
        extra_p in btree_map(key(), value(), 0..3), extra_q in btree_map(key(), value(), 0..3),
    ) {
        // Give the base some keys of both families so that replaces and removes happen too.
        let mut base = base.as_object().cloned().unwrap_or_default();
        base.extend(extra_p.into_iter().map(|(k, v)| (format!("p{k}"), v)));
        base.extend(extra_q.into_iter().map(|(k, v)| (format!("q{k}"), v)));
        let base = Value::Object(base);
        // Deleting a key the base lacks is not an edit: keep only meaningful edits.
        let keep = |e: &(String, Option<Value>)| e.1.is_some() || base.get(&e.0).is_some();
        let first: Vec<_> = first.into_iter().filter(keep).collect();
        let second: Vec<_> = second.into_iter().filter(keep).collect();

        let first_patch = diff(&base, &apply_edits(&base, &first));
        let second_patch = diff(&base, &apply_edits(&base, &second));
        let after_first = apply_step_patch(&base, 1, &base, 1, &first_patch);
        prop_assert_eq!(&after_first, &Ok(apply_edits(&base, &first)));
        let after_first = after_first.expect("checked above");
        let after_second = apply_step_patch(&base, 1, &after_first, 2, &second_patch);
        let both = apply_edits(&apply_edits(&base, &first), &second);
        prop_assert_eq!(after_second, Ok(both));
    }
}

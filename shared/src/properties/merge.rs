//! Deep merge of property levels (DESIGN §4): repository files → project → environment, later wins.

use serde_json::Value;

/// Merges `overlay` into `base` in place.
///
/// Objects merge key by key, recursively, so a level only needs to state what it changes.
/// Everything else — arrays, scalars, `null`, and a value whose type differs from the base's — is
/// replaced by the overlay's value: arrays are not concatenated because no merge of two lists is
/// right for every use (the seed documents this and suggests objects with keys instead).
pub fn deep_merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base_map), Value::Object(overlay_map)) => {
            for (key, overlay_value) in overlay_map {
                match base_map.get_mut(key) {
                    Some(base_value) => deep_merge(base_value, overlay_value),
                    None => {
                        base_map.insert(key.clone(), overlay_value.clone());
                    }
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

/// Merges `levels` in order, later levels winning, starting from an empty object.
pub fn merge_levels(levels: &[&Value]) -> Value {
    let mut merged = Value::Object(serde_json::Map::new());
    for level in levels {
        deep_merge(&mut merged, level);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_merge_key_by_key_recursively() {
        let mut base = json!({"a": {"x": 1, "y": 2}, "b": true});
        deep_merge(&mut base, &json!({"a": {"y": 3, "z": 4}, "c": "new"}));
        assert_eq!(
            base,
            json!({"a": {"x": 1, "y": 3, "z": 4}, "b": true, "c": "new"})
        );
    }

    #[test]
    fn arrays_are_replaced_not_concatenated() {
        let mut base = json!({"list": [1, 2, 3]});
        deep_merge(&mut base, &json!({"list": [4]}));
        assert_eq!(base, json!({"list": [4]}));
    }

    #[test]
    fn a_type_mismatch_is_replaced_by_the_overlay() {
        let mut base = json!({"a": {"nested": 1}, "b": "text"});
        deep_merge(
            &mut base,
            &json!({"a": "now a string", "b": {"now": "an object"}}),
        );
        assert_eq!(
            base,
            json!({"a": "now a string", "b": {"now": "an object"}})
        );
    }

    #[test]
    fn null_in_the_overlay_replaces_the_value() {
        let mut base = json!({"a": 1});
        deep_merge(&mut base, &json!({"a": null}));
        assert_eq!(base, json!({"a": null}));
    }

    #[test]
    fn later_levels_win() {
        let repo = json!({"name": "repo", "only_repo": 1});
        let project = json!({"name": "project"});
        let environment = json!({"name": "environment", "nested": {"k": "v"}});
        assert_eq!(
            merge_levels(&[&repo, &project, &environment]),
            json!({"name": "environment", "only_repo": 1, "nested": {"k": "v"}})
        );
    }

    #[test]
    fn no_levels_merge_to_an_empty_object() {
        assert_eq!(merge_levels(&[]), json!({}));
    }
}

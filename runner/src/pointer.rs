//! JSON pointer (RFC 6901) edits for `properties set|delete`: setting creates missing intermediate
//! objects, so `set project /a/b/c 1` works on an empty document.

use json_patch::jsonptr::PointerBuf;
use serde_json::{Map, Value};

/// Why a pointer edit cannot be made; the message names the pointer.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    #[error("\"{pointer}\" is not a JSON pointer (it must be empty or start with `/`, e.g. /a/b)")]
    Invalid { pointer: String },
    #[error("cannot use \"{pointer}\": the value at \"{at}\" is {found}, not an object or array")]
    NotAContainer {
        pointer: String,
        at: String,
        found: &'static str,
    },
    #[error(
        "cannot use \"{pointer}\": \"{token}\" is not a valid index into the array at \"{at}\""
    )]
    BadIndex {
        pointer: String,
        at: String,
        token: String,
    },
    #[error("the properties document must be an object; use a pointer below the root such as /key")]
    RootNotObject,
}

fn tokens(pointer: &str) -> Result<Vec<String>, PointerError> {
    let parsed = PointerBuf::parse(pointer).map_err(|_| PointerError::Invalid {
        pointer: pointer.to_owned(),
    })?;
    Ok(parsed.tokens().map(|t| t.decoded().into_owned()).collect())
}

/// Sets the value at `pointer`, creating missing objects on the way. In arrays, an index replaces
/// that element and `-` (or the length) appends.
pub fn set(document: &mut Value, pointer: &str, value: Value) -> Result<(), PointerError> {
    let tokens = tokens(pointer)?;
    let Some((last, parents)) = tokens.split_last() else {
        if !value.is_object() {
            return Err(PointerError::RootNotObject);
        }
        *document = value;
        return Ok(());
    };
    let mut current = document;
    for (depth, token) in parents.iter().enumerate() {
        let at = prefix(&tokens[..depth]);
        current = descend(current, token, pointer, &at)?;
    }
    let at = prefix(parents);
    match current {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let position = match last.as_str() {
                "-" => Some(items.len()),
                token => index(token).filter(|i| *i <= items.len()),
            };
            match position {
                Some(i) if i == items.len() => items.push(value),
                Some(i) => items[i] = value,
                None => return Err(bad_index(pointer, &at, last)),
            }
            Ok(())
        }
        other => Err(not_a_container(pointer, &at, other)),
    }
}

fn descend<'a>(
    current: &'a mut Value,
    token: &str,
    pointer: &str,
    at: &str,
) -> Result<&'a mut Value, PointerError> {
    match current {
        Value::Object(map) => Ok(map
            .entry(token.to_owned())
            .or_insert_with(|| Value::Object(Map::new()))),
        Value::Array(items) => match index(token).and_then(|i| items.get_mut(i)) {
            Some(item) => Ok(item),
            None => Err(bad_index(pointer, at, token)),
        },
        other => Err(not_a_container(pointer, at, other)),
    }
}

/// Deletes the value at `pointer`; `Ok(false)` when there is nothing there.
pub fn delete(document: &mut Value, pointer: &str) -> Result<bool, PointerError> {
    let tokens = tokens(pointer)?;
    let Some((last, parents)) = tokens.split_last() else {
        return Err(PointerError::RootNotObject);
    };
    let parent_pointer = prefix(parents);
    let removed = match document.pointer_mut(&parent_pointer) {
        Some(Value::Object(map)) => map.remove(last).is_some(),
        Some(Value::Array(items)) => match index(last).filter(|i| *i < items.len()) {
            Some(i) => {
                items.remove(i);
                true
            }
            None => false,
        },
        _ => false,
    };
    Ok(removed)
}

/// An RFC 6901 array index: decimal digits without a leading zero (`-`, the append position, is
/// handled by `set`).
fn index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    let canonical = token == "0" || !token.starts_with('0');
    match digits && canonical {
        true => token.parse().ok(),
        false => None,
    }
}

fn prefix(tokens: &[String]) -> String {
    PointerBuf::from_tokens(tokens.iter().map(String::as_str)).to_string()
}

fn bad_index(pointer: &str, at: &str, token: &str) -> PointerError {
    PointerError::BadIndex {
        pointer: pointer.to_owned(),
        at: at.to_owned(),
        token: token.to_owned(),
    }
}

fn not_a_container(pointer: &str, at: &str, found: &Value) -> PointerError {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) | Value::Object(_) => "a container",
    };
    PointerError::NotAContainer {
        pointer: pointer.to_owned(),
        at: at.to_owned(),
        found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn setting_creates_missing_intermediate_objects() {
        let mut doc = json!({});
        set(&mut doc, "/a/b/c", json!(1)).expect("set");
        assert_eq!(doc, json!({"a": {"b": {"c": 1}}}));
    }

    #[test]
    fn escaped_tokens_are_decoded() {
        let mut doc = json!({});
        set(&mut doc, "/gantry/files/~1tmp~1x", json!({})).expect("set");
        assert_eq!(doc, json!({"gantry": {"files": {"/tmp/x": {}}}}));
    }

    #[test]
    fn arrays_take_indexes_and_the_append_position() {
        let mut doc = json!({"l": [1, 2]});
        set(&mut doc, "/l/0", json!(9)).expect("replace");
        set(&mut doc, "/l/-", json!(3)).expect("append");
        set(&mut doc, "/l/3", json!(4)).expect("append at length");
        assert_eq!(doc, json!({"l": [9, 2, 3, 4]}));
        assert!(matches!(
            set(&mut doc, "/l/9", json!(0)),
            Err(PointerError::BadIndex { .. })
        ));
        assert!(matches!(
            set(&mut doc, "/l/01", json!(0)),
            Err(PointerError::BadIndex { .. })
        ));
    }

    #[test]
    fn a_scalar_on_the_way_is_reported() {
        let mut doc = json!({"a": "text"});
        let error = set(&mut doc, "/a/b", json!(1)).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "cannot use \"/a/b\": the value at \"/a\" is a string, not an object or array"
        );
    }

    #[test]
    fn the_root_can_only_be_replaced_by_an_object() {
        let mut doc = json!({"a": 1});
        set(&mut doc, "", json!({"b": 2})).expect("set");
        assert_eq!(doc, json!({"b": 2}));
        assert_eq!(
            set(&mut doc, "", json!(1)),
            Err(PointerError::RootNotObject)
        );
        assert!(matches!(
            set(&mut doc, "a", json!(1)),
            Err(PointerError::Invalid { .. })
        ));
    }

    #[test]
    fn deleting_reports_whether_something_was_there() {
        let mut doc = json!({"a": {"b": 1}, "l": [1, 2]});
        assert_eq!(delete(&mut doc, "/a/b"), Ok(true));
        assert_eq!(delete(&mut doc, "/a/b"), Ok(false));
        assert_eq!(delete(&mut doc, "/l/0"), Ok(true));
        assert_eq!(delete(&mut doc, "/missing/deep"), Ok(false));
        assert_eq!(doc, json!({"a": {}, "l": [2]}));
    }
}

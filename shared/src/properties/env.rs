//! The reserved `gantry.env` key and the secret references next to it (DESIGN §4).
//!
//! Layout: `{"gantry": {"env": {"NAME": "value"}, "env:runner_secrets": ["name"],
//! "env:build_secrets": ["name"]}}` — the secret references are siblings of `env` under `gantry`.

use super::{GANTRY_KEY, PropertiesError, type_name};
use serde_json::Value;
use std::collections::BTreeMap;

/// Combined size of the exported variables (`NAME=value\0` each). Linux caps the whole environment
/// and arguments of an exec (ARG_MAX, often 2 MiB) and a single string at 128 KiB; refusing early
/// gives a clear message instead of an `E2BIG` from the command.
pub const MAX_ENV_BYTES: usize = 128 * 1024;

/// Names of secrets injected as env into the step container.
pub const RUNNER_SECRETS_KEY: &str = "env:runner_secrets";
/// Names of secrets injected as env into the step image build.
pub const BUILD_SECRETS_KEY: &str = "env:build_secrets";

/// `gantry.<key>` of a properties document, if present. `gantry` itself must be an object.
pub(crate) fn reserved<'a>(
    properties: &'a Value,
    key: &str,
) -> Result<Option<&'a Value>, PropertiesError> {
    match properties.get(GANTRY_KEY) {
        None => Ok(None),
        Some(Value::Object(gantry)) => Ok(gantry.get(key)),
        Some(other) => Err(PropertiesError::NotAnObject {
            key: GANTRY_KEY.to_owned(),
            found: type_name(other),
        }),
    }
}

/// The variables of `gantry.env` in a properties document; empty when the key is absent.
pub fn env_from_properties(
    properties: &Value,
) -> Result<BTreeMap<String, String>, PropertiesError> {
    match reserved(properties, "env")? {
        Some(env) => parse_env(env),
        None => Ok(BTreeMap::new()),
    }
}

/// Parses the value of `gantry.env`: an object of string values with valid variable names, at most
/// [`MAX_ENV_BYTES`] in all. Keys containing `:` are Gantry directives, not variables (the
/// `env:…_secrets` lists belong beside `env`, but a stray one inside is tolerated), and are skipped.
pub fn parse_env(env: &Value) -> Result<BTreeMap<String, String>, PropertiesError> {
    let map = env.as_object().ok_or(PropertiesError::NotAnObject {
        key: format!("{GANTRY_KEY}.env"),
        found: type_name(env),
    })?;
    let mut vars = BTreeMap::new();
    let mut size = 0;
    for (name, value) in map.iter().filter(|(name, _)| !name.contains(':')) {
        let value = env_value(name, value)?;
        if !is_env_name(name) {
            return Err(PropertiesError::EnvInvalidName { name: name.clone() });
        }
        size += name.len() + value.len() + 2;
        vars.insert(name.clone(), value.to_owned());
    }
    if size > MAX_ENV_BYTES {
        return Err(PropertiesError::EnvTooLarge {
            size,
            max: MAX_ENV_BYTES,
        });
    }
    Ok(vars)
}

fn env_value<'a>(name: &str, value: &'a Value) -> Result<&'a str, PropertiesError> {
    match value {
        Value::String(s) if s.contains('\0') => Err(PropertiesError::EnvValueNotString {
            name: name.to_owned(),
            found: "a string containing a NUL byte",
        }),
        Value::String(s) => Ok(s),
        other => Err(PropertiesError::EnvValueNotString {
            name: name.to_owned(),
            found: type_name(other),
        }),
    }
}

/// Whether `name` can be an environment variable: letters, digits and `_`, not starting with a
/// digit.
pub(crate) fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The secret names listed under `gantry.<key>` ([`RUNNER_SECRETS_KEY`] or [`BUILD_SECRETS_KEY`]);
/// empty when absent.
pub fn secret_names(properties: &Value, key: &str) -> Result<Vec<String>, PropertiesError> {
    let invalid = || PropertiesError::SecretNamesInvalid {
        key: format!("{GANTRY_KEY}.{key}"),
    };
    let Some(list) = reserved(properties, key)? else {
        return Ok(Vec::new());
    };
    let items = list.as_array().ok_or_else(invalid)?;
    items
        .iter()
        .map(|item| item.as_str().map(str::to_owned).ok_or_else(invalid))
        .collect()
}

/// The secret names listed under `gantry.<key>` as the merge of `levels` (later winning) would
/// list them, without merging the documents: a list is an array, so the last level that has
/// one replaces the others.
#[cfg(feature = "runtime")]
pub(crate) fn merged_secret_names(
    levels: &[&Value],
    key: &str,
) -> Result<Vec<String>, PropertiesError> {
    for level in levels.iter().rev() {
        if reserved(level, key)?.is_some() {
            return secret_names(level, key);
        }
    }
    Ok(Vec::new())
}

/// Removes the secret references from a repository properties document, where they are ignored
/// (a repository must not be able to pull server secrets into a step). Returns the keys removed.
pub fn strip_secret_refs(document: &mut Value) -> Vec<&'static str> {
    let Some(Value::Object(gantry)) = document.get_mut(GANTRY_KEY) else {
        return Vec::new();
    };
    [RUNNER_SECRETS_KEY, BUILD_SECRETS_KEY]
        .into_iter()
        .filter(|key| gantry.remove(*key).is_some())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_values_become_variables() {
        let env = parse_env(&json!({"A": "1", "_B2": "two"})).expect("valid");
        assert_eq!(env.get("A").map(String::as_str), Some("1"));
        assert_eq!(env.get("_B2").map(String::as_str), Some("two"));
    }

    #[test]
    fn a_non_string_value_is_refused_naming_the_key() {
        let message = parse_env(&json!({"PORT": 8080}))
            .expect_err("refused")
            .to_string();
        assert_eq!(
            message,
            "`gantry.env.PORT` must be a string, found a number"
        );
    }

    #[test]
    fn invalid_names_are_refused() {
        for name in ["1ABC", "A-B", "", "A B", "É"] {
            let result = parse_env(&json!({ name: "v" }));
            assert_eq!(
                result,
                Err(PropertiesError::EnvInvalidName {
                    name: name.to_owned()
                })
            );
        }
    }

    #[test]
    fn keys_with_a_colon_are_not_variables() {
        let env = parse_env(&json!({"A": "1", "env:runner_secrets": ["s"]})).expect("valid");
        assert_eq!(env.len(), 1);
    }

    #[test]
    fn nul_bytes_and_non_objects_are_refused() {
        assert!(parse_env(&json!({"A": "a\0b"})).is_err());
        let message = parse_env(&json!("A=1")).expect_err("refused").to_string();
        assert_eq!(
            message,
            "`gantry.env` must be a JSON object, found a string"
        );
    }

    #[test]
    fn the_combined_size_is_limited() {
        let big = "x".repeat(MAX_ENV_BYTES);
        let message = parse_env(&json!({ "BIG": big }))
            .expect_err("refused")
            .to_string();
        assert!(
            message.contains("more than the 131072 bytes allowed"),
            "{message}"
        );
    }

    #[test]
    fn env_is_read_from_under_the_gantry_key() {
        let props = json!({"gantry": {"env": {"A": "1"}}});
        assert_eq!(env_from_properties(&props).expect("valid").len(), 1);
        assert!(
            env_from_properties(&json!({"other": 1}))
                .expect("valid")
                .is_empty()
        );
        assert!(env_from_properties(&json!({"gantry": "x"})).is_err());
    }

    #[test]
    fn secret_names_are_lists_of_strings() {
        let props = json!({"gantry": {"env:runner_secrets": ["a", "b"], "env:build_secrets": [1]}});
        assert_eq!(
            secret_names(&props, RUNNER_SECRETS_KEY),
            Ok(vec!["a".to_owned(), "b".to_owned()])
        );
        assert!(secret_names(&props, BUILD_SECRETS_KEY).is_err());
        assert_eq!(secret_names(&json!({}), BUILD_SECRETS_KEY), Ok(vec![]));
    }

    #[test]
    fn secret_references_are_stripped_from_repository_documents() {
        let mut doc = json!({"gantry": {"env": {"A": "1"}, "env:runner_secrets": ["s"], "env:build_secrets": ["b"]}});
        assert_eq!(
            strip_secret_refs(&mut doc),
            vec![RUNNER_SECRETS_KEY, BUILD_SECRETS_KEY]
        );
        assert_eq!(doc, json!({"gantry": {"env": {"A": "1"}}}));
    }
}

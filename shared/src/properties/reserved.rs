//! The reserved `gantry` keys of a database properties document, checked before the document is
//! stored — by the api for a user's update and by the results role for a step's patch — so that
//! a mistake is reported where it is made instead of failing every later step.

use std::path::Path;

use serde_json::Value;

use super::{
    BUILD_SECRETS_KEY, GANTRY_KEY, PropertiesError, RUNNER_SECRETS_KEY, env_from_properties,
    files_from_properties, resolve_path, secret_names,
};
use crate::protocol::{CONTAINER_HOME, SCRATCH_DIR};

/// Where `gantry.files` may write: the step's only writable places (DESIGN §4, §5.2).
const WRITABLE_ROOTS: [&str; 2] = [CONTAINER_HOME, SCRATCH_DIR];

/// An invalid reserved key: which key under `gantry` (`env`, `env:runner_secrets`, `files`; empty
/// when `gantry` itself is not an object) and why.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct ReservedKeyError {
    pub key: &'static str,
    pub error: PropertiesError,
}

/// Checks `gantry.env` (string values, valid names, size), the two secret-name lists and
/// `gantry.files` (valid entries, safe paths under [`WRITABLE_ROOTS`]).
pub fn check_reserved_keys(document: &Value) -> Result<(), ReservedKeyError> {
    let gantry_is_object = matches!(document.get(GANTRY_KEY), None | Some(Value::Object(_)));
    let at = |key: &'static str| {
        move |error| ReservedKeyError {
            key: if gantry_is_object { key } else { "" },
            error,
        }
    };
    env_from_properties(document).map_err(at("env"))?;
    secret_names(document, RUNNER_SECRETS_KEY).map_err(at(RUNNER_SECRETS_KEY))?;
    secret_names(document, BUILD_SECRETS_KEY).map_err(at(BUILD_SECRETS_KEY))?;
    let home = Path::new(CONTAINER_HOME);
    let roots = WRITABLE_ROOTS.map(Path::new);
    for (path, _) in files_from_properties(document).map_err(at("files"))? {
        resolve_path(&path, home, &roots).map_err(at("files"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn valid_reserved_keys_and_ordinary_keys_pass() {
        let document = json!({
            "port": 8080,
            "gantry": {
                "env": { "PORT": "8080" },
                "env:runner_secrets": ["db"],
                "files": { "~/app.conf": { "content": "x" }, "/tmp/y": { "content": "y" } }
            }
        });
        assert_eq!(check_reserved_keys(&document), Ok(()));
    }

    #[test]
    fn each_invalid_reserved_key_is_reported_with_its_key() {
        let failure = |document: Value| {
            let e = check_reserved_keys(&document).expect_err("invalid");
            (e.key, e.to_string())
        };
        assert_eq!(
            failure(json!({ "gantry": { "env": { "PORT": 8080 } } })),
            (
                "env",
                "`gantry.env.PORT` must be a string, found a number".to_owned()
            )
        );
        assert_eq!(
            failure(json!({ "gantry": { "env:build_secrets": "db" } })),
            (
                BUILD_SECRETS_KEY,
                "`gantry.env:build_secrets` must be a list of secret names (strings)".to_owned()
            )
        );
        let (key, message) =
            failure(json!({ "gantry": { "files": { "/etc/passwd": { "content": "x" } } } }));
        assert_eq!(key, "files");
        assert!(message.contains("files may only be written under /opt/gantry or /tmp"));
        let (_, message) = failure(json!({ "gantry": { "files": { "~/x": { "mode": "rwx" } } } }));
        assert!(message.contains("\"~/x\""), "{message}");
        assert_eq!(failure(json!({ "gantry": "x" })).0, "");
    }
}

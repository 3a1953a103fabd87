//! Users may only store reserved keys that steps can use: `gantry.env` (string values, valid
//! names), the secret-name lists and `gantry.files` (valid specs, allowed paths). Refusing them
//! here gives the user the error now instead of a failed step later.

use std::path::Path;

use gantry_shared::properties::{
    BUILD_SECRETS_KEY, GANTRY_KEY, PropertiesError, RUNNER_SECRETS_KEY, env_from_properties,
    files_from_properties, resolve_path, secret_names,
};
use gantry_shared::protocol::{CONTAINER_HOME, SCRATCH_DIR};
use serde_json::Value;

use crate::error::{ApiError, ErrorSource, Problem};

/// Where a step may write `gantry.files` (its only writable places, DESIGN §5.2).
const WRITABLE_ROOTS: [&str; 2] = [CONTAINER_HOME, SCRATCH_DIR];

/// Checks the reserved keys of `document`; `base` is the pointer of the document in the request
/// body, when the document is in it (a JSON Patch result is not).
pub(super) fn check_reserved_keys(document: &Value, base: Option<&str>) -> Result<(), ApiError> {
    let at = |key: &str, error: PropertiesError| {
        ApiError::Unprocessable(Problem {
            detail: error.to_string(),
            source: base.map(|base| ErrorSource::Pointer(format!("{base}/{GANTRY_KEY}{key}"))),
        })
    };
    env_from_properties(document).map_err(|e| at(key_of(document, "/env"), e))?;
    for key in [RUNNER_SECRETS_KEY, BUILD_SECRETS_KEY] {
        secret_names(document, key).map_err(|e| at(key_of(document, &format!("/{key}")), e))?;
    }
    let home = Path::new(CONTAINER_HOME);
    let roots = WRITABLE_ROOTS.map(Path::new);
    for (path, _) in
        files_from_properties(document).map_err(|e| at(key_of(document, "/files"), e))?
    {
        resolve_path(&path, home, &roots).map_err(|e| at(key_of(document, "/files"), e))?;
    }
    Ok(())
}

/// The pointer suffix to blame: the key itself, or `gantry` when `gantry` is not even an object.
fn key_of<'a>(document: &Value, key: &'a str) -> &'a str {
    match document.get(GANTRY_KEY) {
        Some(Value::Object(_)) | None => key,
        Some(_) => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pointer_of(document: Value) -> Option<ErrorSource> {
        match check_reserved_keys(&document, Some("/data/attributes/data")) {
            Err(ApiError::Unprocessable(problem)) => problem.source,
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn valid_reserved_keys_and_ordinary_keys_pass() {
        let document = json!({
            "app": { "port": 8080 },
            "gantry": { "env": { "A": "1" }, "files": { "~/x.txt": { "content": "x" } }, "env:runner_secrets": ["s"] }
        });
        assert!(check_reserved_keys(&document, None).is_ok());
    }

    #[test]
    fn invalid_env_files_and_gantry_values_are_refused_with_pointers() {
        let pointer = |p: &str| {
            Some(ErrorSource::Pointer(format!(
                "/data/attributes/data/gantry{p}"
            )))
        };
        assert_eq!(
            pointer_of(json!({ "gantry": { "env": { "A": 1 } } })),
            pointer("/env")
        );
        assert_eq!(
            pointer_of(json!({ "gantry": { "files": { "/etc/passwd": {} } } })),
            pointer("/files")
        );
        assert_eq!(pointer_of(json!({ "gantry": "x" })), pointer(""));
    }
}

//! Users may only store reserved keys that steps can use: `gantry.env` (string values, valid
//! names), the secret-name lists and `gantry.files` (valid specs, allowed paths). Refusing them
//! here gives the user the error now instead of a failed step later.

use gantry_shared::properties::{GANTRY_KEY, check_reserved_keys as check};
use serde_json::Value;

use crate::error::{ApiError, ErrorSource, Problem};

/// Checks the reserved keys of `document`; `base` is the pointer of the document in the request
/// body, when the document is in it (a JSON Patch result is not).
pub(super) fn check_reserved_keys(document: &Value, base: Option<&str>) -> Result<(), ApiError> {
    check(document).map_err(|e| {
        let key = match e.key {
            "" => String::new(),
            key => format!("/{key}"),
        };
        ApiError::Unprocessable(Problem {
            detail: e.to_string(),
            source: base.map(|base| ErrorSource::Pointer(format!("{base}/{GANTRY_KEY}{key}"))),
        })
    })
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

//! Properties: the pure logic behind DESIGN §4, shared by the worker (which applies step patches and
//! logs conflicts) and `gantry-runner` (which merges levels, writes files and exports env inside the
//! step container). Nothing here touches the filesystem except through paths it is handed.
//!
//! * `merge` — deep merge of the repository → project → environment levels.
//! * `patch` — RFC 6902 diff of a step's edits and the optimistic apply with conflict detection.
//! * `conflict` — the exact log text written when a step's patch cannot be applied.
//! * `files`, `env` — the reserved `gantry.files` / `gantry.env` keys.
//! * `format` — JSON / TOML / YAML documents chosen by file extension.
//! * `reserved` — the check of every reserved key of a database document, before it is stored.

mod conflict;
mod env;
#[cfg(feature = "runtime")]
pub(crate) use env::{is_env_name, merged_secret_names};
mod files;
mod format;
mod merge;
mod patch;
mod reserved;

pub use conflict::conflict_log;
pub use env::{
    BUILD_SECRETS_KEY, MAX_ENV_BYTES, RUNNER_SECRETS_KEY, env_from_properties, parse_env,
    secret_names, strip_secret_refs,
};
pub use files::{
    FileFormat, FileSpec, files_from_properties, parse_files, parse_mode, resolve_path,
};
pub use format::{Format, FormatError, parse_document};
pub use merge::{deep_merge, merge_levels};
pub use patch::{PatchConflict, apply_patch, apply_step_patch, diff};
pub use reserved::{ReservedKeyError, check_reserved_keys};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The reserved top-level key under which Gantry's own settings live (`gantry.env`, `gantry.files`).
pub const GANTRY_KEY: &str = "gantry";

/// Why a properties document cannot be used as it is. Every message names the offending key or path
/// so that a user reading the step log knows what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PropertiesError {
    #[error("`{key}` must be a JSON object, found {found}")]
    NotAnObject { key: String, found: &'static str },
    #[error("`gantry.env.{name}` must be a string, found {found}")]
    EnvValueNotString { name: String, found: &'static str },
    #[error(
        "`gantry.env` key \"{name}\" is not a valid environment variable name (letters, digits and `_`, not starting with a digit)"
    )]
    EnvInvalidName { name: String },
    #[error("`gantry.env` is {size} bytes, more than the {max} bytes allowed")]
    EnvTooLarge { size: usize, max: usize },
    #[error("`{key}` must be a list of secret names (strings)")]
    SecretNamesInvalid { key: String },
    #[error("`gantry.files` entry {path:?} is invalid: {reason}")]
    FileSpecInvalid { path: String, reason: String },
    #[error("`gantry.files` path {path:?} is refused: {reason}")]
    FilePathRefused { path: String, reason: String },
    #[error("file mode \"{mode}\" is invalid: expected 1 to 4 octal digits such as \"0600\"")]
    FileModeInvalid { mode: String },
}

/// Which database document a set of properties belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    Project,
    Environment,
}

impl Owner {
    /// The lowercase word used in logs, file names (`project.json`) and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Project => "project",
            Owner::Environment => "environment",
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when parsing an [`Owner`] from text that is neither `project` nor `environment`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("\"{0}\" is not a properties owner: expected `project` or `environment`")]
pub struct InvalidOwner(pub String);

impl FromStr for Owner {
    type Err = InvalidOwner;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "project" => Ok(Owner::Project),
            "environment" => Ok(Owner::Environment),
            other => Err(InvalidOwner(other.to_owned())),
        }
    }
}

/// A short name of a JSON value's type, for error messages.
pub(crate) fn type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod proptests;

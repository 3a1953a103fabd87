//! The runner's errors and the exit codes they map to.

use gantry_shared::manifest::ManifestError;
use gantry_shared::properties::{FormatError, PropertiesError};
use std::io;
use std::path::Path;

/// Exit code when the step could not be prepared (invalid context, property file, manifest,
/// `gantry.files`, `gantry.env`): the action never ran.
pub const EXIT_SETUP: u8 = 2;
/// Exit code when the action left an owner's properties file unreadable.
pub const EXIT_INVALID_EDIT: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("{0}")]
    Setup(String),
    #[error("the command of action \"{action}\" failed ({reason})")]
    CommandFailed {
        action: String,
        reason: String,
        code: u8,
    },
    #[error("cannot run \"{program}\": {source}")]
    Exec { program: String, source: io::Error },
    #[error("{0}")]
    InvalidEdit(String),
    #[error("{0}")]
    Invalid(String),
}

impl RunnerError {
    /// The process exit code: a failed command's own code, otherwise one per kind of failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunnerError::Io { .. } | RunnerError::Invalid(_) => 1,
            RunnerError::Setup(_) => EXIT_SETUP,
            RunnerError::CommandFailed { code, .. } => *code,
            RunnerError::InvalidEdit(_) => EXIT_INVALID_EDIT,
            // The shell's conventions: 127 not found, 126 found but not executable.
            RunnerError::Exec { source, .. } if source.kind() == io::ErrorKind::NotFound => 127,
            RunnerError::Exec { .. } => 126,
        }
    }

    /// An I/O error with what was being done and on which path.
    pub fn io(what: &str, path: &Path) -> impl FnOnce(io::Error) -> RunnerError {
        let what = format!("cannot {what} {}", path.display());
        move |source| RunnerError::Io { what, source }
    }
}

impl From<PropertiesError> for RunnerError {
    fn from(error: PropertiesError) -> Self {
        RunnerError::Setup(error.to_string())
    }
}

impl From<ManifestError> for RunnerError {
    fn from(error: ManifestError) -> Self {
        RunnerError::Setup(error.to_string())
    }
}

impl From<FormatError> for RunnerError {
    fn from(error: FormatError) -> Self {
        RunnerError::Setup(error.to_string())
    }
}

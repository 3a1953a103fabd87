//! JSON files and atomic writes. Files are written to a temporary sibling and renamed over the
//! target, so a reader never sees half a file and a symlink at the target is replaced, not followed.

use crate::error::RunnerError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Reads and parses a JSON file; a parse error is a [`RunnerError::Setup`] naming the file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, RunnerError> {
    let text = fs::read_to_string(path).map_err(RunnerError::io("read", path))?;
    serde_json::from_str(&text)
        .map_err(|e| RunnerError::Setup(format!("{}: invalid JSON: {e}", path.display())))
}

/// Reads a JSON file if it exists.
pub fn read_json_if_exists<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, RunnerError> {
    match path.try_exists().map_err(RunnerError::io("check", path))? {
        true => read_json(path).map(Some),
        false => Ok(None),
    }
}

/// Writes `value` as pretty JSON with a final newline (easy to edit and diff by hand).
pub fn write_json<T: Serialize>(path: &Path, value: &T, mode: u32) -> Result<(), RunnerError> {
    let mut text = serde_json::to_vec_pretty(value)
        .map_err(|e| RunnerError::Invalid(format!("cannot serialise {}: {e}", path.display())))?;
    text.push(b'\n');
    write_atomic(path, &text, mode)
}

/// Writes `bytes` to `path` atomically with permission bits `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), RunnerError> {
    let tmp = temporary_sibling(path);
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(RunnerError::io("create", &tmp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(RunnerError::io("write", &tmp))?;
    // Explicitly, because the creation mode is filtered by the umask.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
        .map_err(RunnerError::io("set the mode of", &tmp))?;
    fs::rename(&tmp, path).map_err(RunnerError::io("replace", path))
}

fn temporary_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.gantry-tmp"))
}

/// Creates a directory and its parents.
pub fn create_dir_all(path: &Path) -> Result<(), RunnerError> {
    fs::create_dir_all(path).map_err(RunnerError::io("create the directory", path))
}

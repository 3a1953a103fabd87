//! `gantry-runner store-file|remove-file`: keep a file produced by a step (a known_hosts file, a
//! generated certificate) in an owner's `gantry.files`, so later steps get it written back.

use crate::error::RunnerError;
use crate::owner_docs::{read_owner, write_owner};
use crate::paths::Paths;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gantry_shared::properties::{FileFormat, FileSpec, GANTRY_KEY, Owner, resolve_path};
use serde_json::{Map, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// Stores the file at `path` under `gantry.files` with its mode. Raw files must be UTF-8 text.
pub fn store(
    paths: &Paths,
    owner: Owner,
    path: &str,
    format: FileFormat,
) -> Result<(), RunnerError> {
    let (key, file) = file_key(paths, path)?;
    let bytes = fs::read(&file).map_err(RunnerError::io("read", &file))?;
    let meta = fs::metadata(&file).map_err(RunnerError::io("inspect", &file))?;
    let content = match format {
        FileFormat::Base64 => STANDARD.encode(&bytes),
        _ => String::from_utf8(bytes).map_err(|_| {
            RunnerError::Invalid(format!(
                "{} is not UTF-8 text; store it with --format base64",
                file.display()
            ))
        })?,
    };
    let spec = FileSpec {
        content: Some(Value::String(content)),
        mode: Some(format!("{:04o}", meta.permissions().mode() & 0o7777)),
        format,
    };
    let spec = serde_json::to_value(spec)
        .map_err(|e| RunnerError::Invalid(format!("cannot store {}: {e}", file.display())))?;
    let mut document = read_owner(paths, owner)?;
    files_mut(&mut document)?.insert(key, spec);
    write_owner(paths, owner, &document)
}

/// Removes the entries naming the same file as `path` (`~/x` and `/opt/gantry/x` are the same).
pub fn remove(paths: &Paths, owner: Owner, path: &str) -> Result<(), RunnerError> {
    let (_, file) = file_key(paths, path)?;
    let mut document = read_owner(paths, owner)?;
    let files = files_mut(&mut document)?;
    let before = files.len();
    files.retain(|key, _| {
        resolve_path(key, &paths.home, &paths.file_roots()).map_or(true, |other| other != file)
    });
    if files.len() == before {
        return Err(RunnerError::Invalid(format!(
            "no file \"{path}\" in the {owner} properties' gantry.files"
        )));
    }
    write_owner(paths, owner, &document)
}

/// The `gantry.files` key for a path given on the command line (relative paths are made absolute
/// against the working directory) and the file it names, checked like any `gantry.files` path.
fn file_key(paths: &Paths, path: &str) -> Result<(String, PathBuf), RunnerError> {
    let key = match path.starts_with('/') || path.starts_with('~') {
        true => path.to_owned(),
        false => std::path::absolute(path)
            .map_err(RunnerError::io("resolve", path.as_ref()))?
            .to_string_lossy()
            .into_owned(),
    };
    let file = resolve_path(&key, &paths.home, &paths.file_roots())?;
    Ok((key, file))
}

/// `gantry.files` of a document, created when missing.
fn files_mut(document: &mut Value) -> Result<&mut Map<String, Value>, RunnerError> {
    let not_object = |key: &str| RunnerError::Invalid(format!("`{key}` must be a JSON object"));
    let gantry = document
        .as_object_mut()
        .ok_or_else(|| not_object("properties"))?
        .entry(GANTRY_KEY)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| not_object(GANTRY_KEY))?;
    gantry
        .entry("files")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| not_object("gantry.files"))
}

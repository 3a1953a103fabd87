//! The step's properties files in `$GANTRY_PROPERTIES_DIR`: `project.json` and `environment.json`
//! (editable: the action changes properties by editing them), `repository.json` and `merged.json`
//! (read-only views). `merged.json` is refreshed by every `gantry-runner` edit; an action that edits
//! the JSON files directly sees the fresh merge through `gantry-runner properties show`.

use crate::error::RunnerError;
use crate::fsio::{create_dir_all, read_json, read_json_if_exists, write_json};
use crate::paths::Paths;
use gantry_shared::properties::{Owner, merge_levels};
use serde_json::{Value, json};

const EDITABLE: u32 = 0o644;
const READ_ONLY: u32 = 0o444;

/// Writes all four files at the start of a step.
pub fn write_initial(
    paths: &Paths,
    repository: &Value,
    project: &Value,
    environment: &Value,
) -> Result<(), RunnerError> {
    create_dir_all(&paths.properties_dir)?;
    write_json(&paths.repository(), repository, READ_ONLY)?;
    write_json(&paths.owner(Owner::Project), project, EDITABLE)?;
    write_json(&paths.owner(Owner::Environment), environment, EDITABLE)?;
    refresh_merged(paths)
}

/// An owner's current document.
pub fn read_owner(paths: &Paths, owner: Owner) -> Result<Value, RunnerError> {
    let path = paths.owner(owner);
    let document: Value = read_json(&path)?;
    match document.is_object() {
        true => Ok(document),
        false => Err(RunnerError::Setup(format!(
            "{}: the {owner} properties must be a JSON object",
            path.display()
        ))),
    }
}

/// Saves an owner's document and refreshes `merged.json`.
pub fn write_owner(paths: &Paths, owner: Owner, document: &Value) -> Result<(), RunnerError> {
    write_json(&paths.owner(owner), document, EDITABLE)?;
    refresh_merged(paths)
}

/// Repository → project → environment, merged from the current files.
pub fn current_merged(paths: &Paths) -> Result<Value, RunnerError> {
    let repository: Value = read_json_if_exists(&paths.repository())?.unwrap_or_else(|| json!({}));
    let project = read_owner(paths, Owner::Project)?;
    let environment = read_owner(paths, Owner::Environment)?;
    Ok(merge_levels(&[&repository, &project, &environment]))
}

fn refresh_merged(paths: &Paths) -> Result<(), RunnerError> {
    write_json(&paths.merged(), &current_merged(paths)?, READ_ONLY)
}

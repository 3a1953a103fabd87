//! `gantry-runner run <action>` (DESIGN §5.4): everything a step does inside its container.

mod command;
mod files;
mod repository;
mod result;

pub use repository::load_manifest;

use crate::envvars::step_env;
use crate::error::RunnerError;
use crate::fsio::read_json;
use crate::owner_docs;
use crate::paths::Paths;
use gantry_shared::properties::{env_from_properties, files_from_properties, merge_levels};
use gantry_shared::protocol::StepContext;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

/// Prepares the step, runs the prerequisites and the action, and writes `step_result.json` when
/// they succeed. Everything that can be checked is checked before the first side effect, so an
/// invalid property file or manifest fails the step before any file is written or command run.
pub fn run_action(paths: &Paths, secret_names: &[String], action: &str) -> Result<(), RunnerError> {
    remove_stale(&paths.step_result())?;
    remove_stale(&paths.children())?;
    let context: StepContext = read_json(&paths.step_context())?;
    let manifest = load_manifest(paths)?;
    manifest.validate_tree(action)?;
    let repository = repository::repository_properties(paths, &context.context)?;
    let merged = merge_levels(&[
        &repository,
        &context.project.properties,
        &context.environment.properties,
    ]);
    let files = files_from_properties(&merged)?;
    let env = step_env(
        paths,
        &context,
        action,
        env_from_properties(&merged)?,
        secret_names,
    );

    owner_docs::write_initial(
        paths,
        &repository,
        &context.project.properties,
        &context.environment.properties,
    )?;
    files::write_files(paths, &files)?;
    command::run_commands(paths, &manifest, action, &env)?;
    result::write_result(paths, &context, merged)
}

/// A result or children file left by an earlier run in the same directory must not be mistaken
/// for this run's.
fn remove_stale(path: &Path) -> Result<(), RunnerError> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != ErrorKind::NotFound => {
            Err(RunnerError::io("remove", path)(error))
        }
        _ => Ok(()),
    }
}

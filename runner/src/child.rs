//! `gantry-runner child add`: children added at run time, appended after the manifest's steps.

use crate::error::RunnerError;
use crate::fsio::{read_json_if_exists, write_json};
use crate::paths::Paths;
use crate::run::load_manifest;
use gantry_shared::manifest::WAIT_ACTION;
use gantry_shared::protocol::{ChildStep, ChildSteps, ExecutionStrategy};

/// Appends `actions` to the step's children; each must be defined in the manifest (or be `wait`),
/// so a typo fails this step rather than a later one.
pub fn add(
    paths: &Paths,
    actions: &[String],
    strategy: Option<ExecutionStrategy>,
) -> Result<(), RunnerError> {
    let manifest = load_manifest(paths)?;
    if let Some(unknown) = actions
        .iter()
        .find(|a| *a != WAIT_ACTION && !manifest.actions.contains_key(*a))
    {
        return Err(RunnerError::Invalid(format!(
            "cannot add child \"{unknown}\": no such action in the actions manifest"
        )));
    }
    let mut children: ChildSteps = read_json_if_exists(&paths.children())?.unwrap_or_default();
    children
        .children
        .extend(actions.iter().map(|action| ChildStep {
            action: action.clone(),
        }));
    if strategy.is_some() {
        children.child_execution_strategy = strategy;
    }
    write_json(&paths.children(), &children, 0o644)
}

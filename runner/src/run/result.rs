//! `step_result.json`: the owners' diffs, the merged properties used and the children added.

use crate::error::RunnerError;
use crate::fsio::{read_json_if_exists, write_json};
use crate::paths::Paths;
use gantry_shared::properties::{Owner, diff};
use gantry_shared::protocol::{
    ChildSteps, PropertiesDiff, StepContext, StepProperties, StepResult,
};
use serde_json::Value;
use std::fs;

/// Diffs what the action left in `project.json` / `environment.json` against what the step
/// received and writes the result atomically (the worker must never read half a result).
pub fn write_result(
    paths: &Paths,
    context: &StepContext,
    merged: Value,
) -> Result<(), RunnerError> {
    let project = edited(paths, Owner::Project)?;
    let environment = edited(paths, Owner::Environment)?;
    let steps: ChildSteps = read_json_if_exists(&paths.children())?.unwrap_or_default();
    let result = StepResult {
        project: PropertiesDiff {
            properties_diff: diff(&context.project.properties, &project),
        },
        environment: PropertiesDiff {
            properties_diff: diff(&context.environment.properties, &environment),
        },
        step: StepProperties { properties: merged },
        steps,
    };
    write_json(&paths.step_result(), &result, 0o644)
}

/// An owner's document after the action: it must still be a JSON object.
fn edited(paths: &Paths, owner: Owner) -> Result<Value, RunnerError> {
    let path = paths.owner(owner);
    let invalid = |problem: String| {
        RunnerError::InvalidEdit(format!(
            "the {owner} properties cannot be saved: {} {problem}",
            path.display()
        ))
    };
    let text = fs::read_to_string(&path).map_err(|e| invalid(format!("cannot be read: {e}")))?;
    let document: Value = serde_json::from_str(&text)
        .map_err(|e| invalid(format!("is not valid JSON after the action ran: {e}")))?;
    match document.is_object() {
        true => Ok(document),
        false => Err(invalid("must hold a JSON object".to_owned())),
    }
}

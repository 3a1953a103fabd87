//! `gantry-runner exec -- <cmd>`: a command with the `gantry.env` variables, inside a step (from
//! the current properties) or in a Dockerfile `RUN` at image build time (from
//! `step_context_env.json`).

use crate::envvars::without_secrets;
use crate::error::RunnerError;
use crate::fsio::read_json;
use crate::owner_docs::current_merged;
use crate::paths::Paths;
use gantry_shared::properties::env_from_properties;
use gantry_shared::protocol::StepContextEnv;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Replaces this process with `command`, so signals and the exit status are the command's own.
pub fn exec(paths: &Paths, secret_names: &[String], command: &[String]) -> Result<(), RunnerError> {
    let Some((program, args)) = command.split_first() else {
        return Err(RunnerError::Invalid("no command given to exec".to_owned()));
    };
    let env = without_secrets(properties_env(paths)?, secret_names);
    let source = Command::new(program).args(args).envs(env).exec();
    Err(RunnerError::Exec {
        program: program.clone(),
        source,
    })
}

fn properties_env(paths: &Paths) -> Result<BTreeMap<String, String>, RunnerError> {
    if paths.merged().exists() {
        return Ok(env_from_properties(&current_merged(paths)?)?);
    }
    let build_env = paths.step_context_env();
    if build_env.exists() {
        return Ok(read_json::<StepContextEnv>(&build_env)?.env);
    }
    Err(RunnerError::Setup(format!(
        "no properties to take the environment from: neither {} (in a step) nor {} (in an image build) exists",
        paths.merged().display(),
        build_env.display()
    )))
}

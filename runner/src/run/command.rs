//! Running the prerequisites and the action's command, their output going straight to the
//! container's stdout/stderr (the step log).

use crate::error::RunnerError;
use crate::paths::Paths;
use gantry_shared::manifest::{Command, Manifest};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command as Process, ExitStatus, Stdio};

/// Runs the prerequisites of `action` depth first, each at most once, then `action`'s own command.
pub fn run_commands(
    paths: &Paths,
    manifest: &Manifest,
    action: &str,
    env: &BTreeMap<String, String>,
) -> Result<(), RunnerError> {
    let runner = Runner {
        paths,
        manifest,
        env,
    };
    runner.prerequisites_of(action, &mut BTreeSet::new())?;
    match manifest.command_for(action) {
        Some(command) => {
            println!("===> Running action \"{action}\"");
            runner.run(action, &command)
        }
        None => {
            println!("===> Action \"{action}\" has no command; only its child steps run");
            Ok(())
        }
    }
}

struct Runner<'a> {
    paths: &'a Paths,
    manifest: &'a Manifest,
    env: &'a BTreeMap<String, String>,
}

impl Runner<'_> {
    fn prerequisites_of(
        &self,
        action: &str,
        done: &mut BTreeSet<String>,
    ) -> Result<(), RunnerError> {
        let Some(def) = self.manifest.actions.get(action) else {
            return Ok(());
        };
        for prerequisite in &def.prerequisites {
            if !done.insert(prerequisite.clone()) {
                continue;
            }
            self.prerequisites_of(prerequisite, done)?;
            if let Some(command) = self.manifest.command_for(prerequisite) {
                println!("===> Running prerequisite \"{prerequisite}\"");
                self.run(prerequisite, &command)?;
            }
        }
        Ok(())
    }

    /// Runs one command; a failure is an error unless the action sets `ignore_failure`.
    fn run(&self, action: &str, command: &Command) -> Result<(), RunnerError> {
        let status = self
            .process(command)
            .status()
            .map_err(|source| RunnerError::Io {
                what: format!("cannot start the command of action \"{action}\""),
                source,
            })?;
        if status.success() {
            return Ok(());
        }
        let reason = describe(status);
        let ignore = self
            .manifest
            .actions
            .get(action)
            .is_some_and(|def| def.ignore_failure);
        if ignore {
            println!(
                "===> Action \"{action}\" failed ({reason}); continuing as it sets ignore_failure"
            );
            return Ok(());
        }
        Err(RunnerError::CommandFailed {
            action: action.to_owned(),
            reason,
            code: status
                .code()
                .and_then(|c| u8::try_from(c).ok())
                .unwrap_or(1),
        })
    }

    fn process(&self, command: &Command) -> Process {
        let home = &self.paths.home;
        let mut process = match command {
            Command::Shell(run) => {
                let mut shell = Process::new("/bin/sh");
                shell.arg("-c").arg(run);
                shell
            }
            // Absolute script paths: a relative program path with a working directory is
            // resolved differently across platforms.
            Command::Script {
                interpreter: Some(interpreter),
                path,
            } => {
                let mut process = Process::new(interpreter);
                process.arg(home.join(path));
                process
            }
            Command::Script {
                interpreter: None,
                path,
            } => Process::new(home.join(path)),
        };
        process
            .current_dir(home)
            .envs(self.env)
            .stdin(Stdio::null());
        process
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "unknown status".to_owned(),
    }
}

//! `gantry-runner park`: the entrypoint of a parked step container. The worker creates and
//! starts step containers before their steps are claimed (the slow part of a container's life is
//! its start), and each waits here, running nothing, until the worker writes its step's start
//! line on stdin — after the claim, with the step's context already in the container's volume.
//! The step then runs as `gantry-runner run <action>` in a child process, exactly as in a
//! container started for it, while this process watches stdin: the worker holds it open until
//! the container ends, so its end means the worker is gone, and this process (the container's
//! init) exits, which ends every process of the step with the container.

use crate::error::RunnerError;
use gantry_shared::protocol::{EXIT_RELEASED_UNUSED, EXIT_WORKER_GONE, StepStart};
use std::io::{BufRead, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, Stdio};

/// Waits for the start line, runs the step and returns its exit code.
pub fn park() -> Result<ExitCode, RunnerError> {
    let stdin = std::io::stdin();
    let mut line = String::new();
    let read = stdin
        .lock()
        .read_line(&mut line)
        .map_err(|source| RunnerError::Io {
            what: "cannot read the step's start from stdin".to_owned(),
            source,
        })?;
    if read == 0 || !line.ends_with('\n') {
        // Let go without a step (or with half of one, from a worker that died writing it).
        return Ok(ExitCode::from(EXIT_RELEASED_UNUSED));
    }
    let start: StepStart = serde_json::from_str(&line)
        .map_err(|e| RunnerError::Invalid(format!("the step's start line is malformed: {e}")))?;
    let program = std::env::current_exe().map_err(|source| RunnerError::Io {
        what: "cannot find gantry-runner's own executable".to_owned(),
        source,
    })?;
    let mut child = Command::new(&program)
        .args(["run", &start.action])
        .envs(&start.env)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|source| RunnerError::Exec {
            program: program.display().to_string(),
            source,
        })?;
    std::thread::spawn(move || {
        // Whatever else arrives is ignored; only the end of stdin counts.
        let mut sink = [0u8; 256];
        let mut stdin = stdin.lock();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        eprintln!("gantry-runner: the worker running this step is gone; the step stops");
        std::process::exit(i32::from(EXIT_WORKER_GONE));
    });
    let status = child.wait().map_err(|source| RunnerError::Io {
        what: "cannot wait for the step's process".to_owned(),
        source,
    })?;
    // A signal is reported the shell's way, as 128 + its number.
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

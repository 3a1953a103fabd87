//! A stack and a temporary home per test, and the `gantry` binary run as a subprocess in it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use gantry_testkit::TestStack;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_gantry");

/// A one-step manifest whose step prints `hello from gantry`.
/// `gantry change create` of the `default` action of project `demo`, environment `dev`.
pub const CREATE: &[&str] = &[
    "change",
    "create",
    "--project-code",
    "demo",
    "--environment-code",
    "dev",
    "--git-remote-name",
    "origin",
    "--git-rev",
    "main",
];

pub const HELLO: &str = "actions:\n  default:\n    run: 'echo hello from gantry'\n";

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The stdout parsed as JSON (`--output json`).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// A user's home: the configuration lives under it, commands run in it.
pub struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_file(&self) -> PathBuf {
        self.path().join(".config/gantry/config.toml")
    }

    /// The binary with this home and nothing from the test's own environment that it reads.
    pub fn command(&self, args: &[&str]) -> Command {
        self.program(BIN, args)
    }

    /// `program` run like [`Self::command`] (e.g. `script`, which runs the binary on a terminal).
    pub fn program(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(self.path())
            .env("HOME", self.path())
            .env("XDG_CONFIG_HOME", self.path().join(".config"))
            .env("GANTRY_BIN", BIN)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for name in [
            "GANTRY_URL",
            "GANTRY_TOKEN",
            "GANTRY_PROFILE",
            "EDITOR",
            "VISUAL",
        ] {
            command.env_remove(name);
        }
        command
    }
}

/// Runs the binary with `stdin` as its input.
pub async fn run(mut command: Command, stdin: Option<&str>) -> Run {
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).await.unwrap();
    }
    let output = child.wait_with_output().await.unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A Gantry, and a home whose environment points the binary at it (GANTRY_URL, GANTRY_TOKEN).
pub struct Gantry {
    pub stack: TestStack,
    pub home: Home,
}

impl Gantry {
    pub async fn start() -> Self {
        Self {
            stack: gantry_testkit::spawn_stack().await,
            home: Home::new(),
        }
    }

    /// Project `demo`, environment `dev` and remote `origin` on a repository holding `manifest`
    /// (made through the API: the CLI's own project commands are tested elsewhere).
    pub async fn with_project(manifest: &str) -> Self {
        let mut gantry = Self::start().await;
        gantry.stack.project_with_manifest(manifest).await;
        gantry
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.program(BIN, args)
    }

    /// `program` with the home's environment and the API's URL and token.
    pub fn program(&self, program: &str, args: &[&str]) -> Command {
        let mut command = self.home.program(program, args);
        command
            .env("GANTRY_URL", &self.stack.base)
            .env("GANTRY_TOKEN", &self.stack.token);
        command
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        run(self.command(args), None).await
    }

    pub async fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        run(self.command(args), Some(stdin)).await
    }

    /// `gantry project create`, which must succeed.
    pub async fn create_project(&self, code: &str, name: &str) {
        self.ok(&["project", "create", "--project-code", code, "--name", name])
            .await;
    }

    /// Runs a command that must succeed.
    pub async fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args).await;
        assert_eq!(run.code, 0, "gantry {args:?} failed: {run:?}");
        run
    }

    /// Runs a command with `--output json` that must succeed; its parsed stdout.
    pub async fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        self.ok(&args).await.json()
    }

    /// Runs the binary on a pseudo-terminal (`script`) fed with `input`; the input stays open
    /// until the binary exits (at its end `script` would wait two seconds before leaving).
    pub async fn run_on_terminal(&self, args: &[&str], input: &str) -> Run {
        let quoted: Vec<String> = std::iter::once(BIN)
            .chain(args.iter().copied())
            .map(|arg| format!("'{arg}'"))
            .collect();
        let inner = quoted.join(" ");
        let mut command = self.program("script", &["-qec", &inner, "/dev/null"]);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
        let output = child.wait_with_output().await.unwrap();
        drop(stdin);
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Writes a file in the home; returns its path as a string.
    pub fn file(&self, name: &str, content: &str) -> String {
        let path = self.home.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_owned()
    }

    pub async fn stop(self) {
        self.stack.stop().await;
    }
}

/// The error line of a failed run: exactly one line, `gantry: error: …`.
pub fn error_line(run: &Run) -> &str {
    assert_ne!(run.code, 0, "expected a failure: {run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one error line expected: {run:?}");
    assert!(lines[0].starts_with("gantry: error: "), "{run:?}");
    lines[0]
}

//! A step directory laid out like the container's `/opt/gantry`, and the built binary to run in it.

use serde_json::{Value, json};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;

const BINARY: &str = env!("CARGO_BIN_EXE_gantry-runner");

pub struct Step {
    _dir: TempDir,
    pub home: PathBuf,
    pub protocol: PathBuf,
    env: Vec<(String, String)>,
}

impl Step {
    /// A step whose repository has `.gantry/actions.yaml` = `manifest` and empty properties.
    pub fn new(manifest: &str) -> Step {
        // Outside /tmp, like the container's /opt/gantry: /tmp is the other writable root, and a
        // home inside it would hide path checks that tell the two apart. (Not the target
        // directory: a checkout can itself live under /tmp.) /var/tmp is the FHS's other
        // temporary directory.
        let dir = tempfile::tempdir_in("/var/tmp").expect("a temporary directory");
        let home = dir.path().join("home");
        let protocol = home.join(".gantry");
        fs::create_dir_all(&protocol).expect("the protocol directory");
        let step = Step {
            _dir: dir,
            home,
            protocol,
            env: Vec::new(),
        };
        step.write(".gantry/actions.yaml", manifest);
        step.with_properties(json!({}), json!({}))
    }

    /// Writes `step_context.json` with these project and environment properties.
    pub fn with_properties(self, project: Value, environment: Value) -> Step {
        let context = json!({
            "context": {
                "project": {"id": "p1", "code": "demo", "name": "Demo"},
                "environment": {"id": "e1", "code": "dev"},
                "change": {"id": "c1", "action": "build", "metadata": {"ticket": 7}},
                "step": {"id": "s1", "action": "build", "attempt": 1},
                "user": {"name": "mary"}
            },
            "project": {"properties": project, "properties_version": 3},
            "environment": {"properties": environment, "properties_version": 7}
        });
        self.write(".gantry/step_context.json", &context.to_string());
        self
    }

    /// Adds a variable to the runner's own environment.
    pub fn with_env(mut self, name: &str, value: &str) -> Step {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Writes a file relative to the home (the repository checkout).
    pub fn write(&self, relative: &str, content: &str) {
        let path = self.home.join(relative);
        fs::create_dir_all(path.parent().expect("a parent")).expect("parent directories");
        fs::write(path, content).expect("a written file");
    }

    pub fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.home.join(relative)).expect("a readable file")
    }

    pub fn mode(&self, relative: &str) -> u32 {
        let meta = fs::metadata(self.home.join(relative)).expect("file metadata");
        meta.permissions().mode() & 0o7777
    }

    /// Runs `gantry-runner args…` with a clean environment: PATH (with the runner on it),
    /// GANTRY_HOME, GANTRY_PROTOCOL_DIR and the variables added with `with_env`.
    pub fn runner(&self, args: &[&str]) -> Run {
        let output = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .expect("gantry-runner starts");
        Run(output)
    }

    /// `gantry-runner args…` as [`Step::runner`] sets it up, with a piped stdin, not waited for.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gantry-runner starts")
    }

    /// The command line of `gantry-runner args…` in this step's environment.
    fn command(&self, args: &[&str]) -> Command {
        let bin_dir = Path::new(BINARY).parent().expect("the binary's directory");
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
            .env("GANTRY_HOME", &self.home)
            .env("GANTRY_PROTOCOL_DIR", &self.protocol)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.home);
        command
    }

    pub fn run(&self, action: &str) -> Run {
        self.runner(&["run", action])
    }

    pub fn result(&self) -> Value {
        let text = fs::read_to_string(self.protocol.join("step_result.json")).expect("a result");
        serde_json::from_str(&text).expect("a JSON result")
    }

    pub fn has_result(&self) -> bool {
        self.protocol.join("step_result.json").exists()
    }

    pub fn properties_file(&self, name: &str) -> Value {
        let path = self.protocol.join("properties").join(name);
        serde_json::from_str(&fs::read_to_string(path).expect("a properties file")).expect("JSON")
    }
}

/// A finished `gantry-runner` process.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.0.status.code()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    /// Asserts success, showing the output otherwise.
    pub fn success(self) -> Run {
        assert_eq!(
            self.code(),
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

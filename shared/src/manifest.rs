//! The actions manifest (DESIGN §3): `<repo_folder>/actions.{yaml,json,toml}`, read by the planner
//! to validate a change's static step tree and by `gantry-runner` to find the commands to run.

use crate::properties::{FormatError, parse_document};
use crate::protocol::ExecutionStrategy;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The manifest file names, in the order they are looked for.
pub const MANIFEST_NAMES: [&str; 3] = ["actions.yaml", "actions.json", "actions.toml"];
/// The reserved child name of a wait step; it needs (and may have) no definition.
pub const WAIT_ACTION: &str = "wait";

/// A parsed manifest. Unknown fields are refused, here and in actions, so that a typo
/// (`prerequisite:`) is an error rather than a silently ignored setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub actions: BTreeMap<String, ActionDef>,
}

/// One action. With neither `run` nor `script` it only groups its `steps`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionDef {
    /// A shell command, run by `/bin/sh -c` in the repository checkout.
    #[serde(default)]
    pub run: Option<String>,
    /// A script path relative to the repository root; the interpreter follows the extension.
    #[serde(default)]
    pub script: Option<String>,
    /// Child steps, run after this action's own command.
    #[serde(default)]
    pub steps: Vec<String>,
    #[serde(default)]
    pub run_as: ExecutionStrategy,
    /// Actions whose commands run first, in the same container (not separate steps).
    #[serde(default)]
    pub prerequisites: Vec<String>,
    /// Seconds; the server's `step_timeout` when absent.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// The step succeeds even if its command fails.
    #[serde(default)]
    pub ignore_failure: bool,
    #[serde(default)]
    pub description: Option<String>,
}

/// What an action's command is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run with `/bin/sh -c`.
    Shell(String),
    /// Run with `interpreter path`, or directly when there is no interpreter for the extension.
    Script {
        interpreter: Option<&'static str>,
        path: String,
    },
}

/// A manifest that cannot be used; every message names the action(s) at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("action \"{0}\" is not defined in the actions manifest")]
    UnknownRoot(String),
    #[error(
        "action {path} lists \"{missing}\" in its {list}, but no action \"{missing}\" is defined"
    )]
    UnknownAction {
        path: String,
        list: &'static str,
        missing: String,
    },
    #[error("action {0} forms a cycle")]
    Cycle(String),
    #[error("action \"{0}\" sets both `run` and `script`; use one of them")]
    RunAndScript(String),
    #[error("\"wait\" is reserved for wait steps and cannot be defined as an action")]
    WaitDefined,
    #[error(
        "action \"{0}\" lists \"wait\" in its prerequisites; a wait step can only be a child step"
    )]
    WaitPrerequisite(String),
}

/// Parses a manifest, choosing the format by `file_name`'s extension (`.yaml`/`.yml`, `.json`,
/// `.toml`); errors name the file.
pub fn parse(file_name: &str, text: &str) -> Result<Manifest, ManifestError> {
    Ok(parse_document(file_name, text)?)
}

impl Manifest {
    /// Checks the static tree rooted at `root`: every definition (not both `run` and `script`, no
    /// `wait` action), then every action reachable through `steps` and `prerequisites` is defined
    /// and no cycle exists. A cycle through any mix of steps and prerequisites is refused, even the
    /// rare one that would end, because it is almost certainly a mistake.
    pub fn validate_tree(&self, root: &str) -> Result<(), ManifestError> {
        if self.actions.contains_key(WAIT_ACTION) {
            return Err(ManifestError::WaitDefined);
        }
        if let Some((name, _)) = self
            .actions
            .iter()
            .find(|(_, a)| a.run.is_some() && a.script.is_some())
        {
            return Err(ManifestError::RunAndScript(name.clone()));
        }
        if !self.actions.contains_key(root) {
            return Err(ManifestError::UnknownRoot(root.to_owned()));
        }
        self.visit(root, &mut Vec::new(), &mut BTreeSet::new())
    }

    fn visit<'a>(
        &'a self,
        name: &'a str,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Result<(), ManifestError> {
        if let Some(start) = stack.iter().position(|n| *n == name) {
            let mut cycle = stack[start..].to_vec();
            cycle.push(name);
            return Err(ManifestError::Cycle(render_path(&cycle)));
        }
        let Some(action) = self.actions.get(name).filter(|_| done.insert(name)) else {
            return Ok(());
        };
        stack.push(name);
        for (list, children) in [
            ("steps", &action.steps),
            ("prerequisites", &action.prerequisites),
        ] {
            for child in children {
                self.check_child(name, list, child, stack)?;
                if child != WAIT_ACTION {
                    self.visit(child, stack, done)?;
                }
            }
        }
        stack.pop();
        Ok(())
    }

    fn check_child(
        &self,
        parent: &str,
        list: &'static str,
        child: &str,
        stack: &[&str],
    ) -> Result<(), ManifestError> {
        match (list, child == WAIT_ACTION) {
            ("steps", true) => Ok(()),
            (_, true) => Err(ManifestError::WaitPrerequisite(parent.to_owned())),
            _ if self.actions.contains_key(child) => Ok(()),
            _ => Err(ManifestError::UnknownAction {
                path: render_path(stack),
                list,
                missing: child.to_owned(),
            }),
        }
    }

    /// Whether the action runs a command (and so needs a container), as opposed to only grouping
    /// its steps. Unknown actions have none.
    pub fn has_command(&self, action: &str) -> bool {
        self.command_for(action).is_some()
    }

    /// The action's command; `None` for grouping-only or unknown actions.
    pub fn command_for(&self, action: &str) -> Option<Command> {
        let def = self.actions.get(action)?;
        if let Some(run) = &def.run {
            return Some(Command::Shell(run.clone()));
        }
        let path = def.script.clone()?;
        let extension = std::path::Path::new(&path).extension();
        let interpreter = match extension.and_then(|e| e.to_str()) {
            Some("py") => Some("python3"),
            Some("ps1") => Some("pwsh"),
            Some("sh") => Some("sh"),
            _ => None,
        };
        Some(Command::Script { interpreter, path })
    }
}

fn render_path(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    quoted.join(" -> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "actions:
  default:
    steps: [build, wait, deploy]
    run_as: parallel
  build:
    run: make build
    prerequisites: [lint]
    timeout: 600
  lint: { run: ./scripts/lint.sh }
  deploy:
    script: scripts/deploy.py
    ignore_failure: true
    description: Deploy the application
";

    fn manifest(json: &str) -> Manifest {
        parse("actions.json", json).expect("a valid manifest")
    }

    #[test]
    fn the_design_example_parses_and_validates() {
        let m = parse("actions.yaml", YAML).expect("valid");
        assert_eq!(m.actions["default"].run_as, ExecutionStrategy::Parallel);
        assert_eq!(m.actions["build"].timeout, Some(600));
        assert!(m.actions["deploy"].ignore_failure);
        assert_eq!(m.validate_tree("default"), Ok(()));
    }

    #[test]
    fn json_and_toml_forms_parse_alike() {
        let json = manifest(r#"{"actions": {"a": {"run": "true", "steps": ["b"]}, "b": {}}}"#);
        let toml = parse(
            "actions.toml",
            "[actions.a]\nrun = \"true\"\nsteps = [\"b\"]\n[actions.b]\n",
        )
        .expect("valid");
        assert_eq!(json, toml);
        assert_eq!(json.actions["a"].run_as, ExecutionStrategy::Sequential);
    }

    #[test]
    fn unknown_fields_are_refused_naming_the_file() {
        let error = parse("actions.yaml", "actions:\n  a:\n    prerequisite: [b]\n")
            .expect_err("invalid")
            .to_string();
        assert!(error.starts_with("actions.yaml: invalid YAML: "), "{error}");
        assert!(error.contains("unknown field `prerequisite`"), "{error}");
    }

    #[test]
    fn unknown_actions_are_reported_with_their_path() {
        let m =
            manifest(r#"{"actions": {"a": {"steps": ["b"]}, "b": {"prerequisites": ["lnt"]}}}"#);
        assert_eq!(
            m.validate_tree("a").expect_err("invalid").to_string(),
            "action \"a\" -> \"b\" lists \"lnt\" in its prerequisites, but no action \"lnt\" is defined"
        );
        assert_eq!(
            m.validate_tree("zz"),
            Err(ManifestError::UnknownRoot("zz".into()))
        );
    }

    #[test]
    fn cycles_through_steps_or_prerequisites_are_reported() {
        let m = manifest(r#"{"actions": {"a": {"steps": ["b"]}, "b": {"prerequisites": ["a"]}}}"#);
        assert_eq!(
            m.validate_tree("a").expect_err("cycle").to_string(),
            "action \"a\" -> \"b\" -> \"a\" forms a cycle"
        );
        let self_loop = manifest(r#"{"actions": {"x": {"steps": ["x"]}}}"#);
        assert!(matches!(
            self_loop.validate_tree("x"),
            Err(ManifestError::Cycle(_))
        ));
    }

    #[test]
    fn a_shared_child_is_not_a_cycle() {
        let m = manifest(
            r#"{"actions": {"a": {"steps": ["b", "c"]}, "b": {"steps": ["d"]}, "c": {"prerequisites": ["d"]}, "d": {}}}"#,
        );
        assert_eq!(m.validate_tree("a"), Ok(()));
    }

    #[test]
    fn run_and_script_together_are_refused() {
        let m = manifest(r#"{"actions": {"a": {"run": "x", "script": "y.sh"}}}"#);
        assert_eq!(
            m.validate_tree("a"),
            Err(ManifestError::RunAndScript("a".into()))
        );
    }

    #[test]
    fn wait_is_only_a_child_step() {
        let defined = manifest(r#"{"actions": {"a": {}, "wait": {}}}"#);
        assert_eq!(defined.validate_tree("a"), Err(ManifestError::WaitDefined));
        let prerequisite = manifest(r#"{"actions": {"a": {"prerequisites": ["wait"]}}}"#);
        assert_eq!(
            prerequisite.validate_tree("a"),
            Err(ManifestError::WaitPrerequisite("a".into()))
        );
    }

    #[test]
    fn commands_follow_run_or_the_script_extension() {
        let m = parse("actions.yaml", YAML).expect("valid");
        assert_eq!(
            m.command_for("build"),
            Some(Command::Shell("make build".into()))
        );
        assert_eq!(
            m.command_for("deploy"),
            Some(Command::Script {
                interpreter: Some("python3"),
                path: "scripts/deploy.py".into()
            })
        );
        assert!(!m.has_command("default"));
        assert!(!m.has_command("missing"));
        let scripts = manifest(
            r#"{"actions": {"p": {"script": "a.ps1"}, "s": {"script": "a.sh"}, "x": {"script": "bin/tool"}}}"#,
        );
        let interpreter = |a: &str| match scripts.command_for(a) {
            Some(Command::Script { interpreter, .. }) => interpreter,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(
            (interpreter("p"), interpreter("s"), interpreter("x")),
            (Some("pwsh"), Some("sh"), None)
        );
    }
}

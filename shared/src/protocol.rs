//! The step protocol between the worker and `gantry-runner` (DESIGN §5): the files exchanged through
//! `/opt/gantry/.gantry` in the step container, and the paths and limits both sides agree on.

use crate::properties::{PropertiesError, env_from_properties, merge_levels};
use json_patch::Patch;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// The runner's home and the repository checkout in the container.
pub const CONTAINER_HOME: &str = "/opt/gantry";
/// The step's writable scratch space (a tmpfs). With the home, the only places a step — and so
/// `gantry.files` — can write (DESIGN §4, §5.2).
pub const SCRATCH_DIR: &str = "/tmp";
/// Where the protocol files live in the container.
pub const PROTOCOL_DIR: &str = "/opt/gantry/.gantry";
/// Written by the worker before the container starts: [`StepContext`].
pub const STEP_CONTEXT_FILE: &str = "step_context.json";
/// Written by the runner when the action succeeded: [`StepResult`].
pub const STEP_RESULT_FILE: &str = "step_result.json";
/// In the image build context and the image: [`StepContextEnv`].
pub const STEP_CONTEXT_ENV_FILE: &str = "step_context_env.json";
/// A larger result is refused (the worker reads it into memory and into one transaction).
pub const MAX_STEP_RESULT_BYTES: u64 = 16 * 1024 * 1024;
/// Comma-separated names of the container's environment variables that hold secrets (set by the
/// worker next to the secrets themselves): `gantry-runner` never overrides those with `gantry.env`
/// values, because a secret wins over a property of the same name (DESIGN §4).
pub const SECRET_NAMES_ENV: &str = "GANTRY_SECRET_NAMES";
/// The uid and gid the step runs as (user `gantry` in every runner image).
pub const RUNNER_UID: u32 = 10001;

/// What a parked step container (`gantry-runner park`) is told once its step is claimed: one line
/// of JSON on its standard input. Nothing in a parked container runs before this line arrives,
/// and only the worker that holds the container's attachment can write it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StepStart {
    /// The action `gantry-runner run` runs.
    pub action: String,
    /// Variables for that run, over the container's own (the step's runner secrets, its trace
    /// context): never in the container's configuration, where `docker inspect` would show them.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// `gantry-runner park` exits with this code when its standard input closes before a step was
/// given to it: the worker let the parked container go (or died), and nothing ran in it.
pub const EXIT_RELEASED_UNUSED: u8 = 86;
/// `gantry-runner park` exits with this code when its standard input closes while the step runs:
/// the worker that ran it is gone, and the step's processes end with the container (its lease
/// expires and another attempt runs it).
pub const EXIT_WORKER_GONE: u8 = 87;

/// How a step's children run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStrategy {
    /// One after the other; the next starts when the previous succeeded.
    #[default]
    Sequential,
    /// All at once.
    Parallel,
}

impl ExecutionStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStrategy::Sequential => "sequential",
            ExecutionStrategy::Parallel => "parallel",
        }
    }
}

impl fmt::Display for ExecutionStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `step_context.json`: everything a step needs to know, written by the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepContext {
    pub context: ContextInfo,
    pub project: OwnerProperties,
    pub environment: OwnerProperties,
}

/// Facts about the run, open-ended on purpose (the worker may add fields without a protocol
/// change). Each part is an object; the runner reads `project.code`, `environment.code`,
/// `change.id`, `change.metadata` and `step.id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextInfo {
    #[serde(default)]
    pub project: Map<String, Value>,
    #[serde(default)]
    pub environment: Map<String, Value>,
    #[serde(default)]
    pub change: Map<String, Value>,
    #[serde(default)]
    pub step: Map<String, Value>,
    #[serde(default)]
    pub user: Map<String, Value>,
}

impl ContextInfo {
    pub fn project_code(&self) -> Option<&str> {
        self.project.get("code").and_then(Value::as_str)
    }

    pub fn environment_code(&self) -> Option<&str> {
        self.environment.get("code").and_then(Value::as_str)
    }

    pub fn change_id(&self) -> Option<&str> {
        self.change.get("id").and_then(Value::as_str)
    }

    pub fn step_id(&self) -> Option<&str> {
        self.step.get("id").and_then(Value::as_str)
    }

    /// The change's metadata object (`{}` when absent).
    pub fn metadata(&self) -> Value {
        self.change
            .get("metadata")
            .cloned()
            .unwrap_or_else(|| json!({}))
    }
}

/// One owner's database properties as the step received them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnerProperties {
    pub properties: Value,
    pub properties_version: i64,
}

/// `step_result.json`, written by the runner when the action succeeded.
///
/// `project` and `environment` are required (so `{}` or an unrelated JSON file is a malformed
/// result, not an empty one); `step` and `steps` may be omitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub project: PropertiesDiff,
    pub environment: PropertiesDiff,
    #[serde(default)]
    pub step: StepProperties,
    #[serde(default)]
    pub steps: ChildSteps,
}

/// The RFC 6902 patch of an owner's properties, against the document the step received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PropertiesDiff {
    pub properties_diff: Patch,
}

/// The merged properties the step ran with, kept on the step for later investigation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepProperties {
    pub properties: Value,
}

impl Default for StepProperties {
    fn default() -> Self {
        StepProperties {
            properties: Value::Object(Map::new()),
        }
    }
}

/// Children added at run time, appended after the manifest's `steps`. A `None` strategy keeps the
/// action's `run_as`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildSteps {
    #[serde(default)]
    pub children: Vec<ChildStep>,
    #[serde(default)]
    pub child_execution_strategy: Option<ExecutionStrategy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildStep {
    pub action: String,
}

/// `step_context_env.json`: what a Dockerfile `RUN gantry-runner exec -- …` sees at image build
/// time — the `gantry.env` variables of the project and environment properties, merged, and the
/// project and environment context (never the change or step, so that the build context, and thus
/// the cached image, does not change with every step).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepContextEnv {
    pub env: BTreeMap<String, String>,
    pub context: Value,
}

impl StepContextEnv {
    /// Builds the file's content from a step's context.
    pub fn from_step_context(step: &StepContext) -> Result<Self, PropertiesError> {
        let merged = merge_levels(&[&step.project.properties, &step.environment.properties]);
        Ok(StepContextEnv {
            env: env_from_properties(&merged)?,
            context: json!({
                "project": step.context.project,
                "environment": step.context.environment,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step_context() -> StepContext {
        serde_json::from_value(json!({
            "context": {
                "project": {"id": "p1", "code": "demo"},
                "environment": {"code": "dev"},
                "change": {"id": "c1", "metadata": {"ticket": 7}},
                "step": {"id": "s1"},
                "user": {"name": "mary"}
            },
            "project": {"properties": {"gantry": {"env": {"A": "p", "B": "p"}}}, "properties_version": 3},
            "environment": {"properties": {"gantry": {"env": {"B": "e"}}}, "properties_version": 7}
        }))
        .expect("a valid step context")
    }

    #[test]
    fn the_design_example_result_parses() {
        let result: StepResult = serde_json::from_value(json!({
            "project": {"properties_diff": [{"op": "add", "path": "/new_element", "value": "test_value"}]},
            "environment": {"properties_diff": []},
            "step": {"properties": {"a": 1}},
            "steps": {"children": [{"action": "sample:hello_world_1:run"}], "child_execution_strategy": null}
        }))
        .expect("valid");
        assert_eq!(result.project.properties_diff.len(), 1);
        assert_eq!(result.steps.children[0].action, "sample:hello_world_1:run");
        assert_eq!(result.steps.child_execution_strategy, None);
    }

    #[test]
    fn steps_may_be_omitted_but_owners_may_not() {
        let minimal =
            json!({"project": {"properties_diff": []}, "environment": {"properties_diff": []}});
        let result: StepResult = serde_json::from_value(minimal).expect("valid");
        assert_eq!(result.steps, ChildSteps::default());
        assert!(serde_json::from_value::<StepResult>(json!({})).is_err());
    }

    #[test]
    fn the_context_exposes_what_the_runner_needs() {
        let context = step_context().context;
        assert_eq!(context.project_code(), Some("demo"));
        assert_eq!(context.environment_code(), Some("dev"));
        assert_eq!(context.change_id(), Some("c1"));
        assert_eq!(context.step_id(), Some("s1"));
        assert_eq!(context.metadata(), json!({"ticket": 7}));
    }

    #[test]
    fn the_build_env_merges_owners_and_keeps_only_their_context() {
        let env = StepContextEnv::from_step_context(&step_context()).expect("valid");
        assert_eq!(env.env.get("A").map(String::as_str), Some("p"));
        assert_eq!(env.env.get("B").map(String::as_str), Some("e"));
        assert_eq!(env.context["project"]["code"], "demo");
        assert!(env.context.get("change").is_none());
    }

    #[test]
    fn strategies_are_lowercase_on_the_wire() {
        assert_eq!(
            serde_json::to_value(ExecutionStrategy::Parallel).ok(),
            Some(json!("parallel"))
        );
    }
}

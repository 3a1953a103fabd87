//! The settings of a project or an environment (DESIGN §3, §5): what they may hold, how they are
//! checked, and how they layer — environment over project over the server's defaults (the worker
//! section of the configuration). They are read when a change is planned (parallel changes) and
//! when a step is claimed (everything else), so a new version applies to what starts after it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::settings::WorkerSettings;

/// The smallest memory limit the Docker engine accepts.
pub const MIN_MEMORY_BYTES: i64 = 6 * 1024 * 1024;
/// The longest step timeout a setting may ask for: a week.
pub const MAX_STEP_TIMEOUT: u64 = 7 * 24 * 3600;

/// One owner's settings document; every key is optional (absent: the level below decides).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SettingsDocument {
    /// Several changes of one environment may run at once (else one at a time, oldest first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_parallel_changes: Option<bool>,
    /// Seconds a step may run when its action sets no `timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_timeout: Option<u64>,
    /// The base runner image steps are built from (a specialised runner, DESIGN §5.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_image: Option<String>,
    /// The Docker network of step containers and of their image builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_network: Option<String>,
    /// Memory limit of a step container, in bytes (no swap beyond it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<i64>,
    /// CPUs a step container may use (e.g. 0.5, 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Processes and threads a step container may have at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
}

/// Why a settings document is refused: the key (a JSON pointer into the document) and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Invalid {
    pub pointer: String,
    pub detail: String,
}

fn invalid(key: &str, detail: impl Into<String>) -> Invalid {
    Invalid {
        pointer: match key {
            "" => String::new(),
            key => format!("/{key}"),
        },
        detail: detail.into(),
    }
}

impl SettingsDocument {
    /// Parses and checks a document.
    pub fn parse(value: &Value) -> Result<Self, Invalid> {
        if !value.is_object() {
            return Err(invalid("", "settings must be a JSON object"));
        }
        let document: SettingsDocument = serde_json::from_value(value.clone()).map_err(|e| {
            let key = offending_key(value).unwrap_or_default();
            invalid(&key, format!("settings: {e}"))
        })?;
        document.check()?;
        Ok(document)
    }

    fn check(&self) -> Result<(), Invalid> {
        if let Some(timeout) = self.step_timeout
            && !(1..=MAX_STEP_TIMEOUT).contains(&timeout)
        {
            return Err(invalid(
                "step_timeout",
                format!("step_timeout must be 1 to {MAX_STEP_TIMEOUT} seconds, got {timeout}"),
            ));
        }
        if let Some(image) = &self.runner_image {
            check_image(image)?;
        }
        if let Some(network) = &self.runner_network {
            check_network(network)?;
        }
        if let Some(memory) = self.memory_bytes
            && memory < MIN_MEMORY_BYTES
        {
            return Err(invalid(
                "memory_bytes",
                format!("memory_bytes must be at least {MIN_MEMORY_BYTES} (6 MiB), got {memory}"),
            ));
        }
        if let Some(cpus) = self.cpus
            && !(0.01..=1024.0).contains(&cpus)
        {
            return Err(invalid(
                "cpus",
                format!("cpus must be 0.01 to 1024, got {cpus}"),
            ));
        }
        if let Some(pids) = self.pids_limit
            && pids < 8
        {
            return Err(invalid(
                "pids_limit",
                format!("pids_limit must be at least 8, got {pids}"),
            ));
        }
        Ok(())
    }

    /// Reads a stored document; one that no longer parses (stored by another version of Gantry)
    /// counts as empty rather than stopping every change.
    pub fn stored(value: &Value) -> Self {
        Self::parse(value).unwrap_or_default()
    }
}

/// The key serde complains about, from its "unknown field `x`" or "invalid type … at `x`".
/// The key a refused document is refused for: the first that fails on its own (an unknown key,
/// or a value of the wrong type), so the error can point at it.
fn offending_key(document: &Value) -> Option<String> {
    document
        .as_object()?
        .iter()
        .find(|(key, value)| {
            let alone = Value::Object([((*key).clone(), (*value).clone())].into_iter().collect());
            serde_json::from_value::<SettingsDocument>(alone).is_err()
        })
        .map(|(key, _)| key.clone())
}

/// An image reference: `[registry/]name[:tag][@digest]`, as Docker takes it.
fn check_image(image: &str) -> Result<(), Invalid> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-/:@".contains(c);
    if image.is_empty() || image.len() > 255 || !image.chars().all(allowed) {
        return Err(invalid(
            "runner_image",
            format!(
                "runner_image must be an image reference such as `registry.example.com/runner:1.2` \
                 (letters, digits and . _ - / : @, at most 255), got `{image}`"
            ),
        ));
    }
    if image.starts_with(['-', '/', ':', '@']) {
        return Err(invalid(
            "runner_image",
            format!("runner_image must start with a letter or a digit, got `{image}`"),
        ));
    }
    Ok(())
}

/// A network name; `host` and another container's network are refused: a step would leave its
/// own network namespace and see the worker host's (or that container's) interfaces.
fn check_network(network: &str) -> Result<(), Invalid> {
    if network == "host" || network.starts_with("container:") {
        return Err(invalid(
            "runner_network",
            format!(
                "runner_network `{network}` would let steps share another network namespace; \
                 use `none`, `bridge` or a network of your own"
            ),
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    if network.is_empty() || network.len() > 128 || !network.chars().all(allowed) {
        return Err(invalid(
            "runner_network",
            format!(
                "runner_network must be a Docker network name (letters, digits and . _ -), got `{network}`"
            ),
        ));
    }
    Ok(())
}

/// The settings in force for a change of an environment: every key decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EffectiveSettings {
    pub allow_parallel_changes: bool,
    pub step_timeout: u64,
    pub runner_image: String,
    pub runner_network: String,
    pub memory_bytes: i64,
    pub cpus: f64,
    pub pids_limit: i64,
}

impl EffectiveSettings {
    /// The server's defaults: one change at a time per environment, and the worker section of
    /// the configuration.
    pub fn defaults(worker: &WorkerSettings) -> Self {
        Self {
            allow_parallel_changes: false,
            step_timeout: worker.step_timeout_seconds,
            runner_image: worker.runner_image.clone(),
            runner_network: worker.runner_network.clone(),
            memory_bytes: worker.memory_bytes,
            cpus: worker.nano_cpus as f64 / 1e9,
            pids_limit: worker.pids_limit,
        }
    }

    /// These settings with `document`'s keys over them.
    pub fn under(mut self, document: &SettingsDocument) -> Self {
        let d = document.clone();
        self.allow_parallel_changes = d
            .allow_parallel_changes
            .unwrap_or(self.allow_parallel_changes);
        self.step_timeout = d.step_timeout.unwrap_or(self.step_timeout);
        self.runner_image = d.runner_image.unwrap_or(self.runner_image);
        self.runner_network = d.runner_network.unwrap_or(self.runner_network);
        self.memory_bytes = d.memory_bytes.unwrap_or(self.memory_bytes);
        self.cpus = d.cpus.unwrap_or(self.cpus);
        self.pids_limit = d.pids_limit.unwrap_or(self.pids_limit);
        self
    }

    /// Environment over project over `self` (the defaults).
    pub fn resolve(self, project: &SettingsDocument, environment: &SettingsDocument) -> Self {
        self.under(project).under(environment)
    }

    /// The CPU limit as Docker takes it.
    pub fn nano_cpus(&self) -> i64 {
        (self.cpus * 1e9).round() as i64
    }
}

/// The SQL expression of an environment's `allow_parallel_changes`, environment over project over
/// the default (false), for a query that joins the environment as `e` and its project as `p`.
pub const PARALLEL_CHANGES_SQL: &str = "COALESCE((e.settings->>'allow_parallel_changes')::boolean, \
     (p.settings->>'allow_parallel_changes')::boolean, false)";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaults() -> EffectiveSettings {
        EffectiveSettings {
            allow_parallel_changes: false,
            step_timeout: 3600,
            runner_image: "gantry-runner:local".into(),
            runner_network: "none".into(),
            memory_bytes: 512 << 20,
            cpus: 1.0,
            pids_limit: 256,
        }
    }

    #[test]
    fn the_environment_wins_over_the_project_which_wins_over_the_defaults() {
        let project = SettingsDocument::parse(
            &json!({"runner_image": "py:1", "step_timeout": 60, "allow_parallel_changes": true}),
        )
        .unwrap();
        let environment =
            SettingsDocument::parse(&json!({"step_timeout": 30, "cpus": 0.5})).unwrap();
        let effective = defaults().resolve(&project, &environment);
        assert_eq!(effective.runner_image, "py:1");
        assert_eq!(effective.step_timeout, 30);
        assert!(effective.allow_parallel_changes);
        assert_eq!(effective.nano_cpus(), 500_000_000);
        assert_eq!(effective.runner_network, "none");
        assert_eq!(effective.pids_limit, 256);
    }

    #[test]
    fn bad_documents_are_refused_naming_the_key() {
        let refused = |value: Value| SettingsDocument::parse(&value).unwrap_err();
        assert_eq!(
            refused(json!({"runner_netwrk": "x"})).pointer,
            "/runner_netwrk"
        );
        assert_eq!(refused(json!({"step_timeout": 0})).pointer, "/step_timeout");
        assert_eq!(
            refused(json!({"cpus": 1, "step_timeout": "10"})).pointer,
            "/step_timeout"
        );
        assert_eq!(
            refused(json!({"memory_bytes": 1024})).pointer,
            "/memory_bytes"
        );
        assert_eq!(refused(json!({"cpus": 0})).pointer, "/cpus");
        assert_eq!(refused(json!({"pids_limit": 2})).pointer, "/pids_limit");
        assert_eq!(
            refused(json!({"runner_image": "a b"})).pointer,
            "/runner_image"
        );
        assert_eq!(
            refused(json!({"runner_image": "-x"})).pointer,
            "/runner_image"
        );
        assert_eq!(
            refused(json!({"runner_network": "host"})).pointer,
            "/runner_network"
        );
        assert_eq!(
            refused(json!({"runner_network": "container:abc"})).pointer,
            "/runner_network"
        );
        assert_eq!(refused(json!([])).pointer, "");
        assert!(
            SettingsDocument::parse(
                &json!({"runner_image": "registry.example.com:5000/team/runner:1.2@sha256:abc"})
            )
            .is_ok()
        );
        assert_eq!(
            SettingsDocument::parse(&json!({})).unwrap(),
            SettingsDocument::default()
        );
    }
}

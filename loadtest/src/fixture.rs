//! What a run sets up through the API: projects with unique codes (so runs repeat against the
//! same Gantry), an environment, and a Git remote holding the scenario's actions manifest. The
//! repository is made with the `git` binary in a temporary directory that lives as long as the
//! fixture; the worker reads it as a local path, so the loadtest runs on the worker's host.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context, bail};
use serde_json::json;

use crate::client::{Api, properties_id};

/// The environment every bench project has.
pub const ENVIRONMENT: &str = "bench";

pub struct Fixture {
    run_id: String,
    repos: Mutex<Vec<tempfile::TempDir>>,
}

/// A project made for one scenario.
pub struct BenchProject {
    pub code: String,
    pub environment: String,
    /// The id of the project's properties document.
    pub properties_id: String,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    pub fn new() -> Self {
        let uuid = uuid::Uuid::new_v4().simple().to_string();
        Self {
            run_id: uuid[..10].to_owned(),
            repos: Mutex::new(Vec::new()),
        }
    }

    /// A project code unique to this run: `lt_<run id>_<scenario>`.
    pub fn code(&self, scenario: &str) -> String {
        format!("lt_{}_{scenario}", self.run_id)
    }

    /// Creates the scenario's project (changes in parallel when `parallel`), its environment and,
    /// with a `manifest`, the remote `origin` on a new repository whose actions are `manifest`.
    pub async fn project(
        &self,
        api: &Api,
        scenario: &str,
        manifest: Option<&str>,
        parallel: bool,
    ) -> anyhow::Result<BenchProject> {
        let code = self.code(scenario);
        let project = api
            .post(
                "/api/projects",
                json!({"code": code, "name": format!("Loadtest {scenario}")}),
            )
            .await
            .context("creating the bench project")?;
        if parallel {
            api.patch(
                &format!("/api/projects/{code}/settings"),
                json!({"data": {"allow_parallel_changes": true}}),
            )
            .await
            .context("allowing parallel changes")?;
        }
        api.post(
            &format!("/api/projects/{code}/environments"),
            json!({"code": ENVIRONMENT, "name": "Bench"}),
        )
        .await
        .context("creating the bench environment")?;
        if let Some(manifest) = manifest {
            let repo = make_repo(manifest)?;
            let url = repo
                .path()
                .to_str()
                .context("a UTF-8 temp path")?
                .to_owned();
            self.repos.lock().expect("not poisoned").push(repo);
            api.post(
                &format!("/api/projects/{code}/git_remotes"),
                json!({"name": "origin", "url": url}),
            )
            .await
            .context("adding the bench Git remote")?;
        }
        Ok(BenchProject {
            properties_id: properties_id(&project)?,
            code,
            environment: ENVIRONMENT.to_owned(),
        })
    }
}

/// A repository with one commit on `main` holding `.gantry/actions.yaml`.
fn make_repo(manifest: &str) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("gantry-loadtest-")
        .tempdir()
        .context("creating the repository directory")?;
    let gantry = dir.path().join(".gantry");
    std::fs::create_dir_all(&gantry).context("creating .gantry")?;
    std::fs::write(gantry.join("actions.yaml"), manifest).context("writing the manifest")?;
    git(dir.path(), &["init", "-q", "-b", "main"])?;
    git(dir.path(), &["add", "-A"])?;
    git(
        dir.path(),
        &[
            "-c",
            "user.name=gantry-loadtest",
            "-c",
            "user.email=loadtest@gantry.invalid",
            "commit",
            "-q",
            "-m",
            "Bench actions",
        ],
    )?;
    Ok(dir)
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .context("running git (is it installed?)")?;
    if !status.success() {
        bail!("git {args:?} failed with {status}");
    }
    Ok(())
}

/// A manifest of trivial steps: `one` (one container running `true`), `t` (the same, as a
/// child), `noop` (no command, no container) and, per `(name, k)` of `groups`, an action `name`
/// grouping `k` children `t` run sequentially.
pub fn manifest(groups: &[(&str, usize)]) -> String {
    let mut yaml =
        String::from("actions:\n  noop: {}\n  one: { run: \"true\" }\n  t: { run: \"true\" }\n");
    for (name, k) in groups {
        let children = vec!["t"; *k].join(", ");
        yaml.push_str(&format!("  {name}: {{ steps: [{children}] }}\n"));
    }
    yaml
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_manifest_groups_k_trivial_steps() {
        let yaml = super::manifest(&[("chain", 3)]);
        let parsed = gantry_shared::manifest::parse("actions.yaml", &yaml).unwrap();
        parsed.validate_tree("chain").unwrap();
        assert_eq!(parsed.actions["chain"].steps, ["t", "t", "t"]);
        assert!(parsed.has_command("one"));
        assert!(!parsed.has_command("noop"));
    }
}

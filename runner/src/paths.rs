//! Where the protocol files, properties files and repository folder are.

use crate::cli::Locations;
use gantry_shared::properties::Owner;
use gantry_shared::protocol::{STEP_CONTEXT_ENV_FILE, STEP_CONTEXT_FILE, STEP_RESULT_FILE};
use std::path::{Path, PathBuf};

/// Children added with `child add`, collected into the step result.
const CHILDREN_FILE: &str = "children.json";

#[derive(Debug, Clone)]
pub struct Paths {
    pub home: PathBuf,
    pub protocol_dir: PathBuf,
    pub properties_dir: PathBuf,
    /// The repository folder, absolute (`<home>/.gantry` by default).
    pub repo_folder: PathBuf,
}

impl Paths {
    /// The locations, made absolute: they are exported to the action, whose nested
    /// `gantry-runner` calls may run from another working directory.
    pub fn new(locations: &Locations) -> Self {
        let home = absolute(&locations.home);
        let protocol_dir = locations
            .protocol_dir
            .as_deref()
            .map_or_else(|| home.join(".gantry"), absolute);
        let properties_dir = locations
            .properties_dir
            .as_deref()
            .map_or_else(|| protocol_dir.join("properties"), absolute);
        Paths {
            repo_folder: home.join(&locations.repo_folder),
            home,
            protocol_dir,
            properties_dir,
        }
    }

    pub fn step_context(&self) -> PathBuf {
        self.protocol_dir.join(STEP_CONTEXT_FILE)
    }

    pub fn step_result(&self) -> PathBuf {
        self.protocol_dir.join(STEP_RESULT_FILE)
    }

    pub fn step_context_env(&self) -> PathBuf {
        self.protocol_dir.join(STEP_CONTEXT_ENV_FILE)
    }

    pub fn children(&self) -> PathBuf {
        self.protocol_dir.join(CHILDREN_FILE)
    }

    /// The editable `project.json` / `environment.json`.
    pub fn owner(&self, owner: Owner) -> PathBuf {
        self.properties_dir.join(format!("{}.json", owner.as_str()))
    }

    /// The repository properties, merged (read-only).
    pub fn repository(&self) -> PathBuf {
        self.properties_dir.join("repository.json")
    }

    /// All levels merged (read-only, refreshed by the `gantry-runner` edit commands).
    pub fn merged(&self) -> PathBuf {
        self.properties_dir.join("merged.json")
    }

    /// The places `gantry.files` may write to: the home and the scratch directory.
    pub fn file_roots(&self) -> [&Path; 2] {
        [
            self.home.as_path(),
            Path::new(gantry_shared::protocol::SCRATCH_DIR),
        ]
    }
}

/// `path` made absolute against the working directory (unchanged if that cannot be determined;
/// then the error surfaces where the path is used).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

//! The results of a run: one serialisable [`Report`] (the JSON file), its sections as rows and
//! latency sets (`sections`), the comparison with the raw figures and the targets
//! (`targets`), the machine it ran on (`machine`), and its renderings: a terminal table
//! (`table`), `docs/benchmarks.md` (`markdown`) and the latency plot (`plot`).

pub mod machine;
pub mod markdown;
pub mod plot;
pub mod sections;
pub mod table;
pub mod targets;

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::scenarios::chain::ChainReport;
use crate::scenarios::create::CreateReport;
use crate::scenarios::follow::FollowReport;
use crate::scenarios::lifecycle::LifecycleReport;
use crate::scenarios::props::PropsReport;
use crate::scenarios::raw::RawReport;
use crate::scenarios::results::ResultsReport;
use crate::scenarios::steps::StepsReport;
pub use machine::Machine;
pub use targets::Comparison;

/// Everything one run measured; a scenario that did not run (or failed) is `None`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub gantry_version: String,
    /// The size preset of a bench run.
    pub size: Option<String>,
    pub machine: Option<Machine>,
    pub raw: Option<RawReport>,
    pub chain: Option<ChainReport>,
    pub steps: Option<StepsReport>,
    pub props: Option<PropsReport>,
    pub results: Option<ResultsReport>,
    pub create: Option<CreateReport>,
    #[serde(default)]
    pub lifecycle: Option<LifecycleReport>,
    #[serde(default)]
    pub follow: Option<FollowReport>,
    /// Gantry against the raw figures and the targets (filled by `bench`): over several runs,
    /// each row the median run's, with the spread.
    pub comparisons: Vec<Comparison>,
    /// Every run's rows, when `bench` ran more than once.
    #[serde(default)]
    pub runs: Vec<Vec<Comparison>>,
    /// Scenarios that failed, with the reason.
    pub errors: Vec<ScenarioError>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioError {
    pub scenario: String,
    pub message: String,
}

impl Report {
    pub fn new() -> Self {
        Self {
            gantry_version: gantry_shared::VERSION.to_owned(),
            ..Self::default()
        }
    }

    /// Writes the report as pretty JSON.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(self).context("serialising the report")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

//! The scenarios. Each takes its parameters (sizes), runs against a Gantry (or, for `raw`, the
//! engines themselves) and returns a serialisable report.

pub mod breakdown;
pub mod chain;
pub mod create;
pub mod follow;
pub mod hostile;
pub mod lifecycle;
pub mod props;
pub mod raw;
pub mod recorded;
pub mod reliability;
pub mod results;
pub mod steps;

use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value;

use crate::client::{Api, millis_between, status_of};

/// Polling interval while one change runs (latency scenarios) and while many do.
pub const POLL_ONE: Duration = Duration::from_millis(50);
pub const POLL_MANY: Duration = Duration::from_millis(100);
/// How long a change of trivial steps may take before the scenario gives up.
pub const CHANGE_TIMEOUT: Duration = Duration::from_secs(600);

/// A final change as the server timed it (the API and the worker both take their timestamps from
/// PostgreSQL's clock, so no polling delay is in these figures).
#[derive(Debug, Clone)]
pub struct FinishedChange {
    pub status: String,
    /// `created_at` → `finished_at`.
    pub create_to_final_ms: f64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: chrono::DateTime<chrono::Utc>,
    /// Every step: its status, and `started_at` → `finished_at` when it ran a command.
    pub steps: Vec<(String, Option<f64>)>,
}

impl FinishedChange {
    /// Reads a change document fetched with `?include=steps`.
    pub fn from_document(change: &Value) -> anyhow::Result<Self> {
        let data = &change["data"];
        let steps = change["included"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|s| s["type"] == "steps")
            .map(|s| {
                let status = s["attributes"]["status_code"].as_str().unwrap_or_default();
                let ran = (s["attributes"]["exit_code"].is_number())
                    .then(|| millis_between(s, "started_at", "finished_at"))
                    .transpose()?;
                Ok((status.to_owned(), ran))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            status: status_of(change).to_owned(),
            create_to_final_ms: millis_between(data, "created_at", "finished_at")?,
            created_at: crate::client::time_of(data, "created_at")?,
            finished_at: crate::client::time_of(data, "finished_at")?,
            steps,
        })
    }

    /// Fails unless the change and its `expected_steps` steps all succeeded.
    pub fn check_success(&self, expected_steps: usize) -> anyhow::Result<()> {
        let succeeded = self.steps.iter().filter(|(s, _)| s == "success").count();
        if self.status != "success"
            || succeeded != expected_steps
            || self.steps.len() != expected_steps
        {
            bail!(
                "the change ended {} with {succeeded} of {} steps successful ({expected_steps} expected)",
                self.status,
                self.steps.len()
            );
        }
        Ok(())
    }
}

/// Waits for a change and reads its timings.
pub async fn finish(api: &Api, id: &str, poll: Duration) -> anyhow::Result<FinishedChange> {
    let change = api.wait_final(id, poll, CHANGE_TIMEOUT).await?;
    FinishedChange::from_document(&change).with_context(|| format!("reading change {id}"))
}

/// Fetches many final changes, a few at a time.
pub async fn fetch_finished(api: &Api, ids: &[String]) -> anyhow::Result<Vec<FinishedChange>> {
    futures_util::stream::iter(ids)
        .map(|id| async move {
            let change = api.get(&format!("/api/changes/{id}?include=steps")).await?;
            FinishedChange::from_document(&change).with_context(|| format!("reading change {id}"))
        })
        .buffered(8)
        .try_collect()
        .await
}

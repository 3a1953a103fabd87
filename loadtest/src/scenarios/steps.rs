//! `steps`: N changes of K trivial sequential steps (`run: "true"`), all created at once in a
//! project with `allow_parallel_changes`, so up to N steps (bounded by the workers' concurrency)
//! run at the same time. Reports create→final per change, the time per step and steps/s over the
//! whole run (first creation to last finish, server timestamps).

use std::time::Instant;

use anyhow::bail;
use futures_util::future::try_join_all;
use serde::{Deserialize, Serialize};

use super::{FinishedChange, POLL_MANY, POLL_ONE, fetch_finished, finish};
use crate::client::Api;
use crate::fixture::{Fixture, manifest};
use crate::progress;
use crate::stats::{Latency, Recorder, per_second};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepsParams {
    pub changes: usize,
    pub steps_per_change: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepsReport {
    pub params: StepsParams,
    /// Containers run in all (every change's K steps).
    pub steps_run: usize,
    pub changes_successful: usize,
    /// First `created_at` to last `finished_at`, in seconds.
    pub makespan_secs: f64,
    pub steps_per_second: f64,
    /// create→final of each change.
    pub change_latency: Latency,
    /// A step's `started_at` → `finished_at` (claim to result applied).
    pub step_latency: Latency,
    /// Mean create→final of a change divided by its K steps.
    pub per_step_ms: f64,
}

pub async fn run(
    api: &Api,
    fixture: &Fixture,
    params: &StepsParams,
) -> anyhow::Result<StepsReport> {
    let k = params.steps_per_change.max(1);
    let project = fixture
        .project(api, "steps", Some(&manifest(&[("steps", k)])), true)
        .await?;
    // The first step of a project builds its step image; that is not what is measured here.
    let warm = api
        .create_change(&project.code, &project.environment, "one")
        .await?;
    finish(api, &warm, POLL_ONE).await?.check_success(1)?;

    let bar = progress::bar(params.changes as u64, "steps");
    let creations = (0..params.changes).map(|_| async {
        let id = api
            .create_change(&project.code, &project.environment, "steps")
            .await;
        bar.inc(1);
        id
    });
    let started = Instant::now();
    let ids = try_join_all(creations).await?;
    bar.set_message("created; running");
    api.wait_project_idle(&project.code, POLL_MANY, super::CHANGE_TIMEOUT)
        .await?;
    let waited = started.elapsed();
    bar.finish_and_clear();
    let changes = fetch_finished(api, &ids).await?;
    summarise(params, &changes, waited)
}

fn summarise(
    params: &StepsParams,
    changes: &[FinishedChange],
    waited: std::time::Duration,
) -> anyhow::Result<StepsReport> {
    let k = params.steps_per_change.max(1);
    let (Some(first), Some(last)) = (
        changes.iter().map(|c| c.created_at).min(),
        changes.iter().map(|c| c.finished_at).max(),
    ) else {
        bail!("no change was created");
    };
    let makespan = (last - first).to_std().unwrap_or(waited);
    let (mut change_latency, mut step_latency) = (Recorder::default(), Recorder::default());
    let mut successful = 0;
    for change in changes {
        change_latency.record_ms(change.create_to_final_ms);
        change
            .steps
            .iter()
            .filter_map(|(_, ran)| *ran)
            .for_each(|ms| step_latency.record_ms(ms));
        // The grouping root and its K children.
        successful += usize::from(change.check_success(k + 1).is_ok());
    }
    if successful != changes.len() {
        bail!(
            "{} of {} changes did not succeed",
            changes.len() - successful,
            changes.len()
        );
    }
    let change_latency = change_latency.summary();
    let steps_run = changes.len() * k;
    Ok(StepsReport {
        params: params.clone(),
        steps_run,
        changes_successful: successful,
        makespan_secs: makespan.as_secs_f64(),
        steps_per_second: per_second(steps_run, makespan),
        per_step_ms: change_latency.mean_ms / k as f64,
        change_latency,
        step_latency: step_latency.summary(),
    })
}

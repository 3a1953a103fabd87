//! `chain`: latency without concurrency. First `singles` one-step changes, one after the other
//! (the trivial change's create→final), then one change of `steps` sequential trivial steps (40
//! in the bench): its create→final in all and per step.

use serde::{Deserialize, Serialize};

use super::breakdown::{Breakdown, Snapshot};
use super::{POLL_ONE, finish};
use crate::client::Api;
use crate::fixture::{Fixture, manifest};
use crate::progress;
use crate::stats::{Latency, Recorder};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainParams {
    pub steps: usize,
    pub singles: usize,
    /// The worker's `/metrics`, read around the chain for the per-step breakdown (optional).
    #[serde(default)]
    pub worker_metrics: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainReport {
    pub params: ChainParams,
    /// create→final of a change with one trivial step.
    pub single: Latency,
    /// create→final of the chain, and that divided by its steps.
    pub chain_total_ms: f64,
    pub chain_per_step_ms: f64,
    /// Each chain step's `started_at` → `finished_at`.
    pub chain_step: Latency,
    /// Where a chain step's time goes, when the worker's metrics were readable.
    pub breakdown: Option<Breakdown>,
}

pub async fn run(
    api: &Api,
    fixture: &Fixture,
    params: &ChainParams,
) -> anyhow::Result<ChainReport> {
    let steps = params.steps.max(1);
    let project = fixture
        .project(api, "chain", Some(&manifest(&[("chain", steps)])), false)
        .await?;
    let (code, environment) = (&project.code, &project.environment);
    // The first step of a project builds its step image; that is not what is measured here.
    let warm = api.create_change(code, environment, "one").await?;
    finish(api, &warm, POLL_ONE).await?.check_success(1)?;

    let bar = progress::bar(params.singles as u64 + 1, "chain");
    let mut single = Recorder::default();
    for _ in 0..params.singles {
        let id = api.create_change(code, environment, "one").await?;
        let change = finish(api, &id, POLL_ONE).await?;
        change.check_success(1)?;
        single.record_ms(change.create_to_final_ms);
        bar.inc(1);
    }
    bar.set_message(format!("a chain of {steps} steps"));
    let metrics = params.worker_metrics.as_deref();
    let before = scrape(api, metrics).await;
    let id = api.create_change(code, environment, "chain").await?;
    let chain = finish(api, &id, POLL_ONE).await?;
    chain.check_success(steps + 1)?;
    let per_step_ms = chain.create_to_final_ms / steps as f64;
    let breakdown = match (before, scrape(api, metrics).await) {
        (Some(before), Some(after)) => Some(after.since(&before, steps, per_step_ms)),
        _ => None,
    };
    bar.finish_and_clear();
    let mut chain_step = Recorder::default();
    chain
        .steps
        .iter()
        .filter_map(|(_, ran)| *ran)
        .for_each(|ms| chain_step.record_ms(ms));
    Ok(ChainReport {
        params: params.clone(),
        single: single.summary(),
        chain_total_ms: chain.create_to_final_ms,
        chain_per_step_ms: per_step_ms,
        chain_step: chain_step.summary(),
        breakdown,
    })
}

/// The worker's histograms, or `None` (with a warning) when they cannot be read.
async fn scrape(api: &Api, url: Option<&str>) -> Option<Snapshot> {
    let url = url?;
    match api.fetch_text(url).await {
        Ok(text) => Some(Snapshot::parse(&text)),
        Err(e) => {
            eprintln!("gantry-loadtest: no per-step breakdown, {url} unreadable: {e:#}");
            None
        }
    }
}

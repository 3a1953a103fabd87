//! `raw`: the physical limits of the machine, measured without Gantry, to compare Gantry with:
//! the container lifecycle through the Docker API with the step container's hardening (one at a
//! time, then churn at a concurrency), and PostgreSQL commits (single-row inserts at the create
//! scenario's concurrency; versioned update + history insert transactions) in a scratch database
//! that is dropped afterwards.

mod containers;
mod postgres;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use gantry_shared::settings::Settings;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::progress;
use crate::stats::{Latency, Recorder, per_second};

pub use gantry_worker::runner::connect_docker;

/// What one measurement of each raw figure does. The bench measures each twice, before and after
/// the scenario it is compared with, and reports the two pooled (twice these counts).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawParams {
    /// Container lifecycles timed one after the other.
    pub lifecycles: usize,
    /// Containers run in the churn, and how many at once.
    pub churn_containers: usize,
    pub churn_concurrency: usize,
    /// Single-row INSERT commits, and the clients sending them.
    pub inserts: usize,
    pub insert_concurrency: usize,
    /// Versioned UPDATE + INSERT transactions, and the clients sending them.
    pub versioned: usize,
    pub versioned_concurrency: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawReport {
    pub params: RawParams,
    /// create + start + wait + remove of one hardened container running `true`.
    pub lifecycle: Latency,
    pub churn: Throughput,
    pub inserts: Throughput,
    pub versioned: Throughput,
}

/// Work done at a concurrency, and its rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Throughput {
    pub concurrency: usize,
    pub count: usize,
    pub elapsed_secs: f64,
    pub per_second: f64,
}

impl Throughput {
    /// Both measurements as one: every event over all the time they took.
    pub fn pooled(&self, other: &Throughput) -> Throughput {
        let count = self.count + other.count;
        let elapsed_secs = self.elapsed_secs + other.elapsed_secs;
        Throughput {
            concurrency: self.concurrency,
            count,
            elapsed_secs,
            per_second: if elapsed_secs > 0.0 {
                count as f64 / elapsed_secs
            } else {
                0.0
            },
        }
    }
}

pub use postgres::Measure;

/// Every raw figure, one after the other.
pub async fn run(settings: &Settings, params: &RawParams) -> anyhow::Result<RawReport> {
    Ok(RawReport {
        params: params.clone(),
        lifecycle: lifecycles(settings, params).await?.summary(),
        churn: churn(settings, params).await?,
        inserts: postgres(settings, Measure::Inserts, params).await?,
        versioned: postgres(settings, Measure::Versioned, params).await?,
    })
}

/// Container lifecycles one after the other.
pub async fn lifecycles(settings: &Settings, params: &RawParams) -> anyhow::Result<Recorder> {
    let docker = connect_docker().await?;
    containers::lifecycles(&docker, &settings.worker, params.lifecycles).await
}

/// Container churn at the params' concurrency.
pub async fn churn(settings: &Settings, params: &RawParams) -> anyhow::Result<Throughput> {
    let docker = connect_docker().await?;
    containers::churn(
        &docker,
        &settings.worker,
        params.churn_containers,
        params.churn_concurrency,
    )
    .await
}

/// One raw PostgreSQL rate.
pub async fn postgres(
    settings: &Settings,
    measure: Measure,
    params: &RawParams,
) -> anyhow::Result<Throughput> {
    postgres::run(&settings.database, measure, params).await
}

/// Runs `n` jobs, each worker (a connection, a Docker client) doing one at a time, all workers
/// at once; the throughput of the whole.
async fn spread<W, F, Fut>(
    phase: &str,
    n: usize,
    workers: Vec<W>,
    job: F,
) -> anyhow::Result<Throughput>
where
    W: Send + 'static,
    F: Fn(&W) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let concurrency = workers.len();
    let next = Arc::new(AtomicUsize::new(0));
    let bar = progress::bar(n as u64, phase);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for worker in workers {
        let (next, bar) = (next.clone(), bar.clone());
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                job(&worker).await?;
                bar.inc(1);
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.with_context(|| format!("a {phase} worker panicked"))??;
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    Ok(Throughput {
        concurrency,
        count: n,
        elapsed_secs: elapsed.as_secs_f64(),
        per_second: per_second(n, elapsed),
    })
}

/// The names of the step containers (label `gantry=true`) the engine has, running or not.
pub async fn step_containers(docker: &bollard::Docker) -> anyhow::Result<Vec<String>> {
    let filters = std::collections::HashMap::from([("label", vec!["gantry=true"])]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let listed = docker.list_containers(Some(options)).await?;
    Ok(listed
        .into_iter()
        .filter_map(|c| Some(c.names?.first()?.trim_start_matches('/').to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_rates_are_every_event_over_all_their_time() {
        let rate = |count: usize, elapsed_secs: f64| Throughput {
            concurrency: 8,
            count,
            elapsed_secs,
            per_second: count as f64 / elapsed_secs,
        };
        let pooled = rate(10, 1.0).pooled(&rate(30, 2.0));
        assert_eq!((pooled.concurrency, pooled.count), (8, 40));
        assert!((pooled.elapsed_secs - 3.0).abs() < 1e-9, "{pooled:?}");
        assert!((pooled.per_second - 40.0 / 3.0).abs() < 1e-9, "{pooled:?}");
        assert_eq!(rate(0, 0.0).pooled(&rate(0, 0.0)).per_second, 0.0);
    }
}

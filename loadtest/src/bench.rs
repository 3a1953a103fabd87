//! `bench`: every Gantry scenario in one run, each between two measurements of the raw figure it
//! is compared with; then the comparison with the targets. `create` runs last: it leaves the most
//! work behind for the planner (it waits for it, but the machine is busiest then).

use gantry_shared::settings::Settings;

use crate::client::Api;
use crate::fixture::Fixture;
use crate::report::{Report, ScenarioError, machine, targets};
use crate::scenarios::chain::ChainParams;
use crate::scenarios::create::CreateParams;
use crate::scenarios::follow::FollowParams;
use crate::scenarios::lifecycle::LifecycleParams;
use crate::scenarios::props::PropsParams;
use crate::scenarios::raw::{RawParams, RawReport, Throughput};
use crate::scenarios::results::ResultsParams;
use crate::scenarios::steps::StepsParams;
use crate::scenarios::{chain, create, follow, lifecycle, props, raw, results, steps};
use crate::stats::{Latency, Recorder};

/// The sizes of every scenario of one bench run.
#[derive(Debug, Clone)]
pub struct BenchParams {
    /// The preset's name, for the report.
    pub size: String,
    pub raw: RawParams,
    pub chain: ChainParams,
    pub steps: StepsParams,
    pub props: PropsParams,
    pub results: ResultsParams,
    pub create: CreateParams,
    pub lifecycle: LifecycleParams,
    pub follow: FollowParams,
    /// The planner's process, stopped for the api-alone loops of `create`.
    pub planner_pid: Option<u32>,
}

impl BenchParams {
    /// The preset of `size` (its raw INSERTs use the create scenario's concurrency).
    pub fn of(size: crate::size::Size) -> Self {
        Self {
            size: format!("{size:?}").to_lowercase(),
            raw: size.raw(),
            chain: size.chain(),
            steps: size.steps(),
            props: size.props(),
            results: size.results(),
            create: size.create(),
            lifecycle: size.lifecycle(),
            follow: size.follow(),
            planner_pid: None,
        }
    }
}

/// `VACUUM ANALYZE` of Gantry's database before a scenario, as autovacuum would do between them
/// (the PostgreSQL of this machine kind runs with autovacuum off): without it each scenario would
/// run on the dead rows and stale statistics of the ones before. A failure is recorded and the
/// scenario runs anyway.
async fn settle(settings: &Settings, errors: &mut Vec<ScenarioError>) {
    let vacuum = async {
        let url = secrecy::ExposeSecret::expose_secret(&settings.database.url);
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client.batch_execute("VACUUM ANALYZE").await
    };
    if let Err(e) = vacuum.await {
        errors.push(failed("vacuum", anyhow::Error::new(e)));
    }
}

/// [`run`] `runs` times: the report of the last run, with each comparison row the median run's
/// and the spread of all (`targets::median_of_runs`), and every run's rows kept in `runs`; so that
/// one noisy run does not flip a row. The failures of every run are kept.
pub async fn run_repeated(
    api: &Api,
    settings: &Settings,
    params: &BenchParams,
    runs: usize,
) -> Report {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut last = Report::new();
    for n in 1..=runs.max(1) {
        eprintln!("gantry-loadtest: bench run {n} of {}", runs.max(1));
        last = run(api, settings, params).await;
        rows.push(std::mem::take(&mut last.comparisons));
        errors.extend(last.errors.drain(..).map(|mut e| {
            e.scenario = format!("run {n}: {}", e.scenario);
            e
        }));
    }
    last.comparisons = targets::median_of_runs(&rows);
    last.runs = rows;
    last.errors = errors;
    last
}

/// Runs everything; a failed scenario is recorded in the report and the others still run. Each
/// raw figure is measured right before and right after the Gantry scenario it is compared with,
/// and the two measurements are pooled, so that both see the machine in the same state: container
/// start times drift by tens of milliseconds over a minute, more after a burst of container churn,
/// and measured only before, the chain's orchestration figure (a difference of two ≈250 ms
/// figures) moved between 5 and 29 ms from one run to the next.
pub async fn run(api: &Api, settings: &Settings, params: &BenchParams) -> Report {
    let fixture = Fixture::new();
    let mut report = Report::new();
    report.size = Some(params.size.clone());
    report.machine = Some(machine::describe(settings).await);
    let mut errors = Vec::new();
    let raw_params = &params.raw;
    let (lifecycle, chain) = around(
        settings,
        &mut errors,
        "raw lifecycles",
        async || raw::lifecycles(settings, raw_params).await,
        ("chain", chain::run(api, &fixture, &params.chain)),
    )
    .await;
    report.chain = chain;
    let (churn, steps) = around(
        settings,
        &mut errors,
        "raw churn",
        async || raw::churn(settings, raw_params).await,
        ("steps", steps::run(api, &fixture, &params.steps)),
    )
    .await;
    report.steps = steps;
    let (versioned, results) = around(
        settings,
        &mut errors,
        "raw versioned",
        async || raw::postgres(settings, raw::Measure::Versioned, raw_params).await,
        (
            "results",
            results::run(api, &fixture, settings, &params.results),
        ),
    )
    .await;
    report.results = results;
    settle(settings, &mut errors).await;
    report.lifecycle = measured(
        "lifecycle",
        lifecycle::run(api, settings, &fixture, &params.lifecycle).await,
        &mut errors,
    );
    settle(settings, &mut errors).await;
    report.follow = measured(
        "follow",
        follow::run(api, &fixture, &params.follow).await,
        &mut errors,
    );
    settle(settings, &mut errors).await;
    report.props = measured(
        "props",
        props::run(api, &fixture, &params.props).await,
        &mut errors,
    );
    let (inserts, create) = around(
        settings,
        &mut errors,
        "raw inserts",
        async || raw::postgres(settings, raw::Measure::Inserts, raw_params).await,
        (
            "create",
            create::run(api, &fixture, &params.create, params.planner_pid),
        ),
    )
    .await;
    report.create = create;
    if let (Some(lifecycle), Some(churn), Some(inserts), Some(versioned)) =
        (lifecycle, churn, inserts, versioned)
    {
        report.raw = Some(RawReport {
            params: raw_params.clone(),
            lifecycle,
            churn,
            inserts,
            versioned,
        });
    }
    report.errors = errors;
    report.comparisons = targets::compare(&report);
    report
}

/// Raw figure `part`, measured by `raw` right before and right after the Gantry scenario `name`
/// (run on a settled database), the two pooled; and the scenario's report. A failure of either
/// is recorded, and a raw figure with a failed side is `None`.
async fn around<R: Pooled, S>(
    settings: &Settings,
    errors: &mut Vec<ScenarioError>,
    part: &str,
    raw: impl AsyncFn() -> anyhow::Result<R>,
    (name, scenario): (&str, impl Future<Output = anyhow::Result<S>>),
) -> (Option<R::Figure>, Option<S>) {
    let before = measured(&format!("{part} before"), raw().await, errors);
    settle(settings, errors).await;
    let report = measured(name, scenario.await, errors);
    let after = measured(&format!("{part} after"), raw().await, errors);
    (
        before.zip(after).map(|(before, after)| before.pool(after)),
        report,
    )
}

/// A raw measurement two of which make one figure.
trait Pooled {
    type Figure;
    fn pool(self, other: Self) -> Self::Figure;
}

/// Latencies go into one histogram.
impl Pooled for Recorder {
    type Figure = Latency;
    fn pool(mut self, other: Self) -> Latency {
        self.merge(&other);
        self.summary()
    }
}

/// Rates are every event over all their time.
impl Pooled for Throughput {
    type Figure = Throughput;
    fn pool(self, other: Self) -> Throughput {
        self.pooled(&other)
    }
}

/// A scenario's or raw part's result, or `None` with the failure recorded under `part`. (The
/// report holds the raw figures only when all of them were measured.)
fn measured<T>(
    part: &str,
    result: anyhow::Result<T>,
    errors: &mut Vec<ScenarioError>,
) -> Option<T> {
    result.map_err(|e| errors.push(failed(part, e))).ok()
}

fn failed(scenario: &str, e: anyhow::Error) -> ScenarioError {
    eprintln!("gantry-loadtest: {scenario} failed: {e:#}");
    ScenarioError {
        scenario: scenario.to_owned(),
        message: format!("{e:#}"),
    }
}

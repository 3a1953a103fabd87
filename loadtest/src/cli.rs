//! The command line: the API's URL and token (like the `gantry` CLI), one subcommand per
//! scenario and `bench`. Every count has a size preset and can be set explicitly.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::scenarios::chain::ChainParams;
use crate::scenarios::create::CreateParams;
use crate::scenarios::follow::FollowParams;
use crate::scenarios::lifecycle::LifecycleParams;
use crate::scenarios::props::PropsParams;
use crate::scenarios::raw::RawParams;
use crate::scenarios::results::ResultsParams;
use crate::scenarios::steps::StepsParams;
pub use crate::size::Size;

#[derive(Parser)]
#[command(
    name = "gantry-loadtest",
    version,
    about = "Load tests and benchmarks a running Gantry"
)]
pub struct Cli {
    /// The API's base URL.
    #[arg(
        long = "url",
        env = "GANTRY_URL",
        default_value = "http://127.0.0.1:3000",
        global = true
    )]
    pub url: String,
    /// The API token.
    #[arg(
        long,
        env = "GANTRY_TOKEN",
        hide_env_values = true,
        global = true,
        default_value = ""
    )]
    pub token: String,
    /// Write the results as JSON to this file (default: printed after the table; for `bench`,
    /// `<out>/benchmarks.json`).
    #[arg(long, global = true)]
    pub json: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Change creations per second, closed-loop and open-loop, with latency percentiles.
    Create(CreateArgs),
    /// N changes of K trivial steps at once: steps/s and time per step.
    Steps(StepsArgs),
    /// One-step changes one after the other, then one change of a chain of sequential steps.
    Chain(ChainArgs),
    /// Concurrent If-Match increments of one property: updates/s, retries, no lost update.
    Props(PropsArgs),
    /// Step results applied per second by the results role (needs the database and broker).
    Results(ResultsArgs),
    /// Step exit to the next sibling's start, and a cancel to the container gone (Docker's events
    /// and the containers' records).
    Lifecycle(LifecycleArgs),
    /// Many SSE followers of one change's log: every line once, reads and api CPU they cost.
    Follow(FollowArgs),
    /// The machine's raw container and PostgreSQL figures, without Gantry.
    Raw(RawArgs),
    /// Raw, then every scenario; writes docs/benchmarks.md, the plot and the JSON.
    Bench(BenchArgs),
    /// Changes through several api processes while faults are injected around it, then the
    /// invariants of RELIABILITY.md checked (make reliability); exits 1 when one is broken.
    Reliability(ReliabilityArgs),
    /// Steps that turn on their own container (kill, timeout, fork bomb, memory, CPU, disk, a
    /// 1 GiB log), all at once while the api is probed (make reliability: S9, S13, S18).
    Hostile(HostileArgs),
}

#[derive(Args)]
pub struct HostileArgs {
    /// Seconds each change may take.
    #[arg(long, default_value_t = 600)]
    pub timeout_seconds: u64,
}

#[derive(Args)]
pub struct ReliabilityArgs {
    /// Changes (of two steps) to submit.
    #[arg(long, default_value_t = 50)]
    pub changes: usize,
    /// The api processes' base URLs, comma-separated, used in turn.
    #[arg(long, value_delimiter = ',', required = true)]
    pub apis: Vec<String>,
    /// Seconds the changes may take to end, and then to drain.
    #[arg(long, default_value_t = 300)]
    pub timeout_seconds: u64,
    /// Milliseconds between two submissions.
    #[arg(long, default_value_t = 0)]
    pub pace_ms: u64,
    /// Seconds the first step of each change sleeps.
    #[arg(long, default_value_t = 0.2)]
    pub step_seconds: f64,
    /// A runner secret's value the second step prints (plain and base64), for the I6 scan.
    #[arg(long)]
    pub canary: Option<String>,
    /// Publish poison messages to the steps queue first (S8).
    #[arg(long)]
    pub poison: bool,
}

#[derive(Args)]
pub struct CreateArgs {
    #[arg(long, value_enum, default_value_t = Size::Medium)]
    pub size: Size,
    /// Closed loop: clients at once.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Closed loop: changes to create.
    #[arg(long)]
    pub count: Option<usize>,
    /// Open loop: target changes per second.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open loop: seconds to hold the rate.
    #[arg(long)]
    pub duration: Option<f64>,
    /// The planner's process id: the create loops run first with it stopped (the api alone).
    #[arg(long, env = "GANTRY_PLANNER_PID")]
    pub planner_pid: Option<u32>,
}

impl CreateArgs {
    pub fn params(&self) -> CreateParams {
        let p = self.size.create();
        CreateParams {
            concurrency: self.concurrency.unwrap_or(p.concurrency),
            count: self.count.unwrap_or(p.count),
            rate: self.rate.unwrap_or(p.rate),
            duration_secs: self.duration.unwrap_or(p.duration_secs),
        }
    }
}

#[derive(Args)]
pub struct StepsArgs {
    #[arg(long, value_enum, default_value_t = Size::Medium)]
    pub size: Size,
    /// Changes created at once (N).
    #[arg(long)]
    pub changes: Option<usize>,
    /// Trivial steps per change (K).
    #[arg(long)]
    pub steps: Option<usize>,
}

impl StepsArgs {
    pub fn params(&self) -> StepsParams {
        let p = self.size.steps();
        StepsParams {
            changes: self.changes.unwrap_or(p.changes),
            steps_per_change: self.steps.unwrap_or(p.steps_per_change),
        }
    }
}

#[derive(Args)]
pub struct ChainArgs {
    #[arg(long, value_enum, default_value_t = Size::Medium)]
    pub size: Size,
    /// Sequential steps of the chain (40 in the issue).
    #[arg(long)]
    pub steps: Option<usize>,
    /// One-step changes run one after the other first.
    #[arg(long)]
    pub singles: Option<usize>,
    /// The worker's Prometheus endpoint, read around the chain for the per-step breakdown.
    #[arg(long, env = "GANTRY_WORKER_METRICS", default_value = WORKER_METRICS)]
    pub worker_metrics: String,
}

/// Where `make demo` and `make bench` run the worker's metrics.
const WORKER_METRICS: &str = "http://127.0.0.1:9464/metrics";

impl ChainArgs {
    pub fn params(&self) -> ChainParams {
        let p = self.size.chain();
        ChainParams {
            steps: self.steps.unwrap_or(p.steps),
            singles: self.singles.unwrap_or(p.singles),
            worker_metrics: Some(self.worker_metrics.clone()),
        }
    }
}

#[derive(Args)]
pub struct PropsArgs {
    #[arg(long, value_enum, default_value_t = Size::Medium)]
    pub size: Size,
    /// Concurrent clients (C).
    #[arg(long)]
    pub clients: Option<usize>,
    /// Increments per client (M).
    #[arg(long)]
    pub increments: Option<usize>,
}

impl PropsArgs {
    pub fn params(&self) -> PropsParams {
        let p = self.size.props();
        PropsParams {
            clients: self.clients.unwrap_or(p.clients),
            increments: self.increments.unwrap_or(p.increments),
        }
    }
}

#[derive(Args)]
pub struct ResultsArgs {
    #[arg(long, value_enum, default_value_t = Size::Medium)]
    pub size: Size,
    /// Results to publish (N).
    #[arg(long)]
    pub results: Option<usize>,
}

impl ResultsArgs {
    pub fn params(&self) -> ResultsParams {
        ResultsParams {
            results: self.results.unwrap_or(self.size.results().results),
        }
    }
}

#[derive(Args)]
pub struct LifecycleArgs {
    #[arg(long, value_enum, default_value_t = Size::Medium)]
    pub size: Size,
    /// Sequential trivial steps whose gaps are timed.
    #[arg(long)]
    pub siblings: Option<usize>,
    /// Changes cancelled while their step sleeps.
    #[arg(long)]
    pub cancels: Option<usize>,
}

impl LifecycleArgs {
    pub fn params(&self) -> LifecycleParams {
        let p = self.size.lifecycle();
        LifecycleParams {
            siblings: self.siblings.unwrap_or(p.siblings),
            cancels: self.cancels.unwrap_or(p.cancels),
        }
    }
}

#[derive(Args)]
pub struct FollowArgs {
    #[arg(long, value_enum, default_value_t = Size::Medium)]
    pub size: Size,
    /// Clients following the change's log at once.
    #[arg(long)]
    pub followers: Option<usize>,
    /// Lines the followed step prints.
    #[arg(long)]
    pub lines: Option<usize>,
}

impl FollowArgs {
    pub fn params(&self) -> FollowParams {
        let p = self.size.follow();
        FollowParams {
            followers: self.followers.unwrap_or(p.followers),
            lines: self.lines.unwrap_or(p.lines),
        }
    }
}

#[derive(Args)]
pub struct RawArgs {
    #[arg(long, value_enum, default_value_t = Size::Medium)]
    pub size: Size,
    /// Container lifecycles timed one after the other.
    #[arg(long)]
    pub lifecycles: Option<usize>,
    /// Containers run in the churn.
    #[arg(long)]
    pub churn: Option<usize>,
    /// Single-row INSERT commits.
    #[arg(long)]
    pub inserts: Option<usize>,
    /// Clients sending the INSERTs (the create scenario's concurrency by default).
    #[arg(long)]
    pub insert_concurrency: Option<usize>,
    /// Versioned UPDATE + INSERT transactions.
    #[arg(long)]
    pub versioned: Option<usize>,
}

impl RawArgs {
    pub fn params(&self) -> RawParams {
        let p = self.size.raw();
        RawParams {
            lifecycles: self.lifecycles.unwrap_or(p.lifecycles),
            churn_containers: self.churn.unwrap_or(p.churn_containers),
            inserts: self.inserts.unwrap_or(p.inserts),
            insert_concurrency: self.insert_concurrency.unwrap_or(p.insert_concurrency),
            versioned: self.versioned.unwrap_or(p.versioned),
            ..p
        }
    }
}

#[derive(Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value_t = Size::Medium)]
    pub size: Size,
    /// Sequential steps of the chain scenario.
    #[arg(long)]
    pub chain_steps: Option<usize>,
    /// Runs of every scenario: the comparison shows each figure's median run and the spread.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    pub runs: u16,
    /// The worker's Prometheus endpoint, read around the chain for the per-step breakdown.
    #[arg(long, env = "GANTRY_WORKER_METRICS", default_value = WORKER_METRICS)]
    pub worker_metrics: String,
    /// Where benchmarks.md, the plot and (without --json) benchmarks.json are written.
    #[arg(long, default_value = "docs")]
    pub out: PathBuf,
    /// The planner's process id: the create loops run first with it stopped (the api alone).
    #[arg(long, env = "GANTRY_PLANNER_PID")]
    pub planner_pid: Option<u32>,
}

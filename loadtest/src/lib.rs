//! `gantry-loadtest`: drives a running Gantry over its REST API and measures it beside the
//! physical limits of the same machine (DESIGN §1 `loadtest/`).
//!
//! * `cli`, `run` — the command line (one subcommand per scenario plus `bench`, with size
//!   presets) and what each subcommand does with its results.
//! * `client` — a small JSON:API client (bearer token, paging, waiting for final changes).
//! * `fixture` — per-run setup through the API: unique project codes, a Git repository holding the
//!   scenario's actions manifest, environments and remotes.
//! * `scenarios` — `create`, `steps`, `chain`, `props`, `results` against Gantry and `raw`, the
//!   container and PostgreSQL figures without Gantry.
//! * `bench` — every scenario in one run, compared with the targets.
//! * `report` — the results as JSON, a terminal table, `docs/benchmarks.md` and a latency plot.
//! * `size` — the counts of a tiny, small or medium run of every scenario.
//! * `stats`, `progress` — latency histograms (hdrhistogram) and progress bars on stderr.

pub mod bench;
pub mod cli;
pub mod client;
pub mod fixture;
pub mod progress;
pub mod report;
pub mod run;
pub mod scenarios;
pub mod size;
pub mod stats;

pub use client::Api;
pub use fixture::Fixture;
pub use run::run;

//! The Gantry worker: one binary, three roles chosen by configuration (DESIGN §1).
//!
//! * `planner` — initialises a change: Git fetch and rev resolution, the actions manifest, the
//!   root step, the per-environment FIFO lock.
//! * `runner` — claims a step, builds or reuses its image, runs the hardened container, streams
//!   its logs, collects `step_result.json` and publishes the outcome.
//! * `results` — applies an outcome in one transaction: property patches with optimistic
//!   versioning, step status, children, parent and change roll-up (`results::orchestrate`).
//!
//! `consume` is the one consume loop (reconnects, bounded concurrency, the only place that acks);
//! `control` receives broadcasts (stop a cancelled change's containers); `reaper` re-queues
//! steps whose lease expired; `periodic` is the loop of the reaper, the runner's image collector
//! and its orphan sweeper; `steplog` batches log lines into PostgreSQL,
//! masked by `mask` (a step's secret values never reach a stored line);
//! `git` is the mirror cache shared by the planner and the runner; `ops` serves `/metrics` and
//! `/health`.

pub mod consume;
pub mod context;
pub mod control;
pub mod git;
pub mod mask;
pub mod ops;
pub mod periodic;
pub mod planner;
pub mod reaper;
pub mod registry;
pub mod results;
pub mod retention;
pub mod runner;
pub mod startup;
pub mod steplog;

pub use startup::Worker;

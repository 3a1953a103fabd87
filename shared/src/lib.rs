//! Shared Gantry building blocks.
//!
//! * `properties`, `protocol`, `manifest` — pure logic and wire formats, usable by `gantry-runner`
//!   (no async runtime, no database, no broker).
//! * Behind the `runtime` feature: `settings` (the typed configuration),
//!   `project_settings` (the settings of projects and environments, layered over its defaults), `crypto` (encryption at
//!   rest), `db` (pool, error classes), `amqp` (topology, confirming publisher), `messages` (wire
//!   messages), `batching` (group commit of requests), `outbox` (transactional outbox and its relay), `store` (encrypted, versioned
//!   properties documents), `secrets` (the secret store), `domain` (codes, statuses), `lifecycle`
//!   (the change and step state machine) and `transitions` (writing its transitions), `logs`
//!   (numbered log lines, a transaction's lines and audit events, follower wake-ups), `telemetry` (tracing, trace propagation) and `metrics` (Prometheus).

pub mod manifest;
pub mod properties;
pub mod protocol;

#[cfg(feature = "runtime")]
pub mod amqp;
#[cfg(feature = "runtime")]
pub mod batching;
#[cfg(feature = "runtime")]
pub mod crash;
#[cfg(feature = "runtime")]
pub mod crypto;
#[cfg(feature = "runtime")]
pub mod db;
#[cfg(feature = "runtime")]
pub mod domain;
#[cfg(feature = "runtime")]
pub mod lifecycle;
#[cfg(feature = "runtime")]
pub mod logs;
#[cfg(feature = "runtime")]
pub mod messages;
#[cfg(feature = "runtime")]
pub mod metrics;
#[cfg(feature = "runtime")]
pub mod outbox;
#[cfg(feature = "runtime")]
pub mod project_settings;
#[cfg(feature = "runtime")]
pub mod secrets;
#[cfg(feature = "runtime")]
pub mod settings;
#[cfg(feature = "runtime")]
pub mod store;
#[cfg(feature = "runtime")]
pub mod telemetry;
#[cfg(feature = "runtime")]
pub mod transitions;

/// Gantry's version, reported by `/api/info` and passed to image builds as `GANTRY_VERSION`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The default step Dockerfile (DESIGN §5.1), used when a commit has none and served at
/// `GET /api/downloads/Dockerfile`.
pub const DEFAULT_DOCKERFILE: &str = include_str!("../assets/Dockerfile");

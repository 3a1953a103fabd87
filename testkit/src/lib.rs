//! Gantry's in-process test stack, shared by the integration tests of several crates (a
//! dev-dependency only).
//!
//! * `stack` — [`TestStack`]: the real api and worker on a fresh database and RabbitMQ prefix and
//!   the host's Docker engine, with request helpers and the usual project, change and wait steps.
//! * `gate` — [`Gate`]: a TCP forwarder a test cuts, in front of one process's database.
//! * `repo` — [`Repo`]: a Git repository with one commit, made from files in a temporary
//!   directory with the `git` binary.

mod gate;
mod repo;
mod stack;

pub use gate::Gate;
pub use repo::Repo;
pub use stack::{
    TestStack, properties_id, spawn_stack, spawn_stack_with, spawn_stack_with_worker_database,
    test_settings,
};

//! Integration tests: the built `gantry-runner` binary run against a temporary step directory.

mod commands;
mod helpers;
mod park;
mod run_commands;
mod run_result;
mod run_setup;

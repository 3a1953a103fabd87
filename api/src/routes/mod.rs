//! Request handlers, one module per resource and one file per operation; each statement's SQL
//! sits in a small function next to the handler that runs it. `deletion` holds the rule projects
//! and environments share: no deleting what changes were made to.

pub mod changes;
mod deletion;
pub mod downloads;
pub mod environments;
pub mod events;
pub mod git_remotes;
pub mod health;
pub mod info;
pub mod log_lines;
pub mod patching;
pub mod paths;
pub mod projects;
pub mod properties;
pub mod secrets;
pub mod settings;
pub mod steps;
pub mod tokens;
pub mod workers;

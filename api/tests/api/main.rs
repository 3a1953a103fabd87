//! Integration tests of gantry-api against the real PostgreSQL and RabbitMQ.

mod auth;
mod bodies;
mod change_lists;
mod changes;
mod environments;
mod fixtures;
mod git_remotes;
mod helpers;
mod lists;
mod ops;
mod projects;
mod properties;
mod properties_rules;
mod steps;

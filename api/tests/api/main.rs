//! Integration tests of gantry-api against the real PostgreSQL and RabbitMQ.

mod access;
mod auth;
mod bodies;
mod change_lists;
mod change_properties;
mod changes;
mod creation_batches;
mod encryption;
mod environments;
mod fixtures;
mod follow;
mod git_remotes;
mod helpers;
mod idempotency;
mod key_rotation;
mod lifecycle;
mod lists;
mod openapi;
mod ops;
mod projects;
mod properties;
mod properties_rules;
mod secrets;
mod settings;
mod steps;

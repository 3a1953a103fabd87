//! The `gantry` binary against a real Gantry (api, worker, PostgreSQL, RabbitMQ, Docker), run as
//! a user runs it: a subprocess with its configuration in a temporary home.

mod changes;
mod config;
mod follow;
mod helpers;
mod ops;
mod projects;
mod properties;
mod proxy;

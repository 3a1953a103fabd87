//! End-to-end tests: real PostgreSQL, RabbitMQ and Docker; the api and worker in-process.

mod failures;
mod helpers;
mod leases;
mod pipeline;
mod properties;
mod protocol;
mod telemetry;

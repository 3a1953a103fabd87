//! End-to-end tests: real PostgreSQL, RabbitMQ and Docker; the api and worker in-process.

mod build_secrets;
mod failures;
mod hardening;
mod helpers;
mod images;
mod leases;
mod lifecycle;
mod outages;
mod parking;
mod pipeline;
mod properties;
mod protocol;
mod results_integrity;
mod retention;
mod secrets;
mod seeds;
mod shutdown;
mod sweeper;
mod telemetry;
mod workers;

//! Gantry's REST API (DESIGN §6): a stateless actix-web server in front of PostgreSQL.
//!
//! * `startup` — [`Application`]: binds the listener, builds the shared [`state::AppState`], runs
//!   the server and this process's outbox relay until a shutdown token is cancelled.
//! * `router` — the route table; every `/api` route sits behind the bearer-token check in `auth`.
//! * `error` — the one error type of the HTTP boundary, rendered as JSON:API errors (opaque 5xx).
//! * `body`, `query`, `jsonapi` — request bodies (size, depth, unknown fields), query strings
//!   (filters, sort, paging) and response documents.
//! * `follow` — live logs (SSE): one `LISTEN` connection and a shared reader per followed
//!   change.
//! * `domain` — validated request values (names, Git remote URLs, revisions, actions).
//! * `routes` — one module per resource, one file per operation, each with its own SQL.
//! * `openapi` — the OpenAPI 3.1 document, generated from the handlers' attributes and body
//!   types, at `/api-docs/openapi.json`.
//! * `audit` — the append-only `events` rows: `audit::commit` records one and commits every
//!   change of state (a change's creation, one statement, inserts its event in it).
//! * `migrate`, `rotate`, `shutdown`, `telemetry` — the `migrate` and `rotate-key` commands,
//!   signal handling, request tracing.

pub mod audit;
pub mod auth;
pub mod body;
pub mod domain;
pub mod error;
pub mod follow;
pub mod jsonapi;
pub mod migrate;
pub mod openapi;
pub mod query;
pub mod rotate;
pub mod router;
pub mod routes;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod telemetry;

pub use startup::Application;

//! `/api/changes`: running an action of a project's repository against an environment. Creating a
//! change only records it and queues a plan message through the outbox (creations arriving
//! together are written together: see [`batch`]); the worker's planner takes it from there. `DELETE /api/changes/{id}` cancels, `POST …/retry` retries;
//! `GET /api/changes/{id}/properties` shows the properties a change used.

mod batch;
mod cancel;
mod create;
mod cursor;
mod filters;
mod idempotency;
mod list;
mod properties;
mod record;
mod retry;
mod show;

pub use batch::Creations;
pub use cancel::{__path_cancel_change, cancel_change};
pub use create::{__path_create_change, create_change};
pub use list::{__path_list_changes, list_changes};
pub use properties::{__path_show_change_properties, show_change_properties};
pub use retry::{__path_retry_change, retry_change};
pub use show::{__path_show_change, show_change};

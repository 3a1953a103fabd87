//! `/api/changes`: running an action of a project's repository against an environment. Creating a
//! change only records it and queues a `plan_change_v1` message through the outbox; the worker's
//! planner takes it from there. `DELETE /api/changes/{id}` cancels, `POST …/retry` retries;
//! `GET /api/changes/{id}/properties` shows the properties a change used.

mod cancel;
mod create;
mod cursor;
mod filters;
mod list;
mod properties;
mod record;
mod retry;
mod show;

pub use cancel::cancel_change;
pub use create::create_change;
pub use list::list_changes;
pub use properties::show_change_properties;
pub use retry::retry_change;
pub use show::show_change;

//! `/api/steps/{id}`: the steps of a change (also included in `GET /api/changes/{id}?include=steps`).

mod continue_step;
pub(crate) mod record;
mod show;

pub use continue_step::{__path_continue_step, continue_step};
pub use record::{StepRecord, select_steps_of_change};
pub use show::{__path_show_step, show_step};

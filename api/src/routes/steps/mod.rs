//! `/api/steps/{id}`: the steps of a change (also included in `GET /api/changes/{id}?include=steps`).

mod continue_step;
mod record;
mod show;

pub use continue_step::continue_step;
pub use record::{StepRecord, select_steps_of_change};
pub use show::show_step;

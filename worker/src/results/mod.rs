//! The `results` role: applies step outcomes (`apply`), in batches where it can (`batch`), and
//! their property patches (`patches`),
//! fails steps with masked reasons (`fail`), rolls up steps the API finished (`roll_up`), and drives the step tree and the change
//! (`orchestrate`, also used by the planner to start a change); `retry` decides what happens to
//! an attempt lost to infrastructure (also used by the reaper).

pub mod apply;
pub(crate) mod batch;
mod fail;
pub mod orchestrate;
mod patches;
pub(crate) mod retry;
mod roll_up;
pub(crate) mod rows;

pub use apply::handle_outcome;
pub use batch::Batcher;
pub use roll_up::handle_roll_up;

//! The `results` role: applies step outcomes (`apply`) and drives the step tree and the change
//! (`orchestrate`, also used by the planner to start a change and by the reaper).

pub mod apply;
pub mod orchestrate;
mod rows;

pub use apply::handle_outcome;

/// The manifest stored on a change (for callers outside this module that drive the tree).
pub async fn orchestrate_manifest(
    client: &impl deadpool_postgres::GenericClient,
    change_id: uuid::Uuid,
) -> anyhow::Result<gantry_shared::manifest::Manifest> {
    rows::change_manifest(client, change_id).await
}

//! Properties in use by an active change may not be edited by users (seed 002, "Loading
//! properties from a file"): the change must see one state of them from start to end.

use deadpool_postgres::GenericClient;
use gantry_shared::domain::ACTIVE_CHANGE_STATUSES;
use gantry_shared::store::Owner;
use uuid::Uuid;

use crate::error::ApiError;

/// The oldest active change using `owner`'s properties: for a project any change of it, for an
/// environment any change of that environment.
pub(super) async fn select_active_change(
    client: &impl GenericClient,
    owner: Owner,
) -> Result<Option<Uuid>, tokio_postgres::Error> {
    let (project, environment) = match owner {
        Owner::Project(id) => (Some(id), None),
        Owner::Environment(id) => (None, Some(id)),
    };
    let row = client
        .query_opt(
            "SELECT id FROM changes WHERE (project_id = $1 OR environment_id = $2) \
             AND status_code = ANY($3) ORDER BY created_at, id LIMIT 1",
            &[&project, &environment, &ACTIVE_CHANGE_STATUSES.as_slice()],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

pub(super) fn in_use(owner: Owner, change: Uuid) -> ApiError {
    let level = match owner {
        Owner::Project(_) => "project",
        Owner::Environment(_) => "environment",
    };
    ApiError::Conflict(format!(
        "The {level} properties are in use by an active change ({change}); retry when it has finished."
    ))
}

//! Deleting a project or an environment: allowed only while no change was made to it, since its
//! changes would lose their target; one with history can be archived instead.

use actix_web::HttpResponse;
use deadpool_postgres::{GenericClient, Transaction};
use gantry_shared::store::Owner;

use crate::audit::{self, Event};
use crate::error::{ApiError, Context};
use crate::jsonapi;

/// Deletes `owner`, whose row the caller has locked so that no change can be created for it
/// meanwhile, unless a change was made to it; `what` names it in the refusal ("project demo").
/// The deletion and `event` commit together.
pub async fn delete_unless_changed(
    tx: Transaction<'_>,
    owner: Owner,
    what: &str,
    event: &Event<'_>,
) -> Result<HttpResponse, ApiError> {
    if has_changes(&tx, owner)
        .await
        .context("looking for changes")?
    {
        return Err(ApiError::Conflict(format!(
            "{what} has changes and cannot be deleted; archive it instead"
        )));
    }
    delete_row(&tx, owner).await.context("deleting the row")?;
    audit::commit(tx, event).await?;
    Ok(jsonapi::no_content())
}

/// A statement of its own, after the lock: its snapshot then includes a change committed while
/// the lock was awaited.
async fn has_changes(
    client: &impl GenericClient,
    owner: Owner,
) -> Result<bool, tokio_postgres::Error> {
    let (sql, id) = match owner {
        Owner::Project(id) => (
            "SELECT EXISTS (SELECT 1 FROM changes WHERE project_id = $1)",
            id,
        ),
        Owner::Environment(id) => (
            "SELECT EXISTS (SELECT 1 FROM changes WHERE environment_id = $1)",
            id,
        ),
    };
    Ok(client.query_one(sql, &[&id]).await?.get(0))
}

/// Its properties, and a project's environments and remotes, go with it (`ON DELETE CASCADE`).
async fn delete_row(
    client: &impl GenericClient,
    owner: Owner,
) -> Result<u64, tokio_postgres::Error> {
    let (sql, id) = match owner {
        Owner::Project(id) => ("DELETE FROM projects WHERE id = $1", id),
        Owner::Environment(id) => ("DELETE FROM environments WHERE id = $1", id),
    };
    client.execute(sql, &[&id]).await
}

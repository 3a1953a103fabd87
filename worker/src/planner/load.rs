//! What the planner reads about a change, with its SQL.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use deadpool_postgres::GenericClient;
use gantry_shared::crypto::Cipher;
use gantry_shared::db::CachedStatements;
use gantry_shared::domain::ChangeStatus;
use gantry_shared::project_settings::PARALLEL_CHANGES_SQL;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::git::Remote;

pub struct ChangeToPlan {
    pub id: Uuid,
    pub environment_id: Uuid,
    /// The environment's `allow_parallel_changes` setting.
    pub parallel_changes: bool,
    pub git_rev: String,
    /// The commit a retry runs: the one its retried change resolved.
    pub commit_sha: Option<String>,
    /// The change this one retries.
    pub retried_from: Option<Uuid>,
    /// When the change was created, on this process's clock, never earlier than it was: the
    /// change's age is measured by PostgreSQL, taken from the instant its answer arrived, and
    /// shortened by `CLOCK_MARGIN`.
    pub created: Instant,
    pub action: String,
    /// The trace context of the request that created the change.
    pub traceparent: Option<String>,
    /// The remote, or why it cannot be used: it was deleted (the change is created without
    /// locking it, and its deletion refuses only changes committed before it) or its stored
    /// credentials cannot be read. The change fails: retrying cannot bring either back.
    pub remote: Result<Remote, String>,
}

/// Taken off a change's age as PostgreSQL measures it (`now() - created_at`), in case the
/// database's clock stepped forward in between (NTP, a resumed VM, a failover).
const CLOCK_MARGIN: Duration = Duration::from_secs(1);

/// The changes of `ids` that are still `initializing`, with their remotes' credentials
/// decrypted, by id; the others (unknown or already planned) are left out.
///
/// The status is checked here rather than in the query's `WHERE`: with it there, PostgreSQL may
/// find the changes through `changes_project_status`, scanning every `initializing` change of the
/// project, which a burst of creations makes thousands (measured: 0.44 ms a call instead of 0.02).
pub async fn changes_to_plan(
    client: &impl GenericClient,
    cipher: &Cipher,
    ids: &[Uuid],
) -> anyhow::Result<HashMap<Uuid, ChangeToPlan>> {
    let sql = format!(
        "SELECT c.id, c.environment_id, c.git_rev, c.action, r.id, r.url, r.username, r.password, r.ssh_key_data, \
         {PARALLEL_CHANGES_SQL}, EXTRACT(EPOCH FROM now() - c.created_at)::float8, c.status_code, c.git_remote_name, \
         c.commit_sha, c.retried_from, c.traceparent \
         FROM changes c LEFT JOIN git_remotes r ON r.project_id = c.project_id AND r.name = c.git_remote_name \
         JOIN projects p ON p.id = c.project_id JOIN environments e ON e.id = c.environment_id \
         WHERE c.id = ANY($1)"
    );
    let rows = client.query_cached(&sql, &[&ids]).await?;
    // The ages are measured as the answer arrived.
    let now = Instant::now();
    Ok(rows
        .iter()
        .filter(|row| row.get::<_, &str>(11) == ChangeStatus::Initializing.as_str())
        .map(|row| {
            let change = change_of(cipher, row, now);
            (change.id, change)
        })
        .collect())
}

fn change_of(cipher: &Cipher, row: &Row, now: Instant) -> ChangeToPlan {
    // Less a margin that absorbs a step of the database's clock between the insert and now.
    let age = Duration::try_from_secs_f64(row.get(10))
        .unwrap_or_default()
        .saturating_sub(CLOCK_MARGIN);
    ChangeToPlan {
        id: row.get(0),
        environment_id: row.get(1),
        parallel_changes: row.get(9),
        git_rev: row.get(2),
        commit_sha: row.get(13),
        retried_from: row.get(14),
        created: now.checked_sub(age).unwrap_or(now),
        action: row.get(3),
        traceparent: row.get(15),
        remote: match row.get::<_, Option<Uuid>>(4) {
            None => Err(format!(
                "its git remote `{}` was deleted after the change was created",
                row.get::<_, &str>(12)
            )),
            Some(_) => Remote::from_row(cipher, row, 4)
                .map_err(|e| format!("The Git remote's stored credentials cannot be read ({e})")),
        },
    }
}

/// Locks the change if it is still `initializing`.
pub async fn lock_initializing(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_opt_cached(
            "SELECT 1 FROM changes WHERE id = $1 AND status_code = 'initializing' FOR NO KEY UPDATE",
            &[&id],
        )
        .await?
        .is_some())
}

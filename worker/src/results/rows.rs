//! Step and change rows as the results role reads them, with their SQL.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use gantry_shared::db::CachedStatements;
use gantry_shared::domain::StepStatus;
use gantry_shared::manifest::Manifest;
use gantry_shared::protocol::ExecutionStrategy;
use gantry_shared::transitions::StepRef;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct StepRow {
    pub id: Uuid,
    pub change_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub position: i32,
    pub action: String,
    pub name: String,
    pub has_command: bool,
    pub strategy: ExecutionStrategy,
    pub status: StepStatus,
    pub attempt: i32,
    /// Attempts handed back by a worker shutting down: not counted against the retry budget.
    pub handed_back: i32,
    pub command_finished: bool,
    pub project_properties_version: Option<i64>,
    pub environment_properties_version: Option<i64>,
}

const STEP_COLUMNS: &str = "id, change_id, parent_id, position, action, name, has_command, \
    child_execution_strategy, status_code, attempt, command_finished_at IS NOT NULL, \
    project_properties_version, environment_properties_version, handed_back";

impl StepRow {
    /// The step as a transition needs it.
    pub fn as_ref(&self) -> StepRef {
        StepRef {
            id: self.id,
            change_id: self.change_id,
            status: self.status,
            attempt: self.attempt,
        }
    }
}

fn step_from_row(row: &tokio_postgres::Row) -> StepRow {
    StepRow {
        id: row.get(0),
        change_id: row.get(1),
        parent_id: row.get(2),
        position: row.get(3),
        action: row.get(4),
        name: row.get(5),
        has_command: row.get(6),
        strategy: if row.get::<_, &str>(7) == "parallel" {
            ExecutionStrategy::Parallel
        } else {
            ExecutionStrategy::Sequential
        },
        status: row.get::<_, &str>(8).parse().unwrap_or(StepStatus::Error),
        attempt: row.get(9),
        command_finished: row.get(10),
        project_properties_version: row.get(11),
        environment_properties_version: row.get(12),
        handed_back: row.get(13),
    }
}

/// A locked change, with what changing its step tree needs.
pub struct LockedChange {
    step_tree: Option<serde_json::Value>,
    /// The ids of the project's and the environment's properties.
    pub properties_ids: (Uuid, Uuid),
}

impl LockedChange {
    /// The change's manifest, stored by the planner.
    pub fn manifest(self) -> anyhow::Result<Manifest> {
        manifest_of(self.step_tree)
    }
}

/// The manifest a change's `step_tree` column holds (written by the planner).
pub fn manifest_of(step_tree: Option<serde_json::Value>) -> anyhow::Result<Manifest> {
    Ok(serde_json::from_value(step_tree.unwrap_or_default())?)
}

/// Locks the change row, the first lock of every transaction that changes a change's step tree,
/// reading in the same round trip its manifest and properties ids; `None` for an unknown change.
///
/// Every lock the worker takes on change, step, environment and properties rows is `FOR NO KEY
/// UPDATE`: as exclusive between workers as `FOR UPDATE`, but it lets the foreign-key checks of
/// concurrent inserts (`FOR KEY SHARE`: new changes of an environment, log lines of a change or
/// step, versions of a properties row) go on instead of waiting for the lock holder's commit. No
/// worker transaction deletes these rows or changes their keys.
const LOCK_CHANGE: &str = locked_change!("c.id = $1");

/// The statement that locks the changes matching `$condition` (`c` is the change) and reads what
/// [`LockedChange::from_row`] needs, then the change's id.
macro_rules! locked_change {
    ($condition:literal) => {
        concat!(
            "SELECT c.step_tree, pp.id, ep.id, c.id FROM changes c \
             JOIN properties pp ON pp.project_id = c.project_id \
             JOIN properties ep ON ep.environment_id = c.environment_id WHERE ",
            $condition,
            " ORDER BY c.id FOR NO KEY UPDATE OF c"
        )
    };
}
use locked_change;

impl LockedChange {
    fn from_row(row: &tokio_postgres::Row) -> Self {
        Self {
            step_tree: row.get(0),
            properties_ids: (row.get(1), row.get(2)),
        }
    }
}

fn lock_step_sql() -> String {
    format!("SELECT {STEP_COLUMNS} FROM steps WHERE id = $1 FOR NO KEY UPDATE")
}

/// Locks the change and then its step, in one round trip: both statements are prepared first
/// (when they are not cached yet), then sent together, the change's first — tokio-postgres sends
/// each on its future's first poll, and `try_join!` polls in order — so the change's lock is
/// taken first as ever. `None`s for an unknown change or step.
pub async fn lock_change_and_step(
    client: &impl GenericClient,
    change_id: Uuid,
    step_id: Uuid,
) -> Result<(Option<LockedChange>, Option<StepRow>), tokio_postgres::Error> {
    let change = client.prepare_cached(LOCK_CHANGE).await?;
    let step = client.prepare_cached(&lock_step_sql()).await?;
    let (change_params, step_params): (&[&(dyn ToSql + Sync)], &[&(dyn ToSql + Sync)]) =
        (&[&change_id], &[&step_id]);
    let (change, step) = tokio::try_join!(
        client.query_opt(&change, change_params),
        client.query_opt(&step, step_params)
    )?;
    Ok((
        change.as_ref().map(LockedChange::from_row),
        step.as_ref().map(step_from_row),
    ))
}

/// Locks the changes `change_ids` in id order, every environment they belong to in id order, and
/// the steps `step_ids`, in one round trip: the locks a batch of outcomes takes first (see
/// `batch`), in the order a single outcome takes them (change, then environment, then step tree;
/// a step is locked only under its change's lock, so the order of the steps does not matter).
/// Returns the changes found, by id, and the steps found.
pub async fn lock_changes_and_steps(
    client: &impl GenericClient,
    change_ids: &[Uuid],
    step_ids: &[Uuid],
) -> Result<(HashMap<Uuid, LockedChange>, Vec<StepRow>), tokio_postgres::Error> {
    let changes = client
        .prepare_cached(locked_change!("c.id = ANY($1)"))
        .await?;
    let environments = client
        .prepare_cached(
            "SELECT 1 FROM environments WHERE id IN \
             (SELECT environment_id FROM changes WHERE id = ANY($1)) ORDER BY id FOR NO KEY UPDATE",
        )
        .await?;
    let steps = client
        .prepare_cached(&format!(
            "SELECT {STEP_COLUMNS} FROM steps WHERE id = ANY($1) FOR NO KEY UPDATE"
        ))
        .await?;
    let (change_params, step_params): (&[&(dyn ToSql + Sync)], &[&(dyn ToSql + Sync)]) =
        (&[&change_ids], &[&step_ids]);
    // Sent together, in this order (see `lock_change_and_step`).
    let (changes, _, steps) = tokio::try_join!(
        client.query(&changes, change_params),
        client.query(&environments, change_params),
        client.query(&steps, step_params)
    )?;
    let changes = changes
        .iter()
        .map(|row| (row.get(3), LockedChange::from_row(row)))
        .collect();
    Ok((changes, steps.iter().map(step_from_row).collect()))
}

pub async fn lock_step(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<StepRow>, tokio_postgres::Error> {
    Ok(client
        .query_opt_cached(&lock_step_sql(), &[&id])
        .await?
        .as_ref()
        .map(step_from_row))
}

/// The children of step `parent` of change `change_id`, locked. The change id lets the lookup use
/// the index on (change_id, parent_id, position): by parent alone it would scan every step ever
/// run.
pub async fn children_of(
    client: &impl GenericClient,
    change_id: Uuid,
    parent: Uuid,
) -> Result<Vec<StepRow>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {STEP_COLUMNS} FROM steps WHERE change_id = $1 AND parent_id = $2 \
         ORDER BY position FOR NO KEY UPDATE"
    );
    Ok(client
        .query_cached(&sql, &[&change_id, &parent])
        .await?
        .iter()
        .map(step_from_row)
        .collect())
}

pub async fn insert_children(
    client: &impl GenericClient,
    parent: &StepRow,
    children: &[(String, bool, ExecutionStrategy)],
) -> Result<Vec<Uuid>, tokio_postgres::Error> {
    let mut ids = Vec::with_capacity(children.len());
    for (position, (action, has_command, strategy)) in children.iter().enumerate() {
        let id = Uuid::now_v7();
        client
            .execute_cached(
                "INSERT INTO steps (id, change_id, parent_id, position, action, name, has_command, \
                 child_execution_strategy, status_code) VALUES ($1, $2, $3, $4, $5, $5, $6, $7, 'pending')",
                &[&id, &parent.change_id, &parent.id, &(position as i32), action, has_command, &strategy.as_str()],
            )
            .await?;
        ids.push(id);
    }
    Ok(ids)
}

/// Locks properties rows in id order, the order the key rotation locks them in, so that a result
/// editing two documents and a rotation batch never wait for each other in opposite orders.
pub async fn lock_properties(
    client: &impl GenericClient,
    ids: &[Uuid],
) -> Result<(), tokio_postgres::Error> {
    client
        .query_cached(
            "SELECT id FROM properties WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
            &[&ids],
        )
        .await?;
    Ok(())
}

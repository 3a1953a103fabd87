//! The step tree of a retry (DESIGN §3): the retried change's tree, copied as
//! `lifecycle::carry_over` says — steps that succeeded as `success` with their times and results,
//! parents whose command had succeeded as `pending` with their command done (they resume with
//! their children), everything else as a fresh `pending` step that runs again.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use gantry_shared::crypto::{Cipher, step_properties_aad};
use gantry_shared::db::CachedStatements;
use gantry_shared::domain::StepStatus;
use gantry_shared::lifecycle::{CarryOver, carry_over};
use gantry_shared::logs::TxLog;
use tokio_postgres::Row;
use uuid::Uuid;

/// A step of the retried change.
struct OldStep {
    id: Uuid,
    parent_id: Option<Uuid>,
    position: i32,
    action: String,
    name: String,
    has_command: bool,
    strategy: String,
    status: StepStatus,
    attempt: i32,
    started_at: Option<DateTime<Utc>>,
    command_finished_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    exit_code: Option<i32>,
    properties: Option<Vec<u8>>,
    project_properties_version: Option<i64>,
    environment_properties_version: Option<i64>,
}

impl OldStep {
    fn from_row(row: &Row) -> Self {
        Self {
            id: row.get(0),
            parent_id: row.get(1),
            position: row.get(2),
            action: row.get(3),
            name: row.get(4),
            has_command: row.get(5),
            strategy: row.get(6),
            status: row.get::<_, &str>(7).parse().unwrap_or(StepStatus::Error),
            attempt: row.get(8),
            started_at: row.get(9),
            command_finished_at: row.get(10),
            finished_at: row.get(11),
            exit_code: row.get(12),
            properties: row.get(13),
            project_properties_version: row.get(14),
            environment_properties_version: row.get(15),
        }
    }
}

/// The columns of the new steps, one vector each, parents before their children.
#[derive(Default)]
struct NewSteps {
    id: Vec<Uuid>,
    parent_id: Vec<Option<Uuid>>,
    position: Vec<i32>,
    action: Vec<String>,
    name: Vec<String>,
    has_command: Vec<bool>,
    strategy: Vec<String>,
    status: Vec<&'static str>,
    attempt: Vec<i32>,
    started_at: Vec<Option<DateTime<Utc>>>,
    command_finished_at: Vec<Option<DateTime<Utc>>>,
    finished_at: Vec<Option<DateTime<Utc>>>,
    exit_code: Vec<Option<i32>>,
    properties: Vec<Option<Vec<u8>>>,
    project_version: Vec<Option<i64>>,
    environment_version: Vec<Option<i64>>,
}

/// Copies the tree of change `from` into change `to`; returns the new root step's id, or `None`
/// when `from` has no steps (it failed or was cancelled before it was planned): the retry then
/// starts a tree of its own.
pub async fn copy_steps(
    client: &impl GenericClient,
    log: &TxLog,
    cipher: &Cipher,
    from: Uuid,
    to: Uuid,
) -> anyhow::Result<Option<Uuid>> {
    let rows = client
        .query_cached(
            "SELECT id, parent_id, position, action, name, has_command, child_execution_strategy, \
             status_code, attempt, started_at, command_finished_at, finished_at, exit_code, \
             properties, project_properties_version, environment_properties_version \
             FROM steps WHERE change_id = $1",
            &[&from],
        )
        .await?;
    let mut children: HashMap<Option<Uuid>, Vec<OldStep>> = HashMap::new();
    for row in &rows {
        let step = OldStep::from_row(row);
        children.entry(step.parent_id).or_default().push(step);
    }
    for siblings in children.values_mut() {
        siblings.sort_by_key(|s| s.position);
    }
    let Some(root) = children.get(&None).and_then(|roots| roots.first()) else {
        log.push(
            to,
            None,
            &[&format!(
                "Retry of change {from}, which ran no step: every step runs"
            )],
        );
        return Ok(None);
    };
    let mut new = NewSteps::default();
    let mut counts = (0, 0);
    let root_id = Uuid::now_v7();
    // Depth first, parents before children: (old step, new id, new parent id).
    let mut stack = vec![(root, root_id, None)];
    while let Some((old, id, parent)) = stack.pop() {
        let has_children = children.contains_key(&Some(old.id));
        // The root is never copied as done: a change whose root succeeded succeeded, and had
        // nothing to retry; resumed, it finishes at once.
        let carried = match (carry_over(old.status, has_children), parent) {
            (CarryOver::Copied, None) => CarryOver::Resumed,
            (carried, _) => carried,
        };
        match carried {
            CarryOver::Copied => counts.0 += 1,
            CarryOver::Rerun => counts.1 += 1,
            CarryOver::Resumed => {}
        }
        push(&mut new, cipher, old, id, parent, carried);
        if carried != CarryOver::Rerun {
            let kids = children
                .get(&Some(old.id))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            for child in kids.iter().rev() {
                stack.push((child, Uuid::now_v7(), Some(id)));
            }
        }
    }
    insert(client, to, &new).await?;
    log.push(
        to,
        None,
        &[&format!(
            "Retry of change {from}: {} step(s) copied as succeeded, {} to run again",
            counts.0, counts.1
        )],
    );
    Ok(Some(root_id))
}

fn push(
    new: &mut NewSteps,
    cipher: &Cipher,
    old: &OldStep,
    id: Uuid,
    parent: Option<Uuid>,
    carried: CarryOver,
) {
    new.id.push(id);
    new.parent_id.push(parent);
    new.position.push(old.position);
    new.action.push(old.action.clone());
    new.name.push(old.name.clone());
    new.has_command.push(old.has_command);
    new.strategy.push(old.strategy.clone());
    let done = carried != CarryOver::Rerun;
    let copied = carried == CarryOver::Copied;
    new.status.push(match copied {
        true => StepStatus::Success.as_str(),
        false => StepStatus::Pending.as_str(),
    });
    new.attempt.push(if done { old.attempt } else { 0 });
    new.started_at.push(old.started_at.filter(|_| copied));
    new.finished_at.push(old.finished_at.filter(|_| copied));
    new.command_finished_at
        .push(old.command_finished_at.filter(|_| done));
    new.exit_code.push(old.exit_code.filter(|_| done));
    new.properties
        .push(old.properties.as_ref().filter(|_| done).and_then(|sealed| {
            // Sealed to the old step's id: opened and sealed again to the new one's. What does
            // not open (tampered, a key no longer configured) is left out rather than copied.
            let properties = cipher
                .decrypt_json(sealed, &step_properties_aad(old.id))
                .ok()?;
            Some(cipher.encrypt_json(&properties, &step_properties_aad(id)))
        }));
    new.project_version
        .push(old.project_properties_version.filter(|_| done));
    new.environment_version
        .push(old.environment_properties_version.filter(|_| done));
}

async fn insert(
    client: &impl GenericClient,
    change_id: Uuid,
    new: &NewSteps,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute_cached(
            "INSERT INTO steps (change_id, id, parent_id, position, action, name, has_command, \
             child_execution_strategy, status_code, attempt, started_at, command_finished_at, \
             finished_at, exit_code, properties, project_properties_version, \
             environment_properties_version) \
             SELECT $1, * FROM UNNEST($2::uuid[], $3::uuid[], $4::int[], $5::text[], $6::text[], \
             $7::bool[], $8::text[], $9::text[], $10::int[], $11::timestamptz[], $12::timestamptz[], \
             $13::timestamptz[], $14::int[], $15::bytea[], $16::bigint[], $17::bigint[])",
            &[
                &change_id,
                &new.id,
                &new.parent_id,
                &new.position,
                &new.action,
                &new.name,
                &new.has_command,
                &new.strategy,
                &new.status,
                &new.attempt,
                &new.started_at,
                &new.command_finished_at,
                &new.finished_at,
                &new.exit_code,
                &new.properties,
                &new.project_version,
                &new.environment_version,
            ],
        )
        .await?;
    Ok(())
}

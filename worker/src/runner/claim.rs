//! Claiming a step (DESIGN §7 "claim, then ack") and reading everything its container needs.

use deadpool_postgres::{GenericClient, Transaction};
use gantry_shared::crypto::Cipher;
use gantry_shared::db::CachedStatements;
use gantry_shared::lifecycle::{ChangeEvent, StepEvent};
use gantry_shared::project_settings::{EffectiveSettings, SettingsDocument};
use gantry_shared::protocol::{ContextInfo, OwnerProperties, StepContext};
use gantry_shared::secrets::{SecretError, StepSecrets};
use gantry_shared::store::Versioned;
use gantry_shared::transitions::SYSTEM_ACTOR;
use serde_json::{Value, json};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::git::Remote;

/// A claimed attempt with what the runner needs to run it.
pub struct Claimed {
    pub change_id: Uuid,
    pub step_id: Uuid,
    pub attempt: i32,
    pub action: String,
    pub name: String,
    pub commit_sha: String,
    pub git_rev: String,
    pub project_code: String,
    /// The action's `timeout`, when its manifest sets one.
    pub timeout_seconds: Option<u64>,
    /// The settings in force: the environment's over the project's over this worker's defaults.
    pub settings: EffectiveSettings,
    /// What the container needs, or why the step cannot run: a secret list or name is invalid,
    /// or stored data it needs cannot be decrypted (the step fails; retrying would not help).
    pub inputs: Result<Prepared, String>,
}

/// The decrypted inputs of a claimed step.
pub struct Prepared {
    pub remote: Remote,
    pub context: StepContext,
    pub secrets: StepSecrets,
}

/// A step message names a step no change has: it can never be processed (the caller dead-letters
/// it at once instead of spending its deliveries).
#[derive(Debug, thiserror::Error)]
#[error("step {0} does not exist")]
pub struct UnknownStep(pub Uuid);

/// Claims a `queued` step (`running`, attempt + 1, lease) and records the properties versions it
/// starts from. `None` when the step is not queued: a duplicate or stale message.
pub async fn claim(
    client: &impl GenericClient,
    cipher: &Cipher,
    defaults: &EffectiveSettings,
    step_id: Uuid,
    worker_id: &str,
    lease_seconds: f64,
) -> anyhow::Result<Option<Claimed>> {
    // The change first, as in every transaction that changes a step tree (see results::apply);
    // awaited alone, since joined statements may overtake one another while some are not
    // prepared yet. Then, in one round trip, the claim and everything the step needs; when the
    // step is not queued nothing was written, and the caller ends the transaction.
    client
        .execute_cached(
            "SELECT 1 FROM changes WHERE id = (SELECT change_id FROM steps WHERE id = $1) FOR NO KEY UPDATE",
            &[&step_id],
        )
        .await?;
    let params: &[&(dyn ToSql + Sync)] = &[&step_id];
    // Only a queued step is claimed (`StepEvent::Claim`); the transition is audited with it.
    let (sources, running) = (
        StepEvent::Claim.sources(),
        StepEvent::Claim.target().as_str(),
    );
    let claim_params: &[&(dyn ToSql + Sync)] = &[
        &step_id,
        &worker_id,
        &lease_seconds,
        &sources,
        &running,
        &SYSTEM_ACTOR,
    ];
    let (claimed, c) = tokio::try_join!(
        client.query_opt_cached(
            "WITH claimed AS (UPDATE steps SET status_code = $5, attempt = attempt + 1, lease_owner = $2, \
             lease_expires_at = now() + make_interval(secs => $3), started_at = COALESCE(started_at, now()) \
             WHERE id = $1 AND status_code = ANY($4) RETURNING change_id, attempt, action, name, parent_id), \
             event AS (INSERT INTO events (type, actor, target, payload) \
             SELECT 'step:' || $5, $6, '/steps/' || $1, jsonb_build_object('change_id', change_id, \
             'from', 'queued', 'attempt', attempt, 'worker', $2::text) FROM claimed) \
             SELECT * FROM claimed",
            claim_params,
        ),
        client.query_opt_cached(
            "SELECT c.git_rev, c.commit_sha, c.action, c.metadata, c.created_by, c.git_remote_name, \
                    p.id, p.code, p.name, p.description, e.id, e.code, e.name, e.description, \
                    pp.id, ep.id, r.id, r.url, r.username, r.password, r.ssh_key_data, c.step_tree, \
                    pp.version, pp.document, ep.version, ep.document, p.settings, e.settings \
             FROM changes c JOIN projects p ON p.id = c.project_id JOIN environments e ON e.id = c.environment_id \
             JOIN properties pp ON pp.project_id = p.id JOIN properties ep ON ep.environment_id = e.id \
             JOIN git_remotes r ON r.project_id = p.id AND r.name = c.git_remote_name \
             WHERE c.id = (SELECT change_id FROM steps WHERE id = $1)",
            params,
        ),
    )?;
    let Some(c) = c else {
        return Err(UnknownStep(step_id).into());
    };
    let Some(row) = claimed else { return Ok(None) };
    let change_id: Uuid = row.get(0);
    let attempt: i32 = row.get(1);
    let action: String = row.get(2);
    let name: String = row.get(3);
    let parent_id: Option<Uuid> = row.get(4);
    let sealed = read_sealed(client, cipher, &c).await?;
    let versions = sealed
        .as_ref()
        .ok()
        .map(|inputs| (inputs.project.version, inputs.environment.version));
    record_start(client, change_id, step_id, versions).await?;
    let created_by: String = c.get(4);
    let commit_sha: String = c.get(1);
    let context = ContextInfo {
        project: object(
            json!({"id": c.get::<_, Uuid>(6), "code": c.get::<_, String>(7), "name": c.get::<_, String>(8), "description": c.get::<_, Option<String>>(9)}),
        ),
        environment: object(
            json!({"id": c.get::<_, Uuid>(10), "code": c.get::<_, String>(11), "name": c.get::<_, String>(12), "description": c.get::<_, Option<String>>(13)}),
        ),
        change: object(
            json!({"id": change_id, "action": c.get::<_, String>(2), "git_rev": c.get::<_, String>(0), "commit_sha": commit_sha, "metadata": c.get::<_, Value>(3), "git_remote_name": c.get::<_, String>(5), "created_by": created_by}),
        ),
        step: object(
            json!({"id": step_id, "action": action, "name": name, "attempt": attempt, "parent_id": parent_id}),
        ),
        user: object(json!({"name": created_by})),
    };
    let manifest: Option<gantry_shared::manifest::Manifest> = c
        .get::<_, Option<Value>>(21)
        .and_then(|tree| serde_json::from_value(tree).ok());
    let timeout_seconds = manifest
        .as_ref()
        .and_then(|m| m.actions.get(&action))
        .and_then(|a| a.timeout);
    let inputs = sealed.and_then(|sealed| {
        Ok(Prepared {
            secrets: sealed.secrets?,
            remote: sealed.remote,
            context: StepContext {
                context,
                project: OwnerProperties {
                    properties: sealed.project.document,
                    properties_version: sealed.project.version,
                },
                environment: OwnerProperties {
                    properties: sealed.environment.document,
                    properties_version: sealed.environment.version,
                },
            },
        })
    });
    let settings = defaults.clone().resolve(
        &SettingsDocument::stored(&c.get::<_, Value>(26)),
        &SettingsDocument::stored(&c.get::<_, Value>(27)),
    );
    Ok(Some(Claimed {
        timeout_seconds,
        settings,
        inputs,
        change_id,
        step_id,
        attempt,
        action,
        name,
        git_rev: c.get(0),
        project_code: c.get(7),
        commit_sha,
    }))
}

/// What the step needs from encrypted columns.
struct Inputs {
    project: Versioned,
    environment: Versioned,
    remote: Remote,
    secrets: Result<StepSecrets, String>,
}

/// Decrypts the properties, the remote's credentials and the secrets; `Err` with the reason when
/// any of them fails authentication or is under a key this worker does not have.
async fn read_sealed(
    client: &impl GenericClient,
    cipher: &Cipher,
    c: &tokio_postgres::Row,
) -> anyhow::Result<Result<Inputs, String>> {
    let unreadable = |what: &str, e: &dyn std::fmt::Display| {
        Err(format!(
            "The step cannot run: the stored {what} cannot be read ({e})"
        ))
    };
    let mut levels = Vec::with_capacity(2);
    // The columns of each document's id, and of its version, followed by its ciphertext.
    for (what, id, version) in [
        ("project properties", 14, 22),
        ("environment properties", 15, 24),
    ] {
        let sealed: &[u8] = c.get(version + 1);
        match Versioned::open(cipher, c.get(id), c.get(version), sealed) {
            Ok(level) => levels.push(level),
            Err(e) => return Ok(unreadable(what, &e)),
        }
    }
    let remote = match Remote::from_row(cipher, c, 16) {
        Ok(remote) => remote,
        Err(e) => return Ok(unreadable("Git remote credentials", &e)),
    };
    let environment = levels.pop().expect("two levels");
    let project = levels.pop().expect("two levels");
    let secrets =
        match StepSecrets::for_step(client, cipher, &project.document, &environment.document).await
        {
            Ok(secrets) => secrets,
            Err(SecretError::Crypto(name, e)) => {
                return Ok(unreadable(&format!("secret \"{name}\""), &e));
            }
            Err(e) => return Err(e.into()),
        };
    Ok(Ok(Inputs {
        project,
        environment,
        remote,
        secrets,
    }))
}

/// Starts the change if the step is its first, and records the properties versions the step
/// starts from, when they could be read; the first claimed step also fixes the versions the change
/// started from (its point-in-time copy). The change row is written only when one of the two is
/// new.
async fn record_start(
    client: &impl GenericClient,
    change_id: Uuid,
    step_id: Uuid,
    versions: Option<(i64, i64)>,
) -> Result<(), tokio_postgres::Error> {
    let (project, environment) = versions.unzip();
    let (sources, running) = (
        ChangeEvent::Run.sources(),
        ChangeEvent::Run.transition().status,
    );
    let change_params: &[&(dyn ToSql + Sync)] = &[
        &change_id,
        &project,
        &environment,
        &sources,
        &running.as_str(),
        &SYSTEM_ACTOR,
    ];
    // The change runs from its first claim (`ChangeEvent::Run`), audited when it moved.
    let change = client.execute_cached(
        "WITH old AS (SELECT status_code FROM changes WHERE id = $1), \
         moved AS (UPDATE changes c SET \
         status_code = CASE WHEN old.status_code = ANY($4) THEN $5 ELSE c.status_code END, \
         started_at = CASE WHEN old.status_code = ANY($4) THEN COALESCE(c.started_at, now()) ELSE c.started_at END, \
         project_properties_version = COALESCE(c.project_properties_version, $2), \
         environment_properties_version = COALESCE(c.environment_properties_version, $3) \
         FROM old WHERE c.id = $1 AND (old.status_code = ANY($4) \
         OR (c.project_properties_version IS NULL AND $2::bigint IS NOT NULL)) \
         RETURNING old.status_code AS from_status) \
         INSERT INTO events (type, actor, target, payload) \
         SELECT 'change:' || $5, $6, '/changes/' || $1, jsonb_build_object('from', from_status) \
         FROM moved WHERE from_status = ANY($4)",
        change_params,
    );
    let Some((step_project, step_environment)) = versions else {
        change.await?;
        return Ok(());
    };
    let step: &[&(dyn ToSql + Sync)] = &[&step_id, &step_project, &step_environment];
    // Independent statements: the connection pipelines them in one round trip.
    tokio::try_join!(
        change,
        client.execute_cached(
            "UPDATE steps SET project_properties_version = $2, environment_properties_version = $3 WHERE id = $1",
            step,
        ),
    )?;
    Ok(())
}

fn object(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// What renewing a lease found.
pub enum Renewal {
    Renewed,
    /// The step was cancelled while this worker runs it: stop the attempt.
    Cancelled,
    /// This worker no longer owns the attempt (reaped or fenced).
    Lost,
}

/// Renews the lease of a running attempt this worker owns.
pub async fn renew_lease(
    client: &impl GenericClient,
    step_id: Uuid,
    attempt: i32,
    worker_id: &str,
    lease_seconds: f64,
) -> Result<Renewal, tokio_postgres::Error> {
    let row = client
        .query_one_cached(
            "WITH renewed AS (UPDATE steps SET lease_expires_at = now() + make_interval(secs => $4) \
             WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND status_code = 'running' RETURNING 1) \
             SELECT EXISTS (SELECT 1 FROM renewed), EXISTS (SELECT 1 FROM steps WHERE id = $1 \
             AND attempt = $2 AND lease_owner = $3 AND status_code = 'cancelled')",
            &[&step_id, &attempt, &worker_id, &lease_seconds],
        )
        .await?;
    Ok(match (row.get(0), row.get(1)) {
        (true, _) => Renewal::Renewed,
        (false, true) => Renewal::Cancelled,
        (false, false) => Renewal::Lost,
    })
}

/// Gives up the lease of an attempt this worker owns, whatever the step's status (a cancelled
/// step keeps the lease of the attempt it stopped until its lines are stored).
pub async fn release(
    client: &impl GenericClient,
    step_id: Uuid,
    attempt: i32,
    worker_id: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute_cached(
            "UPDATE steps SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $1 AND attempt = $2 AND lease_owner = $3",
            &[&step_id, &attempt, &worker_id],
        )
        .await?;
    Ok(())
}

/// Releases the lease and writes the outcome to the outbox, and commits `tx`, if this worker
/// still owns the attempt. `false` means it does not: `tx` is rolled back (dropped), and the
/// outcome with it.
pub async fn hand_over(
    tx: Transaction<'_>,
    step_id: Uuid,
    attempt: i32,
    worker_id: &str,
    message: &gantry_shared::messages::Message,
) -> Result<bool, tokio_postgres::Error> {
    let params: &[&(dyn ToSql + Sync)] = &[&step_id, &attempt, &worker_id];
    // Both in one round trip; the message is rolled back with the transaction if not released.
    let (released, _) = tokio::try_join!(
        tx.execute_cached(
            "UPDATE steps SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND status_code = 'running'",
            params,
        ),
        gantry_shared::outbox::insert_message(&tx, message),
    )?;
    if released != 1 {
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Records the container an attempt this worker owns is about to run in, before the container is
/// given the step: the sweeper and the step's later attempts find it by this row. `false` when
/// the attempt is no longer this worker's (cancelled, or its lease taken over).
pub async fn record_container(
    client: &impl GenericClient,
    step_id: Uuid,
    attempt: i32,
    worker_id: &str,
    container: &str,
) -> Result<bool, tokio_postgres::Error> {
    let recorded = client
        .execute_cached(
            "INSERT INTO step_containers (container, step_id, attempt, worker_id) \
             SELECT $4, id, attempt, lease_owner FROM steps \
             WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND status_code = 'running'",
            &[&step_id, &attempt, &worker_id, &container],
        )
        .await?;
    Ok(recorded == 1)
}

//! Applies one step outcome in one transaction (DESIGN §4 core algorithm, §3 semantics, §7
//! fencing): the step row is locked; an outcome for another attempt, or for a step whose command
//! result was already applied, is dropped; property patches are applied to the current documents
//! with optimistic versioning, a conflict — or a patched document whose reserved `gantry` keys are
//! invalid — fails the step with a log naming the owner and writes nothing; then the tree rolls up.

use gantry_shared::db::CachedStatements;
use std::collections::VecDeque;

use deadpool_postgres::GenericClient;
use gantry_shared::crypto::step_properties_aad;
use gantry_shared::domain::StepStatus;
use gantry_shared::manifest::Manifest;
use gantry_shared::messages::StepOutcome;
use gantry_shared::properties::{
    BUILD_SECRETS_KEY, Owner, RUNNER_SECRETS_KEY, apply_step_patch, check_reserved_keys,
    conflict_log, secret_names,
};
use gantry_shared::protocol::StepResult;
use gantry_shared::store::{self, Author};
use serde_json::Value;
use uuid::Uuid;

use super::orchestrate::{self, Work};
use super::retry;
use super::rows::{self, StepRow};
use crate::consume::Disposition;
use crate::context::Ctx;
use crate::steplog::system_lines;

pub async fn handle_outcome(ctx: Ctx, outcome: StepOutcome) -> Disposition {
    match apply(&ctx, &outcome).await {
        Ok(()) => {
            ctx.signal.notify();
            Disposition::Ack
        }
        Err(e) => {
            tracing::error!(error = ?e, step_id = %outcome.step_id, "applying a step outcome failed; it will be retried");
            Disposition::Requeue
        }
    }
}

async fn apply(ctx: &Ctx, outcome: &StepOutcome) -> anyhow::Result<()> {
    let mut client = ctx.pool.get().await?;
    let tx = client.transaction().await?;
    // Every transaction that changes a step tree locks its change first, so the results of
    // parallel siblings serialise instead of deadlocking on each other's step rows.
    rows::lock_change(&tx, outcome.change_id).await?;
    let Some(step) = rows::lock_step(&tx, outcome.step_id).await? else {
        tracing::warn!(step_id = %outcome.step_id, "dropping an outcome for an unknown step");
        return Ok(());
    };
    if step.change_id != outcome.change_id
        || step.status != StepStatus::Running
        || step.attempt != outcome.attempt
        || step.command_finished
    {
        tracing::info!(step_id = %step.id, attempt = outcome.attempt, "dropping a stale or duplicate outcome");
        return Ok(());
    }
    let manifest = rows::change_manifest(&tx, step.change_id).await?;
    let work = if let (true, Some(reason)) = (outcome.system, &outcome.error) {
        let what = format!("Attempt {} failed ({reason})", step.attempt);
        retry::retry_or_give_up(&tx, ctx.settings.worker.max_attempts, &step, &what).await?
    } else {
        match validate(outcome, &manifest) {
            Ok(result) => success(ctx, &tx, &manifest, &step, outcome, result).await?,
            Err(reason) => fail(&tx, &step, outcome.exit_code, &[&reason]).await?,
        }
    };
    orchestrate::drive(&tx, &manifest, work).await?;
    tx.commit().await?;
    Ok(())
}

/// The outcome as a usable result, or the reason the step failed.
fn validate(outcome: &StepOutcome, manifest: &Manifest) -> Result<StepResult, String> {
    if let Some(error) = &outcome.error {
        return Err(error.clone());
    }
    if outcome.exit_code != Some(0) {
        let code = outcome
            .exit_code
            .map_or("unknown".to_owned(), |c| c.to_string());
        return Err(format!(
            "Failed running step runner container: Step failed with status code: {code}"
        ));
    }
    let value = outcome
        .result
        .clone()
        .ok_or("The step exited 0 but wrote no step_result.json")?;
    let result: StepResult = serde_json::from_value(value)
        .map_err(|e| format!("The step_result.json is malformed: {e}"))?;
    for child in &result.steps.children {
        if !manifest.actions.contains_key(&child.action) {
            return Err(format!(
                "The step added the child action \"{}\", which the actions manifest does not define",
                child.action
            ));
        }
    }
    Ok(result)
}

async fn fail(
    client: &impl GenericClient,
    step: &StepRow,
    exit_code: Option<i64>,
    lines: &[&str],
) -> anyhow::Result<Vec<Work>> {
    system_lines(client, step.change_id, Some(step.id), lines).await?;
    let code = exit_code.map(|c| c as i32);
    client
        .execute_cached(
            "UPDATE steps SET exit_code = $2, command_finished_at = now() WHERE id = $1",
            &[&step.id, &code],
        )
        .await?;
    orchestrate::complete_step(client, step, StepStatus::Error).await?;
    Ok(vec![Work::Finished(step.id)])
}

async fn success(
    ctx: &Ctx,
    client: &impl GenericClient,
    manifest: &Manifest,
    step: &StepRow,
    outcome: &StepOutcome,
    result: StepResult,
) -> anyhow::Result<Vec<Work>> {
    let owners = owner_ids(client, step.change_id).await?;
    let mut writes = Vec::new();
    let mut conflicts = Vec::new();
    let mut invalid = Vec::new();
    for (owner, properties_id, received_version, patch) in [
        (
            Owner::Project,
            owners.0,
            step.project_properties_version,
            &result.project.properties_diff,
        ),
        (
            Owner::Environment,
            owners.1,
            step.environment_properties_version,
            &result.environment.properties_diff,
        ),
    ] {
        if patch.0.is_empty() {
            continue;
        }
        let received_version = received_version.ok_or_else(|| {
            anyhow::anyhow!("step {} has no received properties version", step.id)
        })?;
        // The received version is history and never changes: read before the row lock, which
        // every result editing this document waits for.
        let (received, ..) =
            store::load_version(client, &ctx.cipher, properties_id, received_version)
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "properties {properties_id} version {received_version} is missing"
                    )
                })?;
        let current = store::load(client, &ctx.cipher, properties_id, true).await?;
        match apply_step_patch(
            &received,
            received_version,
            &current.document,
            current.version,
            patch,
        ) {
            Ok(document) => match check_step_document(&current.document, &document) {
                Ok(()) => writes.push((properties_id, current.version, document)),
                Err(e) => invalid.push(format!(
                    "The step's updates to the {owner} properties are invalid: {e}"
                )),
            },
            Err(_) => conflicts.push(conflict_log(
                owner,
                &step.id.to_string(),
                &step.name,
                &received,
                patch,
                &current.document,
            )),
        }
    }
    if !conflicts.is_empty() || !invalid.is_empty() {
        let lines: Vec<&str> = conflicts
            .iter()
            .chain(&invalid)
            .map(String::as_str)
            .collect();
        return fail(client, step, outcome.exit_code, &lines).await;
    }
    let author = Author {
        name: "gantry",
        step_id: Some(step.id),
    };
    for (properties_id, version, document) in &writes {
        store::write_next(
            client,
            &ctx.cipher,
            *properties_id,
            *version,
            document,
            &author,
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("properties {properties_id} moved while locked"))?;
    }
    let merged = ctx
        .cipher
        .encrypt_json(&result.step.properties, &step_properties_aad(step.id));
    client
        .execute_cached(
            "UPDATE steps SET exit_code = 0, properties = $2, command_finished_at = now() WHERE id = $1",
            &[&step.id, &merged],
        )
        .await?;
    let line = format!("===> Completing step \"{}\"", step.name);
    system_lines(client, step.change_id, Some(step.id), &[&line]).await?;
    let mut children = orchestrate::manifest_children(manifest, &step.action);
    children.extend(
        result
            .steps
            .children
            .iter()
            .map(|c| orchestrate::child_spec(manifest, &c.action)),
    );
    let strategy = result
        .steps
        .child_execution_strategy
        .unwrap_or(step.strategy);
    let mut queue = VecDeque::new();
    orchestrate::start_children(client, step, &children, strategy, &mut queue).await?;
    Ok(queue.into())
}

/// Checks a document a step's patch produced, as the api checks a user's: reserved keys that are
/// valid (an invalid `gantry.env` or `gantry.files` saved now would fail every later step), and
/// secret references left as they were. Which secrets a step receives is decided by users through
/// the API; a step's code comes from the repository, and repository files may not name secrets
/// either (DESIGN §4).
fn check_step_document(before: &Value, after: &Value) -> Result<(), String> {
    check_reserved_keys(after).map_err(|e| e.to_string())?;
    for key in [RUNNER_SECRETS_KEY, BUILD_SECRETS_KEY] {
        if secret_names(before, key).ok() != secret_names(after, key).ok() {
            return Err(format!(
                "`gantry.{key}` may only be changed by a user through the API, not by a step"
            ));
        }
    }
    Ok(())
}

/// The properties ids of the change's project and environment.
async fn owner_ids(
    client: &impl GenericClient,
    change_id: Uuid,
) -> Result<(Uuid, Uuid), tokio_postgres::Error> {
    let row = client
        .query_one_cached(
            "SELECT pp.id, ep.id FROM changes c \
             JOIN properties pp ON pp.project_id = c.project_id \
             JOIN properties ep ON ep.environment_id = c.environment_id WHERE c.id = $1",
            &[&change_id],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_invalid_reserved_key_is_refused() {
        let before = json!({});
        let after = json!({ "gantry": { "env": { "PORT": 8080 } } });
        assert_eq!(
            check_step_document(&before, &after),
            Err("`gantry.env.PORT` must be a string, found a number".to_owned())
        );
        assert_eq!(
            check_step_document(&before, &json!({ "gantry": { "env": { "PORT": "1" } } })),
            Ok(())
        );
    }

    #[test]
    fn a_step_may_not_add_change_or_remove_secret_references() {
        let with = |names: Value| json!({ "gantry": { "env:runner_secrets": names }, "a": 1 });
        let refused = "`gantry.env:runner_secrets` may only be changed by a user through the API, not by a step";
        assert_eq!(
            check_step_document(&json!({}), &with(json!(["db"]))),
            Err(refused.to_owned())
        );
        assert_eq!(
            check_step_document(&with(json!(["db"])), &with(json!(["db", "other"]))),
            Err(refused.to_owned())
        );
        assert_eq!(
            check_step_document(&with(json!(["db"])), &json!({})),
            Err(refused.to_owned())
        );
        let mut edited = with(json!(["db"]));
        edited["a"] = json!(2);
        assert_eq!(check_step_document(&with(json!(["db"])), &edited), Ok(()));
        assert!(
            check_step_document(
                &json!({}),
                &json!({ "gantry": { "env:build_secrets": ["b"] } })
            )
            .is_err()
        );
    }
}

//! A step's property patch applied to one owner's current document (DESIGN §4 core algorithm,
//! steps 2 and 3): the patched document to write, or why it cannot be saved — a conflict, invalid
//! reserved keys, or stored properties that cannot be read.

use deadpool_postgres::GenericClient;
use gantry_shared::crypto::Cipher;
use gantry_shared::properties::{
    BUILD_SECRETS_KEY, Owner, RUNNER_SECRETS_KEY, apply_step_patch, check_reserved_keys,
    conflict_log, secret_names,
};
use gantry_shared::store::{self, StoreError, Versioned};
use json_patch::Patch;
use serde_json::Value;
use uuid::Uuid;

use super::fail::Reason;
use super::rows::StepRow;

/// A step's patch of one owner's properties.
pub struct Edit<'a> {
    pub owner: Owner,
    pub properties_id: Uuid,
    /// The version the step received, recorded at its claim.
    pub received_version: Option<i64>,
    pub patch: &'a Patch,
}

/// A patched document, to be written as the version after `version`.
pub struct Write {
    pub properties_id: Uuid,
    pub version: i64,
    pub document: Value,
}

impl Write {
    /// The document sealed as the version it is written as, by step `step_id`.
    pub fn seal(&self, cipher: &Cipher, step_id: Uuid) -> Sealed {
        Sealed {
            properties_id: self.properties_id,
            version: self.version,
            sealed: store::seal_next(cipher, self.properties_id, self.version, &self.document),
            step_id,
        }
    }
}

/// A patched document sealed, to be written as the version after `version`; the step whose
/// patch it is is recorded as its author.
pub struct Sealed {
    pub properties_id: Uuid,
    pub version: i64,
    pub sealed: Vec<u8>,
    pub step_id: Uuid,
}

/// The owner's document after the step's patch, applied to `current` (read and locked by the
/// caller, and moved on by the patches applied before this one); `None` when it cannot be saved
/// (a conflict, or a document the checks refuse) or the version the step received was not
/// recorded. The batched path (see `batch`) leaves such a step to the one-by-one path
/// ([`patched`]), which fails it with the reason.
pub fn patched_current(current: &Versioned, edit: &Edit<'_>) -> Option<Value> {
    let received_version = edit.received_version?;
    // A step that received the current version received the current document: what `patched`
    // reads from the history for it is the same document, needed there only for a conflict log.
    let document = apply_step_patch(
        &current.document,
        received_version,
        &current.document,
        current.version,
        edit.patch,
    )
    .ok()?;
    check_step_document(&current.document, &document).ok()?;
    Some(document)
}

/// The owner's patched document, with its row locked, or why the step fails. Every reason is
/// permanent — retrying cannot make tampered data readable, nor a conflict apply — so the step
/// fails with it instead of the message looping; only a database error is returned (and the
/// message retried).
pub async fn patched(
    cipher: &Cipher,
    client: &impl GenericClient,
    step: &StepRow,
    edit: &Edit<'_>,
) -> Result<Result<Write, Reason>, tokio_postgres::Error> {
    let owner = edit.owner;
    let Documents {
        received,
        received_version,
        current,
    } = match read(cipher, client, edit).await? {
        Ok(documents) => documents,
        Err(why) => {
            return Ok(Err(Reason::Gantry(format!(
                "The step's updates to the {owner} properties cannot be applied: {why}"
            ))));
        }
    };
    let Ok(document) = apply_step_patch(
        &received,
        received_version,
        &current.document,
        current.version,
        edit.patch,
    ) else {
        return Ok(Err(Reason::Step(conflict_log(
            owner,
            &step.id.to_string(),
            &step.name,
            &received,
            edit.patch,
            &current.document,
        ))));
    };
    Ok(match check_step_document(&current.document, &document) {
        Ok(()) => Ok(Write {
            properties_id: edit.properties_id,
            version: current.version,
            document,
        }),
        Err(e) => Err(Reason::Step(format!(
            "The step's updates to the {owner} properties are invalid: {e}"
        ))),
    })
}

/// The document the step received and the current one.
struct Documents {
    received: Value,
    received_version: i64,
    current: Versioned,
}

/// The owner's documents, the current one locked; or why they cannot be read.
async fn read(
    cipher: &Cipher,
    client: &impl GenericClient,
    edit: &Edit<'_>,
) -> Result<Result<Documents, String>, tokio_postgres::Error> {
    let id = edit.properties_id;
    let Some(version) = edit.received_version else {
        return Ok(Err("the version the step received was not recorded".into()));
    };
    // The received version is history and never changes: read in the same round trip as the
    // locking read of the current one, which every result editing this document waits for.
    let (received, current) = tokio::join!(
        store::load_version(client, cipher, id, version),
        store::load(client, cipher, id, true)
    );
    let received = match received {
        Ok(Some((document, ..))) => document,
        Ok(None) => {
            return Ok(Err(format!(
                "version {version}, which the step received, is missing from the stored properties"
            )));
        }
        Err(e) => return unreadable(e, &format!("version {version}, which the step received")),
    };
    match current {
        Ok(current) => Ok(Ok(Documents {
            received,
            received_version: version,
            current,
        })),
        Err(e) => unreadable(e, "the current version"),
    }
}

/// Why `which` version cannot be read, or the database error to retry on.
fn unreadable<T>(
    error: StoreError,
    which: &str,
) -> Result<Result<T, String>, tokio_postgres::Error> {
    match error {
        StoreError::Db(e) => Err(e),
        StoreError::Crypto(_, e) => Ok(Err(format!(
            "the stored properties cannot be read ({which}: {e})"
        ))),
        StoreError::NotFound(_) => Ok(Err("the properties no longer exist".into())),
    }
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

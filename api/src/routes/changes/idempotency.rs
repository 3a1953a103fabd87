//! `Idempotency-Key` on `POST /api/changes`: the first request with a key creates the change and
//! records the key with a digest of the request in the same transaction; a later request with the
//! same key and the same attributes gets that change back (200), one with other attributes a 422.
//! Two requests racing with one key meet on the key's primary key: the second waits for the
//! first's commit, finds the key taken, rolls its own change back and answers with the first's.

use actix_web::HttpRequest;
use deadpool_postgres::GenericClient;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::create::NewChange;
use super::record::{ChangeRecord, select_change};
use crate::error::{ApiError, Context, ErrorSource, Problem};

pub const HEADER: &str = "Idempotency-Key";
const MAX_KEY_LENGTH: usize = 255;

/// The request's key, if it sent one: 1 to 255 visible ASCII characters.
pub fn key_of(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| (1..=MAX_KEY_LENGTH).contains(&k.len()))
        .filter(|k| k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::bad_header(
                HEADER,
                format!("`{HEADER}` must be 1 to {MAX_KEY_LENGTH} visible ASCII characters"),
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// What identifies a creation request: its attributes, after parsing (so key order and
/// whitespace do not count).
pub fn digest(change: &NewChange) -> String {
    let canonical = json!([
        change.project.as_str(),
        change.environment.as_str(),
        change.remote.as_str(),
        change.git_rev.as_str(),
        change.action.as_str(),
        change.metadata,
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// The change an earlier request with this key made, when the attributes are the same; a 422
/// when they are not.
pub async fn replay(
    client: &impl GenericClient,
    actor: &str,
    key: &str,
    digest: &str,
) -> Result<Option<ChangeRecord>, ApiError> {
    let row = client
        .query_opt(
            "SELECT request_digest, change_id FROM idempotency_keys WHERE actor = $1 AND key = $2",
            &[&actor, &key],
        )
        .await
        .context("looking up the idempotency key")?;
    let Some(row) = row else {
        return Ok(None);
    };
    if row.get::<_, &str>(0) != digest {
        return Err(ApiError::Unprocessable(Problem {
            detail: format!(
                "this {HEADER} was used for a change with other attributes; use a new key for a new change"
            ),
            source: Some(ErrorSource::Header(HEADER.into())),
        }));
    }
    let change = select_change(client, row.get(1))
        .await
        .context("loading the change of the idempotency key")?
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("an idempotency key's change is gone"))
        })?;
    Ok(Some(change))
}

/// Records the key for `change` in the creating transaction; `false` when another request took
/// it first (its transaction committed while this one waited).
pub async fn claim(
    client: &impl GenericClient,
    actor: &str,
    key: &str,
    digest: &str,
    change: Uuid,
) -> Result<bool, ApiError> {
    let inserted = client
        .execute(
            "INSERT INTO idempotency_keys (actor, key, request_digest, change_id) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&actor, &key, &digest, &change],
        )
        .await
        .context("recording the idempotency key")?;
    Ok(inserted == 1)
}

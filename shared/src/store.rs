//! Properties persistence shared by the api (user updates) and the worker (step results):
//! encrypted documents, a version per update with no gaps, the full history kept.

use crate::db::CachedStatements;
use deadpool_postgres::GenericClient;
use serde_json::Value;
use uuid::Uuid;

use crate::crypto::{Cipher, CryptoError, properties_aad};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("properties {0} could not be decrypted: {1}")]
    Crypto(Uuid, CryptoError),
    #[error("properties {0} not found")]
    NotFound(Uuid),
}

/// Who caused a properties version: a user (name) or a step.
#[derive(Debug, Clone)]
pub struct Author<'a> {
    pub name: &'a str,
    pub step_id: Option<Uuid>,
}

/// A properties document at a version.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    pub id: Uuid,
    pub version: i64,
    pub document: Value,
}

/// Creates the properties of a new project or environment at version 1 with an empty document.
pub async fn create_properties(
    client: &impl GenericClient,
    cipher: &Cipher,
    owner: Owner,
    author: &Author<'_>,
) -> Result<Uuid, StoreError> {
    let id = Uuid::now_v7();
    let document = Value::Object(Default::default());
    let sealed = cipher.encrypt_json(&document, &properties_aad(id, 1));
    let (project_id, environment_id) = match owner {
        Owner::Project(p) => (Some(p), None),
        Owner::Environment(e) => (None, Some(e)),
    };
    client
        .execute_cached(
            "INSERT INTO properties (id, project_id, environment_id, version, document) VALUES ($1, $2, $3, 1, $4)",
            &[&id, &project_id, &environment_id, &sealed],
        )
        .await?;
    insert_version(client, id, 1, &sealed, author).await?;
    Ok(id)
}

/// The owner of a properties document.
#[derive(Debug, Clone, Copy)]
pub enum Owner {
    Project(Uuid),
    Environment(Uuid),
}

async fn insert_version(
    client: &impl GenericClient,
    id: Uuid,
    version: i64,
    sealed: &[u8],
    author: &Author<'_>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute_cached(
            "INSERT INTO properties_versions (properties_id, version, document, created_by, step_id) \
             VALUES ($1, $2, $3, $4, $5)",
            &[&id, &version, &sealed, &author.name, &author.step_id],
        )
        .await?;
    Ok(())
}

/// Reads the current document; with `for_update` the row stays locked until the caller's
/// transaction ends, so the version read is the version the next write builds on.
pub async fn load(
    client: &impl GenericClient,
    cipher: &Cipher,
    id: Uuid,
    for_update: bool,
) -> Result<Versioned, StoreError> {
    let sql = if for_update {
        "SELECT version, document FROM properties WHERE id = $1 FOR NO KEY UPDATE"
    } else {
        "SELECT version, document FROM properties WHERE id = $1"
    };
    let row = client
        .query_opt_cached(sql, &[&id])
        .await?
        .ok_or(StoreError::NotFound(id))?;
    Versioned::open(cipher, id, row.get(0), row.get(1)).map_err(|e| StoreError::Crypto(id, e))
}

/// The current documents of properties `ids`, their rows locked in id order (the order every
/// transaction locking several takes); each document, or why it cannot be read. A database error
/// is returned as such.
pub async fn load_locked(
    client: &impl GenericClient,
    cipher: &Cipher,
    ids: &[Uuid],
) -> Result<Vec<Result<Versioned, StoreError>>, tokio_postgres::Error> {
    let rows = client
        .query_cached(
            "SELECT id, version, document FROM properties WHERE id = ANY($1) ORDER BY id \
             FOR NO KEY UPDATE",
            &[&ids],
        )
        .await?;
    let mut found: std::collections::HashMap<Uuid, Result<Versioned, StoreError>> = rows
        .iter()
        .map(|row| {
            let id: Uuid = row.get(0);
            let opened = Versioned::open(cipher, id, row.get(1), row.get(2))
                .map_err(|e| StoreError::Crypto(id, e));
            (id, opened)
        })
        .collect();
    Ok(ids
        .iter()
        .map(|id| found.remove(id).unwrap_or(Err(StoreError::NotFound(*id))))
        .collect())
}

impl Versioned {
    /// The current document of properties `id`, from its stored `version` and ciphertext (read
    /// by the caller, e.g. joined into a larger query).
    pub fn open(
        cipher: &Cipher,
        id: Uuid,
        version: i64,
        sealed: &[u8],
    ) -> Result<Self, CryptoError> {
        let document = cipher.decrypt_json(sealed, &properties_aad(id, version))?;
        Ok(Self {
            id,
            version,
            document,
        })
    }
}

/// Reads one historical version.
pub async fn load_version(
    client: &impl GenericClient,
    cipher: &Cipher,
    id: Uuid,
    version: i64,
) -> Result<Option<(Value, chrono::DateTime<chrono::Utc>, String, Option<Uuid>)>, StoreError> {
    let Some(row) = client
        .query_opt_cached(
            "SELECT document, created_at, created_by, step_id FROM properties_versions \
             WHERE properties_id = $1 AND version = $2",
            &[&id, &version],
        )
        .await?
    else {
        return Ok(None);
    };
    let Versioned { document, .. } =
        Versioned::open(cipher, id, version, row.get(0)).map_err(|e| StoreError::Crypto(id, e))?;
    Ok(Some((document, row.get(1), row.get(2), row.get(3))))
}

/// The statement of a versioned write, one for both writers below: the document `$4` replaces
/// version `$2` of properties `$1` as version `$3`, and the version row (author `$5`, step `$6`)
/// is inserted from the `SELECT` list given, which decides what happens when nothing was updated.
macro_rules! versioned_write {
    ($select:literal) => {
        concat!(
            "WITH updated AS (UPDATE properties SET version = $3, document = $4, updated_at = now() \
             WHERE id = $1 AND version = $2 RETURNING id) \
             INSERT INTO properties_versions (properties_id, version, document, created_by, step_id) \
             SELECT ",
            $select
        )
    };
}

/// Writes `document` as the version after `current_version`. The caller holds the row lock (see
/// [`load`]) or relies on the version predicate: `Ok(None)` means another writer got there first.
pub async fn write_next(
    client: &impl GenericClient,
    cipher: &Cipher,
    id: Uuid,
    current_version: i64,
    document: &Value,
    author: &Author<'_>,
) -> Result<Option<i64>, StoreError> {
    let next = current_version + 1;
    let sealed = seal_next(cipher, id, current_version, document);
    // One statement: the version row is inserted only if the document was still at
    // `current_version`.
    let written = client
        .execute_cached(
            versioned_write!("id, $3, $4, $5, $6 FROM updated"),
            &[
                &id,
                &current_version,
                &next,
                &sealed,
                &author.name,
                &author.step_id,
            ],
        )
        .await?;
    Ok((written == 1).then_some(next))
}

/// [`write_next`]'s statement for a caller that holds the row lock and cannot look at the count
/// (it sends the COMMIT in the same round trip): when the document is no longer at `$2` it fails,
/// inserting a version without its `properties_id` (a not-null violation), instead of writing
/// nothing. Parameters: id, current version, next version, the sealed document, author name and
/// step id.
pub const WRITE_LOCKED: &str = versioned_write!("(SELECT id FROM updated), $3, $4, $5, $6");

/// `document` sealed as the version after `current_version` of properties `id`.
pub fn seal_next(cipher: &Cipher, id: Uuid, current_version: i64, document: &Value) -> Vec<u8> {
    cipher.encrypt_json(document, &properties_aad(id, current_version + 1))
}

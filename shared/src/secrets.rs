//! The server-side secret store (DESIGN §4, §6): named key/value maps, sealed at rest, referenced
//! from database properties by `gantry.env:runner_secrets` (env of the step container) and
//! `gantry.env:build_secrets` (env of the step image build). Values never leave the server except
//! into those two places; the API shows keys only.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::Value;

use crate::crypto::{Cipher, CryptoError, secret_aad};
use crate::db::CachedStatements;
use crate::properties::{
    BUILD_SECRETS_KEY, PropertiesError, RUNNER_SECRETS_KEY, is_env_name, merged_secret_names,
};

/// Longest secret name.
pub const MAX_SECRET_NAME_LEN: usize = 100;
/// Fewest characters (surrounding whitespace aside) of a non-empty secret value: shorter values
/// cannot be masked wherever they appear in a log without blanking ordinary output (every `1`
/// or `yes`), so they are refused rather than left unmasked.
pub const MIN_VALUE_CHARS: usize = 4;
/// Largest key/value map of one secret (keys and values, `KEY=value\0` each), like `gantry.env`.
pub const MAX_SECRET_BYTES: usize = crate::properties::MAX_ENV_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("secret \"{0}\" could not be decrypted: {1}")]
    Crypto(String, CryptoError),
}

/// Why a secret name or key/value map is refused; each message names what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidSecret {
    #[error(
        "secret name \"{0}\" is invalid: use 1 to {MAX_SECRET_NAME_LEN} letters, digits, `-`, `_` or `.`, starting with a letter or digit"
    )]
    Name(String),
    #[error("secret data must be a JSON object of variable names to string values")]
    NotAnObject,
    #[error(
        "secret key \"{0}\" is not a valid environment variable name (letters, digits and `_`, not starting with a digit)"
    )]
    Key(String),
    #[error("secret key \"{0}\" must have a string value")]
    Value(String),
    #[error("the value of secret key \"{0}\" contains a NUL byte")]
    Nul(String),
    #[error(
        "the value of secret key \"{0}\" is shorter than {MIN_VALUE_CHARS} characters: a value that short cannot be masked in step logs without hiding ordinary output"
    )]
    TooShort(String),
    #[error("secret data is {size} bytes, more than the {max} bytes allowed")]
    TooLarge { size: usize, max: usize },
}

/// Checks a secret name.
pub fn validate_name(name: &str) -> Result<(), InvalidSecret> {
    let mut bytes = name.bytes();
    let first_ok = matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    match first_ok && rest_ok && name.len() <= MAX_SECRET_NAME_LEN {
        true => Ok(()),
        false => Err(InvalidSecret::Name(name.to_owned())),
    }
}

/// Checks and converts a secret's key/value map: variable names to strings, size-capped.
pub fn parse_values(data: &Value) -> Result<BTreeMap<String, String>, InvalidSecret> {
    let map = data.as_object().ok_or(InvalidSecret::NotAnObject)?;
    let mut values = BTreeMap::new();
    let mut size = 0;
    for (key, value) in map {
        if !is_env_name(key) {
            return Err(InvalidSecret::Key(key.clone()));
        }
        let value = value
            .as_str()
            .ok_or_else(|| InvalidSecret::Value(key.clone()))?;
        if value.contains('\0') {
            return Err(InvalidSecret::Nul(key.clone()));
        }
        let chars = value.trim().chars().count();
        if chars > 0 && chars < MIN_VALUE_CHARS {
            return Err(InvalidSecret::TooShort(key.clone()));
        }
        size += key.len() + value.len() + 2;
        values.insert(key.clone(), value.to_owned());
    }
    if size > MAX_SECRET_BYTES {
        return Err(InvalidSecret::TooLarge {
            size,
            max: MAX_SECRET_BYTES,
        });
    }
    Ok(values)
}

/// One stored secret, decrypted. Its `Debug` shows the keys, never the values.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    pub name: String,
    pub values: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

/// What [`put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The secret did not exist before.
    pub created: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Creates or replaces a secret.
pub async fn put(
    client: &impl GenericClient,
    cipher: &Cipher,
    name: &str,
    values: &BTreeMap<String, String>,
) -> Result<Stored, SecretError> {
    let plaintext = serde_json::to_vec(values).expect("a map of strings serialises");
    let sealed = cipher.encrypt(&plaintext, &secret_aad(name));
    let row = client
        .query_one_cached(
            "INSERT INTO secrets (name, data) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data, updated_at = now() \
             RETURNING (xmax = 0), created_at, updated_at",
            &[&name, &sealed],
        )
        .await?;
    Ok(Stored {
        created: row.get(0),
        created_at: row.get(1),
        updated_at: row.get(2),
    })
}

/// Deletes a secret; `false` when there was none.
pub async fn delete(client: &impl GenericClient, name: &str) -> Result<bool, SecretError> {
    Ok(client
        .execute_cached("DELETE FROM secrets WHERE name = $1", &[&name])
        .await?
        == 1)
}

/// Reads one secret.
pub async fn load(
    client: &impl GenericClient,
    cipher: &Cipher,
    name: &str,
) -> Result<Option<Secret>, SecretError> {
    let rows = load_many(client, cipher, &[name.to_owned()]).await?;
    Ok(rows.into_iter().next())
}

/// Reads the named secrets that exist, in the order of `names`.
pub async fn load_many(
    client: &impl GenericClient,
    cipher: &Cipher,
    names: &[String],
) -> Result<Vec<Secret>, SecretError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let rows = client
        .query_cached(
            "SELECT name, data, created_at, updated_at FROM secrets WHERE name = ANY($1)",
            &[&names],
        )
        .await?;
    let mut found = BTreeMap::new();
    for row in &rows {
        let secret = SealedSecret::from_row(row).open(cipher)?;
        found.insert(secret.name.clone(), secret);
    }
    Ok(names.iter().filter_map(|n| found.remove(n)).collect())
}

/// The secrets one step uses, named by its database properties (never by repository files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepSecrets {
    /// `gantry.env:runner_secrets`, in the listed order.
    pub runner: Vec<Secret>,
    /// `gantry.env:build_secrets`, in the listed order.
    pub build: Vec<Secret>,
}

impl StepSecrets {
    /// Reads the secrets named by the merged project and environment documents (the environment's
    /// list replaces the project's, as arrays do in a merge). A list that is not a list of names,
    /// or a name with no secret, is an error the step fails with.
    pub async fn for_step(
        client: &impl GenericClient,
        cipher: &Cipher,
        project: &Value,
        environment: &Value,
    ) -> Result<Result<StepSecrets, String>, SecretError> {
        let levels = [project, environment];
        let names = |key| merged_secret_names(&levels, key).map_err(invalid_properties);
        let (runner_names, build_names) =
            match (names(RUNNER_SECRETS_KEY), names(BUILD_SECRETS_KEY)) {
                (Ok(runner), Ok(build)) => (runner, build),
                (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
            };
        // One query (and one decryption each) for both lists, a name in both included.
        let mut all: Vec<String> = runner_names.iter().chain(&build_names).cloned().collect();
        all.sort();
        all.dedup();
        let found: BTreeMap<String, Secret> = load_many(client, cipher, &all)
            .await?
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        Ok(
            match (
                pick(&found, RUNNER_SECRETS_KEY, runner_names),
                pick(&found, BUILD_SECRETS_KEY, build_names),
            ) {
                (Ok(runner), Ok(build)) => Ok(StepSecrets { runner, build }),
                (Err(e), _) | (_, Err(e)) => Err(e),
            },
        )
    }

    /// The variables of the runner secrets, later secrets winning on the same key.
    pub fn runner_env(&self) -> BTreeMap<String, String> {
        combined_env(&self.runner)
    }

    /// Every secret value of both kinds: what logs must never show.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.runner
            .iter()
            .chain(&self.build)
            .flat_map(|s| s.values.values().map(String::as_str))
    }
}

/// The secrets `names` (listed under `gantry.<key>`) name, in order, each once; the first name
/// with no secret is the error the step fails with.
fn pick(
    found: &BTreeMap<String, Secret>,
    key: &str,
    names: Vec<String>,
) -> Result<Vec<Secret>, String> {
    let mut picked: Vec<Secret> = Vec::with_capacity(names.len());
    for name in names {
        let Some(secret) = found.get(&name) else {
            return Err(format!(
                "The secret \"{name}\" named in gantry.{key} does not exist; create it with PUT /api/secrets/{name}"
            ));
        };
        if !picked.iter().any(|s| s.name == name) {
            picked.push(secret.clone());
        }
    }
    Ok(picked)
}

/// The variables of `secrets`, later secrets winning on the same key.
pub fn combined_env(secrets: &[Secret]) -> BTreeMap<String, String> {
    secrets
        .iter()
        .flat_map(|s| s.values.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect()
}

fn invalid_properties(error: PropertiesError) -> String {
    format!("Invalid properties: {error}")
}

/// A stored secret as read, not yet decrypted: a page of a listing is decrypted only once it
/// is known which rows it keeps.
pub struct SealedSecret {
    pub name: String,
    data: Vec<u8>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl SealedSecret {
    /// From the columns `name, data, created_at, updated_at`.
    fn from_row(row: &tokio_postgres::Row) -> Self {
        Self {
            name: row.get(0),
            data: row.get(1),
            created_at: row.get(2),
            updated_at: row.get(3),
        }
    }

    pub fn open(self, cipher: &Cipher) -> Result<Secret, SecretError> {
        let crypto = |e| SecretError::Crypto(self.name.clone(), e);
        let plaintext = cipher
            .decrypt(&self.data, &secret_aad(&self.name))
            .map_err(crypto)?;
        let values =
            serde_json::from_slice(&plaintext).map_err(|e| crypto(CryptoError::Json(e)))?;
        Ok(Secret {
            name: self.name,
            values,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Up to `limit` secrets named after `after`, in name order, still sealed.
pub async fn page(
    client: &impl GenericClient,
    after: &str,
    limit: i64,
) -> Result<Vec<SealedSecret>, SecretError> {
    let rows = client
        .query_cached(
            "SELECT name, data, created_at, updated_at FROM secrets \
             WHERE name > $1 ORDER BY name LIMIT $2",
            &[&after, &limit],
        )
        .await?;
    Ok(rows.iter().map(SealedSecret::from_row).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_short_and_plain() {
        for ok in ["db", "my-runner-secrets", "a.b_c", "0x"] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "-a", "a/b", "a b", "../x", &"x".repeat(101)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_are_strings_under_variable_names() {
        let parsed = parse_values(&json!({"API_KEY": "k3y!", "_X": ""})).expect("valid");
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            parse_values(&json!({"API-KEY": "k3y!"})),
            Err(InvalidSecret::Key("API-KEY".into()))
        );
        assert_eq!(
            parse_values(&json!({"PORT": 1})),
            Err(InvalidSecret::Value("PORT".into()))
        );
        assert_eq!(
            parse_values(&json!({"A": "a\0b"})),
            Err(InvalidSecret::Nul("A".into()))
        );
        assert_eq!(parse_values(&json!(["A"])), Err(InvalidSecret::NotAnObject));
        assert_eq!(
            parse_values(&json!({"PIN": " 123 "})),
            Err(InvalidSecret::TooShort("PIN".into()))
        );
        let big = "x".repeat(MAX_SECRET_BYTES);
        assert!(matches!(
            parse_values(&json!({ "BIG": big })),
            Err(InvalidSecret::TooLarge { .. })
        ));
    }

    #[test]
    fn debug_output_names_keys_but_never_values() {
        let at = Utc::now();
        let secret = Secret {
            name: "db".into(),
            values: BTreeMap::from([("PASSWORD".into(), "hunter22".into())]),
            created_at: at,
            updated_at: at,
        };
        let shown = format!(
            "{:?}",
            StepSecrets {
                runner: vec![secret.clone()],
                build: vec![secret]
            }
        );
        assert!(shown.contains("PASSWORD"), "{shown}");
        assert!(!shown.contains("hunter22"), "{shown}");
    }

    #[test]
    fn later_secrets_win_and_every_value_is_listed_for_masking() {
        let at = Utc::now();
        let secret = |name: &str, pairs: &[(&str, &str)]| Secret {
            name: name.into(),
            values: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            created_at: at,
            updated_at: at,
        };
        let secrets = StepSecrets {
            runner: vec![
                secret("a", &[("K", "one"), ("L", "ell")]),
                secret("b", &[("K", "two")]),
            ],
            build: vec![secret("c", &[("B", "bee")])],
        };
        let env = secrets.runner_env();
        assert_eq!(env["K"], "two");
        assert_eq!(env["L"], "ell");
        let mut values: Vec<&str> = secrets.values().collect();
        values.sort();
        assert_eq!(values, ["bee", "ell", "one", "two"]);
    }
}

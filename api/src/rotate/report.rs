//! What a rotation did (per table) and, when it stops, where and why.

use std::fmt;

use gantry_shared::crypto::CryptoError;
use uuid::Uuid;

/// The tables holding ciphertext, in the order they are rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Properties,
    PropertiesVersions,
    GitRemotes,
    Secrets,
    Steps,
}

impl Table {
    pub const ALL: [Table; 5] = [
        Table::Properties,
        Table::PropertiesVersions,
        Table::GitRemotes,
        Table::Secrets,
        Table::Steps,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Properties => "properties",
            Table::PropertiesVersions => "properties_versions",
            Table::GitRemotes => "git_remotes",
            Table::Secrets => "secrets",
            Table::Steps => "steps",
        }
    }

    /// The key before every row: keyset pagination starts after it.
    pub(super) fn start(self) -> RowKey {
        match self {
            Table::PropertiesVersions => RowKey::Version(Uuid::nil(), 0),
            Table::Secrets => RowKey::Name(String::new()),
            _ => RowKey::Id(Uuid::nil()),
        }
    }
}

/// A row's primary key, as it is named in a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKey {
    Id(Uuid),
    Version(Uuid, i64),
    Name(String),
}

impl RowKey {
    // Each table reads the parts of its own key kind; the others are never its.
    pub(super) fn id(&self) -> Uuid {
        match self {
            RowKey::Id(id) | RowKey::Version(id, _) => *id,
            RowKey::Name(_) => Uuid::nil(),
        }
    }

    pub(super) fn version(&self) -> i64 {
        match self {
            RowKey::Version(_, version) => *version,
            _ => 0,
        }
    }

    pub(super) fn name(&self) -> &str {
        match self {
            RowKey::Name(name) => name,
            _ => "",
        }
    }
}

impl fmt::Display for RowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowKey::Id(id) => write!(f, "{id}"),
            RowKey::Version(id, version) => write!(f, "{id} version {version}"),
            RowKey::Name(name) => write!(f, "`{name}`"),
        }
    }
}

/// How many rows of one table were re-encrypted, and how many already used the current key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableReport {
    pub table: Table,
    pub re_encrypted: u64,
    pub already_current: u64,
}

/// What a run did, per table (rows, not columns: a git remote counts once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    pub key_id: String,
    pub tables: Vec<TableReport>,
}

impl RotationReport {
    pub(super) fn new(key_id: &str) -> Self {
        let tables = Table::ALL.map(|table| TableReport {
            table,
            re_encrypted: 0,
            already_current: 0,
        });
        Self {
            key_id: key_id.to_owned(),
            tables: tables.to_vec(),
        }
    }

    /// The report of `table`: [`Self::new`] lists every table in [`Table::ALL`] (declaration)
    /// order, so a table's position is its discriminant.
    pub fn table(&self, table: Table) -> TableReport {
        self.tables[table as usize]
    }

    /// Rows re-encrypted in every table.
    pub fn re_encrypted(&self) -> u64 {
        self.tables.iter().map(|t| t.re_encrypted).sum()
    }

    pub(super) fn add(&mut self, table: Table, re_encrypted: u64, already_current: u64) {
        let entry = &mut self.tables[table as usize];
        entry.re_encrypted += re_encrypted;
        entry.already_current += already_current;
    }
}

impl fmt::Display for RotationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rows re-encrypted under key `{}`:", self.key_id)?;
        for t in &self.tables {
            write!(
                f,
                " {} {} ({} already current);",
                t.table.name(),
                t.re_encrypted,
                t.already_current
            )?;
        }
        write!(f, " {} in all", self.re_encrypted())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RotationFailure {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
}

/// A run that stopped: where, why, and what it had committed before.
#[derive(Debug, thiserror::Error)]
#[error(
    "re-encrypting {table}{row} failed: {cause}. The batch with it was rolled back; the batches \
     committed before stay re-encrypted ({committed}). Run rotate-key again once the cause is \
     fixed (a row that does not decrypt: restore it from a backup, delete it, or configure its key \
     in encryption.previous_keys); it skips what is already done.",
    table = table.name(),
    row = row.as_ref().map(|r| format!(" row {r}")).unwrap_or_default()
)]
pub struct RotationError {
    pub table: Table,
    pub row: Option<RowKey>,
    pub committed: RotationReport,
    #[source]
    pub cause: RotationFailure,
}

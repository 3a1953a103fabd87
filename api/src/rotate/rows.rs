//! The rows holding ciphertext: each table's batch query (locking) and column updates, and the
//! associated data each ciphertext is bound to.

use deadpool_postgres::{GenericClient, Transaction};
use gantry_shared::crypto::{git_remote_aad, properties_aad, secret_aad, step_properties_aad};
use gantry_shared::db::CachedStatements;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::report::{RowKey, Table};
use super::run::BATCH_SIZE;

/// One ciphertext column of a locked row, with the associated data it is bound to.
pub(super) struct Sealed {
    pub(super) column: &'static str,
    pub(super) aad: Vec<u8>,
    pub(super) envelope: Vec<u8>,
}

pub(super) struct LockedRow {
    pub(super) key: RowKey,
    pub(super) sealed: Vec<Sealed>,
}

/// The next batch of rows after `after` that hold ciphertext, locked until the batch commits.
pub(super) async fn lock_batch(
    tx: &Transaction<'_>,
    table: Table,
    after: &RowKey,
) -> Result<Vec<LockedRow>, tokio_postgres::Error> {
    let (id, version, name) = (after.id(), after.version(), after.name());
    let (sql, params): (&str, Vec<&(dyn ToSql + Sync)>) = match table {
        Table::Properties => (
            "SELECT id, version, document FROM properties WHERE id > $1 ORDER BY id LIMIT $2 FOR UPDATE",
            vec![&id, &BATCH_SIZE],
        ),
        Table::PropertiesVersions => (
            "SELECT properties_id, version, document FROM properties_versions \
             WHERE (properties_id, version) > ($1, $2) ORDER BY properties_id, version LIMIT $3 FOR UPDATE",
            vec![&id, &version, &BATCH_SIZE],
        ),
        Table::GitRemotes => (
            "SELECT id, password, ssh_key_data FROM git_remotes \
             WHERE id > $1 AND (password IS NOT NULL OR ssh_key_data IS NOT NULL) ORDER BY id LIMIT $2 FOR UPDATE",
            vec![&id, &BATCH_SIZE],
        ),
        Table::Secrets => (
            "SELECT name, data FROM secrets WHERE name > $1 ORDER BY name LIMIT $2 FOR UPDATE",
            vec![&name, &BATCH_SIZE],
        ),
        Table::Steps => (
            "SELECT id, properties FROM steps \
             WHERE id > $1 AND properties IS NOT NULL ORDER BY id LIMIT $2 FOR UPDATE",
            vec![&id, &BATCH_SIZE],
        ),
    };
    let rows = tx.query_cached(sql, &params).await?;
    Ok(rows.iter().map(|row| locked_row(table, row)).collect())
}

fn locked_row(table: Table, row: &Row) -> LockedRow {
    let sealed = |column, aad, envelope: Option<Vec<u8>>| {
        envelope.map(|envelope| Sealed {
            column,
            aad,
            envelope,
        })
    };
    let (key, sealed) = match table {
        Table::Properties | Table::PropertiesVersions => {
            let (id, version) = (row.get(0), row.get(1));
            let key = match table {
                Table::Properties => RowKey::Id(id),
                _ => RowKey::Version(id, version),
            };
            let aad = properties_aad(id, version);
            (key, vec![sealed("document", aad, row.get(2))])
        }
        Table::GitRemotes => {
            let id = row.get(0);
            let password = sealed("password", git_remote_aad(id, "password"), row.get(1));
            let ssh_key = sealed(
                "ssh_key_data",
                git_remote_aad(id, "ssh_key_data"),
                row.get(2),
            );
            (RowKey::Id(id), vec![password, ssh_key])
        }
        Table::Secrets => {
            let name: String = row.get(0);
            let aad = secret_aad(&name);
            (RowKey::Name(name), vec![sealed("data", aad, row.get(1))])
        }
        Table::Steps => {
            let id = row.get(0);
            let aad = step_properties_aad(id);
            (RowKey::Id(id), vec![sealed("properties", aad, row.get(1))])
        }
    };
    LockedRow {
        key,
        sealed: sealed.into_iter().flatten().collect(),
    }
}

pub(super) async fn update_column(
    client: &impl GenericClient,
    table: Table,
    key: &RowKey,
    column: &str,
    envelope: &[u8],
) -> Result<u64, tokio_postgres::Error> {
    let (id, version, name) = (key.id(), key.version(), key.name());
    let (sql, params): (&str, Vec<&(dyn ToSql + Sync)>) = match (table, column) {
        (Table::Properties, _) => (
            "UPDATE properties SET document = $2 WHERE id = $1",
            vec![&id, &envelope],
        ),
        (Table::PropertiesVersions, _) => (
            "UPDATE properties_versions SET document = $3 WHERE properties_id = $1 AND version = $2",
            vec![&id, &version, &envelope],
        ),
        (Table::GitRemotes, "password") => (
            "UPDATE git_remotes SET password = $2 WHERE id = $1",
            vec![&id, &envelope],
        ),
        (Table::GitRemotes, _) => (
            "UPDATE git_remotes SET ssh_key_data = $2 WHERE id = $1",
            vec![&id, &envelope],
        ),
        (Table::Secrets, _) => (
            "UPDATE secrets SET data = $2 WHERE name = $1",
            vec![&name, &envelope],
        ),
        (Table::Steps, _) => (
            "UPDATE steps SET properties = $2 WHERE id = $1",
            vec![&id, &envelope],
        ),
    };
    client.execute_cached(sql, &params).await
}

/// Ciphertexts of `table` sealed under a key other than `key_id`, counted in SQL from the
/// envelope header (version byte, key id length, key id): what a finished rotation must leave at
/// zero.
pub(super) async fn count_under_other_keys(
    client: &impl GenericClient,
    table: Table,
    key_id: &str,
) -> Result<i64, tokio_postgres::Error> {
    let other = |column: &str| {
        format!(
            "({column} IS NOT NULL AND substring({column} from 3 for get_byte({column}, 1)) <> convert_to($1, 'UTF8'))"
        )
    };
    let (relation, condition) = match table {
        Table::Properties => ("properties", other("document")),
        Table::PropertiesVersions => ("properties_versions", other("document")),
        Table::GitRemotes => (
            "git_remotes",
            format!("{} OR {}", other("password"), other("ssh_key_data")),
        ),
        Table::Secrets => ("secrets", other("data")),
        Table::Steps => ("steps", other("properties")),
    };
    let sql = format!("SELECT count(*) FROM {relation} WHERE {condition}");
    Ok(client.query_one(&sql, &[&key_id]).await?.get(0))
}

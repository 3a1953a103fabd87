//! The run: table by table, batch by batch, each batch one transaction.

use anyhow::Context;
use deadpool_postgres::{Client, Pool, Transaction};
use gantry_shared::crypto::{Cipher, envelope_key_id};
use gantry_shared::db::{self, DbErrorKind};
use gantry_shared::settings::Settings;

use super::report::{RotationError, RotationFailure, RotationReport, RowKey, Table};
use super::rows::{LockedRow, Sealed, count_under_other_keys, lock_batch, update_column};

/// Rows per transaction.
pub const BATCH_SIZE: i64 = 500;

/// Re-encrypts every ciphertext not under `cipher`'s current key, [`BATCH_SIZE`] rows at a time.
pub async fn rotate_keys(pool: &Pool, cipher: &Cipher) -> Result<RotationReport, RotationError> {
    let mut report = RotationReport::new(cipher.current_key_id());
    for table in Table::ALL {
        if let Err((row, cause)) = rotate_table(pool, cipher, table, &mut report).await {
            return Err(RotationError {
                table,
                row,
                committed: report,
                cause,
            });
        }
    }
    Ok(report)
}

/// The command: connects, rotates, prints the summary, then checks that nothing is left under
/// another key — a process still sealing with the old key could have written behind the run.
pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let pool = db::pool(&settings.database).context("creating the database pool")?;
    let cipher =
        Cipher::from_settings(&settings.encryption).context("loading the encryption keys")?;
    let report = rotate_keys(&pool, &cipher).await?;
    println!("{report}");
    let left = left_under_other_keys(&pool, cipher.current_key_id()).await?;
    if !left.is_empty() {
        let tables: Vec<String> = left
            .iter()
            .map(|(table, n)| format!("{} {n}", table.name()))
            .collect();
        anyhow::bail!(
            "ciphertexts written under another key during the rotation remain ({}): a process \
             still seals with an old key; give every process the new `encryption.key_id`/`key`, \
             then run `gantry-api rotate-key` again before removing the old key",
            tables.join(", ")
        );
    }
    Ok(())
}

/// The tables that still hold ciphertext under a key other than `key_id`, with how many.
pub async fn left_under_other_keys(pool: &Pool, key_id: &str) -> anyhow::Result<Vec<(Table, i64)>> {
    let client = pool.get().await.context("connecting to the database")?;
    let mut left = Vec::new();
    for table in Table::ALL {
        let n = count_under_other_keys(&client, table, key_id)
            .await
            .with_context(|| format!("checking {}", table.name()))?;
        if n > 0 {
            left.push((table, n));
        }
    }
    Ok(left)
}

type Failed = (Option<RowKey>, RotationFailure);

/// Attempts of a batch that hit a deadlock or serialization failure (a concurrent writer locking
/// rows in another order) before the run gives up.
const MAX_ATTEMPTS: u32 = 3;

async fn rotate_table(
    pool: &Pool,
    cipher: &Cipher,
    table: Table,
    report: &mut RotationReport,
) -> Result<(), Failed> {
    let mut client = pool.get().await.map_err(|e| (None, e.into()))?;
    let mut after = table.start();
    loop {
        let mut attempt = 1;
        let batch = loop {
            match rotate_batch(&mut client, cipher, table, &after).await {
                Err((_, RotationFailure::Db(e)))
                    if db::classify(&e) == DbErrorKind::Retryable && attempt < MAX_ATTEMPTS =>
                {
                    tracing::warn!(table = table.name(), error = %e, attempt, "retrying a batch");
                    attempt += 1;
                }
                other => break other?,
            }
        };
        let Some(batch) = batch else {
            return Ok(());
        };
        report.add(table, batch.re_encrypted, batch.already_current);
        tracing::info!(
            table = table.name(),
            re_encrypted = batch.re_encrypted,
            already_current = batch.already_current,
            "batch committed"
        );
        if batch.rows < BATCH_SIZE {
            return Ok(());
        }
        after = batch.last;
    }
}

/// A committed batch.
struct Batch {
    rows: i64,
    last: RowKey,
    re_encrypted: u64,
    already_current: u64,
}

/// Locks, re-encrypts and commits the batch after `after`; `None` when no rows are left.
async fn rotate_batch(
    client: &mut Client,
    cipher: &Cipher,
    table: Table,
    after: &RowKey,
) -> Result<Option<Batch>, Failed> {
    let tx = client.transaction().await.map_err(|e| (None, e.into()))?;
    let rows = lock_batch(&tx, table, after)
        .await
        .map_err(|e| (None, e.into()))?;
    let Some(last) = rows.last().map(|row| row.key.clone()) else {
        return Ok(None);
    };
    let count = rows.len() as i64;
    let (re_encrypted, already_current) = reseal_batch(&tx, cipher, table, rows).await?;
    tx.commit().await.map_err(|e| (None, e.into()))?;
    Ok(Some(Batch {
        rows: count,
        last,
        re_encrypted,
        already_current,
    }))
}

/// Re-encrypts the batch's stale ciphertexts; returns (rows re-encrypted, rows already current).
async fn reseal_batch(
    tx: &Transaction<'_>,
    cipher: &Cipher,
    table: Table,
    rows: Vec<LockedRow>,
) -> Result<(u64, u64), Failed> {
    let current = cipher.current_key_id();
    let (mut re_encrypted, mut already_current) = (0, 0);
    for row in rows {
        let stale: Vec<&Sealed> = row
            .sealed
            .iter()
            .filter(|s| envelope_key_id(&s.envelope) != Some(current))
            .collect();
        if stale.is_empty() {
            already_current += 1;
            continue;
        }
        for sealed in stale {
            let plaintext = cipher
                .decrypt(&sealed.envelope, &sealed.aad)
                .map_err(|e| (Some(row.key.clone()), e.into()))?;
            let resealed = cipher.encrypt(&plaintext, &sealed.aad);
            update_column(tx, table, &row.key, sealed.column, &resealed)
                .await
                .map_err(|e| (Some(row.key.clone()), e.into()))?;
        }
        re_encrypted += 1;
    }
    Ok((re_encrypted, already_current))
}

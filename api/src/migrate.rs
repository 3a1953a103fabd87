//! `gantry-api migrate`: applies the schema under a PostgreSQL advisory lock, so that several
//! replicas started at once migrate one after the other instead of racing.

use anyhow::Context;
use gantry_shared::settings::DatabaseSettings;
use secrecy::ExposeSecret;

/// Key of the advisory lock held while migrating ("gantry" in ASCII).
const MIGRATION_LOCK: i64 = 0x6761_6e74_7279;

/// Connects to the configured database and applies every pending migration.
#[tracing::instrument(skip_all)]
pub async fn run(settings: &DatabaseSettings) -> anyhow::Result<()> {
    let (mut client, connection) =
        tokio_postgres::connect(settings.url.expose_secret(), tokio_postgres::NoTls)
            .await
            .context("connecting to the database")?;
    let driver = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "database connection closed with an error");
        }
    });
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .context("taking the migration lock")?;
    let migrated = gantry_migrations::run(&mut client).await;
    // The lock also ends with the session; unlocking explicitly lets the next migrator go at once.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    drop(client);
    let _ = driver.await;
    migrated?;
    unlocked.context("releasing the migration lock")?;
    tracing::info!("database migrations applied");
    Ok(())
}

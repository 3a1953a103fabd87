//! Gantry's database schema: numbered SQL files under `migrations/sql`, embedded and applied by
//! refinery. `gantry-api migrate` and the test helpers call [`run`].

use anyhow::Context;

mod embedded {
    refinery::embed_migrations!("sql");
}

/// Applies every pending migration. Safe to call concurrently from several processes:
/// refinery serialises through its own history table and skips what is already applied.
pub async fn run(client: &mut tokio_postgres::Client) -> anyhow::Result<()> {
    embedded::migrations::runner()
        .run_async(client)
        .await
        .context("applying database migrations")?;
    Ok(())
}

//! Raw PostgreSQL commit rates, each in its own scratch database (created here, dropped afterwards
//! whatever happens; a failed drop is reported, not fatal): single-row INSERTs, each its own
//! commit (what one change creation must at least cost), and versioned transactions on one shared
//! row: lock it, `UPDATE … WHERE version = $v`, INSERT the version into a history table, commit
//! (what applying one step result to a project's properties must at least cost; all results of
//! the scenario edit the same document).

use std::sync::Arc;

use anyhow::{Context, bail};
use gantry_shared::settings::DatabaseSettings;
use secrecy::ExposeSecret;
use tokio_postgres::{Client, Config, NoTls};

use super::{RawParams, Throughput};

/// Which raw PostgreSQL rate to measure.
#[derive(Debug, Clone, Copy)]
pub enum Measure {
    /// Single-row INSERT commits.
    Inserts,
    /// Versioned UPDATE + history INSERT transactions on one row.
    Versioned,
}

/// Measures one rate in its own scratch database, dropped afterwards whatever happens.
pub async fn run(
    database: &DatabaseSettings,
    measure: Measure,
    params: &RawParams,
) -> anyhow::Result<Throughput> {
    let mut config: Config = database
        .url
        .expose_secret()
        .parse()
        .context("parsing the database URL")?;
    let admin = connect(&config).await?;
    let scratch = format!("gantry_loadtest_{}", uuid::Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE DATABASE {scratch}"))
        .await
        .context("creating the scratch database")?;
    config.dbname(&scratch);
    let measured = match measure {
        Measure::Inserts => inserts(&config, params).await,
        Measure::Versioned => versioned_rate(&config, params).await,
    };
    // A scratch database left behind does not make the measurement wrong: said, not fatal.
    if let Err(e) = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"))
        .await
    {
        eprintln!("gantry-loadtest: the scratch database {scratch} could not be dropped: {e}");
    }
    measured
}

async fn connect(config: &Config) -> anyhow::Result<Client> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .context("connecting to PostgreSQL")?;
    tokio::spawn(connection);
    Ok(client)
}

async fn inserts(config: &Config, params: &RawParams) -> anyhow::Result<Throughput> {
    connect(config)
        .await?
        .batch_execute(
            "CREATE TABLE inserts (id bigserial PRIMARY KEY, payload jsonb NOT NULL, \
               created_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .context("creating the scratch table")?;
    rate(
        config,
        "inserts",
        params.inserts,
        params.insert_concurrency,
        insert,
    )
    .await
}

async fn versioned_rate(config: &Config, params: &RawParams) -> anyhow::Result<Throughput> {
    let setup = connect(config).await?;
    setup
        .batch_execute(
            "CREATE TABLE documents (id int PRIMARY KEY, version bigint NOT NULL, body jsonb NOT NULL); \
             CREATE TABLE document_versions (id int NOT NULL, version bigint NOT NULL, body jsonb NOT NULL, \
               PRIMARY KEY (id, version)); \
             INSERT INTO documents VALUES (1, 1, '{}'); \
             INSERT INTO document_versions VALUES (1, 1, '{}');",
        )
        .await
        .context("creating the scratch tables")?;
    let versioned = rate(
        config,
        "versioned",
        params.versioned,
        params.versioned_concurrency,
        versioned,
    )
    .await?;
    let row = setup
        .query_one(
            "SELECT d.version, (SELECT count(*) FROM document_versions) FROM documents d",
            &[],
        )
        .await?;
    let (version, history): (i64, i64) = (row.get(0), row.get(1));
    if version != 1 + params.versioned as i64 || history != version {
        bail!("the raw versioned updates lost writes: version {version}, {history} history rows");
    }
    Ok(versioned)
}

/// Runs `n` transactions of `work`, `concurrency` clients at a time, each with its connection.
async fn rate<F, Fut>(
    config: &Config,
    phase: &str,
    n: usize,
    concurrency: usize,
    work: F,
) -> anyhow::Result<Throughput>
where
    F: Fn(Arc<Client>) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let mut clients = Vec::new();
    for _ in 0..concurrency.max(1) {
        clients.push(Arc::new(connect(config).await?));
    }
    super::spread(phase, n, clients, move |client| work(client.clone())).await
}

async fn insert(client: Arc<Client>) -> anyhow::Result<()> {
    client
        .execute(
            "INSERT INTO inserts (payload) VALUES ($1)",
            &[&serde_json::json!({"action": "noop"})],
        )
        .await
        .context("a raw insert")?;
    Ok(())
}

async fn versioned(client: Arc<Client>) -> anyhow::Result<()> {
    client.batch_execute("BEGIN").await?;
    let version: i64 = client
        .query_one("SELECT version FROM documents WHERE id = 1 FOR UPDATE", &[])
        .await?
        .get(0);
    let body = serde_json::json!({"version": version + 1});
    let updated = client
        .execute(
            "UPDATE documents SET version = $2, body = $3 WHERE id = 1 AND version = $1",
            &[&version, &(version + 1), &body],
        )
        .await?;
    if updated != 1 {
        client.batch_execute("ROLLBACK").await?;
        bail!("the locked row moved");
    }
    client
        .execute(
            "INSERT INTO document_versions (id, version, body) VALUES (1, $1, $2)",
            &[&(version + 1), &body],
        )
        .await?;
    client.batch_execute("COMMIT").await?;
    Ok(())
}

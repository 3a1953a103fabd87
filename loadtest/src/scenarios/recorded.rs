//! Which step attempt each step container ran: step containers are started (parked) before their
//! steps are claimed, so their labels cannot name a step. The worker records the container in
//! `step_containers` right before it gives the container its step; that row's time is the step's
//! start in it, on PostgreSQL's clock (the clock of this host, like the Docker engine's).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use gantry_shared::settings::Settings;
use secrecy::ExposeSecret;
use tokio_postgres::{Client, NoTls, Row};
use uuid::Uuid;

/// The recorded containers of the changes `$1`, with their step and the time (nanoseconds since
/// the epoch) the container was given it.
pub const SQL: &str = "SELECT c.container, c.step_id, (extract(epoch FROM c.created_at) * 1e9)::bigint \
     FROM step_containers c JOIN steps s ON s.id = c.step_id WHERE s.change_id = ANY($1)";

#[derive(Debug, Clone)]
pub struct Recorded {
    pub step: Uuid,
    /// When the container was given its step: nanoseconds since the epoch.
    pub given_at: i64,
}

/// Container name → what it ran, from rows of [`SQL`].
pub fn from_rows(rows: &[Row]) -> HashMap<String, Recorded> {
    rows.iter()
        .map(|r| {
            (
                r.get(0),
                Recorded {
                    step: r.get(1),
                    given_at: r.get(2),
                },
            )
        })
        .collect()
}

pub async fn recorded(db: &Client, changes: &[Uuid]) -> anyhow::Result<HashMap<String, Recorded>> {
    Ok(from_rows(&db.query(SQL, &[&changes]).await?))
}

/// Waits (up to `timeout`) until a container was given a step of `change`; its name.
pub async fn wait_given(db: &Client, change: Uuid, timeout: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((name, _)) = recorded(db, &[change]).await?.into_iter().next() {
            return Ok(name);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no container was given a step of change {change}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A connection to Gantry's database.
pub async fn connect(settings: &Settings) -> anyhow::Result<Client> {
    let (db, connection) = tokio_postgres::connect(settings.database.url.expose_secret(), NoTls)
        .await
        .context("connecting to Gantry's database")?;
    tokio::spawn(connection);
    Ok(db)
}

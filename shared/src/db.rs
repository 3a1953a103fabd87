//! PostgreSQL plumbing: the connection pool and the one place SQLSTATE codes are classified.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::ExposeSecret;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::settings::DatabaseSettings;

pub use deadpool_postgres::{GenericClient, Object as Client, Transaction};

#[derive(Debug, thiserror::Error)]
#[error("invalid database configuration: {0}")]
pub struct PoolError(String);

/// Whether the database answers a trivial statement through the pool (the api's `/ready`, the
/// worker's wait before it requeues a failed message).
pub async fn answers(pool: &Pool) -> Result<(), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client
        .execute("SELECT 1", &[])
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Builds the pool. Connections are made lazily; waits are bounded so that a database outage
/// turns into an error (503 at the API) instead of a hang.
pub fn pool(settings: &DatabaseSettings) -> Result<Pool, PoolError> {
    pool_for_url(settings.url.expose_secret(), settings.pool_size)
}

/// The connection settings of the configured database, for a connection of its own (a `LISTEN`).
pub fn config(settings: &DatabaseSettings) -> Result<tokio_postgres::Config, PoolError> {
    config_for_url(settings.url.expose_secret())
}

fn config_for_url(url: &str) -> Result<tokio_postgres::Config, PoolError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| PoolError(e.to_string()))?;
    config.connect_timeout(Duration::from_secs(5));
    config.application_name("gantry");
    Ok(config)
}

pub fn pool_for_url(url: &str, size: usize) -> Result<Pool, PoolError> {
    let config = config_for_url(url)?;
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| PoolError(e.to_string()))
}

/// Statements through the connection's statement cache: after its first use on a connection a
/// statement costs one round trip (bind + execute) instead of two (parse, then bind + execute).
/// For SQL text fixed at the call site only: the cache keeps every distinct text. (A schema
/// change under running processes invalidates cached plans: migrate, then restart.)
pub trait CachedStatements: GenericClient {
    fn execute_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.execute(&statement, params).await
        }
    }

    fn query_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.query(&statement, params).await
        }
    }

    fn query_one_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Row, tokio_postgres::Error>> + Send {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.query_one(&statement, params).await
        }
    }

    fn query_opt_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Option<Row>, tokio_postgres::Error>> + Send {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.query_opt(&statement, params).await
        }
    }
}

impl<C: GenericClient> CachedStatements for C {}

/// What a database error means to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    UniqueViolation,
    ForeignKeyViolation,
    /// Serialization failure or deadlock: the transaction may be retried.
    Retryable,
    /// The database could not be reached or the connection broke.
    Unavailable,
    Other,
}

pub fn classify(error: &tokio_postgres::Error) -> DbErrorKind {
    match error.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => DbErrorKind::UniqueViolation,
        Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => DbErrorKind::ForeignKeyViolation,
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            DbErrorKind::Retryable
        }
        Some(c) if c.code().starts_with("08") || c.code().starts_with("57P") => {
            DbErrorKind::Unavailable
        }
        Some(_) => DbErrorKind::Other,
        None if error.is_closed() => DbErrorKind::Unavailable,
        None => DbErrorKind::Unavailable,
    }
}

/// Classifies a pool error: every failure to obtain a connection means the database is unavailable.
pub fn classify_pool(error: &deadpool_postgres::PoolError) -> DbErrorKind {
    match error {
        deadpool_postgres::PoolError::Backend(e) => classify(e),
        _ => DbErrorKind::Unavailable,
    }
}

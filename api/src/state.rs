//! What every request handler shares: the database pool, the cipher, the API settings, the
//! wake-up signal of this process's outbox relay, the metrics renderer and the log followers'
//! hub. No other process-wide state exists.

use deadpool_postgres::{Client, Pool};
use gantry_shared::crypto::Cipher;
use gantry_shared::metrics::Scrape;
use gantry_shared::outbox::OutboxSignal;
use gantry_shared::project_settings::EffectiveSettings;
use gantry_shared::settings::{ApiSettings, Settings};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, Context};

pub struct AppState {
    pub pool: Pool,
    pub cipher: Cipher,
    pub api: ApiSettings,
    /// The server's defaults under project and environment settings (the configuration's worker
    /// section), for the effective settings the API shows.
    pub defaults: EffectiveSettings,
    pub outbox: OutboxSignal,
    /// Renders `/metrics`.
    pub scrape: Scrape,
    /// Wakes log followers (of every api process) after lines are stored.
    pub notifier: gantry_shared::logs::Notifier,
    /// Live log followers of this process (SSE).
    pub logs: std::sync::Arc<crate::follow::LogHub>,
    /// SHA-256 of the configured admin token: presented tokens are hashed and compared in
    /// constant time, so neither the length nor a prefix of the token leaks through timing.
    pub admin_token_digest: [u8; 32],
    /// Failed authentications per client address (429 past the configured number a minute).
    pub auth_failures: crate::auth::FailureLimiter,
    /// The group commit of change creations.
    pub creations: crate::routes::changes::Creations,
}

impl AppState {
    pub fn new(
        pool: Pool,
        cipher: Cipher,
        settings: &Settings,
        outbox: OutboxSignal,
        scrape: Scrape,
        notifier: gantry_shared::logs::Notifier,
    ) -> Self {
        let api = settings.api.clone();
        let admin_token_digest = Sha256::digest(api.admin_token.expose_secret().as_bytes()).into();
        // The loop ends with the last handle of the sender, when the state is dropped.
        let (creations, writing) = crate::routes::changes::Creations::start(pool.clone());
        tokio::spawn(writing);
        Self {
            creations,
            notifier,
            logs: std::sync::Arc::new(crate::follow::LogHub::new(pool.clone())),
            pool,
            cipher,
            api,
            defaults: EffectiveSettings::defaults(&settings.worker),
            outbox,
            scrape,
            admin_token_digest,
            auth_failures: crate::auth::FailureLimiter::new(settings.api.auth_failures_per_minute),
        }
    }

    /// A pooled connection; an unreachable database becomes a 503.
    pub async fn client(&self) -> Result<Client, ApiError> {
        self.pool
            .get()
            .await
            .context("getting a database connection")
    }
}

//! What every role's handlers share: pool, cipher, settings, the outbox wake-up, this worker's
//! identity and (for the runner role) the Docker client.

use std::sync::Arc;

use bollard::Docker;
use deadpool_postgres::Pool;
use gantry_shared::crypto::Cipher;
use gantry_shared::outbox::OutboxSignal;
use gantry_shared::settings::Settings;

pub struct Context {
    pub pool: Pool,
    pub cipher: Cipher,
    pub settings: Settings,
    pub signal: OutboxSignal,
    /// Unique per process: the lease owner written on claimed steps.
    pub worker_id: String,
    pub docker: Option<Docker>,
    pub git: crate::git::GitCache,
    /// What the runner role knows about step images.
    pub images: crate::runner::ImageCache,
}

pub type Ctx = Arc<Context>;

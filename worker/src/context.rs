//! What every role's handlers share: pool, cipher, settings, the outbox wake-up, this worker's
//! identity, (for the runner role) the Docker client and the steps it runs.

use std::sync::Arc;

use bollard::Docker;
use deadpool_postgres::Pool;
use gantry_shared::crypto::Cipher;
use gantry_shared::logs::Notifier;
use gantry_shared::outbox::OutboxSignal;
use gantry_shared::project_settings::EffectiveSettings;
use gantry_shared::settings::Settings;

pub struct Context {
    pub pool: Pool,
    pub cipher: Cipher,
    pub settings: Settings,
    /// The defaults under project and environment settings (the worker section of `settings`).
    pub step_defaults: EffectiveSettings,
    pub signal: OutboxSignal,
    /// Wakes log followers after lines are stored.
    pub notifier: Notifier,
    /// The host this worker reports (`worker.host`, else the kernel's host name).
    pub host: String,
    /// Unique per process (`<host>-<uuid>`): the lease owner written on claimed steps.
    pub worker_id: String,
    pub docker: Option<Docker>,
    /// The Docker engine's id (empty without one): what the image collector's records are of.
    pub engine_id: String,
    pub git: crate::git::GitCache,
    /// What the runner role knows about step images.
    pub images: crate::runner::ImageCache,
    /// The steps this worker runs, to stop those of a cancelled change.
    pub running: Arc<crate::runner::RunningSteps>,
    /// Step containers started ahead for the steps this worker will claim.
    pub parking: crate::runner::pool::ParkingPool,
}

pub type Ctx = Arc<Context>;

/// A context over the database of a test stack, without Docker, and the directory its Git cache
/// lives in (removed when dropped).
#[cfg(test)]
pub fn for_tests(stack: &gantry_testkit::TestStack, worker_id: &str) -> (Ctx, tempfile::TempDir) {
    let git_cache = tempfile::tempdir().unwrap();
    let ctx: Ctx = Arc::new(Context {
        pool: gantry_shared::db::pool(&stack.settings.database).unwrap(),
        cipher: Cipher::from_settings(&stack.settings.encryption).unwrap(),
        settings: stack.settings.clone(),
        step_defaults: EffectiveSettings::defaults(&stack.settings.worker),
        signal: Default::default(),
        notifier: Notifier::detached(),
        host: "test".into(),
        worker_id: worker_id.into(),
        docker: None,
        engine_id: String::new(),
        git: crate::git::GitCache::new(git_cache.path().to_owned()),
        images: Default::default(),
        running: Default::default(),
        parking: Default::default(),
    });
    (ctx, git_cache)
}

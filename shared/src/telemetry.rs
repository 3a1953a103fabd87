//! Tracing set-up: one subscriber per process, JSON in production, readable lines locally.

use tracing_subscriber::EnvFilter;

use crate::settings::TelemetrySettings;

/// Installs the global subscriber. A second call (tests start many apps in one process) is a no-op.
pub fn init(settings: &TelemetrySettings) {
    let filter = EnvFilter::try_new(&settings.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = if settings.json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

//! The one typed settings tree (DESIGN §8): `configuration/base.yaml` → `<environment>.yaml` →
//! `GANTRY_<SECTION>__<KEY>` environment variables. Nothing else in Gantry reads the environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    pub api: ApiSettings,
    pub encryption: EncryptionSettings,
    pub worker: WorkerSettings,
    pub telemetry: TelemetrySettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub pool_size: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AmqpSettings {
    pub url: SecretString,
    pub prefix: String,
    pub delivery_limit: u32,
    pub heartbeat_seconds: u16,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiSettings {
    pub host: String,
    pub port: u16,
    pub admin_token: SecretString,
    pub max_body_bytes: usize,
    /// Failed authentications one address may make per minute before it is answered 429.
    #[serde(default = "default_auth_failures_per_minute")]
    pub auth_failures_per_minute: u32,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` names the client: the
    /// failed-authentication limit and the refusal events then count the client, not the proxy.
    /// Empty: the connection's peer is the client, and the header is ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How long an `Idempotency-Key` of `POST /api/changes` is remembered (the workers remove
    /// older ones).
    #[serde(default = "default_idempotency_key_hours")]
    pub idempotency_key_hours: u32,
}

fn default_retention_interval_seconds() -> u64 {
    3600
}

fn default_heartbeat_seconds() -> u64 {
    10
}

fn default_git_fetch_interval_ms() -> u64 {
    0
}

fn default_idempotency_key_hours() -> u32 {
    24
}

fn default_auth_failures_per_minute() -> u32 {
    20
}

#[derive(Debug, Clone, Deserialize)]
pub struct EncryptionSettings {
    pub key_id: String,
    pub key: SecretString,
    #[serde(default)]
    pub previous_keys: BTreeMap<String, SecretString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Planner,
    Runner,
    Results,
}

impl Role {
    /// Its name in the settings (and in `GET /api/workers`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Planner => "planner",
            Role::Runner => "runner",
            Role::Results => "results",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerSettings {
    pub roles: Vec<Role>,
    pub concurrency: usize,
    pub lease_seconds: u64,
    pub reaper_interval_seconds: u64,
    pub max_attempts: i32,
    pub git_cache_dir: PathBuf,
    /// Fetches of one Git remote start at least this many milliseconds apart: a change created
    /// just after a fetch started waits for the next one (it must see the remote as it was when
    /// the change was created, or later), and a burst of creations costs a fetch per interval,
    /// not one per batch. 0 (the default): a fetch whenever one is needed.
    #[serde(default = "default_git_fetch_interval_ms")]
    pub git_fetch_interval_ms: u64,
    pub step_timeout_seconds: u64,
    pub runner_image: String,
    pub runner_network: String,
    pub repo_folder: String,
    pub memory_bytes: i64,
    pub nano_cpus: i64,
    pub pids_limit: i64,
    pub tmp_size: String,
    pub max_log_bytes_per_step: usize,
    pub max_log_line_bytes: usize,
    /// Read and write the step protocol files straight in the step's volume directory when the
    /// Docker engine is on this host (falls back to the Docker API when it is not usable).
    pub local_volume_access: bool,
    /// Step images (label `gantry=true`) this installation used, unused for this long, are removed
    /// from the worker's Docker engine; never one a container uses.
    pub image_ttl_seconds: u64,
    /// How often the image collector looks.
    pub image_gc_interval_seconds: u64,
    /// How often the orphan sweeper removes step containers nobody owns any more (their step is
    /// final, queued again, or its lease expired).
    pub orphan_sweep_interval_seconds: u64,
    /// How often expired records are removed (`Idempotency-Key`s past `api.idempotency_key_hours`).
    #[serde(default = "default_retention_interval_seconds")]
    pub retention_interval_seconds: u64,
    /// The OCI runtime of step containers, as registered with the Docker engine (`crun` after
    /// `dockerd --add-runtime crun=/usr/bin/crun`); empty: the engine's default (runc).
    #[serde(default)]
    pub container_runtime: String,
    /// Step containers started ahead and parked until a claimed step takes one: the most idle
    /// ones this worker keeps (0: none; every step waits for a container made for it).
    pub parked_containers: usize,
    /// Idle parked containers of a shape no step took for this long are removed.
    pub parked_idle_seconds: u64,
    /// How often the worker reports itself in the `workers` table (`GET /api/workers`); three
    /// missed reports and it shows as lost.
    #[serde(default = "default_heartbeat_seconds")]
    pub heartbeat_seconds: u64,
    /// The host name the worker reports; empty: the kernel's (its UTS namespace's) host name.
    #[serde(default)]
    pub host: String,
    /// On SIGTERM, how long running steps may finish before they are stopped and handed back
    /// (queued again for another worker).
    pub shutdown_grace_seconds: u64,
    /// Address of the worker's `/metrics` and `/health` server (port 0 picks a free port).
    pub metrics_host: String,
    pub metrics_port: u16,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    pub level: String,
    pub json: bool,
    /// OTLP/HTTP traces endpoint (e.g. `http://collector:4318/v1/traces`); empty: no export.
    #[serde(default)]
    pub otlp_endpoint: String,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct SettingsError(String);

/// Settings read from files named by `GANTRY_<SECTION>__<KEY>_FILE` variables (the convention of
/// Docker and Kubernetes secrets mounted as files: `GANTRY_DATABASE__URL_FILE=/run/secrets/db`
/// sets `database.url` to the file's content without its trailing newline). They override the
/// files and the plain variables.
fn secret_files(
    vars: impl Iterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>, SettingsError> {
    let mut settings = Vec::new();
    for (name, path) in vars {
        let Some(key) = name
            .strip_prefix("GANTRY_")
            .and_then(|rest| rest.strip_suffix("_FILE"))
        else {
            continue;
        };
        if !key.contains("__") {
            continue; // GANTRY_CONFIG_FILE and the like are not settings
        }
        let content = std::fs::read_to_string(&path)
            .map_err(|e| SettingsError(format!("{name}: reading {path}: {e}")))?;
        let value = content.strip_suffix('\n').unwrap_or(&content);
        let value = value.strip_suffix('\r').unwrap_or(value);
        settings.push((key.to_lowercase().replace("__", "."), value.to_owned()));
    }
    Ok(settings)
}

impl Settings {
    /// Loads `<dir>/base.yaml`, then `<dir>/<environment>.yaml` if present, then the environment
    /// variables, and validates the result.
    pub fn load_from(dir: &Path, environment: &str) -> Result<Self, SettingsError> {
        let mut builder = config::Config::builder();
        for (key, value) in secret_files(std::env::vars())? {
            builder = builder
                .set_override(key, value)
                .map_err(|e| SettingsError(e.to_string()))?;
        }
        let built = builder
            .add_source(config::File::from(dir.join("base.yaml")))
            .add_source(config::File::from(dir.join(format!("{environment}.yaml"))).required(false))
            .add_source(
                config::Environment::with_prefix("GANTRY")
                    .prefix_separator("_")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("worker.roles")
                    .with_list_parse_key("api.trusted_proxies")
                    .try_parsing(true),
            )
            .build()
            .map_err(|e| SettingsError(e.to_string()))?;
        let settings: Settings = built
            .try_deserialize()
            .map_err(|e| SettingsError(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Loads from `GANTRY_CONFIG_DIR` (default `configuration`) and `GANTRY_ENVIRONMENT`
    /// (default `local`): the entry point of the binaries.
    pub fn load() -> Result<Self, SettingsError> {
        let dir = std::env::var("GANTRY_CONFIG_DIR").unwrap_or_else(|_| "configuration".into());
        let environment = std::env::var("GANTRY_ENVIRONMENT").unwrap_or_else(|_| "local".into());
        Self::load_from(Path::new(&dir), &environment)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        use secrecy::ExposeSecret;
        if self.api.admin_token.expose_secret().len() < 16 {
            return Err(SettingsError(
                "api.admin_token must be at least 16 characters".into(),
            ));
        }
        crate::crypto::Cipher::from_settings(&self.encryption)
            .map_err(|e| SettingsError(format!("encryption: {e}")))?;
        if self.worker.concurrency == 0 {
            return Err(SettingsError(
                "worker.concurrency must be at least 1".into(),
            ));
        }
        if self.worker.lease_seconds < 3 {
            return Err(SettingsError(
                "worker.lease_seconds must be at least 3".into(),
            ));
        }
        if self.worker.image_ttl_seconds < 1 || self.worker.image_gc_interval_seconds < 1 {
            return Err(SettingsError(
                "worker.image_ttl_seconds and worker.image_gc_interval_seconds must be at least 1"
                    .into(),
            ));
        }
        if self.worker.max_attempts < 1 {
            return Err(SettingsError(
                "worker.max_attempts must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn a_file_variable_sets_its_key_to_the_files_content() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("url");
        std::fs::write(&url, "postgres://gantry:s3cret@db/gantry\n").unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "a-token-without-newline").unwrap();

        let found = secret_files(vars(&[
            ("GANTRY_DATABASE__URL_FILE", url.to_str().unwrap()),
            ("GANTRY_API__ADMIN_TOKEN_FILE", token.to_str().unwrap()),
            ("GANTRY_CONFIG_FILE", "/not/a/setting"),
            ("HOME_FILE", "/elsewhere"),
            ("GANTRY_API__PORT", "8080"),
        ]))
        .unwrap();

        assert_eq!(
            found,
            [
                (
                    "database.url".to_owned(),
                    "postgres://gantry:s3cret@db/gantry".to_owned()
                ),
                (
                    "api.admin_token".to_owned(),
                    "a-token-without-newline".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn a_missing_file_is_an_error_naming_the_variable() {
        let error = secret_files(vars(&[("GANTRY_ENCRYPTION__KEY_FILE", "/no/such/file")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("GANTRY_ENCRYPTION__KEY_FILE"), "{error}");
        assert!(error.contains("/no/such/file"), "{error}");
    }
}

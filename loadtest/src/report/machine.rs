//! What the benchmark ran on. Every field is best effort: what cannot be read says so.

use std::process::Command;

use gantry_shared::settings::Settings;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub docker: String,
    pub postgres: String,
    pub rabbitmq: String,
    /// When the run started (RFC 3339, UTC).
    pub date: String,
}

const UNKNOWN: &str = "unknown";

pub async fn describe(settings: &Settings) -> Machine {
    Machine {
        cpu: cpu_model().unwrap_or_else(|| UNKNOWN.into()),
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        memory_gib: memory_gib().unwrap_or_default(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| UNKNOWN.into(), |k| k.trim().to_owned()),
        docker: docker_version().await.unwrap_or_else(|| UNKNOWN.into()),
        postgres: postgres_version(settings)
            .await
            .unwrap_or_else(|| UNKNOWN.into()),
        rabbitmq: rabbitmq_version().unwrap_or_else(|| UNKNOWN.into()),
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}

fn memory_gib() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = info
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((kib / 1024.0 / 1024.0 * 10.0).round() / 10.0)
}

async fn docker_version() -> Option<String> {
    let docker = crate::scenarios::raw::connect_docker().await.ok()?;
    let version = docker.version().await.ok()?;
    Some(format!(
        "{} (API {})",
        version.version.unwrap_or_default(),
        version.api_version.unwrap_or_default()
    ))
}

async fn postgres_version(settings: &Settings) -> Option<String> {
    let (client, connection) =
        tokio_postgres::connect(settings.database.url.expose_secret(), tokio_postgres::NoTls)
            .await
            .ok()?;
    tokio::spawn(connection);
    let row = client.query_one("SHOW server_version", &[]).await.ok()?;
    Some(row.get(0))
}

/// The AMQP client library does not expose the broker's server properties, so the version comes
/// from the broker's package (the broker runs on this host in the bench set-up).
fn rabbitmq_version() -> Option<String> {
    let output = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "rabbitmq-server"])
        .output()
        .ok()?;
    let version = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !version.is_empty())
        .then(|| format!("{} (Debian package)", version.trim()))
}

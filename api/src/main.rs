use anyhow::Context;
use clap::{Parser, Subcommand};
use gantry_api::{Application, migrate, rotate, shutdown};
use gantry_shared::{settings::Settings, telemetry};

/// Gantry's REST API server.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Clone, Copy)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Re-encrypt every stored ciphertext under the current key (`encryption.key_id`), reading
    /// the old ones with `encryption.previous_keys`, and exit.
    RotateKey,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load().context("loading the settings")?;
    let _telemetry = telemetry::init(&settings.telemetry, "gantry-api");
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => migrate::run(&settings.database).await,
        Command::RotateKey => rotate::run(&settings).await,
        Command::Serve => {
            let application = Application::build(settings).await?;
            application.run_until_stopped(shutdown::on_signal()).await
        }
    }
}

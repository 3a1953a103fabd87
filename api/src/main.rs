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
    /// Print the OpenAPI 3.1 document (also served at `/api-docs/openapi.json`) and exit.
    Openapi,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi = command {
        println!("{}", gantry_api::openapi::document().to_pretty_json()?);
        return Ok(());
    }
    let settings = Settings::load().context("loading the settings")?;
    let _telemetry = telemetry::init(&settings.telemetry, "gantry-api");
    match command {
        Command::Openapi => Ok(()),
        Command::Migrate => migrate::run(&settings.database).await,
        Command::RotateKey => rotate::run(&settings).await,
        Command::Serve => {
            let application = Application::build(settings).await?;
            application.run_until_stopped(shutdown::on_signal()).await
        }
    }
}

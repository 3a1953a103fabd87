//! `gantry dev …`: tools for the developers of a project's repository.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::Context;

/// Where a repository's custom step Dockerfile lives.
const DOCKERFILE: &str = ".gantry/Dockerfile";

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Write the server's default step Dockerfile to .gantry/Dockerfile, to customise it.
    #[command(
        after_help = "Run it at the root of the project's repository, edit the file, then commit it.\n\nExample:\n  cd ~/src/web && gantry dev create-dockerfile && git add .gantry/Dockerfile"
    )]
    CreateDockerfile {
        /// Overwrite an existing .gantry/Dockerfile.
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(context: &Context, command: DevCommand) -> anyhow::Result<ExitCode> {
    let DevCommand::CreateDockerfile { force } = command;
    let path = PathBuf::from(DOCKERFILE);
    if path.exists() && !force {
        bail!("{DOCKERFILE} already exists; pass --force to overwrite it");
    }
    let client = &context.client;
    let request = client.request(Method::GET, "/api/downloads/Dockerfile");
    let text = client
        .send(request)
        .await?
        .text()
        .await
        .context("downloading the Dockerfile")?;
    std::fs::create_dir_all(".gantry").context("creating .gantry")?;
    std::fs::write(&path, text).with_context(|| format!("writing {DOCKERFILE}"))?;
    let message = format!("wrote {DOCKERFILE}; edit it, then commit it to the repository");
    context
        .output
        .done(&json!({ "path": DOCKERFILE }), &message);
    Ok(ExitCode::SUCCESS)
}

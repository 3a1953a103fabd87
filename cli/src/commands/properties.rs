//! `gantry properties …`: the version history of a project's or an environment's properties.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::Context;
use super::documents::Owner;
use crate::output::{self, Column};

/// Whose properties: a project's, or with `--environment-code` an environment's.
#[derive(Debug, Args)]
pub struct PropertiesOwner {
    /// The project's code.
    #[arg(long)]
    pub project_code: String,
    /// The environment's code, for an environment's properties.
    #[arg(long)]
    pub environment_code: Option<String>,
}

impl PropertiesOwner {
    fn owner(&self) -> Owner<'_> {
        match &self.environment_code {
            Some(environment) => Owner::Environment(&self.project_code, environment),
            None => Owner::Project(&self.project_code),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum PropertiesCommand {
    /// List the versions of the properties, newest first.
    #[command(
        after_help = "Examples:\n  gantry properties versions --project-code web\n  gantry properties versions --project-code web --environment-code prod"
    )]
    Versions(PropertiesOwner),
    /// Print one version of the properties (the JSON document).
    #[command(
        after_help = "Example:\n  gantry properties show-version --project-code web --version 3"
    )]
    ShowVersion {
        #[command(flatten)]
        owner: PropertiesOwner,
        /// The version to print (1 is the empty document every owner starts with).
        #[arg(long)]
        version: i64,
    },
}

const COLUMNS: &[Column] = &[
    ("version", "version"),
    ("created", "created_at"),
    ("created by", "created_by"),
    ("by step", "step_id"),
];

pub async fn run(context: &Context, command: PropertiesCommand) -> anyhow::Result<ExitCode> {
    match command {
        PropertiesCommand::Versions(owner) => {
            let id = owner.owner().properties_id(context).await?;
            let path = format!("/api/properties/{id}/versions");
            let versions = context.client.list(&path, &[], None).await?;
            context.output.list(&versions, COLUMNS);
        }
        PropertiesCommand::ShowVersion { owner, version } => {
            let id = owner.owner().properties_id(context).await?;
            let path = format!("/api/properties/{id}/versions/{version}");
            let shown = context.client.get(&path).await?;
            match context.output.is_json() {
                true => output::json(&shown["data"]),
                false => output::json(&shown["data"]["attributes"]["data"]),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `gantry environment …`: environments of a project, and their properties and settings.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use super::Context;
use super::documents::{self, Owner, SetPropertiesArgs, ShowPropertiesArgs};
use super::edit_properties;
use super::project::ProjectCode;
use super::settings::{self, SetSettingsArgs};
use crate::client::document;
use crate::output::Column;

#[derive(Debug, Args)]
pub struct EnvironmentCode {
    /// The project's code.
    #[arg(long)]
    pub project_code: String,
    /// The environment's code.
    #[arg(long)]
    pub environment_code: String,
}

impl EnvironmentCode {
    fn owner(&self) -> Owner<'_> {
        Owner::Environment(&self.project_code, &self.environment_code)
    }

    fn describe(&self) -> String {
        self.owner().describe()
    }
}

#[derive(Debug, Subcommand)]
pub enum EnvironmentCommand {
    /// Create an environment in a project.
    #[command(
        after_help = "Example:\n  gantry environment create --project-code web --environment-code prod --name Production"
    )]
    Create {
        #[command(flatten)]
        environment: EnvironmentCode,
        /// A human name.
        #[arg(long)]
        name: String,
        /// A longer description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List a project's environments.
    #[command(after_help = "Example:\n  gantry environment list --project-code web")]
    List(ProjectCode),
    /// Show an environment.
    #[command(
        after_help = "Example:\n  gantry environment show --project-code web --environment-code prod"
    )]
    Show(EnvironmentCode),
    /// Archive an environment: no change can be created for it any more.
    #[command(
        after_help = "Example:\n  gantry environment archive --project-code web --environment-code old"
    )]
    Archive(EnvironmentCode),
    /// Print the environment's properties (the JSON document on stdout, its version on stderr).
    #[command(
        after_help = "Example:\n  gantry environment show-properties --project-code web --environment-code prod"
    )]
    ShowProperties {
        #[command(flatten)]
        environment: EnvironmentCode,
        #[command(flatten)]
        args: ShowPropertiesArgs,
    },
    /// Replace the environment's properties with a JSON file.
    #[command(
        after_help = "Example:\n  gantry environment set-properties --project-code web --environment-code prod \\\n      --file-path props.json --confirm"
    )]
    SetProperties {
        #[command(flatten)]
        environment: EnvironmentCode,
        #[command(flatten)]
        args: SetPropertiesArgs,
    },
    /// Edit the environment's properties in $EDITOR (then $VISUAL, then vi).
    #[command(
        after_help = "Errors (invalid JSON, a refused document, a concurrent edit) reopen the editor with\n\
the error in `//` lines on top; save unchanged to cancel.\n\n\
Example:\n  gantry environment edit-properties --project-code web --environment-code prod"
    )]
    EditProperties(EnvironmentCode),
    /// Show the environment's settings and the settings in effect.
    #[command(
        after_help = "Example:\n  gantry environment show-settings --project-code web --environment-code prod"
    )]
    ShowSettings(EnvironmentCode),
    /// Replace the environment's settings with a JSON file.
    #[command(
        after_help = "Example:\n  gantry environment set-settings --project-code web --environment-code prod \\\n      --file-path settings.json --version 2"
    )]
    SetSettings {
        #[command(flatten)]
        environment: EnvironmentCode,
        #[command(flatten)]
        args: SetSettingsArgs,
    },
}

const COLUMNS: &[Column] = &[
    ("code", "code"),
    ("project", "project_code"),
    ("name", "name"),
    ("description", "description"),
    ("archived", "archived"),
    ("created", "created_at"),
];

pub async fn run(context: &Context, command: EnvironmentCommand) -> anyhow::Result<ExitCode> {
    let client = &context.client;
    match command {
        EnvironmentCommand::Create {
            environment,
            name,
            description,
        } => create(context, &environment, &name, description).await?,
        EnvironmentCommand::List(project) => {
            let path = format!("/api/projects/{}/environments", project.project_code);
            context
                .output
                .list(&client.list(&path, &[], None).await?, COLUMNS);
        }
        EnvironmentCommand::Show(environment) => {
            let shown = client.get(&environment.owner().path()).await?;
            context.output.resource(&shown["data"], COLUMNS);
        }
        EnvironmentCommand::Archive(environment) => {
            let path = environment.owner().path();
            let archived = client
                .patch(&path, &document(json!({"archived": true})))
                .await?;
            let message = format!("{} archived", environment.describe());
            context.output.done(&archived["data"], &message);
        }
        EnvironmentCommand::ShowProperties { environment, args } => {
            documents::show_properties(context, environment.owner(), &args).await?
        }
        EnvironmentCommand::SetProperties { environment, args } => {
            documents::set_properties(context, environment.owner(), &args).await?
        }
        EnvironmentCommand::EditProperties(environment) => {
            edit_properties::run(context, environment.owner()).await?
        }
        EnvironmentCommand::ShowSettings(environment) => {
            settings::show_settings(context, environment.owner()).await?
        }
        EnvironmentCommand::SetSettings { environment, args } => {
            settings::set_settings(context, environment.owner(), &args).await?
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn create(
    context: &Context,
    environment: &EnvironmentCode,
    name: &str,
    description: Option<String>,
) -> anyhow::Result<()> {
    let path = format!("/api/projects/{}/environments", environment.project_code);
    let attributes =
        json!({"code": environment.environment_code, "name": name, "description": description});
    let created = context
        .client
        .post(&path, Some(document(attributes)))
        .await?;
    let message = format!("{} created", environment.describe());
    context.output.done(&created["data"], &message);
    Ok(())
}

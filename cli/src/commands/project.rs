//! `gantry project …`: projects, and their properties, settings and Git remotes.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use super::Context;
use super::documents::{self, Owner, SetPropertiesArgs, ShowPropertiesArgs};
use super::edit_properties;
use super::git_remote::{self, AddGitRemoteArgs, GitRemoteName};
use super::settings::{self, SetSettingsArgs};
use crate::client::document;
use crate::output::Column;

#[derive(Debug, Args)]
pub struct ProjectCode {
    /// The project's code.
    #[arg(long)]
    pub project_code: String,
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project.
    #[command(
        after_help = "Example:\n  gantry project create --project-code web --name 'Web shop'"
    )]
    Create {
        #[command(flatten)]
        project: ProjectCode,
        /// A human name.
        #[arg(long)]
        name: String,
        /// A longer description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List the projects.
    #[command(after_help = "Example:\n  gantry project list -o json")]
    List,
    /// Show a project.
    #[command(after_help = "Example:\n  gantry project show --project-code web")]
    Show(ProjectCode),
    /// Archive a project: no change can be created for it any more.
    #[command(after_help = "Example:\n  gantry project archive --project-code web")]
    Archive(ProjectCode),
    /// Print the project's properties (the JSON document on stdout, its version on stderr).
    #[command(
        after_help = "Examples:\n  gantry project show-properties --project-code web > props.json\n  gantry project show-properties --project-code web --version 3"
    )]
    ShowProperties {
        #[command(flatten)]
        project: ProjectCode,
        #[command(flatten)]
        args: ShowPropertiesArgs,
    },
    /// Replace the project's properties with a JSON file.
    #[command(
        after_help = "Example:\n  gantry project set-properties --project-code web --file-path props.json --version 3 --confirm"
    )]
    SetProperties {
        #[command(flatten)]
        project: ProjectCode,
        #[command(flatten)]
        args: SetPropertiesArgs,
    },
    /// Edit the project's properties in $EDITOR (then $VISUAL, then vi), safely against
    /// concurrent edits.
    #[command(
        after_help = "The latest version opens in the editor; on save it is uploaded as an edit of that\n\
version. If it is not valid JSON or the API refuses it, the editor reopens with the error\n\
in `//` lines on top (removed again before upload). If someone else changed the properties\n\
meanwhile, re-run the command to edit the latest version. Save unchanged to cancel.\n\n\
Example:\n  EDITOR=nano gantry project edit-properties --project-code web"
    )]
    EditProperties(ProjectCode),
    /// Show the project's settings and the settings in effect.
    #[command(after_help = "Example:\n  gantry project show-settings --project-code web")]
    ShowSettings(ProjectCode),
    /// Replace the project's settings with a JSON file.
    #[command(
        after_help = "Example:\n  echo '{\"step_timeout\": 600}' > settings.json\n  gantry project set-settings --project-code web --file-path settings.json"
    )]
    SetSettings {
        #[command(flatten)]
        project: ProjectCode,
        #[command(flatten)]
        args: SetSettingsArgs,
    },
    /// Add a Git remote that changes can fetch from.
    #[command(
        after_help = "Example:\n  gantry project add-git-remote --project-code web --name origin \\\n      --git-url https://git.example.com/web.git --user deploy --password-file ~/.web-token"
    )]
    AddGitRemote(AddGitRemoteArgs),
    /// List the project's Git remotes (credentials are never shown).
    #[command(after_help = "Example:\n  gantry project list-git-remotes --project-code web")]
    ListGitRemotes(ProjectCode),
    /// Archive a Git remote: no new change can use it.
    #[command(
        after_help = "Example:\n  gantry project archive-git-remote --project-code web --name origin"
    )]
    ArchiveGitRemote(GitRemoteName),
}

const COLUMNS: &[Column] = &[
    ("code", "code"),
    ("name", "name"),
    ("description", "description"),
    ("archived", "archived"),
    ("created", "created_at"),
];

impl ProjectCode {
    fn owner(&self) -> Owner<'_> {
        Owner::Project(&self.project_code)
    }
}

pub async fn run(context: &Context, command: ProjectCommand) -> anyhow::Result<ExitCode> {
    let client = &context.client;
    match command {
        ProjectCommand::Create {
            project,
            name,
            description,
        } => create(context, &project, &name, description).await?,
        ProjectCommand::List => {
            let projects = client.list("/api/projects", &[], None).await?;
            context.output.list(&projects, COLUMNS);
        }
        ProjectCommand::Show(project) => {
            let shown = client.get(&project.owner().path()).await?;
            context.output.resource(&shown["data"], COLUMNS);
        }
        ProjectCommand::Archive(project) => {
            let path = project.owner().path();
            let archived = client
                .patch(&path, &document(json!({"archived": true})))
                .await?;
            let message = format!("project {} archived", project.project_code);
            context.output.done(&archived["data"], &message);
        }
        ProjectCommand::ShowProperties { project, args } => {
            documents::show_properties(context, project.owner(), &args).await?
        }
        ProjectCommand::SetProperties { project, args } => {
            documents::set_properties(context, project.owner(), &args).await?
        }
        ProjectCommand::EditProperties(project) => {
            edit_properties::run(context, project.owner()).await?
        }
        ProjectCommand::ShowSettings(project) => {
            settings::show_settings(context, project.owner()).await?
        }
        ProjectCommand::SetSettings { project, args } => {
            settings::set_settings(context, project.owner(), &args).await?
        }
        ProjectCommand::AddGitRemote(args) => git_remote::add(context, &args).await?,
        ProjectCommand::ListGitRemotes(project) => {
            git_remote::list(context, &project.project_code).await?
        }
        ProjectCommand::ArchiveGitRemote(remote) => git_remote::archive(context, &remote).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn create(
    context: &Context,
    project: &ProjectCode,
    name: &str,
    description: Option<String>,
) -> anyhow::Result<()> {
    let attributes =
        json!({"code": project.project_code, "name": name, "description": description});
    let created = context
        .client
        .post("/api/projects", Some(document(attributes)))
        .await?;
    let message = format!("project {} created", project.project_code);
    context.output.done(&created["data"], &message);
    Ok(())
}

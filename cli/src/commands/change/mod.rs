//! `gantry change …`: run an action (`create`), follow it, look at it, cancel or retry it.

mod logs;
mod tree;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::Context;
use crate::client::document;
use crate::exit;
use crate::output::{self, Column, attr};

pub use tree::{StepRow, rows as step_rows};

#[derive(Debug, Args)]
pub struct ChangeId {
    /// The change's id.
    #[arg(long)]
    pub change_id: String,
}

/// How `create` and `retry` follow the new change.
#[derive(Debug, Args)]
pub struct FollowArgs {
    /// Print the change's log lines as they are written.
    #[arg(long, conflicts_with = "background")]
    pub follow_logs: bool,
    /// Print the change's id and return at once instead of following it.
    #[arg(long)]
    pub background: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The project's code.
    #[arg(long)]
    pub project_code: String,
    /// The environment to run the action against.
    #[arg(long)]
    pub environment_code: String,
    /// The project's Git remote to fetch the action from.
    #[arg(long)]
    pub git_remote_name: String,
    /// The branch, tag or commit to run.
    #[arg(long)]
    pub git_rev: String,
    /// The action to run.
    #[arg(long, default_value = "default")]
    pub action: String,
    /// A JSON file with the change's metadata (an object).
    #[arg(long)]
    pub metadata_path: Option<PathBuf>,
    #[command(flatten)]
    pub follow: FollowArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only changes of this project.
    #[arg(long)]
    pub project_code: Option<String>,
    /// Only changes of this environment.
    #[arg(long)]
    pub environment_code: Option<String>,
    /// Only changes with this status (several separated by commas).
    #[arg(long)]
    pub status: Option<String>,
    /// Only changes running this action.
    #[arg(long)]
    pub action: Option<String>,
    /// Only changes created by this user.
    #[arg(long)]
    pub created_by: Option<String>,
    /// Only changes created after this RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only changes created before this RFC 3339 time.
    #[arg(long)]
    pub until: Option<String>,
    /// Show at most this many changes, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

const FOLLOW_HELP: &str = "Without --background the change is followed to its end: on a terminal as a live step tree\n\
with a progress line, otherwise as one line per status transition. Exit codes: 0 when the\n\
change succeeded, 3 when it ended in error, 4 when it was cancelled, 1 when the command failed.";

#[derive(Debug, Subcommand)]
pub enum ChangeCommand {
    /// Run an action of a project's repository in an environment.
    #[command(after_help = format!("{FOLLOW_HELP}\n\nExamples:\n  gantry change create --project-code web --environment-code prod \\\n      --git-remote-name origin --git-rev main --action deploy --follow-logs\n  id=$(gantry change create … --background)"))]
    Create(CreateArgs),
    /// List changes, newest first.
    #[command(
        after_help = "Example:\n  gantry change list --project-code web --status error,cancelled --since 2026-01-01T00:00:00Z"
    )]
    List(ListArgs),
    /// Show a change and its step tree.
    #[command(after_help = "Example:\n  gantry change show --change-id 0190c7e4-…")]
    Show(ChangeId),
    /// Print a change's log; with --follow, until the change is final.
    #[command(after_help = "Example:\n  gantry change show-logs --change-id 0190c7e4-… --follow")]
    ShowLogs {
        #[command(flatten)]
        change: ChangeId,
        /// Keep printing lines as they are written, until the change is final.
        #[arg(long)]
        follow: bool,
    },
    /// Show the project and environment properties the change used.
    #[command(after_help = "Example:\n  gantry change show-properties --change-id 0190c7e4-…")]
    ShowProperties(ChangeId),
    /// Cancel a change: its running steps are stopped.
    #[command(after_help = "Example:\n  gantry change cancel --change-id 0190c7e4-…")]
    Cancel(ChangeId),
    /// Retry a change that ended in error or was cancelled: a new change on the same commit that
    /// keeps the steps that succeeded.
    #[command(after_help = format!("{FOLLOW_HELP}\n\nExample:\n  gantry change retry --change-id 0190c7e4-… --follow-logs"))]
    Retry {
        #[command(flatten)]
        change: ChangeId,
        #[command(flatten)]
        follow: FollowArgs,
    },
}

const COLUMNS: &[Column] = &[
    ("id", "id"),
    ("project", "project_code"),
    ("environment", "environment_code"),
    ("action", "action"),
    ("git rev", "git_rev"),
    ("commit", "commit_sha"),
    ("status", "status_code"),
    ("created by", "created_by"),
    ("created", "created_at"),
    ("started", "started_at"),
    ("finished", "finished_at"),
    ("retried from", "retried_from"),
];

pub async fn run(context: &Context, command: ChangeCommand) -> anyhow::Result<ExitCode> {
    let client = &context.client;
    match command {
        ChangeCommand::Create(args) => {
            let created = client
                .post("/api/changes", Some(create_body(&args)?))
                .await?;
            return follow(context, &created, &args.follow).await;
        }
        ChangeCommand::Retry {
            change,
            follow: how,
        } => {
            let path = format!("/api/changes/{}/retry", change.change_id);
            let created = client.post(&path, None).await?;
            return follow(context, &created, &how).await;
        }
        ChangeCommand::List(args) => {
            let changes = client
                .list("/api/changes", &filters(&args), Some(args.limit))
                .await?;
            let columns = [
                COLUMNS[0], COLUMNS[1], COLUMNS[2], COLUMNS[3], COLUMNS[6], COLUMNS[8],
            ];
            context.output.list(&changes, &columns);
        }
        ChangeCommand::Show(change) => show(context, &change.change_id).await?,
        ChangeCommand::ShowLogs { change, follow } => {
            logs::show(context, &change.change_id, follow).await?
        }
        ChangeCommand::ShowProperties(change) => {
            show_properties(context, &change.change_id).await?
        }
        ChangeCommand::Cancel(change) => {
            let path = format!("/api/changes/{}", change.change_id);
            client.delete(&path).await?;
            let cancelled = client.get(&path).await?;
            let message = format!("change {} cancelled", change.change_id);
            context.output.done(&cancelled["data"], &message);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn create_body(args: &CreateArgs) -> anyhow::Result<Value> {
    let metadata = match &args.metadata_path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let metadata: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", path.display()))?;
            if !metadata.is_object() {
                bail!("{} must hold a JSON object", path.display());
            }
            metadata
        }
        None => json!({}),
    };
    Ok(document(json!({
        "project_code": args.project_code,
        "environment_code": args.environment_code,
        "git_remote_name": args.git_remote_name,
        "git_rev": args.git_rev,
        "action": args.action,
        "metadata": metadata,
    })))
}

/// Prints a new change's id (`--background`) or follows it to its end; the exit code says how it
/// ended.
async fn follow(context: &Context, created: &Value, how: &FollowArgs) -> anyhow::Result<ExitCode> {
    let id = created["data"]["id"]
        .as_str()
        .context("the API returned no change id")?;
    if how.background {
        context.output.done(&created["data"], id);
        return Ok(ExitCode::SUCCESS);
    }
    let document = watch::watch(context, id, how.follow_logs).await?;
    Ok(exit::for_change_status(attr(
        &document["data"],
        "status_code",
    )))
}

fn filters(args: &ListArgs) -> Vec<(String, String)> {
    [
        ("filter[project_code_eq]", &args.project_code),
        ("filter[environment_code_eq]", &args.environment_code),
        ("filter[status_code_in]", &args.status),
        ("filter[action_eq]", &args.action),
        ("filter[created_by_eq]", &args.created_by),
        ("filter[created_at_gt]", &args.since),
        ("filter[created_at_lt]", &args.until),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.as_ref().map(|v| (key.to_owned(), v.clone())))
    .chain([("limit".to_owned(), args.limit.min(500).to_string())])
    .collect()
}

async fn show(context: &Context, id: &str) -> anyhow::Result<()> {
    let document = context
        .client
        .get(&format!("/api/changes/{id}?include=steps"))
        .await?;
    if context.output.is_json() {
        output::json(&document["data"]);
        return Ok(());
    }
    context.output.resource(&document["data"], COLUMNS);
    print_steps(&tree::rows(&document));
    Ok(())
}

/// The step tree as a table, names indented under their parent.
pub fn print_steps(rows: &[StepRow]) {
    let table = rows
        .iter()
        .map(|row| {
            vec![
                format!("{}{}", "  ".repeat(row.depth), row.name),
                row.status.clone(),
                row.seconds.map(|s| format!("{s:.2}s")).unwrap_or_default(),
                row.children_run.clone().unwrap_or_default(),
                row.id.clone(),
            ]
        })
        .collect();
    output::print_table(&["step", "status", "took", "children run", "id"], table);
}

async fn show_properties(context: &Context, id: &str) -> anyhow::Result<()> {
    let used = context
        .client
        .get(&format!("/api/changes/{id}/properties"))
        .await?;
    if let Some(detail) = used["meta"]["detail"].as_str() {
        eprintln!("{detail}");
    }
    if context.output.is_json() {
        output::json(&used["data"]);
        return Ok(());
    }
    for level in ["project", "environment"] {
        let properties = &used["data"]["attributes"][level];
        out!(
            "{level} properties, version {}:",
            output::text(&properties["version"])
        );
        output::json(&properties["data"]);
    }
    Ok(())
}

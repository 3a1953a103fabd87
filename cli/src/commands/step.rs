//! `gantry step …`: the steps of a change; `continue` lets a waiting step go on.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::Context;
use super::change::{self, ChangeId};
use crate::output::Column;

#[derive(Debug, Args)]
pub struct StepId {
    /// The step's id (see `gantry step list`).
    #[arg(long)]
    pub step_id: String,
}

#[derive(Debug, Subcommand)]
pub enum StepCommand {
    /// List a change's steps as a tree, with their ids.
    #[command(after_help = "Example:\n  gantry step list --change-id 0190c7e4-…")]
    List(ChangeId),
    /// Show a step, with the merged properties it ran with.
    #[command(after_help = "Example:\n  gantry step show --step-id 0190c7e5-…")]
    Show(StepId),
    /// Continue a step that waits (a `wait` step of the manifest).
    #[command(after_help = "Example:\n  gantry step continue --step-id 0190c7e5-…")]
    Continue(StepId),
}

const COLUMNS: &[Column] = &[
    ("id", "id"),
    ("name", "name"),
    ("action", "action"),
    ("status", "status_code"),
    ("attempt", "attempt"),
    ("exit code", "exit_code"),
    ("started", "started_at"),
    ("finished", "finished_at"),
    ("project properties", "project_properties_version"),
    ("environment properties", "environment_properties_version"),
    ("properties", "properties"),
];

pub async fn run(context: &Context, command: StepCommand) -> anyhow::Result<ExitCode> {
    let client = &context.client;
    match command {
        StepCommand::List(change) => {
            let path = format!("/api/changes/{}?include=steps", change.change_id);
            let document = client.get(&path).await?;
            let rows = change::step_rows(&document);
            match context.output.is_json() {
                // In tree order, like the table.
                true => {
                    let steps = document["included"].as_array().cloned().unwrap_or_default();
                    let ordered: Vec<_> = rows
                        .iter()
                        .filter_map(|row| steps.iter().find(|s| s["id"] == row.id.as_str()))
                        .cloned()
                        .collect();
                    context.output.list(&ordered, COLUMNS);
                }
                false => change::print_steps(&rows),
            }
        }
        StepCommand::Show(step) => {
            let shown = client.get(&format!("/api/steps/{}", step.step_id)).await?;
            context.output.resource(&shown["data"], COLUMNS);
        }
        StepCommand::Continue(step) => {
            let path = format!("/api/steps/{}/continue", step.step_id);
            let continued = client.post(&path, None).await?;
            let message = format!("step {} continued", step.step_id);
            context.output.done(&continued["data"], &message);
        }
    }
    Ok(ExitCode::SUCCESS)
}

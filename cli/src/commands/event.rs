//! `gantry event list`: the audit log, newest first.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::Context;
use crate::output::Column;

#[derive(Debug, Args)]
pub struct EventFilters {
    /// Only events of this type (e.g. api:projects:create); repeat for several.
    #[arg(long = "type")]
    pub types: Vec<String>,
    /// Only events about this target (e.g. /projects/web).
    #[arg(long)]
    pub target: Option<String>,
    /// Only events caused by this user.
    #[arg(long)]
    pub actor: Option<String>,
    /// Only events after this RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only events before this RFC 3339 time.
    #[arg(long)]
    pub until: Option<String>,
    /// Show at most this many events.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// List audit events, newest first.
    #[command(
        after_help = "Example:\n  gantry event list --type api:projects:create --actor admin --since 2026-01-01T00:00:00Z"
    )]
    List(EventFilters),
}

const COLUMNS: &[Column] = &[
    ("id", "id"),
    ("time", "created_at"),
    ("type", "event_type"),
    ("actor", "actor"),
    ("target", "target"),
    ("payload", "payload"),
];

pub async fn run(context: &Context, command: EventCommand) -> anyhow::Result<ExitCode> {
    let EventCommand::List(filters) = command;
    let query = query(&filters);
    let events = context
        .client
        .list("/api/events", &query, Some(filters.limit))
        .await?;
    context.output.list(&events, COLUMNS);
    Ok(ExitCode::SUCCESS)
}

fn query(filters: &EventFilters) -> Vec<(String, String)> {
    let types = (!filters.types.is_empty()).then(|| filters.types.join(","));
    [
        ("filter[event_type_in]", &types),
        ("filter[target_eq]", &filters.target),
        ("filter[actor_eq]", &filters.actor),
        ("filter[created_at_gt]", &filters.since),
        ("filter[created_at_lt]", &filters.until),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.as_ref().map(|v| (key.to_owned(), v.clone())))
    .chain([("limit".to_owned(), filters.limit.min(500).to_string())])
    .collect()
}

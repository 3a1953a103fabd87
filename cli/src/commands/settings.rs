//! The settings of a project or an environment (versioned like properties; see DESIGN §6):
//! `gantry project|environment show-settings|set-settings`.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::Context;
use super::documents::{Owner, read_json_object};
use crate::client::document;
use crate::output::{self, text};

#[derive(Debug, Args)]
pub struct SetSettingsArgs {
    /// The JSON file holding the whole new settings document.
    #[arg(long)]
    pub file_path: PathBuf,
    /// The version the file was made from: the API refuses the write if the settings moved on.
    #[arg(long)]
    pub version: Option<i64>,
}

pub async fn show_settings(context: &Context, owner: Owner<'_>) -> anyhow::Result<()> {
    let settings = context
        .client
        .get(&format!("{}/settings", owner.path()))
        .await?;
    let data = &settings["data"];
    if context.output.is_json() {
        output::json(data);
        return Ok(());
    }
    let attributes = &data["attributes"];
    out!(
        "settings of {}, version {}",
        owner.describe(),
        attributes["version"]
    );
    let effective = attributes["effective"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let rows = effective
        .iter()
        .map(|(key, value)| vec![key.clone(), text(&attributes["data"][key]), text(value)])
        .collect();
    output::print_table(&["setting", "set here", "in effect"], rows);
    Ok(())
}

pub async fn set_settings(
    context: &Context,
    owner: Owner<'_>,
    args: &SetSettingsArgs,
) -> anyhow::Result<()> {
    let mut attributes = json!({ "data": read_json_object(&args.file_path)? });
    if let Some(version) = args.version {
        attributes["version"] = json!(version);
    }
    let path = format!("{}/settings", owner.path());
    let saved = context.client.patch(&path, &document(attributes)).await?;
    let version = &saved["data"]["attributes"]["version"];
    let message = format!(
        "the settings of {} saved as version {version}",
        owner.describe()
    );
    context.output.done(&saved["data"], &message);
    Ok(())
}

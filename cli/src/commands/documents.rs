//! The properties of a project or an environment: show and set (editing is in
//! [`super::edit_properties`]). `gantry project …` and `gantry environment …` share these
//! commands through [`Owner`].

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::{Value, json};

use super::Context;
use crate::client::document;
use crate::output;

/// A project, or an environment of one.
pub enum Owner<'a> {
    Project(&'a str),
    Environment(&'a str, &'a str),
}

impl Owner<'_> {
    pub fn path(&self) -> String {
        match self {
            Owner::Project(p) => format!("/api/projects/{p}"),
            Owner::Environment(p, e) => format!("/api/projects/{p}/environments/{e}"),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Owner::Project(p) => format!("project {p}"),
            Owner::Environment(p, e) => format!("environment {e} of project {p}"),
        }
    }

    pub(super) fn command(&self, verb: &str) -> String {
        match self {
            Owner::Project(p) => format!("gantry project {verb} --project-code {p}"),
            Owner::Environment(p, e) => {
                format!("gantry environment {verb} --project-code {p} --environment-code {e}")
            }
        }
    }

    /// The id of the owner's properties document.
    pub async fn properties_id(&self, context: &Context) -> anyhow::Result<String> {
        let owner = context.client.get(&self.path()).await?;
        owner["data"]["relationships"]["properties"]["data"]["id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("the API named no properties of {}", self.describe()))
    }
}

#[derive(Debug, Args)]
pub struct ShowPropertiesArgs {
    /// Show this earlier version instead of the latest.
    #[arg(long)]
    pub version: Option<i64>,
}

#[derive(Debug, Args)]
pub struct SetPropertiesArgs {
    /// The JSON file holding the whole new document.
    #[arg(long)]
    pub file_path: PathBuf,
    /// The version the file was made from: the API refuses the write if the properties moved on.
    #[arg(long)]
    pub version: Option<i64>,
    /// Replace without asking (required when stdin is not a terminal).
    #[arg(long)]
    pub confirm: bool,
}

/// Prints the document on stdout (so it can be saved and set again) and its version on stderr.
pub async fn show_properties(
    context: &Context,
    owner: Owner<'_>,
    args: &ShowPropertiesArgs,
) -> anyhow::Result<()> {
    let id = owner.properties_id(context).await?;
    let path = match args.version {
        Some(version) => format!("/api/properties/{id}/versions/{version}"),
        None => format!("/api/properties/{id}"),
    };
    let properties = context.client.get(&path).await?;
    let data = &properties["data"];
    match context.output.is_json() {
        true => output::json(data),
        false => {
            eprintln!(
                "# properties of {}, version {}",
                owner.describe(),
                data["attributes"]["version"]
            );
            output::json(&data["attributes"]["data"]);
        }
    }
    Ok(())
}

pub async fn set_properties(
    context: &Context,
    owner: Owner<'_>,
    args: &SetPropertiesArgs,
) -> anyhow::Result<()> {
    let data = read_json_object(&args.file_path)?;
    let what = format!("the properties of {}", owner.describe());
    if !args.confirm {
        if !std::io::stdin().is_terminal() {
            bail!(
                "set-properties replaces {what} as a whole: pass --confirm (stdin is not a terminal to ask on)"
            );
        }
        let question = format!("Replace {what} with {}?", args.file_path.display());
        let confirmed = dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact()
            .context("asking for confirmation")?;
        if !confirmed {
            bail!("not confirmed: {what} were not changed");
        }
    }
    let id = owner.properties_id(context).await?;
    let saved = upload(context, &id, data, args.version).await?;
    let version = &saved["data"]["attributes"]["version"];
    context.output.done(
        &saved["data"],
        &format!("{what} saved as version {version}"),
    );
    Ok(())
}

pub(super) async fn upload(
    context: &Context,
    id: &str,
    data: Value,
    version: Option<i64>,
) -> anyhow::Result<Value> {
    let mut attributes = json!({ "data": data });
    if let Some(version) = version {
        attributes["version"] = json!(version);
    }
    let path = format!("/api/properties/{id}");
    context.client.patch(&path, &document(attributes)).await
}

pub fn read_json_object(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    match value.is_object() {
        true => Ok(value),
        false => bail!("{} must hold a JSON object", path.display()),
    }
}

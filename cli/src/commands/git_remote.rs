//! `gantry project add-git-remote|list-git-remotes|archive-git-remote`. Credentials are read
//! from files, never from the command line, and the API never shows them back.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::json;

use super::Context;
use crate::client::document;
use crate::output::Column;

#[derive(Debug, Args)]
pub struct AddGitRemoteArgs {
    /// The project's code.
    #[arg(long)]
    pub project_code: String,
    /// The remote's name, which changes refer to (e.g. origin).
    #[arg(long)]
    pub name: String,
    /// The repository URL (https://…, ssh://…, git@host:path, or a local path). Not `--url`:
    /// that is the API's.
    #[arg(long)]
    pub git_url: String,
    /// The user name for HTTPS.
    #[arg(long)]
    pub user: Option<String>,
    /// A file holding the HTTPS password or token.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// A file holding an SSH private key.
    #[arg(long)]
    pub ssh_key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GitRemoteName {
    /// The project's code.
    #[arg(long)]
    pub project_code: String,
    /// The remote's name.
    #[arg(long)]
    pub name: String,
}

const COLUMNS: &[Column] = &[
    ("name", "name"),
    ("url", "url"),
    ("user", "user"),
    ("password", "password"),
    ("ssh key", "ssh_key_data"),
    ("archived", "archived"),
    ("id", "id"),
];

pub async fn add(context: &Context, args: &AddGitRemoteArgs) -> anyhow::Result<()> {
    let attributes = json!({
        "name": args.name,
        "url": args.git_url,
        "user": args.user,
        "password": args.password_file.as_deref().map(read_password).transpose()?,
        // A private key keeps its final newline: OpenSSH refuses keys without it.
        "ssh_key_data": args.ssh_key_file.as_deref().map(read_file).transpose()?,
    });
    let path = format!("/api/projects/{}/git_remotes", args.project_code);
    let created = context
        .client
        .post(&path, Some(document(attributes)))
        .await?;
    let message = format!(
        "git remote {} of project {} added",
        args.name, args.project_code
    );
    context.output.done(&created["data"], &message);
    Ok(())
}

pub async fn list(context: &Context, project: &str) -> anyhow::Result<()> {
    let path = format!("/api/projects/{project}/git_remotes");
    let remotes = context.client.list(&path, &[], None).await?;
    context.output.list(&remotes, COLUMNS);
    Ok(())
}

/// Archives the remote called `name` (the API addresses remotes by id).
pub async fn archive(context: &Context, remote: &GitRemoteName) -> anyhow::Result<()> {
    let path = format!("/api/projects/{}/git_remotes", remote.project_code);
    let remotes = context.client.list(&path, &[], None).await?;
    let Some(id) = remotes
        .iter()
        .find(|r| r["attributes"]["name"] == remote.name.as_str())
        .and_then(|r| r["id"].as_str())
    else {
        bail!(
            "project {} has no git remote named {}",
            remote.project_code,
            remote.name
        );
    };
    let archived = context
        .client
        .patch(
            &format!("{path}/{id}"),
            &document(json!({"archived": true})),
        )
        .await?;
    let message = format!(
        "git remote {} of project {} archived",
        remote.name, remote.project_code
    );
    context.output.done(&archived["data"], &message);
    Ok(())
}

fn read_file(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// A password file's content, without the final newline an editor adds.
fn read_password(path: &Path) -> anyhow::Result<String> {
    Ok(read_file(path)?.trim_end_matches(['\n', '\r']).to_owned())
}

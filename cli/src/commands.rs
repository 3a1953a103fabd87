//! `gantry` subcommands.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use crate::client::Client;
use crate::render;

#[derive(Parser)]
#[command(name = "gantry", version, about = "The Gantry command-line client")]
pub struct Cli {
    /// The API's base URL.
    #[arg(
        long = "url",
        env = "GANTRY_URL",
        default_value = "http://127.0.0.1:3000",
        global = true
    )]
    api_url: String,
    /// The API token.
    #[arg(
        long,
        env = "GANTRY_TOKEN",
        hide_env_values = true,
        global = true,
        default_value = ""
    )]
    token: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a project (or show the existing one).
    ProjectCreate {
        code: String,
        #[arg(long)]
        name: String,
    },
    /// Create an environment of a project (or show the existing one).
    EnvironmentCreate {
        project: String,
        code: String,
        #[arg(long)]
        name: String,
    },
    /// Add a Git remote to a project (or show the existing one).
    RemoteAdd {
        project: String,
        name: String,
        url: String,
    },
    /// Show the properties of a project, or of an environment with --environment.
    ShowProperties {
        project: String,
        #[arg(long)]
        environment: Option<String>,
    },
    /// Replace the properties with the JSON object in a file.
    SetProperties {
        project: String,
        #[arg(long)]
        environment: Option<String>,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Create a change; with --wait, follow it to its final status (exit 1 unless it succeeded).
    ChangeCreate {
        project: String,
        environment: String,
        #[arg(long, default_value = "default")]
        action: String,
        #[arg(long, default_value = "origin")]
        remote: String,
        #[arg(long, default_value = "main")]
        rev: String,
        #[arg(long)]
        wait: bool,
    },
    /// Show a change with its step tree.
    ChangeShow { id: String },
    /// Print a change's log.
    ChangeLogs { id: String },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.token.is_empty() {
        bail!("no API token: pass --token or set GANTRY_TOKEN");
    }
    let client = Client::new(&cli.api_url, &cli.token);
    match cli.command {
        Command::ProjectCreate { code, name } => {
            let doc = client
                .ensure(
                    "/api/projects",
                    &format!("/api/projects/{code}"),
                    json!({"code": code, "name": name}),
                )
                .await?;
            println!("project {}", doc["data"]["id"].as_str().unwrap_or(&code));
        }
        Command::EnvironmentCreate {
            project,
            code,
            name,
        } => {
            let collection = format!("/api/projects/{project}/environments");
            let doc = client
                .ensure(
                    &collection,
                    &format!("{collection}/{code}"),
                    json!({"code": code, "name": name}),
                )
                .await?;
            println!(
                "environment {}",
                doc["data"]["id"].as_str().unwrap_or(&code)
            );
        }
        Command::RemoteAdd { project, name, url } => {
            add_remote(&client, &project, &name, &url).await?
        }
        Command::ShowProperties {
            project,
            environment,
        } => {
            let (version, data) = properties(&client, &project, environment.as_deref())
                .await?
                .1;
            println!(
                "version {version}\n{}",
                serde_json::to_string_pretty(&data)?
            );
        }
        Command::SetProperties {
            project,
            environment,
            file,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let data: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let (id, _) = properties(&client, &project, environment.as_deref()).await?;
            let doc = client
                .call(
                    reqwest::Method::PATCH,
                    &format!("/api/properties/{id}"),
                    Some(json!({"data": {"attributes": {"data": data}}})),
                )
                .await?;
            println!("version {}", doc["data"]["attributes"]["version"]);
        }
        Command::ChangeCreate {
            project,
            environment,
            action,
            remote,
            rev,
            wait,
        } => {
            let body = json!({"data": {"attributes": {"project_code": project, "environment_code": environment, "git_remote_name": remote, "git_rev": rev, "action": action}}});
            let doc = client
                .call(reqwest::Method::POST, "/api/changes", Some(body))
                .await?;
            let id = doc["data"]["id"]
                .as_str()
                .context("the API returned no change id")?
                .to_owned();
            println!("change {id}");
            if wait {
                let status = wait_final(&client, &id).await?;
                println!("change {id} finished: {status}");
                if status != "success" {
                    std::process::exit(1);
                }
            }
        }
        Command::ChangeShow { id } => print!(
            "{}",
            render::tree(
                &client
                    .get(&format!("/api/changes/{id}?include=steps"))
                    .await?
            )
        ),
        Command::ChangeLogs { id } => print_logs(&client, &id).await?,
    }
    Ok(())
}

async fn add_remote(client: &Client, project: &str, name: &str, url: &str) -> anyhow::Result<()> {
    let collection = format!("/api/projects/{project}/git_remotes");
    let existing = client.get(&collection).await?;
    if let Some(remote) = existing["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["attributes"]["name"] == name)
    {
        println!(
            "remote {name} ({})",
            remote["attributes"]["url"].as_str().unwrap_or("")
        );
        return Ok(());
    }
    client
        .call(
            reqwest::Method::POST,
            &collection,
            Some(json!({"data": {"attributes": {"name": name, "url": url}}})),
        )
        .await?;
    println!("remote {name} ({url})");
    Ok(())
}

/// The properties id and (version, document) of a project or environment.
async fn properties(
    client: &Client,
    project: &str,
    environment: Option<&str>,
) -> anyhow::Result<(String, (i64, Value))> {
    let owner = match environment {
        Some(e) => {
            client
                .get(&format!("/api/projects/{project}/environments/{e}"))
                .await?
        }
        None => client.get(&format!("/api/projects/{project}")).await?,
    };
    let related = owner["data"]["relationships"]["properties"]["links"]["related"]
        .as_str()
        .context("no properties link")?;
    let doc = client.get(related).await?;
    let id = doc["data"]["id"].as_str().unwrap_or_default().to_owned();
    Ok((
        id,
        (
            doc["data"]["attributes"]["version"].as_i64().unwrap_or(0),
            doc["data"]["attributes"]["data"].clone(),
        ),
    ))
}

async fn wait_final(client: &Client, id: &str) -> anyhow::Result<String> {
    let mut last = String::new();
    loop {
        let doc = client.get(&format!("/api/changes/{id}")).await?;
        let status = doc["data"]["attributes"]["status_code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if status != last {
            eprintln!("  {status}");
            last = status.clone();
        }
        if ["success", "error", "cancelled"].contains(&status.as_str()) {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn print_logs(client: &Client, id: &str) -> anyhow::Result<()> {
    let mut path = format!("/api/changes/{id}/log_lines?limit=1000");
    loop {
        let doc = client.get(&path).await?;
        for line in doc["data"].as_array().into_iter().flatten() {
            println!("{}", render::log_line(line));
        }
        match doc["links"]["next"].as_str() {
            Some(next) if doc["data"].as_array().is_some_and(|d| !d.is_empty()) => {
                path = next.to_owned()
            }
            _ => return Ok(()),
        }
    }
}

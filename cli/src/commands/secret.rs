//! `gantry secret …`: named key/value maps that steps can be offered. Values never travel on the
//! command line (where other users of the machine could see them) and are never shown back.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::Context;
use crate::client::document;
use crate::output::Column;

#[derive(Debug, Args)]
pub struct SecretName {
    /// The secret's name.
    #[arg(long)]
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Create or replace a secret's whole key/value map, read from stdin or --value-file.
    #[command(
        after_help = "The input is a JSON object ({\"API_KEY\": \"…\"}) or KEY=VALUE lines (blank lines and\n\
lines starting with # are skipped).\n\n\
Examples:\n  printf 'API_KEY=%s\\n' \"$key\" | gantry secret set --name payments\n  gantry secret set --name db --value-file db.json"
    )]
    Set {
        #[command(flatten)]
        secret: SecretName,
        /// Read the map from this file instead of stdin.
        #[arg(long)]
        value_file: Option<PathBuf>,
    },
    /// List the secrets and their keys (never their values).
    #[command(after_help = "Example:\n  gantry secret list")]
    List,
    /// Delete a secret.
    #[command(after_help = "Example:\n  gantry secret delete --name payments")]
    Delete(SecretName),
}

const COLUMNS: &[Column] = &[
    ("name", "name"),
    ("keys", "keys"),
    ("created", "created_at"),
    ("updated", "updated_at"),
];

pub async fn run(context: &Context, command: SecretCommand) -> anyhow::Result<ExitCode> {
    let client = &context.client;
    match command {
        SecretCommand::Set { secret, value_file } => {
            let text = match &value_file {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
                None => read_stdin()?,
            };
            let data = parse_map(&text)?;
            let path = format!("/api/secrets/{}", secret.name);
            let stored = client
                .put(&path, &document(json!({ "data": data })))
                .await?;
            let message = format!("secret {} stored", secret.name);
            context.output.done(&stored["data"], &message);
        }
        SecretCommand::List => {
            context
                .output
                .list(&client.list("/api/secrets", &[], None).await?, COLUMNS);
        }
        SecretCommand::Delete(secret) => {
            client
                .delete(&format!("/api/secrets/{}", secret.name))
                .await?;
            let message = format!("secret {} deleted", secret.name);
            context
                .output
                .done(&json!({ "name": secret.name }), &message);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_stdin() -> anyhow::Result<String> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Type KEY=VALUE lines (or a JSON object), then Ctrl-D:");
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .context("reading the secret from stdin")?;
    Ok(text)
}

/// A JSON object, or `KEY=VALUE` lines.
fn parse_map(text: &str) -> anyhow::Result<Value> {
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).context("the secret is not a valid JSON object");
    }
    let mut map = Map::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!("line {} of the secret is not KEY=VALUE", number + 1);
        };
        map.insert(key.trim().to_owned(), Value::String(value.to_owned()));
    }
    if map.is_empty() {
        bail!("the secret is empty: give KEY=VALUE lines or a JSON object");
    }
    Ok(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_lines_and_json_objects_both_make_a_map() {
        let map = parse_map("# comment\nA=1\n\nB=x=y\n").unwrap();
        assert_eq!(map, json!({"A": "1", "B": "x=y"}));
        assert_eq!(parse_map("{\"A\": \"1\"}").unwrap(), json!({"A": "1"}));
        assert!(parse_map("no equals sign").is_err());
    }
}

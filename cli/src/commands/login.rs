//! `gantry login`: checks a token against the API and stores it, with the URL, in a profile of
//! the configuration file (mode 0600), which becomes the current profile.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::json;

use crate::cli::GlobalArgs;
use crate::client::Client;
use crate::config::{ConfigFile, DEFAULT_URL, Profile};
use crate::output::{Output, attr};

#[derive(Debug, Args)]
#[command(
    after_help = "The token is read from stdin (asked for on a terminal) unless --token or GANTRY_TOKEN\n\
gives it. It is checked against the API, then stored with the URL in the profile (--profile,\n\
default `default`) of $XDG_CONFIG_HOME/gantry/config.toml (~/.config/gantry/config.toml), which\n\
is readable by its owner only. Later commands use the current profile unless --profile,\n\
GANTRY_PROFILE, --url/GANTRY_URL or --token/GANTRY_TOKEN say otherwise.\n\n\
Examples:\n  gantry login --url https://gantry.example.com < token.txt\n  pass show gantry/prod | gantry login --url https://prod.example.com --profile prod"
)]
pub struct LoginArgs {}

pub async fn run(
    _args: &LoginArgs,
    global: &GlobalArgs,
    mut file: ConfigFile,
    path: &Path,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let name = file.profile_name(global);
    let stored = file.profiles.get(&name).cloned().unwrap_or_default();
    let url = global
        .url
        .clone()
        .or(stored.url)
        .unwrap_or_else(|| DEFAULT_URL.to_owned());
    let token = match &global.token {
        Some(token) => token.clone(),
        None => read_token()?,
    };
    let info = Client::new(&url, &token)?
        .get("/api/info")
        .await
        .with_context(|| format!("checking the token against {url}"))?;
    let user = attr(&info["data"], "user").to_owned();
    file.profiles.insert(
        name.clone(),
        Profile {
            url: Some(url.clone()),
            token: Some(token),
        },
    );
    file.current_profile = Some(name.clone());
    file.save(path)?;
    let message = format!(
        "logged in to {url} as {user}; profile `{name}` stored in {}",
        path.display()
    );
    output.done(
        &json!({"profile": name, "url": url, "user": user, "path": path}),
        &message,
    );
    Ok(ExitCode::SUCCESS)
}

fn read_token() -> anyhow::Result<String> {
    let mut stdin = std::io::stdin();
    let token = match stdin.is_terminal() {
        true => dialoguer::Password::new()
            .with_prompt("API token")
            .interact()
            .context("reading the token")?,
        false => {
            let mut text = String::new();
            stdin
                .read_to_string(&mut text)
                .context("reading the token from stdin")?;
            text
        }
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        bail!("no token given: pipe it to stdin or pass --token");
    }
    Ok(token)
}

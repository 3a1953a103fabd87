//! `gantry token …`: API tokens with a role (viewer, operator, admin) on one project or on every
//! project. A new token is printed once, on stdout alone, so it can be piped into a file or into
//! `gantry login` on another machine; the server keeps only its digest.

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::Context;
use crate::client::document;
use crate::output::Column;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

#[derive(Debug, Args)]
pub struct CreateTokenArgs {
    /// Who the token is for: the actor of everything done with it.
    #[arg(long)]
    user_name: String,
    /// What the token may do: read, also run changes and edit properties and settings, or
    /// everything.
    #[arg(long, value_enum)]
    role: Role,
    /// The one project the token is for [default: every project].
    #[arg(long)]
    project_code: Option<String>,
    /// When the token stops working (RFC 3339) [default: never, until revoked].
    #[arg(long)]
    expires_at: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token; it is printed once (on stdout, alone) and cannot be shown again.
    #[command(
        after_help = "Example:\n  gantry token create --user-name ci --role operator --project-code web > ci.token"
    )]
    Create(CreateTokenArgs),
    /// List the tokens you manage (never the tokens themselves).
    #[command(after_help = "Example:\n  gantry token list")]
    List,
    /// Revoke a token: it stops working at once.
    #[command(after_help = "Example:\n  gantry token revoke --token-id 01a2…")]
    Revoke {
        /// The token's id (from `gantry token list`).
        #[arg(long)]
        token_id: String,
    },
}

const COLUMNS: &[Column] = &[
    ("id", "id"),
    ("user", "user_name"),
    ("role", "role"),
    ("project", "project_code"),
    ("created", "created_at"),
    ("expires", "expires_at"),
    ("revoked", "revoked_at"),
];

pub async fn run(context: &Context, command: TokenCommand) -> anyhow::Result<ExitCode> {
    let client = &context.client;
    match command {
        TokenCommand::Create(args) => {
            let role = args.role.to_possible_value().expect("a named role");
            let attributes = json!({
                "user_name": args.user_name,
                "role": role.get_name(),
                "project_code": args.project_code,
                "expires_at": args.expires_at,
            });
            let made = client
                .post("/api/tokens", Some(document(attributes)))
                .await?;
            let token = made["data"]["attributes"]["token"]
                .as_str()
                .unwrap_or_default();
            let message = token.to_owned();
            eprintln!(
                "token {} for {} made; it is shown this once:",
                made["data"]["id"].as_str().unwrap_or_default(),
                args.user_name
            );
            context.output.done(&made["data"], &message);
        }
        TokenCommand::List => {
            let tokens = client.list("/api/tokens", &[], None).await?;
            context.output.list(&tokens, COLUMNS);
        }
        TokenCommand::Revoke { token_id } => {
            client.delete(&format!("/api/tokens/{token_id}")).await?;
            let message = format!("token {token_id} revoked");
            context.output.done(&json!({ "id": token_id }), &message);
        }
    }
    Ok(ExitCode::SUCCESS)
}

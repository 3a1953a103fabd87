//! `gantry info`: the server's version and who the token belongs to.

use std::process::ExitCode;

use super::Context;
use crate::output::Column;

const COLUMNS: &[Column] = &[("version", "version"), ("user", "user"), ("api", "api")];

pub async fn run(context: &Context) -> anyhow::Result<ExitCode> {
    let info = context.client.get("/api/info").await?;
    context.output.resource(&info["data"], COLUMNS);
    Ok(ExitCode::SUCCESS)
}

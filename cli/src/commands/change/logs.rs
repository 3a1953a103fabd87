//! `gantry change show-logs [--follow]`.

use anyhow::Context as _;
use serde_json::json;

use crate::commands::Context;
use crate::follow::{FollowEvent, LogFollower, LogLine};
use crate::output;

/// The API's largest page of log lines.
const PAGE: &str = "10000";

pub async fn show(context: &Context, id: &str, follow: bool) -> anyhow::Result<()> {
    if follow {
        return follow_log(context, id).await;
    }
    let path = format!("/api/changes/{id}/log_lines");
    let lines = context
        .client
        .list(&path, &[("limit".to_owned(), PAGE.to_owned())], None)
        .await?;
    if context.output.is_json() {
        output::json(&json!(lines));
        return Ok(());
    }
    for line in &lines {
        let line: LogLine =
            serde_json::from_value(line["attributes"].clone()).context("reading a log line")?;
        out!("{}", line.display());
    }
    Ok(())
}

/// Prints lines until the change is final; with `--output json` one JSON object a line.
async fn follow_log(context: &Context, id: &str) -> anyhow::Result<()> {
    let mut follower = LogFollower::new(&context.client, id);
    while let Some(event) = follower.next().await? {
        match event {
            FollowEvent::Line(line) if context.output.is_json() => out!("{}", json!(line)),
            FollowEvent::Line(line) => out!("{}", line.display()),
            FollowEvent::End(status) => eprintln!("change {id} finished: {status}"),
        }
    }
    Ok(())
}

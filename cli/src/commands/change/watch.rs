//! Following a change to its end. The change's log stream (see [`crate::follow`]) is the clock:
//! every step transition writes a log line, so each batch of lines triggers one read of the
//! change and its steps, and the stream's `end` event says the change is final. On a terminal the
//! step tree is drawn live with a progress line (indicatif); otherwise one line is printed per
//! status transition, for logs and CI.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use futures_util::FutureExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::Value;

use super::tree::{self, StepRow};
use crate::commands::Context;
use crate::follow::{FollowEvent, LogFollower, LogLine};
use crate::output::attr;

/// How transitions are shown.
enum Display {
    /// A live tree and progress line on a terminal.
    Live(LiveTree),
    /// One line per transition.
    Lines,
    /// Nothing but the final document (`--output json`).
    Quiet,
}

/// Follows change `id` until it is final; returns the change document (with its steps) then.
pub async fn watch(context: &Context, id: &str, follow_logs: bool) -> anyhow::Result<Value> {
    let display = match (context.output.is_json(), std::io::stdout().is_terminal()) {
        (true, _) => Display::Quiet,
        (false, true) => Display::Live(LiveTree::new(id)),
        (false, false) => Display::Lines,
    };
    let mut watcher = Watcher {
        context,
        id,
        display,
        seen: HashMap::new(),
    };
    let mut follower = LogFollower::new(&context.client, id);
    let mut document = watcher.refresh().await?;
    while let Some(event) = follower.next().await? {
        let mut ended = watcher.take(event, follow_logs);
        // Lines that are already here are shown before the change is read again: one read per
        // batch of lines, however many there are.
        while !ended && let Some(next) = follower.next().now_or_never() {
            match next? {
                Some(event) => ended = watcher.take(event, follow_logs),
                None => break,
            }
        }
        document = watcher.refresh().await?;
    }
    watcher.finish(&document);
    Ok(document)
}

struct Watcher<'a> {
    context: &'a Context,
    id: &'a str,
    display: Display,
    /// The last status shown of the change (key "") and of each step (by id).
    seen: HashMap<String, String>,
}

impl Watcher<'_> {
    /// Shows a log line if asked to; `true` on the end of the stream.
    fn take(&mut self, event: FollowEvent, follow_logs: bool) -> bool {
        match event {
            FollowEvent::Line(line) if follow_logs => self.log(&line),
            FollowEvent::Line(_) => {}
            FollowEvent::End(_) => return true,
        }
        false
    }

    fn log(&self, line: &LogLine) {
        match &self.display {
            Display::Live(live) => live.multi.suspend(|| out!("{}", line.display())),
            Display::Lines => out!("{}", line.display()),
            Display::Quiet => eprintln!("{}", line.display()),
        }
    }

    async fn refresh(&mut self) -> anyhow::Result<Value> {
        let path = format!("/api/changes/{}?include=steps", self.id);
        let document = self.context.client.get(&path).await?;
        let status = attr(&document["data"], "status_code").to_owned();
        let rows = tree::rows(&document);
        match &self.display {
            Display::Live(live) => live.draw(&status, &rows),
            Display::Lines => self.print_transitions(&status, &rows),
            Display::Quiet => {}
        }
        Ok(document)
    }

    fn print_transitions(&mut self, status: &str, rows: &[StepRow]) {
        if self.seen.get("").map(String::as_str) != Some(status) {
            out!("change {} {status}", self.id);
            self.seen.insert(String::new(), status.to_owned());
        }
        for row in rows {
            if self.seen.get(&row.id) != Some(&row.status) {
                out!("step {} {}", row.name, row.status);
                self.seen.insert(row.id.clone(), row.status.clone());
            }
        }
    }

    fn finish(self, document: &Value) {
        let status = attr(&document["data"], "status_code");
        let took = tree::seconds(&document["data"]["attributes"])
            .map(|s| format!(" in {s:.2}s"))
            .unwrap_or_default();
        let summary = format!("change {} finished: {status}{took}", self.id);
        match self.display {
            Display::Live(live) => {
                live.progress.finish_and_clear();
                live.tree.finish();
                out!("{summary}");
            }
            Display::Lines => out!("{summary}"),
            Display::Quiet => crate::output::json(&document["data"]),
        }
    }
}

/// The live view: the step tree above a progress line.
struct LiveTree {
    id: String,
    multi: MultiProgress,
    tree: ProgressBar,
    progress: ProgressBar,
}

impl LiveTree {
    fn new(id: &str) -> Self {
        let multi = MultiProgress::new();
        let tree = multi.add(ProgressBar::new_spinner());
        tree.set_style(ProgressStyle::with_template("{msg}").expect("a valid template"));
        let progress = multi.add(ProgressBar::new(0));
        let style = ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:30}] {pos}/{len} steps finished, {elapsed}",
        )
        .expect("a valid template")
        .progress_chars("=> ");
        progress.set_style(style);
        progress.set_prefix(format!("change {id}"));
        progress.enable_steady_tick(Duration::from_millis(120));
        Self {
            id: id.to_owned(),
            multi,
            tree,
            progress,
        }
    }

    fn draw(&self, status: &str, rows: &[StepRow]) {
        let lines: Vec<String> = rows.iter().map(StepRow::line).collect();
        self.tree.set_message(lines.join("\n"));
        self.progress.set_length(rows.len() as u64);
        self.progress
            .set_position(rows.iter().filter(|r| r.is_final()).count() as u64);
        self.progress
            .set_prefix(format!("change {} [{status}]", self.id));
    }
}

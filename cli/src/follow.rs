//! Following a change's log live: `GET /api/changes/{id}/log_lines?follow=true` answers with
//! Server-Sent Events — `log_line` events whose `id` is the line's number (`seq`), then one `end`
//! event carrying the change's final status. A dropped connection is resumed with
//! `Last-Event-ID`, so every line arrives once and in order.

use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{ApiError, Client};

/// Consecutive failed connections before giving up.
const MAX_RECONNECTS: u32 = 10;

/// A log line as the API sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLine {
    pub seq: i64,
    pub step_id: Option<String>,
    pub logged_at: String,
    pub stream: String,
    pub text: String,
}

impl LogLine {
    /// `12:00:01.250  text`, with `!` before the text of a stderr line.
    pub fn display(&self) -> String {
        let time = chrono::DateTime::parse_from_rfc3339(&self.logged_at)
            .map(|t| t.format("%H:%M:%S%.3f").to_string())
            .unwrap_or_else(|_| self.logged_at.clone());
        let marker = if self.stream == "stderr" { "!" } else { " " };
        self.text
            .lines()
            .map(|line| format!("{time} {marker} {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What the stream says next.
#[derive(Debug)]
pub enum FollowEvent {
    Line(LogLine),
    /// The change is final with this status; nothing follows.
    End(String),
}

type Events = Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<reqwest::Error>>>>>;

/// One follower of a change's log.
pub struct LogFollower<'a> {
    client: &'a Client,
    path: String,
    last_seq: Option<i64>,
    events: Option<Events>,
    failures: u32,
    ended: bool,
}

impl<'a> LogFollower<'a> {
    pub fn new(client: &'a Client, change_id: &str) -> Self {
        Self {
            client,
            path: format!("/api/changes/{change_id}/log_lines"),
            last_seq: None,
            events: None,
            failures: 0,
            ended: false,
        }
    }

    /// The next line or the end; `None` once the end was returned. Cancel-safe: dropping the
    /// future loses no line.
    pub async fn next(&mut self) -> anyhow::Result<Option<FollowEvent>> {
        while !self.ended {
            let Some(events) = self.events.as_mut() else {
                self.events = Some(self.connect().await?);
                continue;
            };
            match events.next().await {
                Some(Ok(event)) => {
                    self.failures = 0;
                    if let Some(event) = self.read(&event)? {
                        return Ok(Some(event));
                    }
                }
                // The connection dropped (or the server closed it before the end): resume.
                Some(Err(_)) | None => {
                    self.events = None;
                    self.back_off().await?;
                }
            }
        }
        Ok(None)
    }

    fn read(&mut self, event: &Event) -> anyhow::Result<Option<FollowEvent>> {
        match event.event.as_str() {
            "log_line" => {
                let line: LogLine =
                    serde_json::from_str(&event.data).context("reading a log line event")?;
                self.last_seq = Some(event.id.parse().unwrap_or(line.seq));
                Ok(Some(FollowEvent::Line(line)))
            }
            "end" => {
                let end: serde_json::Value =
                    serde_json::from_str(&event.data).context("reading the end event")?;
                self.ended = true;
                let status = end["status_code"].as_str().unwrap_or_default().to_owned();
                Ok(Some(FollowEvent::End(status)))
            }
            _ => Ok(None),
        }
    }

    async fn connect(&mut self) -> anyhow::Result<Events> {
        loop {
            let mut request = self
                .client
                .request(Method::GET, &self.path)
                .query(&[("follow", "true")]);
            if let Some(seq) = self.last_seq {
                request = request.header("Last-Event-ID", seq.to_string());
            }
            match self.client.send(request).await {
                Ok(response) => return Ok(Box::pin(response.bytes_stream().eventsource())),
                // The API refused (no such change, bad token): reconnecting will not help.
                Err(e) if e.is::<ApiError>() => return Err(e),
                Err(e) if self.failures >= MAX_RECONNECTS => {
                    return Err(e.context("following the log"));
                }
                Err(_) => self.back_off().await?,
            }
        }
    }

    async fn back_off(&mut self) -> anyhow::Result<()> {
        self.failures += 1;
        if self.failures > MAX_RECONNECTS {
            anyhow::bail!(
                "the log stream kept dropping; gave up after {MAX_RECONNECTS} reconnects"
            );
        }
        tokio::time::sleep(Duration::from_millis(200) * self.failures).await;
        Ok(())
    }
}

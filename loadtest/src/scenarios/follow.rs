//! `follow`: live logs for many readers. A change whose step prints `lines` lines over about two
//! seconds is followed (`GET …/log_lines?follow=true`, Server-Sent Events) by `followers` clients
//! from its creation; each must get every stored line exactly once, in order, then the end event.
//! Measured from the api's `/metrics` before and after: the database reads it made for them
//! (`gantry_log_follow_queries_total`: feed reads shared by all followers of a change, catch-up
//! reads a follower makes itself) and its CPU time (`gantry_process_cpu_seconds`), beside the CPU
//! time of the same change run without followers; and each line's delay from its timestamp to its
//! arrival at a follower.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{POLL_ONE, finish};
use crate::client::Api;
use crate::fixture::Fixture;
use crate::progress;
use crate::stats::{Latency, Recorder};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FollowParams {
    pub followers: usize,
    pub lines: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FollowReport {
    pub params: FollowParams,
    /// Lines the change stored (its step's output and Gantry's own lines).
    pub lines: usize,
    /// Lines received, over all followers (each must get every line).
    pub delivered: usize,
    /// Reads made for the followers: shared feed reads and the followers' own catch-up reads.
    pub feed_reads: f64,
    pub catch_up_reads: f64,
    /// The api's CPU time during the followed change, and during the same change unfollowed.
    pub api_cpu_seconds: f64,
    pub api_cpu_seconds_unfollowed: f64,
    /// Creation of the change to the last follower's end event.
    pub elapsed_secs: f64,
    /// From a line's `logged_at` to its arrival at a follower, over every delivery.
    pub delivery_lag: Latency,
}

/// What the api's `/metrics` says about followers: (feed reads, catch-up reads, CPU seconds).
struct Counters {
    feed: f64,
    catch_up: f64,
    cpu: f64,
}

impl Counters {
    async fn read(api: &Api) -> anyhow::Result<Self> {
        let text = api.fetch_text(&api.url("/metrics")).await?;
        let value = |series: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
                .map_or(Ok(0.0), |v| v.trim().parse::<f64>())
        };
        Ok(Self {
            feed: value("gantry_log_follow_queries_total{kind=\"feed\"}")?,
            catch_up: value("gantry_log_follow_queries_total{kind=\"catch_up\"}")?,
            cpu: value("gantry_process_cpu_seconds")
                .ok()
                .filter(|v| *v > 0.0)
                .context("the api's /metrics has no gantry_process_cpu_seconds")?,
        })
    }
}

/// An action that prints `lines` lines, pausing 0.1 s after every 100.
fn manifest(lines: usize) -> String {
    format!(
        "actions:\n  chatty:\n    run: 'i=0; while [ $i -lt {lines} ]; do echo \"line $i of the follow bench\"; \
         i=$((i+1)); if [ $((i % 100)) -eq 0 ]; then sleep 0.1; fi; done'\n"
    )
}

pub async fn run(
    api: &Api,
    fixture: &Fixture,
    params: &FollowParams,
) -> anyhow::Result<FollowReport> {
    let project = fixture
        .project(api, "follow", Some(&manifest(params.lines)), false)
        .await?;
    let (code, environment) = (&project.code, &project.environment);
    // Builds the step image; then the same change unfollowed, for the api's CPU without readers.
    let warm = api.create_change(code, environment, "chatty").await?;
    finish(api, &warm, POLL_ONE).await?.check_success(1)?;
    let before = Counters::read(api).await?;
    let unfollowed = api.create_change(code, environment, "chatty").await?;
    finish(api, &unfollowed, POLL_ONE).await?.check_success(1)?;
    let baseline = Counters::read(api).await?.cpu - before.cpu;

    let bar = progress::bar(params.followers as u64, "follow");
    let before = Counters::read(api).await?;
    let started = Instant::now();
    let id = api.create_change(code, environment, "chatty").await?;
    let path = format!("/api/changes/{id}/log_lines?follow=true");
    let followed = futures_util::future::join_all((0..params.followers).map(|_| {
        let (api, path, bar) = (api.clone(), path.clone(), bar.clone());
        async move {
            let received = follow(&api, &path).await;
            bar.inc(1);
            received
        }
    }))
    .await;
    let elapsed_secs = started.elapsed().as_secs_f64();
    let after = Counters::read(api).await?;
    bar.finish_and_clear();
    finish(api, &id, POLL_ONE).await?.check_success(1)?;
    let stored = api
        .list_all(&format!("/api/changes/{id}/log_lines?limit=10000"))
        .await?;
    let mut lag = Recorder::default();
    let mut delivered = 0;
    for received in followed {
        let received = received.context("a follower failed")?;
        check(&received.lines, &stored)?;
        delivered += received.lines.len();
        lag.merge(&received.lag);
    }
    Ok(FollowReport {
        params: params.clone(),
        lines: stored.len(),
        delivered,
        feed_reads: after.feed - before.feed,
        catch_up_reads: after.catch_up - before.catch_up,
        api_cpu_seconds: after.cpu - before.cpu,
        api_cpu_seconds_unfollowed: baseline,
        elapsed_secs,
        delivery_lag: lag.summary(),
    })
}

/// What one follower received: (event id, text) of every line, and each line's delay.
struct Received {
    lines: Vec<(i64, String)>,
    lag: Recorder,
}

/// Follows until the end event.
async fn follow(api: &Api, path: &str) -> anyhow::Result<Received> {
    let response = api.open(path).await?;
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut received = Received {
        lines: Vec::new(),
        lag: Recorder::default(),
    };
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let (mut id, mut kind, mut data) = (None, "", Value::Null);
            for line in event.lines() {
                match line.split_once(": ") {
                    Some(("id", v)) => id = v.parse::<i64>().ok(),
                    Some(("event", v)) => kind = v,
                    Some(("data", v)) => data = serde_json::from_str(v)?,
                    _ => {}
                }
            }
            match kind {
                "log_line" => {
                    let logged: chrono::DateTime<chrono::Utc> = data["logged_at"]
                        .as_str()
                        .context("a line without logged_at")?
                        .parse()?;
                    let delay = (chrono::Utc::now() - logged).to_std().unwrap_or_default();
                    received.lag.record(delay);
                    let text = data["text"].as_str().unwrap_or_default().to_owned();
                    received
                        .lines
                        .push((id.context("a line without an id")?, text));
                }
                "end" => return Ok(received),
                _ => {}
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(120), body.next())
            .await
            .context("no event for 120 s")?;
        match chunk {
            Some(chunk) => buffer.push_str(std::str::from_utf8(&chunk?)?),
            None => bail!("the stream ended without an end event"),
        }
    }
}

/// A follower's lines must be the stored ones, each once, in order, numbered 1, 2, 3, …
fn check(received: &[(i64, String)], stored: &[Value]) -> anyhow::Result<()> {
    if received.len() != stored.len() {
        bail!(
            "a follower got {} lines of the {} stored",
            received.len(),
            stored.len()
        );
    }
    for (n, ((id, text), line)) in received.iter().zip(stored).enumerate() {
        let seq = line["attributes"]["seq"].as_i64().unwrap_or_default();
        if *id != n as i64 + 1 || *id != seq || line["attributes"]["text"] != text.as_str() {
            bail!(
                "a follower's line {} is {id} {text:?}, stored: {line}",
                n + 1
            );
        }
    }
    Ok(())
}

//! `lifecycle`: two latencies of the change lifecycle, timed by the Docker engine's own events
//! (`die`, `destroy` of the step containers, with nanosecond timestamps of the engine's clock, the
//! clock of this host) and by the worker's record of the container it gives a step
//! (`step_containers`, see `recorded`: containers are started parked, before their steps):
//!
//! * a step's exit to its next sibling's start: a chain of `siblings` trivial steps; each gap is
//!   from one container's `die` to the time the next sibling's container was given its step;
//! * a cancel request to the container gone: `cancels` times, a change whose step sleeps is
//!   cancelled once its container was given the step, timed from just before
//!   `DELETE /api/changes/{id}` to the container's `destroy`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bollard::Docker;
use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::{Stream, StreamExt};
use gantry_shared::settings::Settings;
use serde::{Deserialize, Serialize};

use super::raw::connect_docker;
use super::{POLL_ONE, finish, recorded};
use crate::client::Api;
use crate::fixture::Fixture;
use crate::progress;
use crate::stats::{Latency, Recorder};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LifecycleParams {
    pub siblings: usize,
    pub cancels: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LifecycleReport {
    pub params: LifecycleParams,
    /// A step container's `die` to the next sibling's container given its step.
    pub exit_to_next_start: Latency,
    /// The cancel request to the step container's `destroy`.
    pub cancel_to_gone: Latency,
}

/// One engine event about a step container.
pub struct ContainerEvent {
    pub action: String,
    /// The container's name (what `step_containers` records).
    pub name: String,
    /// Nanoseconds since the epoch, on the engine's clock.
    pub at: i64,
}

/// The engine's events about step containers (label `gantry=true`), from now on. The request is
/// made when its stream is first read: a task reads it from the start, and asks for the events
/// since now, so none is missed however late the request reaches the engine.
pub fn step_events(docker: &Docker) -> Events {
    let filters = HashMap::from([("type", vec!["container"]), ("label", vec!["gantry=true"])]);
    let since = format!("{:.9}", now_nanos() as f64 / 1e9);
    let options = EventsOptionsBuilder::default()
        .filters(&filters)
        .since(&since)
        .build();
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let docker = docker.clone();
    tokio::spawn(async move {
        let mut stream = docker.events(Some(options));
        while let Some(event) = stream.next().await {
            let Some(event) = container_event(event) else {
                continue;
            };
            if sender.send(event).is_err() {
                return;
            }
        }
    });
    Events(receiver)
}

fn container_event(
    event: Result<bollard::models::EventMessage, bollard::errors::Error>,
) -> Option<ContainerEvent> {
    let event = event.ok()?;
    let actor = event.actor?;
    let attributes = actor.attributes?;
    Some(ContainerEvent {
        action: event.action?,
        name: attributes.get("name")?.clone(),
        at: event.time_nano?,
    })
}

/// The events the reader task forwards.
pub struct Events(tokio::sync::mpsc::UnboundedReceiver<ContainerEvent>);

impl Stream for Events {
    type Item = ContainerEvent;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<ContainerEvent>> {
        self.0.poll_recv(cx)
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Waits for the engine event `action` about the container `name`; its time.
async fn wait_for(
    events: &mut (impl Stream<Item = ContainerEvent> + Unpin),
    name: &str,
    action: &str,
) -> anyhow::Result<i64> {
    let wanted = async {
        while let Some(event) = events.next().await {
            if event.name == name && event.action == action {
                return Ok(event.at);
            }
        }
        bail!("the engine's event stream ended")
    };
    tokio::time::timeout(Duration::from_secs(300), wanted)
        .await
        .with_context(|| format!("no `{action}` of container {name}"))?
}

pub async fn run(
    api: &Api,
    settings: &Settings,
    fixture: &Fixture,
    params: &LifecycleParams,
) -> anyhow::Result<LifecycleReport> {
    let docker = connect_docker().await?;
    let db = recorded::connect(settings).await?;
    let siblings = params.siblings.max(2);
    let manifest = format!(
        "actions:\n  t: {{ run: \"true\" }}\n  sleepy: {{ run: \"sleep 600\" }}\n  chain: {{ steps: [{}] }}\n",
        vec!["t"; siblings].join(", ")
    );
    let project = fixture
        .project(api, "lifecycle", Some(&manifest), false)
        .await?;
    let (code, environment) = (&project.code, &project.environment);
    // The step image is built once, outside what is measured.
    let warm = api.create_change(code, environment, "t").await?;
    finish(api, &warm, POLL_ONE).await?.check_success(1)?;
    let bar = progress::bar(params.cancels as u64 + 1, "lifecycle");

    let mut events = step_events(&docker);
    let chain = api.create_change(code, environment, "chain").await?;
    finish(api, &chain, POLL_ONE)
        .await?
        .check_success(siblings + 1)?;
    let gaps = sibling_gaps(&db, &mut events, chain.parse()?, siblings).await?;
    bar.inc(1);

    let mut cancels = Recorder::default();
    for _ in 0..params.cancels {
        let id = api.create_change(code, environment, "sleepy").await?;
        let container = recorded::wait_given(&db, id.parse()?, Duration::from_secs(300)).await?;
        let requested = now_nanos();
        api.cancel_change(&id).await?;
        let gone = wait_for(&mut events, &container, "destroy").await?;
        cancels.record(Duration::from_nanos((gone - requested).max(0) as u64));
        let cancelled = finish(api, &id, POLL_ONE).await?;
        if cancelled.status != "cancelled" {
            bail!("a cancelled change ended {}", cancelled.status);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(LifecycleReport {
        params: params.clone(),
        exit_to_next_start: gaps.summary(),
        cancel_to_gone: cancels.summary(),
    })
}

/// The chain's containers in the order they were given their steps, each from then to its `die`;
/// the gaps between.
async fn sibling_gaps(
    db: &tokio_postgres::Client,
    events: &mut (impl Stream<Item = ContainerEvent> + Unpin),
    chain: uuid::Uuid,
    siblings: usize,
) -> anyhow::Result<Recorder> {
    let given = recorded::recorded(db, &[chain]).await?;
    if given.len() != siblings {
        bail!(
            "{} of the chain's {siblings} steps were given containers",
            given.len()
        );
    }
    // container -> its die
    let mut died: HashMap<String, i64> = HashMap::new();
    let collected = async {
        while died.len() < siblings {
            let Some(event) = events.next().await else {
                bail!("the engine's event stream ended");
            };
            if event.action == "die" && given.contains_key(&event.name) {
                died.insert(event.name, event.at);
            }
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(60), collected)
        .await
        .context("the chain's container events did not all arrive")??;
    let mut spans: Vec<(i64, i64)> = given
        .iter()
        .filter_map(|(name, step)| Some((step.given_at, *died.get(name)?)))
        .collect();
    spans.sort();
    let mut gaps = Recorder::default();
    for pair in spans.windows(2) {
        let gap = pair[1].0 - pair[0].1;
        gaps.record(Duration::from_nanos(gap.max(0) as u64));
    }
    Ok(gaps)
}

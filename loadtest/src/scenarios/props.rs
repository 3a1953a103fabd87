//! `props`: C clients each increment one numeric property M times with optimistic versioning:
//! read the document and its version, write it back with `If-Match: "<version>"`, and on 412
//! (someone else was first) read again and retry. Afterwards the value must be C×M and the
//! history must hold every version from 1 to 1 + C×M without a gap.

use std::time::Instant;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::client::Api;
use crate::fixture::Fixture;
use crate::progress;
use crate::stats::{Latency, Recorder, per_second};

const KEY: &str = "counter";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PropsParams {
    pub clients: usize,
    pub increments: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PropsReport {
    pub params: PropsParams,
    pub final_value: i64,
    pub final_version: i64,
    /// Every version 1..=final_version is in the history, once.
    pub versions_contiguous: bool,
    /// 412 answers that made a client read again.
    pub retries: usize,
    pub elapsed_secs: f64,
    pub updates_per_second: f64,
    /// One increment, from its first read to its accepted write (retries included).
    pub increment_latency: Latency,
}

pub async fn run(
    api: &Api,
    fixture: &Fixture,
    params: &PropsParams,
) -> anyhow::Result<PropsReport> {
    let project = fixture.project(api, "props", None, false).await?;
    let path = format!("/api/properties/{}", project.properties_id);
    let bar = progress::bar((params.clients * params.increments) as u64, "props");
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for _ in 0..params.clients {
        let (api, path, bar, increments) =
            (api.clone(), path.clone(), bar.clone(), params.increments);
        clients.spawn(async move {
            let (mut latencies, mut retries) = (Vec::with_capacity(increments), 0);
            for _ in 0..increments {
                let began = Instant::now();
                retries += increment(&api, &path).await?;
                latencies.push(began.elapsed());
                bar.inc(1);
            }
            anyhow::Ok((latencies, retries))
        });
    }
    let (mut latency, mut retries) = (Recorder::default(), 0);
    while let Some(joined) = clients.join_next().await {
        let (latencies, client_retries) = joined.context("a props client panicked")??;
        latencies.into_iter().for_each(|l| latency.record(l));
        retries += client_retries;
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let (final_version, document) = read(api, &path).await?;
    let final_value = document[KEY].as_i64().unwrap_or_default();
    let versions_contiguous = contiguous(api, &path, final_version).await?;
    let expected = (params.clients * params.increments) as i64;
    if final_value != expected || final_version != 1 + expected || !versions_contiguous {
        bail!(
            "lost or duplicated updates: value {final_value} at version {final_version} \
             (expected {expected} at version {}), history contiguous: {versions_contiguous}",
            1 + expected
        );
    }
    Ok(PropsReport {
        params: params.clone(),
        final_value,
        final_version,
        versions_contiguous,
        retries,
        elapsed_secs: elapsed.as_secs_f64(),
        updates_per_second: per_second(expected as usize, elapsed),
        increment_latency: latency.summary(),
    })
}

/// Adds one to the counter; returns how many times it had to retry.
async fn increment(api: &Api, path: &str) -> anyhow::Result<usize> {
    for retries in 0..10_000 {
        let (version, mut document) = read(api, path).await?;
        let value = document[KEY].as_i64().unwrap_or_default();
        document[KEY] = json!(value + 1);
        let body = json!({"data": {"attributes": {"data": document}}});
        let answer = api
            .send(reqwest::Method::PATCH, path, Some(&body), Some(version))
            .await?;
        match answer.status {
            200 => return Ok(retries),
            412 => {}
            status => bail!("PATCH {path} answered {status}: {}", answer.body),
        }
    }
    bail!("PATCH {path} kept answering 412")
}

async fn read(api: &Api, path: &str) -> anyhow::Result<(i64, Value)> {
    let body = api.get(path).await?;
    let version = body["data"]["attributes"]["version"]
        .as_i64()
        .with_context(|| format!("no version in {body}"))?;
    Ok((version, body["data"]["attributes"]["data"].clone()))
}

/// Whether the history lists exactly the versions 1..=last.
async fn contiguous(api: &Api, path: &str, last: i64) -> anyhow::Result<bool> {
    let listed = api.list_all(&format!("{path}/versions?limit=500")).await?;
    let mut versions: Vec<i64> = listed
        .iter()
        .filter_map(|v| v["attributes"]["version"].as_i64())
        .collect();
    versions.sort_unstable();
    Ok(versions == (1..=last).collect::<Vec<_>>())
}

//! Raw container lifecycles through the Docker API: the base runner image running busybox `true`
//! with the options of the worker's step container (worker/src/runner/container.rs): no network
//! (the `runner_network` setting), every capability dropped, no-new-privileges, user 10001, a
//! read-only root with a tmpfs /tmp and an anonymous volume on the home, the memory, CPU and pids
//! limits of the settings; removed with its volume.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
    WaitContainerOptions,
};
use futures_util::StreamExt;
use gantry_shared::protocol::{CONTAINER_HOME, RUNNER_UID, SCRATCH_DIR};
use gantry_shared::settings::WorkerSettings;
use tokio::task::JoinSet;

use super::Throughput;
use crate::progress;
use crate::stats::{Latency, Recorder, per_second};

pub async fn connect_docker() -> anyhow::Result<Docker> {
    Docker::connect_with_socket_defaults()
        .context("connecting to the Docker engine")?
        .negotiate_version()
        .await
        .context("negotiating the Docker API version")
}

fn container_body(settings: &WorkerSettings) -> ContainerCreateBody {
    let host_config = HostConfig {
        network_mode: Some(settings.runner_network.clone()),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([(
            SCRATCH_DIR.to_owned(),
            format!("rw,nosuid,nodev,size={}", settings.tmp_size),
        )])),
        memory: Some(settings.memory_bytes),
        memory_swap: Some(settings.memory_bytes),
        nano_cpus: Some(settings.nano_cpus),
        pids_limit: Some(settings.pids_limit),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(settings.runner_image.clone()),
        entrypoint: Some(vec!["/bin/true".into()]),
        user: Some(format!("{RUNNER_UID}:{RUNNER_UID}")),
        labels: Some(HashMap::from([(
            "gantry.loadtest".to_owned(),
            "true".to_owned(),
        )])),
        working_dir: Some(CONTAINER_HOME.to_owned()),
        volumes: Some(vec![CONTAINER_HOME.to_owned()]),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// One create + start + wait + remove; fails unless the container exited 0.
async fn lifecycle(docker: &Docker, body: ContainerCreateBody) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let name = format!("gantry-loadtest-{}", uuid::Uuid::new_v4().simple());
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    let id = docker
        .create_container(Some(options), body)
        .await
        .context("creating a container")?
        .id;
    let ran = async {
        docker
            .start_container(&id, None::<StartContainerOptions>)
            .await?;
        let mut wait = docker.wait_container(&id, None::<WaitContainerOptions>);
        match wait.next().await {
            Some(Ok(exit)) => anyhow::ensure!(exit.status_code == 0, "exit {}", exit.status_code),
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("the wait stream ended without a status"),
        }
        anyhow::Ok(())
    }
    .await;
    let remove = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    docker
        .remove_container(&id, Some(remove))
        .await
        .context("removing a container")?;
    ran.context("running a raw container")?;
    Ok(started.elapsed())
}

async fn check_image(docker: &Docker, image: &str) -> anyhow::Result<()> {
    docker
        .inspect_image(image)
        .await
        .map(drop)
        .with_context(|| {
            format!("the runner image {image} is missing; build it with `make runner-image`")
        })
}

/// `n` lifecycles one after the other (after one untimed warm-up).
pub async fn lifecycles(
    docker: &Docker,
    settings: &WorkerSettings,
    n: usize,
) -> anyhow::Result<Latency> {
    check_image(docker, &settings.runner_image).await?;
    let body = container_body(settings);
    lifecycle(docker, body.clone()).await?;
    let bar = progress::bar(n as u64, "lifecycle");
    let mut latencies = Recorder::default();
    for _ in 0..n {
        latencies.record(lifecycle(docker, body.clone()).await?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(latencies.summary())
}

/// `n` lifecycles, `concurrency` at a time.
pub async fn churn(
    docker: &Docker,
    settings: &WorkerSettings,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Throughput> {
    check_image(docker, &settings.runner_image).await?;
    let body = container_body(settings);
    let next = Arc::new(AtomicUsize::new(0));
    let bar = progress::bar(n as u64, "churn");
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (docker, body, next, bar) = (docker.clone(), body.clone(), next.clone(), bar.clone());
        workers.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                lifecycle(&docker, body.clone()).await?;
                bar.inc(1);
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined.context("a churn worker panicked")??;
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    Ok(Throughput {
        concurrency,
        count: n,
        elapsed_secs: elapsed.as_secs_f64(),
        per_second: per_second(n, elapsed),
    })
}

//! Raw container lifecycles through the Docker API: the base runner image running busybox `true`
//! with the options of the worker's step container (worker/src/runner/container.rs): no network
//! (the `runner_network` setting), every capability dropped, no-new-privileges, user 10001, a
//! read-only root with a tmpfs /tmp and an anonymous volume on the home, the memory, CPU and pids
//! limits of the settings; removed with its volume.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
    WaitContainerOptions,
};
use futures_util::StreamExt;
use gantry_shared::protocol::{CONTAINER_HOME, RUNNER_UID};
use gantry_shared::settings::WorkerSettings;

use super::Throughput;
use crate::progress;
use crate::stats::Recorder;

fn container_body(settings: &WorkerSettings) -> ContainerCreateBody {
    // Exactly the step container's hardening, limits and volume: only Gantry's work differs.
    let limits = gantry_shared::project_settings::EffectiveSettings::defaults(settings);
    let host_config = gantry_worker::runner::container::host_config(settings, &limits);
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
) -> anyhow::Result<Recorder> {
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
    Ok(latencies)
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
    let workers = vec![(docker.clone(), body); concurrency.max(1)];
    super::spread("churn", n, workers, |(docker, body)| {
        let (docker, body) = (docker.clone(), body.clone());
        async move { lifecycle(&docker, body).await.map(|_| ()) }
    })
    .await
}

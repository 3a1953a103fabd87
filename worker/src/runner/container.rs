//! The hardened step container (DESIGN §5.2): created and started parked (`gantry-runner park`,
//! see `pool`), then, once a step is claimed, given its `step_context.json` and its start line,
//! its output streamed into the step log, waited for (with the step timeout), its
//! `step_result.json` copied out with a size cap and without following symlinks, and removed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder,
    DownloadFromContainerOptionsBuilder, InspectContainerOptions, KillContainerOptions,
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;
use gantry_shared::metrics::names;
use gantry_shared::project_settings::EffectiveSettings;
use gantry_shared::protocol::{
    CONTAINER_HOME, EXIT_RELEASED_UNUSED, MAX_STEP_RESULT_BYTES, PROTOCOL_DIR, RUNNER_UID,
    SCRATCH_DIR, STEP_RESULT_FILE, StepStart,
};
use gantry_shared::settings::WorkerSettings;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::volume;
use crate::steplog::{Output, StepLog, Stream};

/// What makes step containers interchangeable: a parked container of one shape can take any
/// step of that shape. Everything else of a step (its action, context, variables) reaches the
/// container after the claim.
#[derive(Debug, Clone)]
pub struct Shape {
    pub image: String,
    /// The network and limits in force for the step.
    pub limits: EffectiveSettings,
}

impl Shape {
    /// Equal for equal shapes: the parking pool's key.
    pub fn key(&self) -> String {
        let l = &self.limits;
        format!(
            "{}|{}|{}|{}|{}",
            self.image,
            l.runner_network,
            l.memory_bytes,
            l.nano_cpus(),
            l.pids_limit
        )
    }
}

/// One claimed step for a container.
pub struct StepRun<'a> {
    pub start: StepStart,
    pub step_context_json: Vec<u8>,
    pub timeout: Duration,
    pub memory_bytes: i64,
    pub ends: Ends<'a>,
}

/// How the container ended.
pub enum Ended {
    Exited {
        code: i64,
        result: Result<Option<serde_json::Value>, String>,
    },
    TimedOut,
    /// This worker lost the step's lease: the container was killed and nothing is reported.
    LeaseLost,
    /// The step's change was cancelled: the container was killed (or never given the step).
    Stopped,
    /// The container ended before it read its step: nothing of the step ran.
    Unused,
}

/// What ends a run before its container does.
#[derive(Clone, Copy)]
pub struct Ends<'a> {
    pub lease_lost: &'a CancellationToken,
    pub stop: &'a CancellationToken,
}

/// A started step container parked in `gantry-runner park`: it runs nothing until [`Parked::run`]
/// writes its step's start line on the stdin this handle holds. [`Parked::remove`] follows the
/// hand-over of the step's outcome: the removal is off the step's critical path.
pub struct Parked {
    docker: Docker,
    id: String,
    pub name: String,
    /// The key of its shape.
    pub shape: String,
    /// When it was parked (or its step's run began: the start of the next lifecycle phase).
    phase: Instant,
    /// The step volume as a directory of this host, when the fast path of [`volume`] may be tried.
    volume: Option<PathBuf>,
    /// Its stdin, stdout and stderr, attached before it started; taken by its run.
    attached: Option<bollard::container::AttachContainerResults>,
}

/// Labels of every parked container: `gantry=true` for the sweeper and the collectors, the
/// worker that holds it, and that it was parked.
fn parked_labels(worker_id: &str) -> HashMap<String, String> {
    HashMap::from([
        ("gantry".to_owned(), "true".to_owned()),
        ("gantry.worker".to_owned(), worker_id.to_owned()),
        ("gantry.parked".to_owned(), "true".to_owned()),
    ])
}

/// Creates, attaches and starts a hardened container of `shape` running `gantry-runner park`.
/// A container that fails half-way is removed.
pub async fn park(
    docker: &Docker,
    settings: &WorkerSettings,
    shape: &Shape,
    worker_id: &str,
) -> Result<Parked, bollard::errors::Error> {
    let started = Instant::now();
    let name = format!("gantry-parked-{}", uuid::Uuid::new_v4().simple());
    let id = create_container(docker, settings, shape, &name, worker_id).await?;
    let mut parked = Parked {
        docker: docker.clone(),
        id,
        name,
        shape: shape.key(),
        phase: started,
        volume: None,
        attached: None,
    };
    match parked.start(settings.local_volume_access).await {
        Ok(()) => Ok(parked),
        Err(e) => {
            parked.remove().await;
            Err(e)
        }
    }
}

/// Where the engine keeps the container's home volume, if that directory exists on this host.
async fn local_volume(docker: &Docker, id: &str) -> Option<PathBuf> {
    let inspected = docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .ok()?;
    let source = inspected
        .mounts?
        .into_iter()
        .find(|m| m.destination.as_deref() == Some(CONTAINER_HOME))?
        .source?;
    let path = PathBuf::from(source);
    path.is_dir().then_some(path)
}

impl Parked {
    async fn start(&mut self, local_volume_access: bool) -> Result<(), bollard::errors::Error> {
        if local_volume_access {
            self.volume = local_volume(&self.docker, &self.id).await;
        }
        self.phase = record_phase("create", self.phase);
        self.attached = Some(attach(&self.docker, &self.id).await?);
        self.docker
            .start_container(
                &self.id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await?;
        self.phase = record_phase("start", self.phase);
        Ok(())
    }

    /// Whether it still waits for a step: its output has not ended, and it printed nothing (a
    /// parked runner is silent; one that prints, an image whose gantry-runner does not know
    /// `park`, is about to exit).
    pub fn waits(&mut self) -> bool {
        use futures_util::FutureExt;
        match &mut self.attached {
            Some(attached) => attached.output.next().now_or_never().is_none(),
            None => false,
        }
    }

    /// Puts the step context into the container's volume, gives it its step, streams its output
    /// into the step log and waits for its end (or the timeout, or the loss of the lease), then
    /// reads `step_result.json`.
    pub async fn run(
        &mut self,
        settings: &WorkerSettings,
        step: StepRun<'_>,
        log: &StepLog,
    ) -> Result<Ended, bollard::errors::Error> {
        let StepRun {
            start,
            step_context_json,
            timeout,
            memory_bytes,
            ends,
        } = step;
        let (docker, id) = (&self.docker, self.id.as_str());
        self.phase = Instant::now();
        let Some(mut attached) = self.attached.take() else {
            return Ok(Ended::Unused);
        };
        // A cancel that came while the container was found: it is not given the step at all.
        if ends.stop.is_cancelled() {
            return Ok(Ended::Stopped);
        }
        deliver_context(self.place(), &step_context_json).await?;
        let mut line = serde_json::to_vec(&start).expect("serialisable");
        line.push(b'\n');
        attached.input.write_all(&line).await?;
        attached.input.flush().await?;
        let phase = record_phase("upload", self.phase);
        fail::fail_point!("runner::after_start", |_| gantry_shared::crash::now(
            "runner::after_start"
        ));
        let logs = tokio::spawn(stream_output(
            attached,
            id.to_owned(),
            log.output(settings.max_log_line_bytes),
        ));
        let code = tokio::select! {
            code = wait(docker, id) => code?,
            _ = tokio::time::sleep(timeout) => {
                kill(docker, id).await;
                let _ = logs.await;
                return Ok(Ended::TimedOut);
            }
            _ = ends.lease_lost.cancelled() => {
                kill(docker, id).await;
                return Ok(Ended::LeaseLost);
            }
            _ = ends.stop.cancelled() => {
                kill(docker, id).await;
                let _ = logs.await;
                return Ok(Ended::Stopped);
            }
        };
        let _ = logs.await;
        let phase = record_phase("run", phase);
        fail::fail_point!("runner::after_exit", |_| gantry_shared::crash::now(
            "runner::after_exit"
        ));
        if code == i64::from(EXIT_RELEASED_UNUSED) {
            return Ok(Ended::Unused);
        }
        let result = if code == 0 {
            collect_result(self.place()).await
        } else {
            explain_exit(docker, id, code, memory_bytes, log).await;
            Ok(None)
        };
        record_phase("result", phase);
        Ok(Ended::Exited { code, result })
    }

    /// Removes the container and its anonymous volume (killing it first when it runs).
    pub async fn remove(self) {
        let phase = Instant::now();
        let remove = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        if let Err(e) = self.docker.remove_container(&self.id, Some(remove)).await {
            tracing::warn!(error = %e, container = %self.id, "removing a step container failed");
        }
        record_phase("remove", phase);
    }
}

/// Says in the step's log why a container that Gantry did not stop died by a signal: the
/// kernel's out-of-memory killer at the step's memory limit (the engine's `OOMKilled`), or a
/// SIGKILL from outside the worker (the worker's own kills — timeout, lost lease, cancel — end
/// the attempt before this is reached). Other exit codes are the step's own to explain.
async fn explain_exit(docker: &Docker, id: &str, code: i64, memory_bytes: i64, log: &StepLog) {
    if code < 128 {
        return;
    }
    let oom_killed = docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .ok()
        .and_then(|c| c.state?.oom_killed)
        .unwrap_or(false);
    if oom_killed {
        log.system(format!(
            "===> The step ran out of memory: it reached its limit of {} MiB and the kernel killed it",
            memory_bytes / (1 << 20)
        ));
    } else if code == 137 {
        log.system("===> The step's container was killed (SIGKILL) by something other than Gantry");
    } else {
        log.system(format!(
            "===> The step's process ended by signal {}",
            code - 128
        ));
    }
}

/// Observes how long a lifecycle phase took since `since`; returns now, the next phase's start.
fn record_phase(phase: &'static str, since: Instant) -> Instant {
    let now = Instant::now();
    metrics::histogram!(names::CONTAINER_SECONDS, "phase" => phase)
        .record(now.duration_since(since).as_secs_f64());
    now
}

/// The hardened host configuration of every step container (DESIGN §5.2), with the network and
/// limits of `limits`. Public so that the loadtest's raw figures run containers exactly as
/// hardened.
pub fn host_config(settings: &WorkerSettings, limits: &EffectiveSettings) -> HostConfig {
    HostConfig {
        network_mode: Some(limits.runner_network.clone()),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([(
            SCRATCH_DIR.to_owned(),
            format!("rw,nosuid,nodev,size={}", settings.tmp_size),
        )])),
        memory: Some(limits.memory_bytes),
        memory_swap: Some(limits.memory_bytes),
        nano_cpus: Some(limits.nano_cpus()),
        pids_limit: Some(limits.pids_limit),
        // The engine's default (runc) unless the settings name another registered runtime.
        runtime: (!settings.container_runtime.is_empty())
            .then(|| settings.container_runtime.clone()),
        ..Default::default()
    }
}

async fn create_container(
    docker: &Docker,
    settings: &WorkerSettings,
    shape: &Shape,
    name: &str,
    worker_id: &str,
) -> Result<String, bollard::errors::Error> {
    let host_config = host_config(settings, &shape.limits);
    let body = ContainerCreateBody {
        image: Some(shape.image.clone()),
        cmd: Some(vec!["park".into()]),
        user: Some(format!("{RUNNER_UID}:{RUNNER_UID}")),
        env: Some(vec![
            format!("GANTRY_REPO_FOLDER={}", settings.repo_folder),
            format!("HOME={CONTAINER_HOME}"),
        ]),
        labels: Some(parked_labels(worker_id)),
        working_dir: Some(CONTAINER_HOME.to_owned()),
        // An anonymous volume: writable, filled from the image's /opt/gantry, removed with the
        // container; uploads into it work although the root filesystem is read-only.
        volumes: Some(vec![CONTAINER_HOME.to_owned()]),
        // The step's start line arrives on stdin, which closes when the worker lets go of it.
        open_stdin: Some(true),
        stdin_once: Some(true),
        attach_stdin: Some(true),
        host_config: Some(host_config),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    Ok(docker.create_container(Some(options), body).await?.id)
}

/// `.gantry/step_context.json` owned by the runner user, for upload into /opt/gantry.
fn context_tar(step_context: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_uid(u64::from(RUNNER_UID));
    dir.set_gid(u64::from(RUNNER_UID));
    dir.set_size(0);
    dir.set_cksum();
    let protocol_dir = PROTOCOL_DIR
        .trim_start_matches(CONTAINER_HOME)
        .trim_start_matches('/');
    builder
        .append_data(&mut dir, format!("{protocol_dir}/"), std::io::empty())
        .expect("in-memory tar");
    let mut file = tar::Header::new_gnu();
    file.set_mode(0o600);
    file.set_uid(u64::from(RUNNER_UID));
    file.set_gid(u64::from(RUNNER_UID));
    file.set_size(step_context.len() as u64);
    file.set_cksum();
    builder
        .append_data(
            &mut file,
            format!(
                "{protocol_dir}/{}",
                gantry_shared::protocol::STEP_CONTEXT_FILE
            ),
            step_context,
        )
        .expect("in-memory tar");
    builder.into_inner().expect("in-memory tar")
}

async fn wait(docker: &Docker, id: &str) -> Result<i64, bollard::errors::Error> {
    let mut stream =
        docker.wait_container(id, None::<bollard::query_parameters::WaitContainerOptions>);
    match stream.next().await {
        Some(Ok(response)) => Ok(response.status_code),
        // A non-zero exit arrives as this error: it is an exit status, not a transport failure.
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(e),
        None => Ok(-1),
    }
}

async fn kill(docker: &Docker, id: &str) {
    if let Err(e) = docker
        .kill_container(id, None::<KillContainerOptions>)
        .await
    {
        tracing::warn!(error = %e, container = %id, "killing a step container failed");
    }
}

/// Attaches to the created container's stdin, stdout and stderr before it starts, as `docker run`
/// does: nothing it prints is missed, the stream ends when its output closes, with its process,
/// and the stdin its step's start line goes to is this worker's alone. (A followed log stream,
/// opened after the start, ended 5.7 ms after the wait returned here, on the path of every step:
/// mean of `chain --size medium`'s 51 containers.)
async fn attach(
    docker: &Docker,
    id: &str,
) -> Result<bollard::container::AttachContainerResults, bollard::errors::Error> {
    let options = AttachContainerOptionsBuilder::default()
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .stream(true)
        .logs(true)
        .build();
    docker.attach_container(id, Some(options)).await
}

/// Hands the container's output to the step log until it ends; the log reassembles it into
/// lines, masks them and only then cuts overlong ones.
async fn stream_output(
    attached: bollard::container::AttachContainerResults,
    id: String,
    mut output: Output,
) {
    // The input half is held open until the output ends: its end would tell the runner that
    // this worker is gone (see gantry-runner park).
    let bollard::container::AttachContainerResults {
        output: mut logs,
        input: _input,
    } = attached;
    while let Some(item) = logs.next().await {
        let (stream, bytes) = match item {
            Ok(LogOutput::StdOut { message }) => (Stream::Stdout, message),
            Ok(LogOutput::StdErr { message }) => (Stream::Stderr, message),
            Ok(LogOutput::Console { message }) => (Stream::Stdout, message),
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, container = %id, "log stream ended early");
                break;
            }
        };
        output.push(stream, &bytes);
    }
    output.finish();
}

/// Where a container's files are: its engine, its id and, when usable, its volume's directory.
/// (Apart from the [`Parked`] handle, whose attachment is not `Sync`.)
struct Place<'a> {
    docker: &'a Docker,
    id: &'a str,
    volume: Option<&'a std::path::Path>,
}

impl Parked {
    fn place(&self) -> Place<'_> {
        Place {
            docker: &self.docker,
            id: &self.id,
            volume: self.volume.as_deref(),
        }
    }
}

/// Puts `step_context.json` into the container's volume: straight into the local directory when
/// possible, else through the Docker API.
async fn deliver_context(
    container: Place<'_>,
    step_context: &[u8],
) -> Result<(), bollard::errors::Error> {
    if let Some(volume) = container.volume {
        match volume::write_context(volume, step_context) {
            Ok(()) => {
                count_copy("in", "volume");
                return Ok(());
            }
            Err(e) => {
                tracing::debug!(reason = %e.0, "writing the step context through the Docker API")
            }
        }
    }
    count_copy("in", "docker_api");
    let upload = UploadToContainerOptionsBuilder::default()
        .path(CONTAINER_HOME)
        .build();
    container
        .docker
        .upload_to_container(
            container.id,
            Some(upload),
            bollard::body_full(context_tar(step_context).into()),
        )
        .await
}

/// Reads `step_result.json` from the exited container, locally when possible.
async fn collect_result(container: Place<'_>) -> Result<Option<serde_json::Value>, String> {
    if let Some(volume) = container.volume {
        match volume::read_result(volume) {
            Ok(result) => {
                count_copy("out", "volume");
                return result;
            }
            Err(e) => {
                tracing::debug!(reason = %e.0, "reading the step result through the Docker API")
            }
        }
    }
    count_copy("out", "docker_api");
    read_result(container.docker, container.id).await
}

fn count_copy(direction: &'static str, route: &'static str) {
    metrics::counter!(names::PROTOCOL_COPIES, "direction" => direction, "route" => route)
        .increment(1);
}

/// Copies `step_result.json` out: a missing file is `Ok(None)`; a symlink, a non-regular file, an
/// oversized or invalid file is an error message for the step log.
async fn read_result(docker: &Docker, id: &str) -> Result<Option<serde_json::Value>, String> {
    let path = format!("{PROTOCOL_DIR}/{STEP_RESULT_FILE}");
    let options = DownloadFromContainerOptionsBuilder::default()
        .path(&path)
        .build();
    let mut stream = docker.download_from_container(id, Some(options));
    let mut archive = Vec::new();
    // The tar around the file adds headers; anything beyond the cap plus room for them is refused
    // without reading further, so a huge file cannot exhaust the worker's memory.
    let limit = MAX_STEP_RESULT_BYTES as usize + 64 * 1024;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => {
                archive.extend_from_slice(&bytes);
                if archive.len() > limit {
                    return Err(format!(
                        "The {STEP_RESULT_FILE} is larger than {MAX_STEP_RESULT_BYTES} bytes"
                    ));
                }
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(e) => {
                return Err(format!(
                    "Could not copy {STEP_RESULT_FILE} out of the container: {e}"
                ));
            }
        }
    }
    parse_result_archive(&archive)
}

fn parse_result_archive(archive: &[u8]) -> Result<Option<serde_json::Value>, String> {
    let mut tar = tar::Archive::new(archive);
    let mut entries = tar
        .entries()
        .map_err(|e| format!("The {STEP_RESULT_FILE} archive is unreadable: {e}"))?;
    let Some(entry) = entries.next() else {
        return Ok(None);
    };
    let mut entry =
        entry.map_err(|e| format!("The {STEP_RESULT_FILE} archive is unreadable: {e}"))?;
    if entry.header().entry_type() != tar::EntryType::Regular {
        return Err(format!(
            "The {STEP_RESULT_FILE} is not a regular file (symlinks and devices are refused)"
        ));
    }
    if entry.size() > MAX_STEP_RESULT_BYTES {
        return Err(format!(
            "The {STEP_RESULT_FILE} is larger than {MAX_STEP_RESULT_BYTES} bytes"
        ));
    }
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    std::io::Read::read_to_end(&mut entry, &mut bytes)
        .map_err(|e| format!("Reading {STEP_RESULT_FILE} failed: {e}"))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("The {STEP_RESULT_FILE} is not valid JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WorkerSettings {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configuration"));
        gantry_shared::settings::Settings::load_from(dir, "local")
            .expect("the local configuration loads")
            .worker
    }

    #[test]
    fn step_containers_use_the_engines_default_runtime_unless_one_is_named() {
        let mut settings = settings();
        let limits = EffectiveSettings::defaults(&settings);
        assert_eq!(host_config(&settings, &limits).runtime, None);

        settings.container_runtime = "crun".into();
        let hardened = host_config(&settings, &limits);

        assert_eq!(hardened.runtime.as_deref(), Some("crun"));
        assert_eq!(hardened.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(hardened.readonly_rootfs, Some(true));
    }
}

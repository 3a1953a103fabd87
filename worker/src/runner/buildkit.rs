//! Step image builds through BuildKit (bollard's gRPC Moby driver): the builder used when a step
//! has build secrets (DESIGN §4 `gantry.env:build_secrets`), since the classic builder has no way
//! to offer a secret without leaving it in the image.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::grpc::build::{
    ImageBuildFrontendOptions, ImageBuildLoadInput, ImageBuildNetworkMode, SecretSource,
};
use bollard::grpc::driver::Build;
use bollard::grpc::driver::moby::Moby;
use bollard::grpc::error::GrpcError;

use super::image::ImageError;

/// What a BuildKit build needs, owned: it runs on a blocking thread of its own.
pub struct Options {
    pub tag: String,
    pub args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    pub network: String,
    /// Secret id → value (the keys of the build secrets).
    pub secrets: BTreeMap<String, String>,
}

/// Builds through BuildKit over the engine's gRPC session (bollard's Moby driver), the only way
/// this engine (Docker 20.10, API 1.41) takes build secrets. Each key of the build secrets is a
/// BuildKit secret with that id, e.g. `RUN --mount=type=secret,id=API_KEY,uid=10001 cat
/// /run/secrets/API_KEY`. The mount exists during that `RUN` only: the value is in no layer, and
/// the history shows the command, not the value. The mount is owned by root with mode 0400 unless
/// it sets `uid=10001` (the runner user the base image switches to). The engine's built-in
/// Dockerfile frontend predates `env=` mounts (Dockerfile 1.10): `RUN
/// --mount=type=secret,id=API_KEY,env=API_KEY …` fails the build with "unexpected key 'env' in
/// 'env=API_KEY'", and a `# syntax=` line asking for a newer frontend needs a registry.
///
/// The context is the classic build's tar, uploaded through the session; the frontend unpacks it
/// (`repo.tar` stays a file for the Dockerfile's `ADD`). The values are written to files in a
/// private temporary directory (bollard reads secrets from files or from the worker's own
/// environment) that is removed as soon as the build ends, also when the step stopped waiting
/// for it. The build does not use BuildKit's cache (see `nocache`). BuildKit has only the networks
/// `none`, `host` and the engine's default.
pub async fn build(docker: &Docker, options: Options, context: Vec<u8>) -> Result<(), ImageError> {
    let docker = docker.clone();
    let handle = tokio::runtime::Handle::current();
    // The driver's future is not `Send` (it holds a boxed non-`Send` tear-down handler), so it
    // cannot run on the worker's tasks; a blocking thread drives it on the same runtime.
    let build = tokio::task::spawn_blocking(move || {
        let dir = write_secret_files(&options.secrets)
            .map_err(|e| ImageError::Infrastructure(format!("writing the build secrets: {e}")))?;
        let mut frontend = ImageBuildFrontendOptions::builder()
            .dockerfile(Path::new("Dockerfile"))
            .pull(false)
            // BuildKit's cache ignores secret values: a cached `RUN` would keep a rotated
            // secret's old result. Builds only run when the content tag is new anyway.
            .nocache(true)
            .force_network_mode(&buildkit_network(&options.network));
        for (key, value) in &options.args {
            frontend = frontend.buildarg(key, value);
        }
        for (key, value) in &options.labels {
            frontend = frontend.label(key, value);
        }
        for key in options.secrets.keys() {
            frontend = frontend.set_secret(key, &SecretSource::File(dir.path().join(key)));
        }
        let input = ImageBuildLoadInput::Upload(context.into());
        handle
            .block_on(Moby::new(&docker).docker_build(
                &options.tag,
                frontend.build(),
                input,
                None,
                None,
            ))
            .map_err(buildkit_error)
    });
    build.await.unwrap_or_else(|e| {
        Err(ImageError::Infrastructure(format!(
            "the BuildKit build stopped: {e}"
        )))
    })
}

/// Name prefix of the directories holding build secrets; the process id follows it, so a sweep
/// can tell the directories of dead processes from those of live ones.
const SECRETS_DIR_PREFIX: &str = "gantry-build-secrets-";

/// Where build secret files are written: the shared-memory tmpfs when there is one (the values
/// never reach a disk), else the temporary directory.
fn secrets_parent() -> PathBuf {
    let shm = Path::new("/dev/shm");
    match shm.is_dir() {
        true => shm.to_path_buf(),
        false => std::env::temp_dir(),
    }
}

/// One file per secret, readable by the worker only, in a directory removed when dropped.
fn write_secret_files(secrets: &BTreeMap<String, String>) -> std::io::Result<tempfile::TempDir> {
    write_secret_files_in(&secrets_parent(), secrets)
}

fn write_secret_files_in(
    parent: &Path,
    secrets: &BTreeMap<String, String>,
) -> std::io::Result<tempfile::TempDir> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = tempfile::Builder::new()
        .prefix(&format!("{SECRETS_DIR_PREFIX}{}-", std::process::id()))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(parent)?;
    for (key, value) in secrets {
        // Keys are environment variable names (checked when the secret is stored): plain file names.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.path().join(key))?
            .write_all(value.as_bytes())?;
    }
    Ok(dir)
}

/// Removes the build secret directories a killed worker left behind (a `SIGKILL` skips the
/// removal on drop): those whose process no longer exists. Run when a runner starts.
pub fn sweep_stale_secret_files() {
    let removed = sweep_in(&secrets_parent(), |pid| {
        Path::new(&format!("/proc/{pid}")).exists()
    });
    if removed > 0 {
        tracing::info!(
            removed,
            "removed build secret files left by stopped workers"
        );
    }
}

fn sweep_in(parent: &Path, alive: impl Fn(u32) -> bool) -> usize {
    secret_dirs_in(parent)
        .into_iter()
        .filter(|(pid, dir)| !alive(*pid) && std::fs::remove_dir_all(dir).is_ok())
        .count()
}

/// The build secret directories process `pid` has now (none once its builds have ended).
pub fn secret_dirs_of(pid: u32) -> Vec<PathBuf> {
    secret_dirs_in(&secrets_parent())
        .into_iter()
        .filter_map(|(owner, dir)| (owner == pid).then_some(dir))
        .collect()
}

/// The build secret directories in `parent`, with the id of the process that made each.
fn secret_dirs_in(parent: &Path) -> Vec<(u32, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let rest = name.to_str()?.strip_prefix(SECRETS_DIR_PREFIX)?;
            let pid = rest.split('-').next()?.parse().ok()?;
            Some((pid, entry.path()))
        })
        .collect()
}

/// Whether BuildKit can put the build's `RUN` instructions on the engine network `network`; any
/// other (a user-defined network) becomes the engine's default network ([`buildkit_network`]).
pub(super) fn joins_network(network: &str) -> bool {
    matches!(network, "none" | "host" | "bridge" | "default")
}

fn buildkit_network(network: &str) -> ImageBuildNetworkMode {
    match network {
        "none" => ImageBuildNetworkMode::None,
        "host" => ImageBuildNetworkMode::Host,
        _ => ImageBuildNetworkMode::Bridge,
    }
}

/// BuildKit reports whatever the Dockerfile did wrong (a parse error, a failed `RUN`, a missing
/// required secret, an unknown base image) as status `Unknown` with the reason; any other status or
/// a transport error means the engine or the session failed.
fn buildkit_error(error: GrpcError) -> ImageError {
    match error {
        GrpcError::TonicStatus { err } if err.code() == tonic::Code::Unknown => {
            ImageError::Build(err.message().to_owned())
        }
        other => ImageError::Infrastructure(format!("building the image with BuildKit: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_are_private_and_removed_with_their_directory() {
        use std::os::unix::fs::PermissionsExt;
        let secrets = BTreeMap::from([("API_KEY".to_owned(), "v4lue".to_owned())]);
        let dir = write_secret_files(&secrets).unwrap();
        let file = dir.path().join("API_KEY");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "v4lue");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(dir.path()), mode(&file)), (0o700, 0o600));
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn the_files_of_dead_workers_are_swept_and_live_ones_kept() {
        let parent = tempfile::tempdir().unwrap();
        let secrets = BTreeMap::from([("K".to_owned(), "v4lue".to_owned())]);
        let mine = write_secret_files_in(parent.path(), &secrets).unwrap();
        let dead = parent
            .path()
            .join(format!("{SECRETS_DIR_PREFIX}4194999-abc"));
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("K"), "left behind").unwrap();
        let unrelated = parent.path().join("other-dir");
        std::fs::create_dir(&unrelated).unwrap();

        let removed = sweep_in(parent.path(), |pid| pid == std::process::id());

        assert_eq!(removed, 1);
        assert!(!dead.exists());
        assert!(mine.path().join("K").exists());
        assert!(unrelated.exists());
    }

    #[test]
    fn dockerfile_failures_are_build_errors_and_engine_failures_are_infrastructure() {
        let failed_run = GrpcError::from(tonic::Status::unknown(
            "executor failed running [/bin/sh -c exit 3]: exit code: 3",
        ));
        assert!(matches!(
            buildkit_error(failed_run),
            ImageError::Build(m) if m == "executor failed running [/bin/sh -c exit 3]: exit code: 3"
        ));
        let gone = GrpcError::from(tonic::Status::unavailable("transport is closing"));
        assert!(matches!(
            buildkit_error(gone),
            ImageError::Infrastructure(_)
        ));
        let unreachable = GrpcError::from(bollard::errors::Error::SocketNotFoundError(
            "/var/run/docker.sock".into(),
        ));
        assert!(matches!(
            buildkit_error(unreachable),
            ImageError::Infrastructure(m) if m.contains("/var/run/docker.sock")
        ));
    }

    #[test]
    fn buildkit_knows_only_none_host_and_the_default_network() {
        assert_eq!(buildkit_network("none"), ImageBuildNetworkMode::None);
        assert_eq!(buildkit_network("host"), ImageBuildNetworkMode::Host);
        assert_eq!(buildkit_network("gantry"), ImageBuildNetworkMode::Bridge);
    }
}

//! The step image (DESIGN §5.1): the commit's `<repo folder>/Dockerfile` or the default one, built
//! from `repo.tar` + `step_context_env.json`, tagged by a content hash of everything that goes
//! into the build, so an unchanged build is skipped entirely. With build secrets the image is
//! built by BuildKit (the only builder of this engine that takes secrets), otherwise by the
//! classic builder, whose output streams into the step log.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;
use gantry_shared::secrets::{Secret, combined_env};
use sha2::{Digest, Sha256};

use super::buildkit;
use crate::git::{GitCache, Remote};
use crate::steplog::{StepLog, Stream};

pub enum ImageError {
    /// The user's build failed (their Dockerfile or files): the step fails.
    Build(String),
    /// Gantry could not build (Docker or Git unavailable): the attempt is retried.
    Infrastructure(String),
}

pub struct ImageRequest<'a> {
    pub remote: &'a Remote,
    pub commit_sha: &'a str,
    pub git_rev: &'a str,
    pub repo_folder: &'a str,
    pub base_image: &'a str,
    pub network: &'a str,
    pub project_code: &'a str,
    pub context_env_json: &'a [u8],
    pub step_name: &'a str,
    /// `gantry.env:build_secrets`: offered to the build without entering the image.
    pub build_secrets: &'a [Secret],
}

/// How long a base image id read from the engine is trusted: a rebuilt base runner image is used
/// by the steps that start after at most this long.
const BASE_ID_TTL: Duration = Duration::from_secs(5);
/// Content tags remembered at most; the set is emptied when full.
const MAX_KNOWN_TAGS: usize = 10_000;

/// What this worker has learnt from the engine about images, to spare two API round trips on every
/// step's path: the base image's id (re-read after [`BASE_ID_TTL`]) and the content tags seen to
/// exist. A tag whose image was removed behind the worker's back fails the container's create;
/// the runner then forgets it ([`ImageCache::forget`]) and the attempt is retried, which builds it.
#[derive(Default)]
pub struct ImageCache {
    base_ids: Mutex<HashMap<String, (String, Instant)>>,
    tags: Mutex<HashSet<String>>,
    /// When this process last recorded each tag's use (see `gc::record_use`).
    recorded: Mutex<HashMap<String, Instant>>,
}

impl ImageCache {
    fn base_id(&self, image: &str) -> Option<String> {
        let ids = self.base_ids.lock().expect("never poisoned");
        ids.get(image)
            .filter(|(_, read)| read.elapsed() < BASE_ID_TTL)
            .map(|(id, _)| id.clone())
    }

    fn remember_base_id(&self, image: &str, id: &str) {
        let mut ids = self.base_ids.lock().expect("never poisoned");
        ids.insert(image.to_owned(), (id.to_owned(), Instant::now()));
    }

    fn knows(&self, tag: &str) -> bool {
        self.tags.lock().expect("never poisoned").contains(tag)
    }

    fn remember(&self, tag: &str) {
        let mut tags = self.tags.lock().expect("never poisoned");
        if tags.len() >= MAX_KNOWN_TAGS {
            tags.clear();
        }
        tags.insert(tag.to_owned());
    }

    /// Forgets a tag the engine may no longer have.
    pub fn forget(&self, tag: &str) {
        self.tags.lock().expect("never poisoned").remove(tag);
    }

    /// Whether the use of `tag` should be recorded now: not recorded by this process within
    /// `every`. Marks it recorded.
    pub fn use_to_record(&self, tag: &str, every: Duration) -> bool {
        let mut recorded = self.recorded.lock().expect("never poisoned");
        if recorded.get(tag).is_some_and(|at| at.elapsed() < every) {
            return false;
        }
        if recorded.len() >= MAX_KNOWN_TAGS {
            recorded.clear();
        }
        recorded.insert(tag.to_owned(), Instant::now());
        true
    }
}

/// Returns the tag of the step image, building it only when no image with that content hash exists.
pub async fn ensure_image(
    docker: &Docker,
    git: &GitCache,
    cache: &ImageCache,
    req: &ImageRequest<'_>,
    log: &StepLog,
) -> Result<String, ImageError> {
    let infra =
        |what: &str, e: &dyn std::fmt::Display| ImageError::Infrastructure(format!("{what}: {e}"));
    let base_id = match cache.base_id(req.base_image) {
        Some(id) => id,
        None => {
            let base = docker.inspect_image(req.base_image).await.map_err(|e| {
                ImageError::Infrastructure(format!(
                    "the base runner image {} is not available ({e}); build it with `make runner-image`",
                    req.base_image
                ))
            })?;
            let id = base.id.unwrap_or_default();
            cache.remember_base_id(req.base_image, &id);
            id
        }
    };
    let dockerfile_path = format!("{}/Dockerfile", req.repo_folder.trim_end_matches('/'));
    let custom = git
        .read_file(req.remote, req.commit_sha, &dockerfile_path)
        .await
        .map_err(|e| infra("reading the Dockerfile", &e))?;
    let dockerfile = custom
        .clone()
        .unwrap_or_else(|| gantry_shared::DEFAULT_DOCKERFILE.as_bytes().to_vec());
    let args = build_args(req);
    let tag = content_tag(
        &base_id,
        &dockerfile,
        req.commit_sha,
        req.context_env_json,
        &args,
        req.build_secrets,
    );
    // Asked of Docker only when this process does not know the tag, and remembered only when
    // Docker confirmed it.
    let reused = cache.knows(&tag) || {
        let found = docker.inspect_image(&tag).await.is_ok();
        if found {
            cache.remember(&tag);
        }
        found
    };
    if reused {
        count_image("reused");
        log.system(format!(
            "===> Reusing image {tag} for step \"{}\"",
            req.step_name
        ));
        return Ok(tag);
    }
    log.system(format!(
        "===> Starting image build for step \"{}\"",
        req.step_name
    ));
    if custom.is_some() {
        log.system(format!(
            "===> Using \"{dockerfile_path}\" to build the image for step \"{}\"",
            req.step_name
        ));
    }
    let archive = git
        .archive(req.remote, req.commit_sha)
        .await
        .map_err(|e| infra("archiving the repository", &e))?;
    let repo_tar =
        owned_by_runner(&archive).map_err(|e| infra("re-owning the repository archive", &e))?;
    let context = build_context(&dockerfile, &repo_tar, req.context_env_json)
        .map_err(|e| infra("packing the build context", &e))?;
    build(docker, req, &tag, args, context, log)
        .await
        .inspect_err(|_| count_image("failed"))?;
    count_image("built");
    cache.remember(&tag);
    log.system(format!(
        "===> Finished image build for step \"{}\"",
        req.step_name
    ));
    Ok(tag)
}

fn count_image(outcome: &'static str) {
    metrics::counter!(gantry_shared::metrics::names::IMAGES, "outcome" => outcome).increment(1);
}

fn build_args(req: &ImageRequest<'_>) -> HashMap<String, String> {
    HashMap::from([
        ("GIT_REV".to_owned(), req.git_rev.to_owned()),
        ("GIT_SHA".to_owned(), req.commit_sha.to_owned()),
        ("GANTRY_BASE_RUNNER".to_owned(), req.base_image.to_owned()),
        (
            "GANTRY_VERSION".to_owned(),
            gantry_shared::VERSION.to_owned(),
        ),
    ])
}

/// The content hash: base image id, Dockerfile, commit (the archive of a commit is a function of
/// it), the env file, the build args and, when there are build secrets, their names and update
/// times in order (a rotated secret rebuilds; values never enter the tag, which is public).
fn content_tag(
    base_id: &str,
    dockerfile: &[u8],
    sha: &str,
    env_json: &[u8],
    args: &HashMap<String, String>,
    secrets: &[Secret],
) -> String {
    let mut hasher = Sha256::new();
    for part in [
        b"gantry-image-v1".as_slice(),
        base_id.as_bytes(),
        dockerfile,
        sha.as_bytes(),
        env_json,
    ] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let mut sorted: Vec<_> = args.iter().collect();
    sorted.sort();
    for (k, v) in sorted {
        hasher.update(format!("{}={}\n{}", k.len(), k, v).as_bytes());
    }
    // Nothing is added without secrets, so the tags of images built before secrets stay valid.
    for secret in secrets {
        let stamp = secret
            .updated_at
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        hasher.update(format!("secret:{}={}\n{stamp}", secret.name.len(), secret.name).as_bytes());
    }
    format!("gantry-step:{}", &hex::encode(hasher.finalize())[..32])
}

/// The archive with every entry owned by the runner user: the classic builder's `ADD --chown`
/// does not apply to what it extracts from a tar, and the step must be able to write its checkout.
fn owned_by_runner(archive: &[u8]) -> std::io::Result<Vec<u8>> {
    let uid = u64::from(gantry_shared::protocol::RUNNER_UID);
    let mut out = tar::Builder::new(Vec::with_capacity(archive.len()));
    let mut input = tar::Archive::new(archive);
    for entry in input.entries()? {
        let mut entry = entry?;
        let mut header = entry.header().clone();
        header.set_uid(uid);
        header.set_gid(uid);
        header.set_cksum();
        let path = entry.path()?.into_owned();
        match header.entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()?
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                out.append_link(&mut header, &path, &target)?;
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            _ => out.append_data(&mut header, &path, &mut entry)?,
        }
    }
    out.into_inner()
}

fn build_context(dockerfile: &[u8], repo_tar: &[u8], env_json: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::with_capacity(repo_tar.len() + 4096));
    for (name, data) in [
        ("Dockerfile", dockerfile),
        ("repo.tar", repo_tar),
        ("step_context_env.json", env_json),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, data)?;
    }
    builder.into_inner()
}

async fn build(
    docker: &Docker,
    req: &ImageRequest<'_>,
    tag: &str,
    args: HashMap<String, String>,
    context: Vec<u8>,
    log: &StepLog,
) -> Result<(), ImageError> {
    let labels = HashMap::from([
        ("gantry".to_owned(), "true".to_owned()),
        ("gantry.project".to_owned(), req.project_code.to_owned()),
        ("gantry.commit".to_owned(), req.commit_sha.to_owned()),
    ]);
    if req.build_secrets.is_empty() {
        return classic_build(docker, req.network, tag, &args, &labels, context, log).await;
    }
    let options = buildkit::Options {
        tag: tag.to_owned(),
        args,
        labels,
        network: req.network.to_owned(),
        secrets: combined_env(req.build_secrets),
    };
    log.system(format!(
        "===> Building with BuildKit, offering the build secrets {} to `RUN --mount=type=secret,id=<key>,uid=10001` (BuildKit reports no build output here)",
        options.secrets.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
    ));
    if !buildkit::joins_network(req.network) {
        log.system(format!(
            "===> BuildKit cannot join the network \"{}\": the build's RUN instructions use the engine's default network",
            req.network
        ));
    }
    buildkit::build(docker, options, context).await
}

async fn classic_build(
    docker: &Docker,
    network: &str,
    tag: &str,
    args: &HashMap<String, String>,
    labels: &HashMap<String, String>,
    context: Vec<u8>,
    log: &StepLog,
) -> Result<(), ImageError> {
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .buildargs(args)
        .labels(labels)
        .networkmode(network)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream {
                    for line in text.lines().filter(|l| !l.trim().is_empty()) {
                        log.line(Stream::Stdout, line);
                    }
                }
                if let Some(detail) = info.error_detail {
                    return Err(ImageError::Build(detail.message.unwrap_or_default()));
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(ImageError::Build(error));
            }
            Err(e) => {
                return Err(ImageError::Infrastructure(format!(
                    "building the image: {e}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use std::collections::BTreeMap;

    fn secret(name: &str, value: &str, updated_second: i64) -> Secret {
        let at = Utc
            .timestamp_opt(1_700_000_000 + updated_second, 0)
            .unwrap();
        Secret {
            name: name.into(),
            values: BTreeMap::from([("TOKEN".to_owned(), value.to_owned())]),
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn the_tag_changes_with_every_input_and_only_then() {
        let args = HashMap::from([("A".to_owned(), "1".to_owned())]);
        let tag = |base: &str, file: &[u8], sha: &str, env: &[u8], args| {
            content_tag(base, file, sha, env, args, &[])
        };
        let base = tag("img", b"FROM x", "sha", b"{}", &args);
        assert_eq!(base, tag("img", b"FROM x", "sha", b"{}", &args));
        assert_ne!(base, tag("img2", b"FROM x", "sha", b"{}", &args));
        assert_ne!(base, tag("img", b"FROM y", "sha", b"{}", &args));
        assert_ne!(base, tag("img", b"FROM x", "sha2", b"{}", &args));
        assert_ne!(base, tag("img", b"FROM x", "sha", b"{\"a\":1}", &args));
        assert_ne!(base, tag("img", b"FROM x", "sha", b"{}", &HashMap::new()));
    }

    #[test]
    fn build_secrets_change_the_tag_by_name_and_update_time_but_never_by_value() {
        let args = HashMap::new();
        let tag = |secrets: &[Secret]| content_tag("img", b"FROM x", "sha", b"{}", &args, secrets);
        let one = tag(&[secret("deploy", "s3cret", 0)]);
        assert_ne!(one, tag(&[]), "a build with secrets is another image");
        assert_eq!(one, tag(&[secret("deploy", "other value", 0)]));
        assert_ne!(one, tag(&[secret("deploy", "s3cret", 1)]), "rotated");
        assert_ne!(one, tag(&[secret("build", "s3cret", 0)]), "renamed");
        let two = [secret("a", "1", 0), secret("b", "2", 0)];
        let swapped = [secret("b", "2", 0), secret("a", "1", 0)];
        assert_ne!(tag(&two), tag(&swapped), "order decides which value wins");
        assert_ne!(tag(&two), one);
    }
}

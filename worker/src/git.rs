//! The Git mirror cache, shared by the planner (rev resolution, manifest) and the runner (the
//! repository archive). It drives the `git` binary, which handles every transport and credential
//! form faithfully. Credentials reach git through the environment (never argv, never the URL):
//! a Basic auth header via GIT_CONFIG_* for https, a 0600 key file via GIT_SSH_COMMAND for ssh.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gantry_shared::crypto::{Cipher, CryptoError, git_remote_aad};
use sha2::{Digest, Sha256};
use tokio::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git {action} failed: {message}")]
    Failed {
        action: &'static str,
        message: String,
    },
    #[error("revision {rev:?} was not found in the repository")]
    UnknownRevision { rev: String },
    #[error("i/o while {0}: {1}")]
    Io(&'static str, std::io::Error),
}

/// Where and how to fetch a project's repository.
#[derive(Clone)]
pub struct Remote {
    pub url: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub ssh_key: Option<String>,
}

impl Remote {
    /// Reads a remote from the five columns `id, url, username, password, ssh_key_data` of a
    /// `git_remotes` row starting at `first`, opening the encrypted credentials.
    pub fn from_row(
        cipher: &Cipher,
        row: &tokio_postgres::Row,
        first: usize,
    ) -> Result<Self, CryptoError> {
        let id: uuid::Uuid = row.get(first);
        let open = |column: &str, index: usize| -> Result<Option<String>, CryptoError> {
            row.get::<_, Option<Vec<u8>>>(index)
                .map(|sealed| cipher.decrypt_str(&sealed, &git_remote_aad(id, column)))
                .transpose()
        };
        Ok(Self {
            url: row.get(first + 1),
            user: row.get(first + 2),
            password: open("password", first + 3)?,
            ssh_key: open("ssh_key_data", first + 4)?,
        })
    }
}

/// The cache directory, plus one async lock per mirror so one process never runs two fetches
/// into the same mirror at once. The lock holds when the last successful fetch started: a
/// request whose revision must be as new as some instant is served by any fetch that started
/// after it (many changes planned at once, or planned some time after they were created, share
/// one fetch). It also holds the revisions resolved since that fetch: the refs of a mirror change
/// only by a fetch, under this lock.
#[derive(Clone)]
pub struct GitCache {
    root: PathBuf,
    /// Fetches of one mirror start at least this far apart.
    fetch_interval: Duration,
    locks: Arc<Mutex<HashMap<PathBuf, MirrorLock>>>,
    /// Files read at a commit. A commit's content never changes, so every step of a change (and
    /// of later changes on the same commit) asks git only once per file.
    files: Arc<Mutex<FileCache>>,
}

type MirrorLock = Arc<tokio::sync::Mutex<Mirror>>;

/// What this process knows of one mirror.
#[derive(Default)]
struct Mirror {
    /// When the last successful fetch (or the clone) started.
    fetched: Option<Instant>,
    /// Revision → commit sha, as resolved since that fetch.
    revisions: HashMap<String, String>,
}

/// Revisions remembered per mirror before the map is emptied (a fetch empties it anyway).
const MAX_CACHED_REVISIONS: usize = 1024;

/// (commit sha, path) → the file's content, or None when the commit has no such file.
type FileCache = HashMap<(String, String), Option<Vec<u8>>>;

/// Entries kept in the file cache before it is emptied (a few small files per commit).
const MAX_CACHED_FILES: usize = 4096;

impl GitCache {
    pub fn new(root: PathBuf) -> Self {
        Self::with_fetch_interval(root, Duration::ZERO)
    }

    /// A cache whose fetches of one remote start at least `fetch_interval` apart.
    pub fn with_fetch_interval(root: PathBuf, fetch_interval: Duration) -> Self {
        Self {
            root,
            fetch_interval,
            locks: Default::default(),
            files: Default::default(),
        }
    }

    fn mirror_dir(&self, url: &str) -> PathBuf {
        let digest = hex::encode(Sha256::digest(url.as_bytes()));
        self.root
            .join("mirrors")
            .join(format!("{}.git", &digest[..24]))
    }

    fn lock(&self, dir: &Path) -> MirrorLock {
        let mut locks = self.locks.lock().expect("the lock table is never poisoned");
        locks.entry(dir.to_owned()).or_default().clone()
    }

    /// Resolves `rev` to a commit sha as the remote had it at `as_of` or later: the remote is
    /// fetched into its mirror (cloned if new) unless a fetch started since `as_of` — and not at
    /// all when `rev` is a full commit sha the mirror already has, which cannot change.
    pub async fn resolve(
        &self,
        remote: &Remote,
        rev: &str,
        as_of: Instant,
    ) -> Result<String, GitError> {
        let dir = self.mirror_dir(&remote.url);
        // A full sha the mirror has resolves to itself (or the commit its tag names) in one spawn;
        // when it cannot, it is fetched for like any other revision.
        if is_full_sha(rev)
            && dir.join("HEAD").exists()
            && let Ok(sha) = rev_parse(&dir, rev).await
        {
            return Ok(sha);
        }
        let mut mirror = self.fresh_mirror(remote, &dir, as_of).await?;
        if let Some(sha) = mirror.revisions.get(rev) {
            return Ok(sha.clone());
        }
        let sha = rev_parse(&dir, rev).await?;
        if mirror.revisions.len() >= MAX_CACHED_REVISIONS {
            mirror.revisions.clear();
        }
        mirror.revisions.insert(rev.to_owned(), sha.clone());
        Ok(sha)
    }

    /// Makes sure `sha` is in the mirror, fetching only when it is missing.
    pub async fn ensure_commit(&self, remote: &Remote, sha: &str) -> Result<PathBuf, GitError> {
        let dir = self.mirror_dir(&remote.url);
        if has_commit(&dir, sha).await {
            return Ok(dir);
        }
        self.fresh_mirror(remote, &dir, Instant::now()).await?;
        if has_commit(&dir, sha).await {
            Ok(dir)
        } else {
            Err(GitError::UnknownRevision {
                rev: sha.to_owned(),
            })
        }
    }

    /// The lock of `remote`'s mirror `dir`, whose content is as the remote was at `as_of` or
    /// later: fetched now unless a fetch started since. Its refs stay as they are while it is held.
    async fn fresh_mirror(
        &self,
        remote: &Remote,
        dir: &Path,
        as_of: Instant,
    ) -> Result<tokio::sync::OwnedMutexGuard<Mirror>, GitError> {
        let mut mirror = self.lock(dir).lock_owned().await;
        if mirror.fetched.is_some_and(|started| started >= as_of) && dir.join("HEAD").exists() {
            return Ok(mirror);
        }
        // Too soon after the last fetch: this one waits, holding the lock, so that what is
        // created meanwhile is served by it too.
        if let Some(last) = mirror.fetched {
            tokio::time::sleep_until((last + self.fetch_interval).into()).await;
        }
        let started = Instant::now();
        fetch(remote, &self.root, dir).await?;
        mirror.fetched = Some(started);
        mirror.revisions.clear();
        Ok(mirror)
    }

    /// The content of `path` at `sha`, or None when the commit has no such file.
    pub async fn read_file(
        &self,
        remote: &Remote,
        sha: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, GitError> {
        let key = (sha.to_owned(), path.to_owned());
        if let Some(cached) = self.cached_files().get(&key) {
            return Ok(cached.clone());
        }
        let dir = self.ensure_commit(remote, sha).await?;
        let object = format!("{sha}:{path}");
        let exists = git(&dir, &["cat-file", "-e", &object], &[]).await?;
        let content = if exists.status.success() {
            let out = git(&dir, &["cat-file", "blob", &object], &[]).await?;
            Some(check(out, "cat-file")?)
        } else {
            None
        };
        let mut files = self.cached_files();
        if files.len() >= MAX_CACHED_FILES {
            files.clear();
        }
        files.insert(key, content.clone());
        Ok(content)
    }

    fn cached_files(&self) -> std::sync::MutexGuard<'_, FileCache> {
        self.files.lock().expect("the file cache is never poisoned")
    }

    /// `git archive` of the commit as a tar, cached per sha (the tar of a commit never changes).
    pub async fn archive(&self, remote: &Remote, sha: &str) -> Result<Vec<u8>, GitError> {
        let cached = self.root.join("archives").join(format!("{sha}.tar"));
        if let Ok(bytes) = tokio::fs::read(&cached).await {
            return Ok(bytes);
        }
        let dir = self.ensure_commit(remote, sha).await?;
        let out = git(&dir, &["archive", "--format=tar", sha], &[]).await?;
        let bytes = check(out, "archive")?;
        let parent = cached.parent().expect("archive paths have a parent");
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| GitError::Io("creating the archive cache", e))?;
        let tmp = parent.join(format!(".{sha}.{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&tmp, &bytes)
            .await
            .map_err(|e| GitError::Io("caching an archive", e))?;
        tokio::fs::rename(&tmp, &cached)
            .await
            .map_err(|e| GitError::Io("caching an archive", e))?;
        Ok(bytes)
    }
}

/// Fetches the remote into its mirror `dir`, or clones it there when it is new.
async fn fetch(remote: &Remote, root: &Path, dir: &Path) -> Result<(), GitError> {
    let creds = Credentials::prepare(remote, root)?;
    let env = &creds.env;
    if dir.join("HEAD").exists() {
        let out = git(
            dir,
            &["fetch", "--prune", "--force", "--quiet", "origin"],
            env,
        )
        .await?;
        check(out, "fetch")?;
        return Ok(());
    }
    let parent = dir.parent().expect("mirror dirs have a parent");
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| GitError::Io("creating the git cache", e))?;
    let tmp = parent.join(format!(".clone-{}", uuid::Uuid::new_v4().simple()));
    let target = tmp.to_string_lossy().into_owned();
    let out = git(
        parent,
        &["clone", "--mirror", "--quiet", "--", &remote.url, &target],
        env,
    )
    .await?;
    if let Err(e) = check(out, "clone") {
        let _ = tokio::fs::remove_dir_all(&tmp).await;
        return Err(e);
    }
    tokio::fs::rename(&tmp, dir)
        .await
        .map_err(|e| GitError::Io("placing the mirror", e))
}

/// The commit `rev` names in the mirror `dir`.
async fn rev_parse(dir: &Path, rev: &str) -> Result<String, GitError> {
    let spec = format!("{rev}^{{commit}}");
    let out = git(
        dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
        &[],
    )
    .await?;
    if !out.status.success() {
        return Err(GitError::UnknownRevision {
            rev: rev.to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn is_full_sha(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn has_commit(dir: &Path, sha: &str) -> bool {
    let spec = format!("{sha}^{{commit}}");
    dir.join("HEAD").exists()
        && matches!(git(dir, &["cat-file", "-e", &spec], &[]).await, Ok(out) if out.status.success())
}

async fn git(
    dir: &Path,
    args: &[&str],
    env: &[(String, String)],
) -> Result<std::process::Output, GitError> {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env("SSH_ASKPASS", "/bin/false")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| GitError::Io("running git", e))
}

fn check(out: std::process::Output, action: &'static str) -> Result<Vec<u8>, GitError> {
    if out.status.success() {
        Ok(out.stdout)
    } else {
        let message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        Err(GitError::Failed {
            action,
            message: if message.is_empty() {
                format!("exit status {}", out.status)
            } else {
                message
            },
        })
    }
}

/// Credentials materialised for one git invocation; the key file lives as long as this value and
/// is removed when it is dropped.
struct Credentials {
    env: Vec<(String, String)>,
    _key_file: Option<tempfile::TempPath>,
}

impl Credentials {
    fn prepare(remote: &Remote, root: &Path) -> Result<Self, GitError> {
        use base64::Engine;
        let mut env = Vec::new();
        if let (Some(user), Some(password)) = (&remote.user, &remote.password) {
            env.push(("GIT_CONFIG_COUNT".into(), "1".into()));
            env.push(("GIT_CONFIG_KEY_0".into(), "http.extraHeader".into()));
            env.push((
                "GIT_CONFIG_VALUE_0".into(),
                format!(
                    "Authorization: Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
                ),
            ));
        }
        let mut key_file = None;
        if let Some(key) = &remote.ssh_key {
            let dir = root.join("keys");
            std::fs::create_dir_all(&dir)
                .map_err(|e| GitError::Io("creating the key directory", e))?;
            let file = tempfile::Builder::new()
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .tempfile_in(&dir)
                .map_err(|e| GitError::Io("writing the ssh key", e))?;
            std::fs::write(file.path(), format!("{}\n", key.trim_end()))
                .map_err(|e| GitError::Io("writing the ssh key", e))?;
            let path = file.into_temp_path();
            env.push((
                "GIT_SSH_COMMAND".into(),
                format!("ssh -i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new -o BatchMode=yes", path.display()),
            ));
            key_file = Some(path);
        }
        Ok(Self {
            env,
            _key_file: key_file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_testkit::Repo;

    /// A remote that is a local path, without credentials.
    fn local_remote(path: &Path) -> Remote {
        Remote {
            url: path.to_string_lossy().into_owned(),
            user: None,
            password: None,
            ssh_key: None,
        }
    }

    /// A repository whose `main` has one commit, and that commit's sha.
    fn repo_with_one_commit() -> (Repo, String) {
        let repo = Repo::new(&[("file", "one")]);
        let sha = repo.git(&["rev-parse", "HEAD"]);
        (repo, sha)
    }

    #[tokio::test]
    async fn a_known_commit_sha_resolves_without_fetching_but_a_branch_fetches() {
        let (source, sha) = repo_with_one_commit();
        let cache = tempfile::tempdir().unwrap();
        let remote = local_remote(&source.path());
        let git = GitCache::new(cache.path().to_owned());
        assert_eq!(
            git.resolve(&remote, "main", Instant::now()).await.unwrap(),
            sha
        );

        // With the remote gone, only what needs no fetch still resolves.
        std::fs::remove_dir_all(source.path()).unwrap();
        assert_eq!(
            git.resolve(&remote, &sha, Instant::now()).await.unwrap(),
            sha
        );
        assert!(matches!(
            git.resolve(&remote, "main", Instant::now()).await,
            Err(GitError::Failed {
                action: "fetch",
                ..
            })
        ));
    }

    /// With a fetch interval, a request newer than the last fetch waits until the interval is
    /// over and is then fetched for: it sees what was pushed before it, never an older state.
    #[tokio::test]
    async fn a_fetch_waits_out_the_interval_since_the_last_and_still_sees_the_newer_commit() {
        let (source, first) = repo_with_one_commit();
        let cache = tempfile::tempdir().unwrap();
        let remote = local_remote(&source.path());
        let interval = Duration::from_millis(400);
        let git = GitCache::with_fetch_interval(cache.path().to_owned(), interval);
        let fetched = Instant::now();
        assert_eq!(git.resolve(&remote, "main", fetched).await.unwrap(), first);
        let second = source.commit(&[("file", "two")], "two");

        let asked = Instant::now();
        assert_eq!(git.resolve(&remote, "main", asked).await.unwrap(), second);
        assert!(
            fetched.elapsed() >= interval,
            "fetched again after {:?}",
            fetched.elapsed()
        );
        // The next interval is counted from that fetch, not from the first.
        let third = source.commit(&[("file", "three")], "three");
        let again = Instant::now();
        assert_eq!(git.resolve(&remote, "main", again).await.unwrap(), third);
        assert!(asked.elapsed() >= interval, "{:?}", asked.elapsed());
    }

    #[tokio::test]
    async fn a_branch_is_fetched_again_only_for_a_request_newer_than_the_last_fetch() {
        let (source, first) = repo_with_one_commit();
        let cache = tempfile::tempdir().unwrap();
        let remote = local_remote(&source.path());
        let git = GitCache::new(cache.path().to_owned());
        let before_first_fetch = Instant::now();
        assert_eq!(
            git.resolve(&remote, "main", before_first_fetch)
                .await
                .unwrap(),
            first
        );
        let second = source.commit(&[("file", "two")], "two");
        assert_ne!(second, first);

        // A request from before the last fetch is served by it: the branch as it was then.
        assert_eq!(
            git.resolve(&remote, "main", before_first_fetch)
                .await
                .unwrap(),
            first
        );
        // A request made after it fetches, and sees the new commit; the older request is now
        // served the newer state too (as new as it asked, or newer).
        let now = Instant::now();
        assert_eq!(git.resolve(&remote, "main", now).await.unwrap(), second);
        assert_eq!(
            git.resolve(&remote, "main", before_first_fetch)
                .await
                .unwrap(),
            second
        );
        // A revision missing as of the request's instant is an error, not cached.
        assert!(matches!(
            git.resolve(&remote, "nope", now).await,
            Err(GitError::UnknownRevision { .. })
        ));
        source.git(&["branch", "nope"]);
        assert_eq!(
            git.resolve(&remote, "nope", Instant::now()).await.unwrap(),
            second
        );
    }
}

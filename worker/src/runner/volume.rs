//! The fast path for the step protocol files when the Docker engine runs on this host: the step's
//! anonymous volume is a directory here (Docker fills it from the image at create time), so
//! `step_context.json` is written into it before start and `step_result.json` read from it after
//! exit as plain files. Through the Docker API each copy costs a tar round trip in a helper
//! process of the engine (≈65 ms each on the reference machine, the largest per-step cost
//! after the container start itself).
//!
//! Same rules as the API path (DESIGN §5.2): written before start and read after exit, when no
//! process of the container runs; nothing is followed through a symlink; the result is size
//! capped and must be a regular file. Whatever does not fit these rules — a protocol directory
//! that is not a plain directory, a volume this process cannot write (not root, a remote
//! engine) — is reported as [`Unusable`], and the caller uses the Docker API instead.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use gantry_shared::protocol::{
    CONTAINER_HOME, MAX_STEP_RESULT_BYTES, PROTOCOL_DIR, RUNNER_UID, STEP_CONTEXT_FILE,
    STEP_RESULT_FILE,
};

/// The fast path does not apply; the Docker API is used instead.
#[derive(Debug)]
pub struct Unusable(pub String);

impl<E: std::fmt::Display> From<E> for Unusable {
    fn from(e: E) -> Self {
        Unusable(e.to_string())
    }
}

/// The protocol directory inside the volume mounted at the container home.
fn protocol_dir(volume: &Path) -> PathBuf {
    volume.join(
        PROTOCOL_DIR
            .trim_start_matches(CONTAINER_HOME)
            .trim_start_matches('/'),
    )
}

/// Whether the protocol directory exists; an error when it is anything but a plain directory
/// (a symlink, a file).
fn plain_dir(dir: &Path) -> Result<bool, Unusable> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_dir() => Ok(true),
        Ok(_) => Err(Unusable(format!(
            "{} is not a plain directory",
            dir.display()
        ))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Writes `step_context.json` (mode 0600) into the protocol directory, owned by the runner user,
/// as the upload through the API would.
pub fn write_context(volume: &Path, step_context: &[u8]) -> Result<(), Unusable> {
    let dir = protocol_dir(volume);
    if !plain_dir(&dir)? {
        fs::create_dir(&dir)?;
    }
    lchown(&dir, Some(RUNNER_UID), Some(RUNNER_UID))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    let path = dir.join(STEP_CONTEXT_FILE);
    // A file of that name from the image is replaced; `remove_file` removes a symlink itself,
    // and `create_new` never follows one.
    match fs::remove_file(&path) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(step_context)?;
    lchown(&path, Some(RUNNER_UID), Some(RUNNER_UID))?;
    Ok(())
}

/// Reads `step_result.json`: `Ok(None)` when there is none, `Err` with the step's failure reason
/// when it is not acceptable, exactly as the API path reports them.
pub fn read_result(volume: &Path) -> Result<Result<Option<serde_json::Value>, String>, Unusable> {
    let dir = protocol_dir(volume);
    if !plain_dir(&dir)? {
        return Ok(Ok(None));
    }
    let path = dir.join(STEP_RESULT_FILE);
    let meta = match fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Ok(None)),
        Err(e) => return Err(e.into()),
    };
    if !meta.file_type().is_file() {
        return Ok(Err(format!(
            "The {STEP_RESULT_FILE} is not a regular file (symlinks and devices are refused)"
        )));
    }
    if meta.len() > MAX_STEP_RESULT_BYTES {
        return Ok(Err(too_large()));
    }
    // The container has exited: nothing can swap the file between the check and the read, and
    // the read is capped all the same.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_STEP_RESULT_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_STEP_RESULT_BYTES {
        return Ok(Err(too_large()));
    }
    Ok(serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("The {STEP_RESULT_FILE} is not valid JSON: {e}")))
}

fn too_large() -> String {
    format!("The {STEP_RESULT_FILE} is larger than {MAX_STEP_RESULT_BYTES} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let gantry = protocol_dir(dir.path());
        fs::create_dir(&gantry).unwrap();
        (dir, gantry)
    }

    #[test]
    fn a_valid_result_is_read_and_a_missing_one_is_none() {
        let (volume, gantry) = volume();
        assert!(matches!(read_result(volume.path()), Ok(Ok(None))));
        fs::write(gantry.join(STEP_RESULT_FILE), br#"{"project":{}}"#).unwrap();
        let read = read_result(volume.path()).unwrap().unwrap();
        assert_eq!(read, Some(serde_json::json!({"project": {}})));
    }

    #[test]
    fn symlinks_fifos_oversized_and_invalid_results_fail_the_step() {
        let (volume, gantry) = volume();
        let result = gantry.join(STEP_RESULT_FILE);
        let secret = volume.path().join("host-secret");
        fs::write(&secret, "{}").unwrap();
        std::os::unix::fs::symlink(&secret, &result).unwrap();
        let refused = read_result(volume.path()).unwrap().unwrap_err();
        assert!(refused.contains("not a regular file"), "{refused}");

        fs::remove_file(&result).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(&result)
            .status()
            .unwrap();
        assert!(status.success());
        let refused = read_result(volume.path()).unwrap().unwrap_err();
        assert!(refused.contains("not a regular file"), "{refused}");

        fs::remove_file(&result).unwrap();
        let file = fs::File::create(&result).unwrap();
        file.set_len(MAX_STEP_RESULT_BYTES + 1).unwrap();
        let refused = read_result(volume.path()).unwrap().unwrap_err();
        assert!(refused.contains("larger than"), "{refused}");

        fs::write(&result, b"{not json").unwrap();
        let refused = read_result(volume.path()).unwrap().unwrap_err();
        assert!(refused.contains("not valid JSON"), "{refused}");
    }

    #[test]
    fn a_symlinked_protocol_directory_is_left_to_the_docker_api() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), protocol_dir(dir.path())).unwrap();
        assert!(read_result(dir.path()).is_err());
        assert!(write_context(dir.path(), b"{}").is_err());
        assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_context_replaces_a_file_or_symlink_of_that_name_and_belongs_to_the_runner() {
        let (volume, gantry) = volume();
        let target = volume.path().join("target");
        fs::write(&target, "untouched").unwrap();
        std::os::unix::fs::symlink(&target, gantry.join(STEP_CONTEXT_FILE)).unwrap();
        match write_context(volume.path(), b"{\"a\":1}") {
            Ok(()) => {
                let path = gantry.join(STEP_CONTEXT_FILE);
                assert_eq!(fs::read(&path).unwrap(), b"{\"a\":1}");
                assert_eq!(fs::read_to_string(&target).unwrap(), "untouched");
                let meta = fs::symlink_metadata(&path).unwrap();
                assert!(meta.file_type().is_file());
                assert_eq!(meta.permissions().mode() & 0o777, 0o600);
                use std::os::unix::fs::MetadataExt;
                assert_eq!(meta.uid(), RUNNER_UID);
            }
            // Only root may give files away: elsewhere the API path is used.
            Err(Unusable(reason)) => assert!(reason.contains("ermission"), "{reason}"),
        }
    }
}

//! The reserved `gantry.files` key (DESIGN §4): files written into the step container before the
//! action runs. This module validates the specifications and paths; turning content into bytes
//! (including base64 decoding) and writing them is the runner's job, since it owns the filesystem
//! and the base64 codec.

use super::{GANTRY_KEY, PropertiesError, type_name};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Component, Path, PathBuf};

/// How a file's `content` is stored in the properties.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// `content` is a string written as UTF-8.
    #[default]
    Raw,
    /// `content` is a base64 string decoded to bytes.
    Base64,
    /// `content` is any JSON value serialised to the file.
    Json,
}

/// One `gantry.files` entry. Unknown fields are refused so that a typo such as `contents` is
/// reported instead of silently writing an empty file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// The file's content; absent means an empty file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    /// Octal permission bits such as `"0600"`; absent leaves the default mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default)]
    pub format: FileFormat,
}

/// The `gantry.files` entries of a properties document, validated (see [`parse_files`]); none when
/// the key is absent.
pub fn files_from_properties(
    properties: &Value,
) -> Result<Vec<(String, FileSpec)>, PropertiesError> {
    match super::env::reserved(properties, "files")? {
        Some(files) => parse_files(files),
        None => Ok(Vec::new()),
    }
}

/// Parses the value of `gantry.files`: an object of path → [`FileSpec`]. Each entry's mode must be
/// octal and its content must suit its format (a string for `raw` and `base64`), so that every
/// mistake is reported before any file is written. Paths are checked by [`resolve_path`].
pub fn parse_files(files: &Value) -> Result<Vec<(String, FileSpec)>, PropertiesError> {
    let map = files.as_object().ok_or(PropertiesError::NotAnObject {
        key: format!("{GANTRY_KEY}.files"),
        found: type_name(files),
    })?;
    map.iter()
        .map(|(path, spec)| Ok((path.clone(), parse_spec(path, spec)?)))
        .collect()
}

fn parse_spec(path: &str, spec: &Value) -> Result<FileSpec, PropertiesError> {
    let invalid = |reason: String| PropertiesError::FileSpecInvalid {
        path: path.to_owned(),
        reason,
    };
    let spec: FileSpec =
        serde_json::from_value(spec.clone()).map_err(|e| invalid(e.to_string()))?;
    if let Some(mode) = &spec.mode {
        parse_mode(mode).map_err(|e| invalid(e.to_string()))?;
    }
    match (&spec.format, &spec.content) {
        (FileFormat::Raw | FileFormat::Base64, Some(content)) if !content.is_string() => {
            Err(invalid(format!(
                "content must be a string for format `{}`, found {} (use format `json` to write JSON)",
                format_name(spec.format),
                type_name(content)
            )))
        }
        _ => Ok(spec),
    }
}

fn format_name(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Raw => "raw",
        FileFormat::Base64 => "base64",
        FileFormat::Json => "json",
    }
}

/// Parses an octal mode such as `"0600"` or `"600"` into permission bits (at most `0o7777`).
pub fn parse_mode(mode: &str) -> Result<u32, PropertiesError> {
    let valid = (1..=4).contains(&mode.len()) && mode.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match valid {
        true => u32::from_str_radix(mode, 8).map_err(|_| PropertiesError::FileModeInvalid {
            mode: mode.to_owned(),
        }),
        false => Err(PropertiesError::FileModeInvalid {
            mode: mode.to_owned(),
        }),
    }
}

/// Turns a `gantry.files` key into the absolute path to write.
///
/// `~` and `~/…` expand to `home`. The result must be absolute, free of `..` components and NUL
/// bytes, and strictly under one of `allowed_roots` (in the container `/opt/gantry` and `/tmp`, its
/// only writable places: anything else would fail later and less clearly). Symlinked parents can
/// only be detected on the filesystem; the runner refuses those when it writes.
pub fn resolve_path(
    path: &str,
    home: &Path,
    allowed_roots: &[&Path],
) -> Result<PathBuf, PropertiesError> {
    let refuse = |reason: &str| PropertiesError::FilePathRefused {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if path.contains('\0') {
        return Err(refuse("it contains a NUL byte"));
    }
    let expanded = match path.strip_prefix('~') {
        Some("") => home.to_path_buf(),
        Some(rest) if rest.starts_with('/') => home.join(rest.trim_start_matches('/')),
        Some(_) => {
            return Err(refuse(
                "only `~` and `~/…` are expanded (to the runner's home)",
            ));
        }
        None => PathBuf::from(path),
    };
    if !expanded.is_absolute() {
        return Err(refuse("it must be absolute or start with `~/`"));
    }
    if expanded.components().any(|c| c == Component::ParentDir) {
        return Err(refuse("`..` components are not allowed"));
    }
    let under_root = allowed_roots
        .iter()
        .any(|root| expanded.starts_with(root) && expanded != *root);
    if !under_root {
        let roots: Vec<String> = allowed_roots
            .iter()
            .map(|r| r.display().to_string())
            .collect();
        return Err(refuse(&format!(
            "files may only be written under {}",
            roots.join(" or ")
        )));
    }
    Ok(expanded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HOME: &str = "/opt/gantry";

    fn resolve(path: &str) -> Result<PathBuf, PropertiesError> {
        resolve_path(path, Path::new(HOME), &[Path::new(HOME), Path::new("/tmp")])
    }

    fn refusal(path: &str) -> String {
        resolve(path).expect_err("refused").to_string()
    }

    #[test]
    fn tilde_expands_to_the_home_directory() {
        assert_eq!(
            resolve("~/a/b.txt"),
            Ok(PathBuf::from("/opt/gantry/a/b.txt"))
        );
        assert_eq!(resolve("/tmp/x"), Ok(PathBuf::from("/tmp/x")));
    }

    #[test]
    fn parent_components_are_refused_with_the_path_named() {
        let message = refusal("/opt/gantry/../etc/passwd");
        assert!(
            message.contains("\"/opt/gantry/../etc/passwd\""),
            "{message}"
        );
        assert!(message.contains("`..`"), "{message}");
        assert!(refusal("~/../x").contains("`..`"));
    }

    #[test]
    fn paths_outside_the_allowed_roots_are_refused() {
        assert!(refusal("/etc/passwd").contains("under /opt/gantry or /tmp"));
        assert!(refusal("/opt/gantry-evil/x").contains("under"));
        assert!(refusal("/tmp").contains("under"));
    }

    #[test]
    fn relative_nul_and_other_users_homes_are_refused() {
        assert!(refusal("relative/file").contains("absolute"));
        assert!(refusal("/tmp/a\0b").contains("NUL"));
        assert!(refusal("~root/x").contains("expanded"));
    }

    /// Every case of the shared path-safety corpus (`shared/testdata/gantry_files_paths.json`).
    #[test]
    fn the_path_safety_corpus_is_accepted_or_refused_as_listed() {
        let corpus: Value =
            serde_json::from_str(include_str!("../../testdata/gantry_files_paths.json"))
                .expect("the corpus is JSON");
        let cases = corpus["cases"].as_array().expect("cases");
        assert!(cases.len() >= 20);
        for case in cases {
            let path = case["path"]
                .as_str()
                .expect("a path")
                .replace("{home}", HOME)
                .replace("{scratch}", "/tmp/corpus");
            match (resolve(&path), case["refused"].as_str()) {
                (Ok(resolved), None) => {
                    assert!(resolved.starts_with(HOME) || resolved.starts_with("/tmp/corpus"));
                }
                (Err(error), Some(reason)) => {
                    let message = error.to_string();
                    assert!(
                        message.contains(reason) && message.contains(&format!("{path:?}")),
                        "{path:?}: {message}"
                    );
                }
                (outcome, expected) => panic!("{path:?}: got {outcome:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn modes_are_octal_strings() {
        assert_eq!(parse_mode("0600"), Ok(0o600));
        assert_eq!(parse_mode("755"), Ok(0o755));
        assert_eq!(parse_mode("4755"), Ok(0o4755));
        for bad in ["", "0800", "rw-r--r--", "00600", "-1"] {
            assert!(parse_mode(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn specs_parse_with_defaults() {
        let files = json!({
            "/tmp/a": {"content": "text", "mode": "0600"},
            "~/b.json": {"content": {"k": [1]}, "format": "json"},
            "/tmp/empty": {}
        });
        let parsed = parse_files(&files).expect("valid");
        assert_eq!(parsed.len(), 3);
        let (_, json_spec) = parsed.iter().find(|(p, _)| p == "~/b.json").expect("entry");
        assert_eq!(json_spec.format, FileFormat::Json);
        let (_, empty) = parsed
            .iter()
            .find(|(p, _)| p == "/tmp/empty")
            .expect("entry");
        assert_eq!(empty, &FileSpec::default());
    }

    #[test]
    fn invalid_specs_name_the_path_and_the_problem() {
        let cases = [
            (
                json!({"/tmp/a": {"contents": "x"}}),
                "unknown field `contents`",
            ),
            (
                json!({"/tmp/a": {"content": 1}}),
                "content must be a string",
            ),
            (
                json!({"/tmp/a": {"content": "x", "mode": "9"}}),
                "\"9\" is invalid",
            ),
            (
                json!({"/tmp/a": {"format": "zip"}}),
                "unknown variant `zip`",
            ),
        ];
        for (files, expected) in cases {
            let message = parse_files(&files).expect_err("invalid").to_string();
            assert!(message.contains("\"/tmp/a\""), "{message}");
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn files_must_be_an_object() {
        let message = parse_files(&json!(["/tmp/a"]))
            .expect_err("invalid")
            .to_string();
        assert_eq!(
            message,
            "`gantry.files` must be a JSON object, found an array"
        );
    }

    #[test]
    fn files_are_found_under_the_gantry_key() {
        let props = json!({"gantry": {"files": {"/tmp/a": {"content": "x"}}}});
        assert_eq!(files_from_properties(&props).expect("valid").len(), 1);
        assert!(files_from_properties(&json!({})).expect("valid").is_empty());
    }
}

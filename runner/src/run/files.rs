//! Writing `gantry.files` before the action runs (DESIGN §4).

use crate::error::RunnerError;
use crate::fsio::{create_dir_all, write_atomic};
use crate::paths::Paths;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gantry_shared::properties::{FileFormat, FileSpec, parse_mode, resolve_path};
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

/// The mode of a file whose entry sets none.
const DEFAULT_MODE: u32 = 0o644;

/// Writes every entry: paths checked (see `resolve_path`) and no parent a symlink, parents
/// created, content rendered, mode set. All paths and contents are checked before the first write.
pub fn write_files(paths: &Paths, files: &[(String, FileSpec)]) -> Result<(), RunnerError> {
    let roots = paths.file_roots();
    let mut rendered = Vec::with_capacity(files.len());
    for (key, spec) in files {
        let path = resolve_path(key, &paths.home, &roots)?;
        let mode = spec.mode.as_deref().map(parse_mode).transpose()?;
        rendered.push((key, path, render(key, spec)?, mode.unwrap_or(DEFAULT_MODE)));
    }
    for (key, path, bytes, mode) in rendered {
        refuse_symlinked_parents(key, &path, &roots)?;
        if let Some(parent) = path.parent() {
            create_dir_all(parent)?;
        }
        write_atomic(&path, &bytes, mode)?;
        println!("===> Wrote file \"{key}\" (mode {mode:04o})");
    }
    Ok(())
}

/// The bytes of an entry's content: raw text, decoded base64 (line breaks allowed), or JSON.
pub fn render(key: &str, spec: &FileSpec) -> Result<Vec<u8>, RunnerError> {
    let Some(content) = &spec.content else {
        return Ok(Vec::new());
    };
    let invalid = |reason: String| {
        RunnerError::Setup(format!(
            "`gantry.files` entry \"{key}\" is invalid: {reason}"
        ))
    };
    match (spec.format, content.as_str()) {
        (FileFormat::Raw, Some(text)) => Ok(text.as_bytes().to_vec()),
        (FileFormat::Base64, Some(text)) => {
            let compact: String = text.split_ascii_whitespace().collect();
            STANDARD
                .decode(compact)
                .map_err(|e| invalid(format!("content is not valid base64: {e}")))
        }
        (FileFormat::Json, _) => serde_json::to_vec_pretty(content)
            .map(|mut bytes| {
                bytes.push(b'\n');
                bytes
            })
            .map_err(|e| invalid(e.to_string())),
        _ => Err(invalid("content must be a string".to_owned())),
    }
}

/// Refuses a path with a symlink (or a non-directory) among its existing parents below the
/// allowed root: writing through a symlink could land anywhere.
fn refuse_symlinked_parents(key: &str, path: &Path, roots: &[&Path]) -> Result<(), RunnerError> {
    let Some(root) = roots.iter().find(|root| path.starts_with(root)) else {
        return Ok(());
    };
    let parents = path.ancestors().skip(1).take_while(|a| a != root);
    for parent in parents {
        let refuse = |what: &str| {
            RunnerError::Setup(format!(
                "`gantry.files` path \"{key}\" is refused: its parent {} is {what}",
                parent.display()
            ))
        };
        match fs::symlink_metadata(parent) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(refuse("a symbolic link")),
            Ok(meta) if !meta.is_dir() => return Err(refuse("not a directory")),
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::NotFound => {}
            Err(error) => return Err(RunnerError::io("inspect", parent)(error)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(content: serde_json::Value, format: FileFormat) -> FileSpec {
        FileSpec {
            content: Some(content),
            mode: None,
            format,
        }
    }

    #[test]
    fn contents_render_by_format() {
        let raw = render("k", &spec(json!("text"), FileFormat::Raw)).expect("raw");
        assert_eq!(raw, b"text");
        let b64 = render("k", &spec(json!("aGVs\nbG8="), FileFormat::Base64)).expect("base64");
        assert_eq!(b64, b"hello");
        let json = render("k", &spec(json!({"a": 1}), FileFormat::Json)).expect("json");
        assert_eq!(json, b"{\n  \"a\": 1\n}\n");
        assert_eq!(render("k", &FileSpec::default()).expect("empty"), b"");
    }

    #[test]
    fn invalid_base64_names_the_entry() {
        let error = render("/tmp/x", &spec(json!("!!"), FileFormat::Base64)).expect_err("invalid");
        assert!(
            error
                .to_string()
                .contains("\"/tmp/x\" is invalid: content is not valid base64")
        );
    }
}

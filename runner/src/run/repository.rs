//! What the step reads from the repository checkout: the property files and the actions manifest.

use crate::error::RunnerError;
use crate::paths::Paths;
use gantry_shared::manifest::{MANIFEST_NAMES, Manifest, parse};
use gantry_shared::properties::{deep_merge, parse_document, strip_secret_refs};
use gantry_shared::protocol::ContextInfo;
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};

const EXTENSIONS: [&str; 3] = ["json", "toml", "yaml"];

/// The repository properties, merged in DESIGN §4 order: `properties.*`, `projects/<project>.*`,
/// `environments/<environment>.*`, each as JSON, TOML then YAML. The secret references are removed:
/// a repository must not pull server secrets into a step.
pub fn repository_properties(paths: &Paths, context: &ContextInfo) -> Result<Value, RunnerError> {
    let mut merged = json!({});
    for file in property_files(paths, context) {
        let Some(mut document) = read_property_file(paths, &file)? else {
            continue;
        };
        for key in strip_secret_refs(&mut document) {
            println!(
                "===> Ignoring \"gantry.{key}\" in {}: secrets can only be named in database properties",
                shown(paths, &file)
            );
        }
        deep_merge(&mut merged, &document);
    }
    Ok(merged)
}

fn property_files(paths: &Paths, context: &ContextInfo) -> Vec<PathBuf> {
    let folder = &paths.repo_folder;
    let mut stems = vec![folder.join("properties")];
    if let Some(code) = context.project_code() {
        stems.push(folder.join("projects").join(code));
    }
    if let Some(code) = context.environment_code() {
        stems.push(folder.join("environments").join(code));
    }
    stems
        .iter()
        .flat_map(|stem| EXTENSIONS.map(|ext| with_extension(stem, ext)))
        .collect()
}

/// `stem.ext`, keeping any dot already in the stem (codes cannot contain one, but be exact).
fn with_extension(stem: &Path, ext: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// A property file's object, `None` when the file does not exist; an empty file is `{}`.
fn read_property_file(paths: &Paths, file: &Path) -> Result<Option<Value>, RunnerError> {
    if !file.try_exists().map_err(RunnerError::io("check", file))? {
        return Ok(None);
    }
    let text = fs::read_to_string(file).map_err(RunnerError::io("read", file))?;
    match parse_document::<Value>(&shown(paths, file), &text)? {
        Value::Object(map) => Ok(Some(Value::Object(map))),
        Value::Null => Ok(Some(json!({}))),
        _ => Err(RunnerError::Setup(format!(
            "{}: a properties file must contain an object",
            shown(paths, file)
        ))),
    }
}

/// The actions manifest from the repository folder (the first of `actions.yaml`, `.json`, `.toml`).
pub fn load_manifest(paths: &Paths) -> Result<Manifest, RunnerError> {
    for name in MANIFEST_NAMES {
        let file = paths.repo_folder.join(name);
        if file.try_exists().map_err(RunnerError::io("check", &file))? {
            let text = fs::read_to_string(&file).map_err(RunnerError::io("read", &file))?;
            return Ok(parse(&shown(paths, &file), &text)?);
        }
    }
    Err(RunnerError::Setup(format!(
        "no actions manifest in {} (looked for {})",
        shown(paths, &paths.repo_folder),
        MANIFEST_NAMES.join(", ")
    )))
}

/// A repository path as users know it: relative to the checkout.
fn shown(paths: &Paths, file: &Path) -> String {
    file.strip_prefix(&paths.home)
        .unwrap_or(file)
        .display()
        .to_string()
}

//! `run`: properties files, repository property files and `gantry.files`.

use crate::helpers::Step;
use serde_json::json;
use std::os::unix::fs::symlink;

#[test]
fn repository_files_merge_in_order_then_project_then_environment() {
    let step = Step::new("actions:\n  build: {run: 'true'}\n").with_properties(
        json!({"d": "project", "e": "project"}),
        json!({"e": "environment"}),
    );
    step.write(
        ".gantry/properties.yaml",
        "a: yaml\nb: yaml\nc: yaml\ngantry:\n  env:runner_secrets: [stolen]\n  env: {X: '1'}\n",
    );
    step.write(".gantry/properties.json", r#"{"a": "json", "b": "json"}"#);
    step.write(".gantry/projects/demo.toml", "b = \"project file\"\n");
    step.write(
        ".gantry/environments/dev.json",
        r#"{"c": "environment file", "d": "file"}"#,
    );
    step.write(
        ".gantry/environments/prod.json",
        r#"{"c": "other environment"}"#,
    );

    let run = step.run("build").success();

    let expected = json!({
        "a": "yaml", "b": "project file", "c": "environment file",
        "d": "project", "e": "environment", "gantry": {"env": {"X": "1"}}
    });
    assert_eq!(step.properties_file("merged.json"), expected);
    assert_eq!(step.result()["step"]["properties"], expected);
    assert!(
        run.stdout()
            .contains("Ignoring \"gantry.env:runner_secrets\" in .gantry/properties.yaml")
    );
}

#[test]
fn an_invalid_property_file_fails_the_step_naming_the_file() {
    let step = Step::new("actions:\n  build: {run: touch ran.txt}\n");
    step.write(".gantry/projects/demo.json", "{\"a\": ");

    let run = step.run("build");

    assert_eq!(run.code(), Some(2));
    assert!(
        run.stderr()
            .contains("gantry-runner: error: .gantry/projects/demo.json: invalid JSON: "),
        "{}",
        run.stderr()
    );
    assert!(!step.home.join("ran.txt").exists());
}

#[test]
fn a_missing_manifest_is_reported() {
    let step = Step::new("");
    std::fs::remove_file(step.home.join(".gantry/actions.yaml")).expect("removed");

    let run = step.run("build");

    assert_eq!(run.code(), Some(2));
    assert!(
        run.stderr()
            .contains("no actions manifest in .gantry (looked for actions.yaml")
    );
}

#[test]
fn files_are_written_with_their_modes_and_formats() {
    let files = json!({"gantry": {"files": {
        "~/conf/app.txt": {"content": "secret", "mode": "0600"},
        "~/conf/data.bin": {"content": "aGVsbG8=", "format": "base64", "mode": "755"},
        "~/conf/settings.json": {"content": {"port": 8080}, "format": "json"}
    }}});
    let step = Step::new("actions:\n  build:\n    run: cat conf/app.txt > seen.txt\n")
        .with_properties(json!({}), files);

    step.run("build").success();

    assert_eq!(step.read("seen.txt"), "secret");
    assert_eq!(step.mode("conf/app.txt"), 0o600);
    assert_eq!(step.read("conf/data.bin"), "hello");
    assert_eq!(step.mode("conf/data.bin"), 0o755);
    assert_eq!(step.read("conf/settings.json"), "{\n  \"port\": 8080\n}\n");
    assert_eq!(step.mode("conf/settings.json"), 0o644);
}

#[test]
fn a_parent_directory_path_is_refused_before_anything_runs() {
    let files = json!({"gantry": {"files": {"~/../escape.txt": {"content": "x"}}}});
    let step =
        Step::new("actions:\n  build: {run: touch ran.txt}\n").with_properties(files, json!({}));

    let run = step.run("build");

    assert_eq!(run.code(), Some(2));
    assert!(
        run.stderr().contains(
            "`gantry.files` path \"~/../escape.txt\" is refused: `..` components are not allowed"
        ),
        "{}",
        run.stderr()
    );
    assert!(!step.home.join("ran.txt").exists());
    assert!(!step.has_result());
}

#[test]
fn a_path_outside_the_writable_places_is_refused() {
    let files = json!({"gantry": {"files": {"/etc/gantry.conf": {"content": "x"}}}});
    let step = Step::new("actions:\n  build: {run: 'true'}\n").with_properties(files, json!({}));

    let run = step.run("build");

    assert_eq!(run.code(), Some(2));
    assert!(
        run.stderr().contains("files may only be written under"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_symlinked_parent_is_refused() {
    let step = Step::new("actions:\n  build: {run: 'true'}\n").with_properties(
        json!({"gantry": {"files": {"~/link/file.txt": {"content": "x"}}}}),
        json!({}),
    );
    let elsewhere = step.home.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("a directory");
    symlink(&elsewhere, step.home.join("link")).expect("a symlink");

    let run = step.run("build");

    assert_eq!(run.code(), Some(2));
    assert!(
        run.stderr().contains("is a symbolic link"),
        "{}",
        run.stderr()
    );
    assert!(!elsewhere.join("file.txt").exists());
}

/// The shared path-safety corpus, with each path coming from a repository properties file: a
/// refused path stops the step before its command runs, naming the path; an accepted one is
/// written where it says.
#[test]
fn the_path_safety_corpus_applies_to_repository_properties() {
    let corpus: serde_json::Value = serde_json::from_str(include_str!(
        "../../../shared/testdata/gantry_files_paths.json"
    ))
    .expect("the corpus is JSON");
    let scratch = tempfile::Builder::new()
        .prefix("gantry-corpus-")
        .tempdir_in("/tmp")
        .expect("a scratch directory under /tmp");
    for case in corpus["cases"].as_array().expect("cases") {
        let step = Step::new("actions:\n  build: {run: touch ran.txt}\n");
        let path = case["path"]
            .as_str()
            .expect("a path")
            .replace("{home}", &step.home.display().to_string())
            .replace("{scratch}", &scratch.path().display().to_string());
        let properties = json!({"gantry": {"files": {path.clone(): {"content": "corpus"}}}});
        step.write(".gantry/properties.json", &properties.to_string());

        let run = step.run("build");

        match case["refused"].as_str() {
            Some(reason) => {
                assert_eq!(run.code(), Some(2), "{path:?} must be refused");
                let expected = format!("`gantry.files` path {path:?} is refused: {reason}");
                assert!(run.stderr().contains(&expected), "{}", run.stderr());
                assert!(!step.home.join("ran.txt").exists(), "{path:?}");
            }
            None => {
                let run = run.success();
                let written = path.strip_prefix('~').map_or_else(
                    || path.clone().into(),
                    |rest| step.home.join(rest.trim_start_matches('/')),
                );
                assert_eq!(
                    std::fs::read_to_string(&written).expect("the file was written"),
                    "corpus",
                    "{path:?}: {}",
                    run.stdout()
                );
            }
        }
    }
}

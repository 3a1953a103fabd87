//! Properties: show, set (with a version and a confirmation), the history, and editing in a
//! scripted `$EDITOR` — errors reopen it with the reason on top, conflicts are never overwritten.

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::helpers::{Gantry, HELLO, Run, error_line};

/// An `$EDITOR`: a shell script that counts its calls in `$HOME/calls`, keeps a copy of what it
/// was shown in `$HOME/seen-<call>`, then runs the branch of `cases` for that call (`"$1"` is the
/// file).
fn editor(gantry: &Gantry, cases: &str) -> String {
    let script = format!(
        "#!/bin/sh\nset -e\nn=$(( $(cat \"$HOME/calls\" 2>/dev/null || echo 0) + 1 ))\necho $n > \"$HOME/calls\"\n\
         cp \"$1\" \"$HOME/seen-$n\"\ncase $n in\n{cases}\nesac\n"
    );
    let path = gantry.file("editor.sh", &script);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _ = std::fs::remove_file(gantry.home.path().join("calls"));
    path
}

/// What the editor was shown on call `n`.
fn seen(gantry: &Gantry, n: u32) -> String {
    std::fs::read_to_string(gantry.home.path().join(format!("seen-{n}"))).unwrap()
}

fn calls(gantry: &Gantry) -> u32 {
    std::fs::read_to_string(gantry.home.path().join("calls"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

async fn edit(gantry: &Gantry, editor: &str, args: &[&str]) -> Run {
    let mut command = gantry.command(args);
    command.env("EDITOR", editor);
    crate::helpers::run(command, None).await
}

async fn project_properties(gantry: &Gantry) -> (i64, Value) {
    let shown = gantry
        .json(&["project", "show-properties", "--project-code", "demo"])
        .await;
    (
        shown["attributes"]["version"].as_i64().unwrap(),
        shown["attributes"]["data"].clone(),
    )
}

const EDIT_PROJECT: &[&str] = &["project", "edit-properties", "--project-code", "demo"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_properties_replaces_the_document_against_a_version_and_keeps_the_history() {
    let gantry = Gantry::with_project(HELLO).await;
    let file = gantry.file("props.json", r#"{"app": {"port": 8080}}"#);
    let set = [
        "project",
        "set-properties",
        "--project-code",
        "demo",
        "--file-path",
        &file,
    ];

    let unconfirmed = gantry.run(&set).await;
    let saved = gantry
        .json(&[&set[..], &["--version", "1", "--confirm"]].concat())
        .await;
    let stale = gantry
        .run(&[&set[..], &["--version", "1", "--confirm"]].concat())
        .await;

    assert!(
        error_line(&unconfirmed).contains("pass --confirm"),
        "{unconfirmed:?}"
    );
    assert_eq!(saved["attributes"]["version"], 2);
    assert!(error_line(&stale).contains("Version mismatch"), "{stale:?}");
    let shown = gantry
        .ok(&["project", "show-properties", "--project-code", "demo"])
        .await;
    let document: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(
        document,
        json!({"app": {"port": 8080}}),
        "stdout is the document alone"
    );
    assert!(shown.stderr.contains("version 2"), "{shown:?}");
    let first = gantry
        .ok(&[
            "project",
            "show-properties",
            "--project-code",
            "demo",
            "--version",
            "1",
        ])
        .await;
    assert_eq!(
        serde_json::from_str::<Value>(&first.stdout).unwrap(),
        json!({})
    );
    let versions = gantry
        .json(&["properties", "versions", "--project-code", "demo"])
        .await;
    let numbers: Vec<i64> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["attributes"]["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1]);
    let version = gantry
        .ok(&[
            "properties",
            "show-version",
            "--project-code",
            "demo",
            "--version",
            "2",
        ])
        .await;
    assert_eq!(
        serde_json::from_str::<Value>(&version.stdout).unwrap(),
        json!({"app": {"port": 8080}})
    );
    let environment = gantry
        .json(&[
            "environment",
            "set-properties",
            "--project-code",
            "demo",
            "--environment-code",
            "dev",
            "--file-path",
            &file,
            "--confirm",
        ])
        .await;
    assert_eq!(environment["attributes"]["data"]["app"]["port"], 8080);
    let history = gantry
        .json(&[
            "properties",
            "versions",
            "--project-code",
            "demo",
            "--environment-code",
            "dev",
        ])
        .await;
    assert_eq!(history.as_array().unwrap().len(), 2);
    gantry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_properties_uploads_the_edit_and_saving_unchanged_or_empty_cancels() {
    let gantry = Gantry::with_project(HELLO).await;
    let args = [
        "environment",
        "edit-properties",
        "--project-code",
        "demo",
        "--environment-code",
        "dev",
    ];

    let unchanged = edit(&gantry, &editor(&gantry, "1) ;;"), &args).await;
    let emptied = edit(&gantry, &editor(&gantry, "1) : > \"$1\" ;;"), &args).await;
    let edited = edit(
        &gantry,
        &editor(&gantry, "1) echo '{\"edited\": true}' > \"$1\" ;;"),
        &args,
    )
    .await;

    for cancelled in [&unchanged, &emptied] {
        assert_eq!(cancelled.code, 0, "{cancelled:?}");
        assert!(cancelled.stderr.contains("edit cancelled"), "{cancelled:?}");
    }
    assert!(
        seen(&gantry, 1)
            .starts_with("// Properties of environment dev of project demo, version 1.")
    );
    assert_eq!(edited.code, 0, "{edited:?}");
    assert!(edited.stdout.contains("saved as version 2"), "{edited:?}");
    let shown = gantry
        .json(&[
            "environment",
            "show-properties",
            "--project-code",
            "demo",
            "--environment-code",
            "dev",
        ])
        .await;
    assert_eq!(shown["attributes"]["data"], json!({"edited": true}));
    assert_eq!(
        shown["attributes"]["version"], 2,
        "the cancelled edits saved nothing"
    );
    gantry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_and_a_refused_document_reopen_the_editor_with_the_error_on_top() {
    let gantry = Gantry::with_project(HELLO).await;
    let script = editor(
        &gantry,
        "1) echo '{\"broken\": ' > \"$1\" ;;\n\
         2) echo '{\"gantry\": {\"env\": {\"PORT\": 8080}}}' > \"$1\" ;;\n\
         3) echo '{\"gantry\": {\"env\": {\"PORT\": \"8080\"}}}' > \"$1\" ;;",
    );

    let run = edit(&gantry, &script, EDIT_PROJECT).await;

    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(calls(&gantry), 3);
    let second = seen(&gantry, 2);
    assert!(
        second.starts_with("// ERROR: the file is not valid JSON"),
        "{second}"
    );
    assert!(
        second.contains("{\"broken\": "),
        "the user's text is kept: {second}"
    );
    let third = seen(&gantry, 3);
    assert!(third.starts_with("// ERROR: "), "{third}");
    assert!(third.contains("(at /gantry/env"), "{third}");
    assert_eq!(
        project_properties(&gantry).await,
        (2, json!({"gantry": {"env": {"PORT": "8080"}}}))
    );
    gantry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_edit_is_never_overwritten_and_the_editor_says_to_rerun_the_command() {
    let gantry = Gantry::with_project(HELLO).await;
    gantry.file("underneath.json", r#"{"theirs": 1}"#);
    // The first call changes the properties underneath, then edits the downloaded version.
    let underneath = "1) \"$GANTRY_BIN\" project set-properties --project-code demo \
         --file-path \"$HOME/underneath.json\" --confirm > /dev/null; echo '{\"mine\": 1}' > \"$1\" ;;";

    let left_unchanged = edit(
        &gantry,
        &editor(&gantry, &format!("{underneath}\n2) ;;")),
        EDIT_PROJECT,
    )
    .await;
    let second_view = seen(&gantry, 2);
    let edited_again = edit(
        &gantry,
        &editor(
            &gantry,
            &format!("{underneath}\n2) echo '{{\"mine\": 2}}' > \"$1\" ;;"),
        ),
        EDIT_PROJECT,
    )
    .await;

    assert!(
        second_view.starts_with("// ERROR: Version mismatch"),
        "{second_view}"
    );
    assert!(
        second_view.contains("re-run `gantry project edit-properties --project-code demo`"),
        "{second_view}"
    );
    assert_eq!(left_unchanged.code, 0, "{left_unchanged:?}");
    assert!(
        left_unchanged.stderr.contains("edit cancelled"),
        "{left_unchanged:?}"
    );
    assert!(
        left_unchanged.stderr.contains("re-run"),
        "{left_unchanged:?}"
    );
    let line = error_line(&edited_again);
    assert!(
        line.contains("re-run `gantry project edit-properties"),
        "{line}"
    );
    let kept = line
        .split("your edits are kept in ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap();
    assert!(
        std::fs::read_to_string(kept)
            .unwrap()
            .contains("\"mine\": 2")
    );
    std::fs::remove_file(kept).unwrap();
    assert_eq!(project_properties(&gantry).await, (3, json!({"theirs": 1})));
    gantry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_set_properties_asks_before_replacing_the_document() {
    let gantry = Gantry::with_project(HELLO).await;
    let file = gantry.file("props.json", r#"{"asked": true}"#);
    let set = [
        "project",
        "set-properties",
        "--project-code",
        "demo",
        "--file-path",
        &file,
    ];

    let declined = gantry.run_on_terminal(&set, "n\n").await;
    let unchanged = project_properties(&gantry).await;
    let confirmed = gantry.run_on_terminal(&set, "y\n").await;

    assert!(
        declined
            .stdout
            .contains("Replace the properties of project demo"),
        "{declined:?}"
    );
    assert!(declined.stdout.contains("not confirmed"), "{declined:?}");
    assert_eq!(unchanged, (1, json!({})));
    assert_eq!(confirmed.code, 0, "{confirmed:?}");
    assert_eq!(
        project_properties(&gantry).await,
        (2, json!({"asked": true}))
    );
    gantry.stop().await;
}

//! Projects, environments, Git remotes and settings through the CLI.

use gantry_testkit::Repo;
use serde_json::json;

use crate::helpers::{Gantry, HELLO, error_line};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_environments_and_git_remotes_are_created_listed_shown_and_archived() {
    let gantry = Gantry::start().await;
    let repo = Repo::new(&[(".gantry/actions.yaml", HELLO)]);
    let password = gantry.file("password", "s3cret-password\n");

    let created = gantry
        .json(&[
            "project",
            "create",
            "--project-code",
            "web",
            "--name",
            "Web shop",
        ])
        .await;
    let table = gantry
        .ok(&[
            "environment",
            "create",
            "--project-code",
            "web",
            "--environment-code",
            "prod",
            "--name",
            "Production",
        ])
        .await;
    gantry
        .ok(&[
            "project",
            "add-git-remote",
            "--project-code",
            "web",
            "--name",
            "origin",
            "--git-url",
            repo.path().to_str().unwrap(),
            "--user",
            "deploy",
            "--password-file",
            &password,
        ])
        .await;

    assert_eq!(created["id"], "web");
    assert_eq!(created["attributes"]["name"], "Web shop");
    assert!(
        table
            .stdout
            .contains("environment prod of project web created"),
        "{table:?}"
    );
    let projects = gantry.json(&["project", "list"]).await;
    assert_eq!(projects.as_array().unwrap().len(), 1);
    let shown = gantry
        .ok(&["project", "show", "--project-code", "web"])
        .await;
    assert!(shown.stdout.contains("Web shop"), "{shown:?}");
    let environments = gantry
        .json(&["environment", "list", "--project-code", "web"])
        .await;
    assert_eq!(environments[0]["attributes"]["code"], "prod");
    let environment = gantry
        .json(&[
            "environment",
            "show",
            "--project-code",
            "web",
            "--environment-code",
            "prod",
        ])
        .await;
    assert_eq!(environment["attributes"]["name"], "Production");
    let remotes = gantry
        .json(&["project", "list-git-remotes", "--project-code", "web"])
        .await;
    assert_eq!(remotes[0]["attributes"]["user"], "deploy");
    assert_eq!(
        remotes[0]["attributes"]["password"], "{{hidden}}",
        "never shown back"
    );
    let remotes_table = gantry
        .ok(&["project", "list-git-remotes", "--project-code", "web"])
        .await;
    assert!(
        !remotes_table.stdout.contains("s3cret"),
        "{remotes_table:?}"
    );

    let remote = gantry
        .json(&[
            "project",
            "archive-git-remote",
            "--project-code",
            "web",
            "--name",
            "origin",
        ])
        .await;
    let environment = gantry
        .json(&[
            "environment",
            "archive",
            "--project-code",
            "web",
            "--environment-code",
            "prod",
        ])
        .await;
    let project = gantry
        .json(&["project", "archive", "--project-code", "web"])
        .await;

    assert_eq!(remote["attributes"]["archived"], true);
    assert_eq!(environment["attributes"]["archived"], true);
    assert_eq!(project["attributes"]["archived"], true);
    let missing = gantry
        .run(&[
            "project",
            "archive-git-remote",
            "--project-code",
            "web",
            "--name",
            "upstream",
        ])
        .await;
    assert!(error_line(&missing).contains("no git remote named upstream"));
    gantry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_one_error_line_with_the_apis_detail_and_exit_code_1() {
    let gantry = Gantry::start().await;
    gantry.create_project("web", "Web").await;

    let missing = gantry
        .run(&["project", "show", "--project-code", "nope"])
        .await;
    let duplicate = gantry
        .run(&[
            "project",
            "create",
            "--project-code",
            "web",
            "--name",
            "Again",
        ])
        .await;
    let usage = gantry.run(&["project", "show"]).await;

    assert_eq!(missing.code, 1);
    assert_eq!(
        error_line(&missing),
        "gantry: error: project `nope` not found"
    );
    assert_eq!(
        error_line(&duplicate),
        "gantry: error: a project with code web already exists"
    );
    assert_eq!(usage.code, 2, "a usage error is clap's 2: {usage:?}");
    gantry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_in_json_are_one_array_across_all_pages() {
    let gantry = Gantry::start().await;
    // The API pages projects 100 at a time.
    for n in 0..105 {
        gantry
            .stack
            .post(
                "/api/projects",
                json!({"code": format!("p{n:03}"), "name": "P"}),
            )
            .await;
    }

    let projects = gantry.json(&["project", "list"]).await;
    let table = gantry.ok(&["project", "list"]).await;

    let codes: Vec<&str> = projects
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 105);
    assert_eq!((codes[0], codes[104]), ("p000", "p104"));
    assert!(table.stdout.contains("p104"), "{table:?}");
    gantry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_shown_with_those_in_effect_and_set_against_a_version() {
    let gantry = Gantry::with_project(HELLO).await;
    let project_file = gantry.file("project.json", r#"{"step_timeout": 600}"#);
    let environment_file = gantry.file("environment.json", r#"{"step_timeout": 30}"#);

    let project = gantry
        .json(&[
            "project",
            "set-settings",
            "--project-code",
            "demo",
            "--file-path",
            &project_file,
            "--version",
            "1",
        ])
        .await;
    let stale = gantry
        .run(&[
            "project",
            "set-settings",
            "--project-code",
            "demo",
            "--file-path",
            &project_file,
            "--version",
            "1",
        ])
        .await;
    let environment = gantry
        .json(&[
            "environment",
            "set-settings",
            "--project-code",
            "demo",
            "--environment-code",
            "dev",
            "--file-path",
            &environment_file,
        ])
        .await;

    assert_eq!(project["attributes"]["version"], 2);
    assert!(error_line(&stale).contains("Version mismatch"), "{stale:?}");
    assert_eq!(environment["attributes"]["effective"]["step_timeout"], 30);
    let shown = gantry
        .json(&["project", "show-settings", "--project-code", "demo"])
        .await;
    assert_eq!(shown["attributes"]["data"], json!({"step_timeout": 600}));
    let table = gantry
        .ok(&[
            "environment",
            "show-settings",
            "--project-code",
            "demo",
            "--environment-code",
            "dev",
        ])
        .await;
    assert!(table.stdout.contains("step_timeout"), "{table:?}");
    assert!(table.stdout.contains("30"), "{table:?}");
    let bad = gantry.file("bad.json", r#"{"step_timeout": "soon"}"#);
    let refused = gantry
        .run(&[
            "project",
            "set-settings",
            "--project-code",
            "demo",
            "--file-path",
            &bad,
        ])
        .await;
    assert!(
        error_line(&refused).contains("expected u64 (at /data/attributes/data/step_timeout)"),
        "{refused:?}"
    );
    gantry.stop().await;
}

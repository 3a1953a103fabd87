//! Info, secrets, the audit log, the Dockerfile download, completions and help.

use serde_json::json;

use crate::helpers::{BIN, Gantry, Home, error_line, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_shows_the_server_version_and_the_calling_user() {
    let gantry = Gantry::start().await;

    let info = gantry.json(&["info"]).await;
    let table = gantry.ok(&["info"]).await;

    assert_eq!(info["attributes"]["user"], "admin");
    assert!(info["attributes"]["version"].is_string());
    assert!(table.stdout.contains("admin"), "{table:?}");
    gantry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_printed_once_works_with_its_role_and_stops_when_revoked() {
    let gantry = Gantry::start().await;
    gantry.create_project("web", "Web").await;

    let created = gantry
        .ok(&[
            "token",
            "create",
            "--user-name",
            "ci",
            "--role",
            "viewer",
            "--project-code",
            "web",
        ])
        .await;
    let token = created.stdout.trim().to_owned();
    let as_ci = |args: &[&str]| {
        let mut command = gantry.command(args);
        command.env("GANTRY_TOKEN", &token);
        run(command, None)
    };
    let info = as_ci(&["info", "-o", "json"]).await;
    let refused = as_ci(&[
        "project",
        "create",
        "--project-code",
        "api",
        "--name",
        "Api",
    ])
    .await;
    let listed = gantry.json(&["token", "list"]).await;
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    gantry.ok(&["token", "revoke", "--token-id", &id]).await;
    let revoked = as_ci(&["info"]).await;

    assert!(token.starts_with("gty_"), "{created:?}");
    assert!(created.stderr.contains("shown this once"), "{created:?}");
    assert!(info.stdout.contains("\"ci\""), "{info:?}");
    assert_eq!(refused.code, 1);
    assert!(error_line(&refused).contains("role admin"), "{refused:?}");
    assert_eq!(listed[0]["attributes"]["role"], "viewer");
    assert_eq!(listed[0]["attributes"]["project_code"], "web");
    assert!(listed[0]["attributes"].get("token").is_none());
    assert_eq!(revoked.code, 1);
    assert!(error_line(&revoked).contains("bearer token"), "{revoked:?}");
    gantry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_set_from_stdin_or_a_file_listed_by_their_keys_and_deleted() {
    let gantry = Gantry::start().await;
    let file = gantry.file("db.json", r#"{"DB_PASSWORD": "correct-horse"}"#);

    let from_stdin = gantry
        .run_with_stdin(
            &["secret", "set", "--name", "payments"],
            "# the payment API\nAPI_KEY=sk-live-123456\n",
        )
        .await;
    let from_file = gantry
        .json(&["secret", "set", "--name", "db", "--value-file", &file])
        .await;
    let listed = gantry.json(&["secret", "list"]).await;
    let table = gantry.ok(&["secret", "list"]).await;
    let refused = gantry
        .run_with_stdin(&["secret", "set", "--name", "bad"], "lower=x\n")
        .await;
    let deleted = gantry.ok(&["secret", "delete", "--name", "payments"]).await;

    assert_eq!(from_stdin.code, 0, "{from_stdin:?}");
    assert_eq!(from_file["attributes"]["keys"], json!(["DB_PASSWORD"]));
    assert_eq!(listed[0]["attributes"]["name"], "db");
    assert_eq!(listed[1]["attributes"]["keys"], json!(["API_KEY"]));
    assert!(!table.stdout.contains("sk-live") && !table.stdout.contains("correct-horse"));
    error_line(&refused);
    assert!(
        deleted.stdout.contains("secret payments deleted"),
        "{deleted:?}"
    );
    assert_eq!(
        gantry
            .json(&["secret", "list"])
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    gantry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_listed_newest_first_and_filtered_by_type_target_actor_and_time() {
    let gantry = Gantry::start().await;
    gantry.create_project("one", "One").await;
    gantry.create_project("two", "Two").await;
    gantry
        .ok(&["project", "archive", "--project-code", "two"])
        .await;

    let all = gantry.json(&["event", "list"]).await;
    let created = gantry
        .json(&["event", "list", "--type", "api:projects:create"])
        .await;
    let about_two = gantry
        .json(&[
            "event",
            "list",
            "--target",
            "/projects/two",
            "--actor",
            "admin",
        ])
        .await;
    let nobody = gantry.json(&["event", "list", "--actor", "nobody"]).await;
    let future = gantry
        .json(&["event", "list", "--since", "2999-01-01T00:00:00Z"])
        .await;
    let limited = gantry.json(&["event", "list", "--limit", "1"]).await;
    let bad_time = gantry.run(&["event", "list", "--since", "yesterday"]).await;

    assert_eq!(
        all[0]["attributes"]["event_type"], "api:projects:update",
        "newest first"
    );
    assert_eq!(created.as_array().unwrap().len(), 2);
    assert_eq!(about_two.as_array().unwrap().len(), 2);
    assert!(nobody.as_array().unwrap().is_empty());
    assert!(future.as_array().unwrap().is_empty());
    assert_eq!(limited.as_array().unwrap().len(), 1);
    assert!(
        error_line(&bad_time).contains("not an RFC 3339 timestamp"),
        "{bad_time:?}"
    );
    gantry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_dockerfile_writes_the_default_dockerfile_and_does_not_overwrite_without_force() {
    let gantry = Gantry::start().await;
    let path = gantry.home.path().join(".gantry/Dockerfile");

    let created = gantry.ok(&["dev", "create-dockerfile"]).await;
    std::fs::write(&path, "FROM mine\n").unwrap();
    let refused = gantry.run(&["dev", "create-dockerfile"]).await;
    let kept = std::fs::read_to_string(&path).unwrap();
    let forced = gantry.ok(&["dev", "create-dockerfile", "--force"]).await;

    assert!(created.stdout.contains(".gantry/Dockerfile"), "{created:?}");
    assert!(error_line(&refused).contains("--force"), "{refused:?}");
    assert_eq!(kept, "FROM mine\n");
    assert_eq!(forced.code, 0);
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.contains("FROM "), "{written}");
    assert_ne!(written, "FROM mine\n");
    gantry.stop().await;
}

#[tokio::test]
async fn completion_prints_a_script_for_each_shell_without_any_configuration() {
    let home = Home::new();

    for (shell, marker) in [
        ("bash", "_gantry()"),
        ("zsh", "#compdef gantry"),
        ("fish", "complete -c gantry"),
        ("elvish", "gantry"),
        ("powershell", "gantry"),
    ] {
        let completion = run(home.command(&["completion", shell]), None).await;

        assert_eq!(completion.code, 0, "{completion:?}");
        assert!(
            completion.stdout.contains(marker),
            "{shell}: {}",
            &completion.stdout[..200.min(completion.stdout.len())]
        );
    }
    let piped = r#"set -o pipefail; "$GANTRY_BIN" completion bash | head -n 1"#;
    let head = run(home.program("bash", &["-c", piped]), None).await;
    assert_eq!(
        (head.code, head.stdout.as_str(), head.stderr.as_str()),
        (0, "_gantry() {\n", ""),
        "a reader that goes away ends the command quietly"
    );
    assert!(
        run(home.command(&["completion", "bash"]), None)
            .await
            .stdout
            .contains("edit-properties"),
        "the verbs are completed"
    );
}

#[tokio::test]
async fn every_command_has_help_with_an_example() {
    let home = Home::new();
    let nouns = [
        "project",
        "environment",
        "change",
        "step",
        "properties",
        "secret",
        "event",
        "dev",
        "token",
    ];
    let mut checked = 0;

    for noun in nouns {
        let help = run(home.command(&[noun, "--help"]), None).await;
        assert!(
            help.stdout.contains("Example"),
            "gantry {noun} --help has no example"
        );
        let verbs: Vec<String> = help
            .stdout
            .split("Commands:")
            .nth(1)
            .unwrap()
            .split("Options:")
            .next()
            .unwrap()
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|verb| *verb != "help")
            .map(str::to_owned)
            .collect();
        for verb in verbs {
            let help = run(home.command(&[noun, &verb, "--help"]), None).await;
            assert_eq!(help.code, 0, "{noun} {verb}: {help:?}");
            assert!(
                help.stdout.contains("Example"),
                "gantry {noun} {verb} --help has no example"
            );
            checked += 1;
        }
    }
    for single in [
        &["info", "--help"][..],
        &["login", "--help"],
        &["completion", "--help"],
    ] {
        let help = run(home.command(single), None).await;
        assert!(help.stdout.contains("Example"), "{single:?} has no example");
    }
    assert!(checked >= 30, "only {checked} verbs found");
    let _ = BIN;
}

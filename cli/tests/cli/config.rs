//! `gantry login` and how a command finds its API and token.

use std::os::unix::fs::PermissionsExt;

use crate::helpers::{Gantry, Home, error_line, run};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_missing_token_is_one_error_line_naming_the_three_ways_to_give_one() {
    let home = Home::new();

    let refused = run(home.command(&["project", "list"]), None).await;

    assert_eq!(refused.code, 1);
    let line = error_line(&refused);
    for way in ["--token", "GANTRY_TOKEN", "gantry login"] {
        assert!(line.contains(way), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_checks_the_token_and_stores_it_in_a_0600_file_that_later_commands_use() {
    let gantry = Gantry::start().await;
    let home = &gantry.home;
    // An existing file readable by others is tightened too.
    std::fs::create_dir_all(home.config_file().parent().unwrap()).unwrap();
    std::fs::write(home.config_file(), "[profiles.old]\nurl = \"http://old\"\n").unwrap();
    std::fs::set_permissions(home.config_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let url = gantry.stack.base.as_str();

    let wrong = run(
        home.command(&["login", "--url", url]),
        Some("not-the-token\n"),
    )
    .await;
    let login = run(
        home.command(&["login", "--url", url, "--profile", "work"]),
        Some(&format!("{}\n", gantry.stack.token)),
    )
    .await;

    assert!(
        error_line(&wrong).contains("valid bearer token is required"),
        "{wrong:?}"
    );
    assert_eq!(login.code, 0, "{login:?}");
    assert!(login.stdout.contains("as admin"), "{login:?}");
    assert_eq!(mode(&home.config_file()), 0o600);
    let config = std::fs::read_to_string(home.config_file()).unwrap();
    assert!(config.contains("current_profile = \"work\""), "{config}");
    assert!(config.contains(&gantry.stack.token), "{config}");
    assert!(
        config.contains("[profiles.old]"),
        "other profiles are kept: {config}"
    );
    // No GANTRY_URL or GANTRY_TOKEN: the stored profile is used.
    let info = run(home.command(&["info", "--output", "json"]), None).await;
    assert_eq!(info.code, 0, "{info:?}");
    assert_eq!(info.json()["attributes"]["user"], "admin");
    // Another profile, named by the environment, has no token.
    let mut other = home.command(&["info"]);
    other.env("GANTRY_PROFILE", "old");
    let refused = run(other, None).await;
    assert!(
        error_line(&refused).contains("profile `old`"),
        "{refused:?}"
    );
    gantry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_win_over_the_environment() {
    let gantry = Gantry::start().await;

    let wrong_url = gantry
        .run(&["info", "--url", "http://127.0.0.1:9", "--token", "x"])
        .await;
    let wrong_token = gantry.run(&["info", "--token", "wrong"]).await;

    assert!(error_line(&wrong_url).contains("cannot reach the Gantry API at http://127.0.0.1:9"));
    assert!(error_line(&wrong_token).contains("valid bearer token is required"));
    gantry.stop().await;
}

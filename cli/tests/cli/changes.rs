//! Changes run through real containers: followed to their end with the exit code saying how they
//! ended (0 success, 3 error, 4 cancelled), cancelled, retried, continued, and looked at.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{CREATE, Gantry, error_line};

fn create(extra: &[&str]) -> Vec<String> {
    CREATE.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The change id from the first line a followed change prints (`change <id> <status>`).
fn change_id(stdout: &str) -> String {
    let first = stdout.lines().next().unwrap_or_default();
    first.split(' ').nth(1).unwrap_or_default().to_owned()
}

/// Polls the API until the step called `name` of `change` has `status` (tests may poll).
async fn wait_for_step(gantry: &Gantry, change: &str, name: &str, status: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let steps = gantry.json(&["step", "list", "--change-id", change]).await;
        if let Some(step) =
            steps.as_array().unwrap().iter().find(|s| {
                s["attributes"]["name"] == name && s["attributes"]["status_code"] == status
            })
        {
            return step["id"].as_str().unwrap().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "step {name} never {status}: {steps}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_change_prints_its_transitions_and_logs_and_exits_0() {
    let gantry = Gantry::with_project(
        "actions:\n  default:\n    steps: [one, two]\n  one:\n    run: 'echo hello from one'\n  two:\n    run: 'echo hello from two'\n",
    )
    .await;
    let metadata = gantry.file("metadata.json", r#"{"ticket": "OPS-1"}"#);

    let run = gantry
        .run(&strs(&create(&[
            "--action",
            "default",
            "--metadata-path",
            &metadata,
            "--follow-logs",
        ])))
        .await;

    assert_eq!(run.code, 0, "{run:?}");
    let id = change_id(&run.stdout);
    let lines: Vec<&str> = run.stdout.lines().collect();
    for expected in [
        "step one success",
        "step two success",
        "step default success",
    ] {
        assert!(lines.contains(&expected), "missing {expected:?}: {run:?}");
    }
    let hello = lines
        .iter()
        .position(|l| l.ends_with("hello from one"))
        .unwrap();
    let two = lines
        .iter()
        .position(|l| l.ends_with("hello from two"))
        .unwrap();
    assert!(hello < two, "{run:?}");
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with(&format!("change {id} finished: success in "))
    );

    let shown = gantry.json(&["change", "show", "--change-id", &id]).await;
    assert_eq!(shown["attributes"]["metadata"]["ticket"], "OPS-1");
    let table = gantry.ok(&["change", "show", "--change-id", &id]).await;
    assert!(
        table.stdout.contains("  one") && table.stdout.contains("success"),
        "{table:?}"
    );
    let listed = gantry
        .json(&[
            "change",
            "list",
            "--project-code",
            "demo",
            "--status",
            "success",
        ])
        .await;
    assert_eq!(listed[0]["id"], id.as_str());
    let log = gantry
        .ok(&["change", "show-logs", "--change-id", &id])
        .await;
    assert!(log.stdout.contains("hello from two"), "{log:?}");
    let log_json = gantry
        .json(&["change", "show-logs", "--change-id", &id])
        .await;
    assert!(
        log_json
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["attributes"]["text"] == "hello from one")
    );
    let used = gantry
        .json(&["change", "show-properties", "--change-id", &id])
        .await;
    assert_eq!(used["attributes"]["project"]["version"], 1);
    let steps = gantry.json(&["step", "list", "--change-id", &id]).await;
    let one = steps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["attributes"]["name"] == "one")
        .unwrap();
    let step = gantry
        .json(&["step", "show", "--step-id", one["id"].as_str().unwrap()])
        .await;
    assert_eq!(step["attributes"]["exit_code"], 0);
    gantry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_change_exits_3_and_its_retry_after_the_fix_exits_0() {
    let gantry = Gantry::with_project(
        "actions:\n  default:\n    steps: [one, two]\n  one:\n    run: 'echo one'\n  two:\n    run: 'test \"$FIXED\" = yes'\n",
    )
    .await;
    let fix = gantry.file("fix.json", r#"{"gantry": {"env": {"FIXED": "yes"}}}"#);

    let failed = gantry.run(&strs(&create(&[]))).await;
    let id = change_id(&failed.stdout);
    gantry
        .ok(&[
            "project",
            "set-properties",
            "--project-code",
            "demo",
            "--file-path",
            &fix,
            "--confirm",
        ])
        .await;
    let retried = gantry
        .run(&[
            "change",
            "retry",
            "--change-id",
            &id,
            "--follow-logs",
            "--output",
            "json",
        ])
        .await;

    assert_eq!(failed.code, 3, "{failed:?}");
    assert!(failed.stdout.contains("step two error"), "{failed:?}");
    assert!(
        failed
            .stdout
            .contains(&format!("change {id} finished: error")),
        "{failed:?}"
    );
    assert_eq!(retried.code, 0, "{retried:?}");
    // With --output json the final change is printed, and the logs go to stderr.
    let shown = retried.json();
    let retry = shown["id"].as_str().unwrap().to_owned();
    assert!(
        retried.stderr.contains("Finished step \"two\""),
        "{retried:?}"
    );
    assert_eq!(shown["attributes"]["retried_from"], id.as_str());
    assert_eq!(shown["attributes"]["status_code"], "success");
    let not_again = gantry
        .run(&["change", "retry", "--change-id", &retry])
        .await;
    assert_eq!(
        not_again.code, 1,
        "a successful change is not retried: {not_again:?}"
    );
    error_line(&not_again);
    gantry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_cancelled_while_followed_exits_4() {
    let gantry = Gantry::with_project(
        "actions:\n  default:\n    steps: [sleepy, never]\n  sleepy:\n    run: 'echo started; sleep 60'\n  never:\n    run: 'true'\n",
    )
    .await;
    let mut follower = gantry.command(&strs(&create(&[])));
    let mut child = follower.stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        printed.push(line.clone());
        if line == "step sleepy running" {
            break;
        }
    }
    let id = change_id(&printed.join("\n"));

    let cancelled = gantry.json(&["change", "cancel", "--change-id", &id]).await;

    while let Some(line) = lines.next_line().await.unwrap() {
        printed.push(line);
    }
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(4), "{printed:?}");
    assert_eq!(cancelled["attributes"]["status_code"], "cancelled");
    assert!(
        printed.contains(&"step sleepy cancelled".to_owned()),
        "{printed:?}"
    );
    assert!(
        printed.last().unwrap().contains("finished: cancelled"),
        "{printed:?}"
    );
    gantry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_change_waits_for_a_continue_and_show_logs_follows_it_to_the_end() {
    let gantry = Gantry::with_project(
        "actions:\n  default:\n    steps: [first, wait, last]\n  first:\n    run: 'echo first'\n  last:\n    run: 'echo last step ran'\n",
    )
    .await;

    let started = Instant::now();
    let background = gantry.ok(&strs(&create(&["--background"]))).await;
    let returned = started.elapsed();
    let id = background.stdout.trim().to_owned();
    let waiting = wait_for_step(&gantry, &id, "wait", "waiting").await;
    let follower = tokio::spawn({
        let command = gantry.command(&["change", "show-logs", "--change-id", &id, "--follow"]);
        async move { crate::helpers::run(command, None).await }
    });
    let continued = gantry
        .json(&["step", "continue", "--step-id", &waiting])
        .await;
    let followed = tokio::time::timeout(Duration::from_secs(60), follower)
        .await
        .unwrap()
        .unwrap();

    assert!(
        returned < Duration::from_secs(5),
        "--background returns at once: {returned:?}"
    );
    assert_eq!(continued["attributes"]["status_code"], "success");
    assert_eq!(followed.code, 0, "{followed:?}");
    assert!(
        followed.stdout.contains("continued by admin"),
        "{followed:?}"
    );
    assert!(followed.stdout.contains("last step ran"), "{followed:?}");
    assert!(
        followed.stderr.contains("finished: success"),
        "{followed:?}"
    );
    let shown: Value = gantry.json(&["change", "show", "--change-id", &id]).await;
    assert_eq!(shown["attributes"]["status_code"], "success");
    let again = gantry
        .run(&["step", "continue", "--step-id", &waiting])
        .await;
    assert_eq!(again.code, 1, "a continued step waits no more: {again:?}");
    gantry.stop().await;
}

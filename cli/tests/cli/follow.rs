//! Following a log across a dropped connection, and the live view on a terminal.

use crate::helpers::{CREATE, Gantry, run};
use crate::proxy::CuttingProxy;

const CHATTY: &str =
    "actions:\n  default:\n    run: 'for i in $(seq 1 300); do echo line-$i; done'\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_log_stream_is_resumed_after_the_last_line_with_every_line_once_in_order() {
    let gantry = Gantry::with_project(CHATTY).await;
    let created = gantry.ok(CREATE).await;
    let id = created.stdout.split(' ').nth(1).unwrap().to_owned();
    let proxy = CuttingProxy::start(
        gantry.stack.base.trim_start_matches("http://").to_owned(),
        6000,
    )
    .await;

    let mut command = gantry.command(&["change", "show-logs", "--change-id", &id, "--follow"]);
    command.env("GANTRY_URL", &proxy.url);
    let followed = run(command, None).await;

    assert_eq!(followed.code, 0, "{followed:?}");
    let numbers: Vec<u32> = followed
        .stdout
        .lines()
        .filter_map(|l| l.split("line-").nth(1))
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(numbers, (1..=300).collect::<Vec<_>>(), "{followed:?}");
    let requests = proxy.requests.lock().unwrap().clone();
    let follows: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("follow=true"))
        .collect();
    assert_eq!(follows.len(), 2, "one cut, one resume: {requests:?}");
    assert!(!follows[0].to_lowercase().contains("last-event-id"));
    assert!(
        follows[1].to_lowercase().contains("last-event-id: "),
        "{}",
        follows[1]
    );
    assert!(
        followed.stderr.contains("finished: success"),
        "{followed:?}"
    );
    gantry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_the_change_is_drawn_as_a_live_step_tree_with_a_progress_line() {
    let gantry = Gantry::with_project(
        "actions:\n  default:\n    steps: [one, two]\n  one:\n    run: 'true'\n  two:\n    run: 'true'\n",
    )
    .await;

    let shown = gantry.run_on_terminal(CREATE, "").await;

    assert_eq!(shown.code, 0, "{shown:?}");
    for drawn in [
        "steps finished",
        "default [running]",
        "  one [success]",
        "  two [success]",
    ] {
        assert!(
            shown.stdout.contains(drawn),
            "{drawn:?} not drawn: {shown:?}"
        );
    }
    assert!(shown.stdout.contains("finished: success in "), "{shown:?}");
    gantry.stop().await;
}

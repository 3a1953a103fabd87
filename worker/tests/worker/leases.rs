//! Lease expiry (DESIGN §7): a step whose runner stops renewing its lease is run again, and the
//! stale attempt's outcome is fenced off.

use std::time::{Duration, Instant};

use crate::helpers::{assert_status_logged, spawn_stack_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_reaped_and_the_step_runs_again_as_a_new_attempt() {
    let mut stack = spawn_stack_with(|s| s.worker.lease_seconds = 3).await;
    stack
        .project_with_manifest(
            "actions:\n  default:\n    run: echo started && sleep 3 && echo done\n",
        )
        .await;
    let change_id = stack.create_change("default", "main").await;

    // Wait for attempt 1 to run, then make its lease look like a dead worker's.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let staged = stack
            .sql("UPDATE steps SET lease_owner = 'a-dead-worker', lease_expires_at = now() - interval '1 second' \
                  WHERE status_code = 'running' AND attempt = 1")
            .await;
        if staged == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the step never started running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let change = stack.wait_final(&change_id).await;

    let log = stack.log(&change_id).await;
    assert_status_logged(&change, "success", &log);
    let step = &change["included"][0]["attributes"];
    assert_eq!(
        step["attempt"], 2,
        "the reaped step ran as a second attempt"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("The lease of attempt 1 expired")),
        "log:\n{}",
        log.join("\n")
    );
    stack.stop().await;
}

//! `park`: nothing runs before the start line; the line's action runs with its variables; the end
//! of stdin before a step is an unused exit, and during one, the runner's own.

use crate::helpers::Step;
use std::io::Write;
use std::time::{Duration, Instant};

const RELEASED_UNUSED: i32 = 86;
const WORKER_GONE: i32 = 87;

/// `gantry-runner park` in `step`, given `input` on its stdin, which stays open.
fn park(step: &Step, input: &[u8]) -> (std::process::Child, std::process::ChildStdin) {
    let mut child = step.spawn(&["park"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    stdin.flush().unwrap();
    (child, stdin)
}

/// Waits up to `limit` for the process to exit; its code.
fn exit_within(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waitable") {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("gantry-runner park did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_parked_runner_runs_nothing_until_its_start_line_and_then_the_action_with_its_variables() {
    let step = Step::new("actions:\n  build:\n    run: echo \"$GREETING $TOKEN\" > ran.txt\n");
    let mut child = step.spawn(&["park"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "it waits for its step");
    assert!(!step.home.join("ran.txt").exists(), "nothing ran yet");

    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            b"{\"action\":\"build\",\"env\":{\"GREETING\":\"hello\",\"TOKEN\":\"s3cret\"}}\n",
        )
        .unwrap();
    stdin.flush().unwrap();
    // The worker holds stdin open while the step runs.
    assert_eq!(exit_within(&mut child, Duration::from_secs(10)), Some(0));
    drop(stdin);

    assert_eq!(step.read("ran.txt"), "hello s3cret\n");
    assert!(step.has_result(), "the step wrote its result");
}

#[test]
fn stdin_closed_before_a_step_exits_unused_and_nothing_runs() {
    let step = Step::new("actions:\n  build:\n    run: touch ran.txt\n");
    for input in [&b""[..], b"{\"action\":\"build\""] {
        // Nothing, or half a line from a worker that died writing it.
        let (mut child, stdin) = park(&step, input);
        drop(stdin);
        assert_eq!(
            exit_within(&mut child, Duration::from_secs(5)),
            Some(RELEASED_UNUSED)
        );
        assert!(!step.home.join("ran.txt").exists());
    }
}

#[test]
fn stdin_closed_while_the_step_runs_ends_the_runner_at_once() {
    let step = Step::new("actions:\n  build:\n    run: sleep 30\n");
    let (mut child, stdin) = park(&step, b"{\"action\":\"build\"}\n");
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "the step runs");
    let closed = Instant::now();
    drop(stdin);
    // In a container the runner is the init of its PID namespace: its exit ends the step's
    // processes with it. Here it only ends itself.
    assert_eq!(
        exit_within(&mut child, Duration::from_secs(5)),
        Some(WORKER_GONE)
    );
    assert!(closed.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_malformed_start_line_is_refused_before_anything_runs() {
    let step = Step::new("actions:\n  build:\n    run: touch ran.txt\n");
    let (child, stdin) = park(&step, b"{\"act\":1}\n");
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("the step's start line is malformed"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!step.home.join("ran.txt").exists());
}

//! Scenarios that need no container: change creation, property updates, results applied.

use gantry_loadtest::scenarios::{create, props, results};
use gantry_loadtest::size::Size;

use crate::helpers::{harness, is_number, json};

/// With a planner process given, both loops run once more first with that process stopped and
/// it is continued after: here a stand-in process (the test's planner runs in the test's own),
/// stopped and continued around the api-alone loops; every creation of all four loops is counted
/// and planned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_stops_the_planner_process_for_the_api_alone_loops_and_continues_it() {
    let h = harness().await;
    let params = Size::Tiny.create();
    let mut planner = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();

    let report = create::run(&h.api, &h.fixture, &params, Some(planner.id()))
        .await
        .unwrap();

    let state = std::fs::read_to_string(format!("/proc/{}/stat", planner.id())).unwrap();
    let state = state
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    planner.kill().unwrap();
    let _ = planner.wait();
    assert_ne!(state, "T", "the planner process was left stopped");
    let alone = report.api_alone.as_ref().expect("the api-alone loops ran");
    let open = (params.rate * params.duration_secs).round() as usize;
    assert_eq!(alone.closed_loop.sent, params.count);
    assert_eq!(alone.open_loop.sent, open);
    assert_eq!((alone.closed_loop.errors, alone.open_loop.errors), (0, 0));
    let warm_up = create::WARM_UP_PER_CLIENT * params.concurrency;
    assert_eq!(report.created, 1 + warm_up + 2 * (params.count + open));
    assert_eq!(report.unsuccessful, 0);
    let document = json(&report);
    assert!(
        is_number(&document, "/api_alone/open_loop/latency/p99_ms"),
        "{document}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_counts_every_creation_and_waits_until_the_planner_finished_them_all() {
    let h = harness().await;
    let params = Size::Tiny.create();

    let report = create::run(&h.api, &h.fixture, &params, None)
        .await
        .unwrap();

    assert_eq!(report.closed_loop.sent, params.count);
    assert_eq!(report.closed_loop.latency.count, params.count as u64);
    let open = (params.rate * params.duration_secs).round() as usize;
    assert_eq!(report.open_loop.sent, open);
    assert_eq!(report.open_loop.latency.count, open as u64);
    assert_eq!((report.closed_loop.errors, report.open_loop.errors), (0, 0));
    // The first change, the warm-up burst, then both loops; every one planned and finished
    // without a container.
    let warm_up = create::WARM_UP_PER_CLIENT * params.concurrency;
    assert_eq!(report.warm_up, warm_up);
    assert_eq!(report.created, 1 + warm_up + params.count + open);
    assert_eq!(report.unsuccessful, 0);
    let listed = h
        .api
        .list_all(&format!(
            "/api/changes?filter[project_code_eq]={}&filter[status_code_eq]=success&limit=100",
            h.fixture.code("create")
        ))
        .await
        .unwrap();
    assert_eq!(listed.len(), report.created);
    let document = json(&report);
    for pointer in [
        "/closed_loop/per_second",
        "/open_loop/latency/p99_ms",
        "/drain_secs",
    ] {
        assert!(is_number(&document, pointer), "{pointer} in {document}");
    }
    h.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn props_increments_lose_no_update_and_leave_a_contiguous_history() {
    let h = harness().await;
    let params = Size::Tiny.props();

    let report = props::run(&h.api, &h.fixture, &params).await.unwrap();

    let expected = (params.clients * params.increments) as i64;
    assert_eq!(report.final_value, expected);
    assert_eq!(report.final_version, 1 + expected);
    assert!(report.versions_contiguous);
    assert_eq!(report.increment_latency.count, expected as u64);
    let document = json(&report);
    assert!(is_number(&document, "/updates_per_second"), "{document}");
    assert!(is_number(&document, "/retries"), "{document}");
    h.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_published_to_the_queue_are_all_applied_to_their_changes_and_properties() {
    let h = harness().await;
    let params = Size::Tiny.results();

    let report = results::run(&h.api, &h.fixture, &h.stack.settings, &params)
        .await
        .unwrap();

    assert_eq!(report.changes_successful, params.results);
    assert_eq!(report.properties_version, 1 + params.results as i64);
    let statuses = h
        .api
        .list_all(&format!(
            "/api/changes?filter[project_code_eq]={}&limit=100",
            h.fixture.code("results")
        ))
        .await
        .unwrap();
    assert_eq!(statuses.len(), params.results);
    assert!(
        statuses
            .iter()
            .all(|c| c["attributes"]["status_code"] == "success")
    );
    assert!(is_number(&json(&report), "/applied_per_second"));
    h.stack.stop().await;
}

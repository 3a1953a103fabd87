//! Scenarios that run containers: steps, chain and the raw figures.

use gantry_loadtest::scenarios::{chain, raw, steps};
use gantry_loadtest::size::Size;

use crate::helpers::{harness, is_number, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_runs_n_changes_of_k_steps_to_success_and_counts_them() {
    let h = harness().await;
    let params = Size::Tiny.steps();

    let report = steps::run(&h.api, &h.fixture, &params).await.unwrap();

    assert_eq!(report.changes_successful, params.changes);
    assert_eq!(report.steps_run, params.changes * params.steps_per_change);
    assert_eq!(report.change_latency.count, params.changes as u64);
    assert_eq!(report.step_latency.count, report.steps_run as u64);
    assert!(report.steps_per_second > 0.0 && report.makespan_secs > 0.0);
    // A change cannot be faster than its steps one after the other.
    assert!(report.change_latency.p50_ms >= report.step_latency.p50_ms);
    assert!(is_number(&json(&report), "/change_latency/p99_ms"));
    h.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_times_single_step_changes_and_a_chain_of_the_given_length() {
    let h = harness().await;
    let mut params = Size::Tiny.chain();
    assert_eq!(
        params.steps, 3,
        "the tiny chain replaces the issue's 40 steps"
    );
    params.worker_metrics = Some(h.stack.worker_metrics_url());

    let report = chain::run(&h.api, &h.fixture, &params).await.unwrap();

    assert_eq!(report.single.count, params.singles as u64);
    assert_eq!(report.chain_step.count, params.steps as u64);
    let per_step = report.chain_total_ms / params.steps as f64;
    assert!((report.chain_per_step_ms - per_step).abs() < 1e-9);
    assert!(report.chain_total_ms >= report.chain_step.max_ms);
    assert!(is_number(&json(&report), "/single/p50_ms"));
    // The worker's histograms around the chain give every phase of its steps.
    let breakdown = report.breakdown.expect("the worker's metrics were read");
    for phase in ["create", "upload", "start", "run", "result", "remove"] {
        let mean = breakdown.container_phases.get(phase).copied();
        assert!(mean.is_some_and(|ms| ms >= 0.0), "{phase}: {breakdown:?}");
    }
    assert!(breakdown.container_phases["start"] > 0.0);
    assert!(breakdown.message_handling.contains_key("gantry.steps"));
    assert!(breakdown.outside_container_ms < report.chain_per_step_ms);
    h.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_times_hardened_containers_and_commits_and_drops_its_scratch_database() {
    let h = harness().await;
    let params = Size::Tiny.raw();
    assert_eq!(params.lifecycles, 2);
    let databases = || async {
        let (client, connection) = tokio_postgres::connect(
            "postgres://postgres@127.0.0.1:5432/postgres",
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        let rows = client
            .query(
                "SELECT datname FROM pg_database WHERE datname LIKE 'gantry_loadtest_%'",
                &[],
            )
            .await
            .unwrap();
        rows.iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
    };
    let before = databases().await;

    let report = raw::run(&h.stack.settings, &params).await.unwrap();

    assert_eq!(report.lifecycle.count, 2);
    assert!(report.lifecycle.p50_ms > 0.0);
    assert_eq!(report.churn.count, params.churn_containers);
    assert_eq!(report.inserts.count, params.inserts);
    assert_eq!(report.versioned.count, params.versioned);
    assert!(report.inserts.per_second > 0.0 && report.versioned.per_second > 0.0);
    let after = databases().await;
    assert!(
        after.iter().all(|d| before.contains(d)),
        "left behind: {after:?}"
    );
    assert!(is_number(&json(&report), "/churn/per_second"));
    h.stack.stop().await;
}

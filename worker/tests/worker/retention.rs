//! Retention: `Idempotency-Key`s older than `api.idempotency_key_hours` are removed; younger
//! ones are kept.

use std::time::{Duration, Instant};

use crate::helpers::{assert_status, spawn_stack_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_past_their_hours_are_removed_and_younger_ones_kept() {
    let mut stack = spawn_stack_with(|settings| {
        settings.worker.retention_interval_seconds = 1;
        settings.api.idempotency_key_hours = 2;
    })
    .await;
    stack
        .project_with_manifest("actions:\n  default:\n    run: 'true'\n")
        .await;
    let (change_id, change) = stack.run_change("default", "main").await;
    assert_status(&stack, &change_id, &change, "success").await;
    for (key, age) in [("old", "3 hours"), ("young", "1 hour")] {
        stack
            .sql(&format!(
                "INSERT INTO idempotency_keys (actor, key, request_digest, change_id, created_at) \
                 VALUES ('admin', '{key}', 'digest', '{change_id}', now() - interval '{age}')"
            ))
            .await;
    }

    let deadline = Instant::now() + Duration::from_secs(20);
    let keys = loop {
        let keys: Vec<String> = stack
            .db()
            .await
            .query("SELECT key FROM idempotency_keys ORDER BY key", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        if keys.len() < 2 || Instant::now() > deadline {
            break keys;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    assert_eq!(keys, ["young"]);
    stack.stop().await;
}

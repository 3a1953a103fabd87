//! Observability end to end: one trace per change from the API request to the step container,
//! and the Prometheus series of the api and the worker.

use std::collections::BTreeSet;

use gantry_shared::telemetry;
use opentelemetry_sdk::trace::InMemorySpanExporter;
use serde_json::json;

use crate::helpers::spawn_stack;

const ECHO_TRACEPARENT: &str =
    "actions:\n  default:\n    run: echo \"step traceparent=$TRACEPARENT\"\n";

#[tokio::test]
async fn a_changes_spans_share_one_trace_from_the_api_to_the_steps_traceparent() {
    // nextest runs each test in its own process: this subscriber sees only this test's stack.
    let exporter = InMemorySpanExporter::default();
    let mut settings = gantry_testkit::test_settings();
    settings.telemetry.level = "info".into();
    let _guard =
        telemetry::init_with_exporter(&settings.telemetry, "gantry-test", exporter.clone());
    let mut stack = spawn_stack().await;
    stack.project_with_manifest(ECHO_TRACEPARENT).await;

    let response = stack
        .client
        .post(format!("{}/api/changes", stack.base))
        .bearer_auth(&stack.token)
        .json(
            &json!({"data": {"attributes": {"project_code": "demo", "environment_code": "dev",
            "git_remote_name": "origin", "git_rev": "main", "action": "default"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let traceparent = response
        .headers()
        .get("traceparent")
        .expect("the response names its trace")
        .to_str()
        .unwrap()
        .to_owned();
    let trace_id = traceparent.split('-').nth(1).unwrap().to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    let change_id = body["data"]["id"].as_str().unwrap().to_owned();
    let change = stack.wait_final(&change_id).await;
    assert_eq!(change["data"]["attributes"]["status_code"], "success");

    // The step's process received a TRACEPARENT of the same trace (its own span, not the API's).
    let log = stack.log(&change_id).await;
    let line = log
        .iter()
        .find(|l| l.contains("step traceparent="))
        .unwrap_or_else(|| panic!("no traceparent line in:\n{}", log.join("\n")));
    let step_traceparent = line.split("step traceparent=").nth(1).unwrap().trim();
    let parts: Vec<&str> = step_traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{step_traceparent}");
    assert_eq!(
        parts[1], trace_id,
        "the step's TRACEPARENT is of another trace"
    );
    assert_ne!(step_traceparent, traceparent);

    // Every span of the api request and of each worker role belongs to that one trace.
    stack.stop().await;
    let spans = exporter.get_finished_spans().unwrap();
    let in_trace: Vec<_> = spans
        .iter()
        .filter(|s| s.span_context.trace_id().to_string() == trace_id)
        .collect();
    let names: BTreeSet<String> = in_trace.iter().map(|s| s.name.to_string()).collect();
    for expected in ["http_request", "handle_message", "run_claimed"] {
        assert!(
            names.contains(expected),
            "no {expected} span in the trace: {names:?}"
        );
    }
    let queues: BTreeSet<String> = in_trace
        .iter()
        .filter(|s| s.name == "handle_message")
        .flat_map(|s| s.attributes.iter())
        .filter(|kv| kv.key.as_str() == "queue")
        .map(|kv| kv.value.to_string())
        .collect();
    assert_eq!(
        queues,
        BTreeSet::from([
            "gantry.changes".into(),
            "gantry.results".into(),
            "gantry.steps".into()
        ]),
        "the planner, runner and results deliveries all continue the change's trace"
    );
    let other_handlers = spans
        .iter()
        .filter(|s| s.name == "handle_message" && s.span_context.trace_id().to_string() != trace_id)
        .count();
    assert_eq!(
        other_handlers, 0,
        "a delivery of this change started its own trace"
    );
}

#[tokio::test]
async fn metrics_expose_the_listed_series_after_a_change_ran() {
    let mut stack = spawn_stack().await;
    stack
        .project_with_manifest("actions:\n  default:\n    run: \"true\"\n")
        .await;
    let (_, change) = stack.run_change("default", "main").await;
    assert_eq!(change["data"]["attributes"]["status_code"], "success");

    let api = stack.scrape(&format!("{}/metrics", stack.base)).await;
    let worker = stack.scrape(&stack.worker_metrics_url()).await;
    let prefix = &stack.settings.amqp.prefix;
    for (who, text) in [("api", &api), ("worker", &worker)] {
        for series in [
            format!("gantry_queue_depth{{queue=\"{prefix}gantry.steps\"}} 0"),
            format!("gantry_queue_depth{{queue=\"{prefix}gantry.results.dlq\"}} 0"),
            "gantry_outbox_depth 0".to_owned(),
            "gantry_steps{status=\"running\"} 0".to_owned(),
            "gantry_steps{status=\"queued\"} 0".to_owned(),
        ] {
            assert!(
                text.contains(&series),
                "{who} /metrics lacks `{series}`:\n{text}"
            );
        }
    }
    // One process runs both in the tests, so both render the same registry; each series below is
    // recorded by the role named.
    for series in [
        // api
        "gantry_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/changes\",status=\"201\"",
        "gantry_changes_created_total 1",
        // worker
        "gantry_plan_batch_size_count 1",
        "gantry_plan_batch_size_bucket{le=\"1\"} 1",
        "gantry_step_images_total{outcome=\"built\"} 1",
        "gantry_container_phase_duration_seconds_count{phase=\"run\"} 1",
        // The step waited for a container of its shape once (none was parked before it); the
        // containers parked after it are created and started beside it, in any number.
        "gantry_container_phase_duration_seconds_count{phase=\"take\"} 1",
        "gantry_parked_containers_taken_total{ready=\"no\"} 1",
        "gantry_container_phase_duration_seconds_count{phase=\"remove\"} 1",
        "gantry_steps_finished_total{status=\"success\"} 1",
        "gantry_messages_total{queue=\"gantry.results\",disposition=\"ack\"} 1",
        "gantry_lease_expiries_total 0",
    ] {
        assert!(
            worker.contains(series),
            "/metrics lacks `{series}`:\n{worker}"
        );
    }
    // Registered at zero when the recorder is installed, so presence alone proves nothing: the
    // plan, the step and its result were each published.
    let published: f64 = worker
        .lines()
        .find_map(|l| l.strip_prefix("gantry_outbox_published_total "))
        .expect("the published counter is rendered")
        .parse()
        .unwrap();
    assert!(published >= 3.0, "published {published}:\n{worker}");
    stack.stop().await;
}

//! Tracing set-up and trace propagation (STYLE "Configuration and telemetry", DESIGN §7).
//!
//! One subscriber per process: an env filter, log lines (JSON in production, readable locally) and
//! an OpenTelemetry layer. Every change is one trace: the API request that creates it starts the
//! trace (or continues the caller's `traceparent`), the change row keeps it, the outbox carries it
//! into the AMQP headers of every message about the change, each worker continues it, and the step
//! container receives it as `TRACEPARENT`. Spans are always made and propagated; they are exported
//! over OTLP/HTTP only when `telemetry.otlp_endpoint` is set, so tests need no collector.
//!
//! Root spans (one per request, per message, per reaped step) carry a `trace_id` field, so every
//! log line inside them names the trace it belongs to.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use serde_json::{Map, Value};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::settings::TelemetrySettings;

/// The W3C trace-context header, in HTTP requests and responses and in AMQP message headers.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Keeps the tracer provider alive; dropping it flushes the spans not yet exported.
#[must_use = "dropping the guard stops exporting spans"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the process-wide subscriber for `service` (`gantry-api`, `gantry-worker`). A second
/// call in one process is a no-op (its guard holds nothing).
pub fn init(settings: &TelemetrySettings, service: &'static str) -> TelemetryGuard {
    let mut builder = SdkTracerProvider::builder().with_resource(resource(service));
    if !settings.otlp_endpoint.is_empty() {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(settings.otlp_endpoint.clone())
            .build()
        {
            // The batch processor exports from its own thread with a blocking client.
            Ok(exporter) => builder = builder.with_batch_exporter(exporter),
            Err(e) => eprintln!("OTLP trace export disabled: {e}"),
        }
    }
    install(settings, builder.build())
}

/// Like [`init`], with every finished span handed to `exporter` at once (tests read them back).
pub fn init_with_exporter(
    settings: &TelemetrySettings,
    service: &'static str,
    exporter: impl SpanExporter + 'static,
) -> TelemetryGuard {
    let provider = SdkTracerProvider::builder()
        .with_resource(resource(service))
        .with_simple_exporter(exporter)
        .build();
    install(settings, provider)
}

fn resource(service: &'static str) -> Resource {
    Resource::builder().with_service_name(service).build()
}

fn install(settings: &TelemetrySettings, provider: SdkTracerProvider) -> TelemetryGuard {
    let filter = EnvFilter::try_new(&settings.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("gantry"));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let installed = if settings.json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(false)
                    .with_span_list(true),
            )
            .try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_target(true))
            .try_init()
    };
    TelemetryGuard {
        provider: installed.is_ok().then_some(provider),
    }
}

/// Makes `span` continue the trace of `traceparent` (when it is a valid W3C value) and records
/// the trace id in the span's `trace_id` field. Call before the span is first entered.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(value) = traceparent {
        let carrier = HashMap::from([(TRACEPARENT_HEADER.to_owned(), value.to_owned())]);
        let parent = TraceContextPropagator::new().extract(&carrier);
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }
    if let Some(id) = trace_id(span) {
        span.record("trace_id", tracing::field::display(id));
    }
}

/// The `traceparent` of `span`, if tracing is installed.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove(TRACEPARENT_HEADER)
}

/// The `traceparent` of the current span.
pub fn current_traceparent() -> Option<String> {
    traceparent(&tracing::Span::current())
}

/// The trace id of `span` as 32 hex digits, if it has a valid context.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// The message headers that carry the current trace context (empty outside a trace).
pub fn current_trace_headers() -> Map<String, Value> {
    trace_headers(current_traceparent())
}

/// The message headers that carry `traceparent` (none without one).
pub fn trace_headers(traceparent: Option<String>) -> Map<String, Value> {
    traceparent
        .map(|value| Map::from_iter([(TRACEPARENT_HEADER.to_owned(), Value::String(value))]))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_continues_the_given_trace_and_reports_it() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
            let span = tracing::info_span!("work", trace_id = tracing::field::Empty);
            continue_trace(&span, Some(parent));
            assert_eq!(
                trace_id(&span).as_deref(),
                Some("0af7651916cd43dd8448eb211c80319c")
            );
            let child = span.in_scope(|| tracing::info_span!("child"));
            let own = traceparent(&child).expect("a traceparent");
            assert!(
                own.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
                "{own}"
            );
            assert_ne!(own, parent, "the child has its own span id");
        });
    }

    #[test]
    fn an_invalid_traceparent_starts_a_new_trace() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("work", trace_id = tracing::field::Empty);
            continue_trace(&span, Some("not-a-traceparent"));
            let id = trace_id(&span).expect("a new trace");
            assert_eq!(id.len(), 32);
            assert_ne!(id, "00000000000000000000000000000000");
        });
    }
}

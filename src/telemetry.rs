//! Logging: `tracing` to stdout as text or JSON, filtered by `RUST_LOG` (default `info`).

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,actix_server=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true),
            )
            .try_init(),
        LogFormat::Text => registry.with(tracing_subscriber::fmt::layer()).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// The process's Prometheus recorder, installed on first use. Metrics are per process (one
/// app per process in production; tests that start several apps share one registry).
pub fn metrics() -> Option<&'static metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("_seconds".to_owned()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0,
                    ],
                );
            match builder.and_then(|b| b.install_recorder()) {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "emporium_http_requests_total",
        "HTTP requests by method, route pattern and status"
    );
    describe_histogram!(
        "emporium_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by method and route pattern"
    );
    describe_counter!(
        "emporium_events_published_total",
        "Integration events the outbox relay handed to the bus, by type"
    );
    describe_counter!(
        "emporium_event_publish_failures_total",
        "Publishes the bus refused (retried later), by type"
    );
    describe_counter!(
        "emporium_events_handled_total",
        "Deliveries by consumer group, event type and outcome (handled, retried, dead_lettered)"
    );
    describe_gauge!(
        "emporium_outbox_unsent",
        "Events in a context's outbox not yet published (read at scrape time)"
    );
    describe_gauge!(
        "emporium_dead_letters_open",
        "Dead letters of a context not yet replayed (read at scrape time)"
    );
}

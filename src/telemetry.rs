//! Logging: `tracing` to stdout as text or JSON, filtered by `RUST_LOG` (default `info`).
//! Traces: with `EMPORIUM_OTLP_ENDPOINT` (binaries built with `--features otlp`), spans go to an
//! OTLP/HTTP collector, continuing the caller's W3C trace context across requests and events.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;

use crate::config::LogFormat;

/// Keeps the trace pipeline running; `shutdown` flushes what is buffered.
#[must_use]
pub struct Telemetry {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    pub fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown() {
                eprintln!("traces not flushed: {e}");
            }
        }
    }
}

/// Installs logging and, with `otlp = Some((endpoint, service name))`, trace export.
pub fn init(format: LogFormat, otlp: Option<(&str, &str)>) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,actix_server=warn"));
    #[cfg(feature = "otlp")]
    let (otel, provider) = match otlp {
        Some((endpoint, service)) => {
            use opentelemetry::trace::TracerProvider as _;
            let provider = otlp::provider(endpoint, service)?;
            let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("emporium"));
            platform::trace_context::install(Box::new(otlp::Otel));
            (Some(layer), Some(provider))
        }
        None => (None, None),
    };
    #[cfg(not(feature = "otlp"))]
    if otlp.is_some() {
        anyhow::bail!(
            "EMPORIUM_OTLP_ENDPOINT: this binary was built without trace export (cargo feature `otlp`)"
        );
    }
    // `RUST_LOG` filters the log lines only: spans are traced at `info` whatever the log
    // level, without the exporter's own HTTP stack (which would trace itself). Without an
    // exporter there is no such layer, so `RUST_LOG=warn` creates no spans at all.
    #[cfg(feature = "otlp")]
    let registry = tracing_subscriber::registry().with(otel.map(|layer| {
        layer.with_filter(EnvFilter::new(
            "info,sqlx=warn,actix_server=warn,h2=off,hyper=off,hyper_util=off,reqwest=off,opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off,opentelemetry_http=off",
        ))
    }));
    #[cfg(not(feature = "otlp"))]
    let registry = tracing_subscriber::registry();
    let result = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_filter(filter),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_filter(filter))
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
    Ok(Telemetry {
        #[cfg(feature = "otlp")]
        provider,
    })
}

#[cfg(feature = "otlp")]
mod otlp {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry_otlp::WithExportConfig;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    /// Spans in batches to `<endpoint>/v1/traces` as OTLP/HTTP JSON.
    pub(super) fn provider(
        endpoint: &str,
        service: &str,
    ) -> anyhow::Result<opentelemetry_sdk::trace::SdkTracerProvider> {
        let endpoint = endpoint.trim_end_matches('/');
        let url = if endpoint.ends_with("/v1/traces") {
            endpoint.to_owned()
        } else {
            format!("{endpoint}/v1/traces")
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpJson)
            .with_endpoint(url)
            .with_timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| anyhow::anyhow!("EMPORIUM_OTLP_ENDPOINT: {e}"))?;
        Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(service.to_owned())
                    .build(),
            )
            .build())
    }

    /// W3C trace context through the OpenTelemetry layer.
    pub(super) struct Otel;

    impl platform::trace_context::TraceContext for Otel {
        fn adopt(&self, span: &tracing::Span, traceparent: &str) {
            let mut carrier = std::collections::HashMap::new();
            carrier.insert("traceparent".to_owned(), traceparent.to_owned());
            let parent =
                opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&carrier);
            let _ = span.set_parent(parent);
        }

        fn traceparent(&self, span: &tracing::Span) -> Option<String> {
            let cx = span.context();
            let sc = cx.span().span_context().clone();
            sc.is_valid().then(|| {
                format!(
                    "00-{}-{}-{:02x}",
                    sc.trace_id(),
                    sc.span_id(),
                    sc.trace_flags().to_u8()
                )
            })
        }
    }
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
                    // Histogram samples wait in a queue until they are folded into buckets: at
                    // a scrape, or here every 5 s, so that a process nobody scrapes does not
                    // hold every request's duration (12 bytes a request, without bound).
                    let upkeep = handle.clone();
                    let spawned = std::thread::Builder::new()
                        .name("metrics-upkeep".to_owned())
                        .spawn(move || loop {
                            std::thread::sleep(std::time::Duration::from_secs(5));
                            upkeep.run_upkeep();
                        });
                    if let Err(e) = spawned {
                        tracing::warn!(error = %e, "metrics upkeep not started");
                    }
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

/// The Prometheus text page of this process (503 problem when no recorder is installed).
pub fn metrics_page() -> Result<actix_web::HttpResponse, platform::error::ApiError> {
    let handle = metrics().ok_or_else(|| {
        platform::error::ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "metrics_unavailable",
            "metrics are not recorded in this process",
        )
    })?;
    Ok(actix_web::HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render() + &cpu_counter()))
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
    describe_gauge!(
        "emporium_dependency_up",
        "1 when a dependency (a context's database, the bus) answered its last check, else 0"
    );
    describe_gauge!(
        "process_resident_memory_bytes",
        Unit::Bytes,
        "Resident memory of this process"
    );
    describe_counter!(
        "emporium_shared_state_failures_total",
        "Calls to Redis that failed, by use: rate_limit (the request passed) or login_throttle (refused with 503)"
    );
    describe_gauge!(
        "emporium_ready",
        "1 when every dependency answered its last check (what /health/ready would say)"
    );
    describe_histogram!(
        "emporium_checkout_to_confirmed_seconds",
        Unit::Seconds,
        "The saga's latency: from an order's checkout to its confirmation"
    );
    describe_gauge!(
        "emporium_orders_overdue",
        "Orders past their waiting state's deadline at the saga's last sweep"
    );
    describe_counter!(
        "emporium_notifications_deliveries_total",
        "Notification attempts by outcome (sent, retried, failed)"
    );
    describe_counter!(
        "emporium_webhook_attempts_total",
        "Webhook attempts by outcome (delivered, retried, failed)"
    );
    describe_counter!(
        "emporium_broker_dead_letters_total",
        "Messages the broker dead-lettered, by consumer group and outcome (recorded for the admin API, or unreadable)"
    );
    describe_counter!(
        "emporium_event_batches_split_total",
        "Batches of deliveries a consumer group retried one by one after the batch failed"
    );
    describe_counter!(
        "emporium_refund_failures_total",
        "Refunds of cancelled orders that failed, by outcome (retried or given up)"
    );
    describe_histogram!(
        "emporium_dashboard_seconds",
        Unit::Seconds,
        "Time to assemble a customer's dashboard from the contexts"
    );
    describe_counter!(
        "emporium_dashboard_parts_unavailable_total",
        "Dashboard parts left out because their context did not answer, by context"
    );
    describe_counter!(
        "emporium_gateway_relayed_total",
        "Requests the gateway's front door relayed to an instance itself"
    );
    describe_counter!(
        "emporium_gateway_retries_total",
        "Requests the gateway tried again on another instance, by context"
    );
    describe_counter!(
        "emporium_gateway_ejections_total",
        "Instances the gateway took out of rotation, by context and reason"
    );
    describe_gauge!(
        "emporium_gateway_instances_out",
        "Instances of a context currently out of rotation"
    );
    describe_counter!(
        "emporium_gateway_tokens_refused_total",
        "Requests the gateway refused at the edge for a bad access token"
    );
}

/// `process_cpu_seconds_total` as Prometheus's own client libraries write it: a counter of
/// fractional seconds, read from `/proc` at the scrape (the recorder's counters are integers).
fn cpu_counter() -> String {
    let Some(seconds) = process_cpu_seconds() else {
        return String::new();
    };
    format!(
        "# HELP process_cpu_seconds_total CPU time this process has used (user and system), in seconds\n\
         # TYPE process_cpu_seconds_total counter\n\
         process_cpu_seconds_total {seconds}\n"
    )
}

/// User and system CPU time of this process, in seconds (Linux).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

//! W3C trace context across HTTP and the bus, independent of the tracing backend. With the
//! OTLP exporter installed (`emporium` built with `--features otlp`), a span adopts the
//! caller's `traceparent` as its parent and reports its own; without it, `traceparent`s are
//! still carried from requests into events, so logs correlate.

use std::sync::OnceLock;

/// What an installed tracing backend does with trace context.
pub trait TraceContext: Send + Sync + 'static {
    /// Makes `traceparent` the remote parent of `span`.
    fn adopt(&self, span: &tracing::Span, traceparent: &str);
    /// `span`'s own context as a `traceparent`, if the backend traces it.
    fn traceparent(&self, span: &tracing::Span) -> Option<String>;
}

static BACKEND: OnceLock<Box<dyn TraceContext>> = OnceLock::new();

/// Installs the backend (once per process; later calls are ignored).
pub fn install(backend: Box<dyn TraceContext>) {
    let _ = BACKEND.set(backend);
}

/// Makes `traceparent` the remote parent of `span` (no backend: nothing to do).
pub fn adopt(span: &tracing::Span, traceparent: &str) {
    if let Some(b) = BACKEND.get() {
        b.adopt(span, traceparent);
    }
}

/// `span`'s own `traceparent`, when a backend traces it.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    BACKEND.get().and_then(|b| b.traceparent(span))
}

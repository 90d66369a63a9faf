//! The envelope every event travels in.

use kernel::{IntegrationEvent, Timestamp};
use platform::http::RequestContext;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// UUIDv7, unique per event; consumers dedupe on it.
    pub id: Uuid,
    /// `<context>.<event>`, e.g. `ordering.order_placed`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: u32,
    pub occurred_at: Timestamp,
    /// The producing context.
    pub source: String,
    /// The request (or root event) that started the chain.
    pub correlation_id: String,
    /// The event that directly caused this one, if any.
    pub causation_id: Option<String>,
    /// W3C trace context.
    pub traceparent: Option<String>,
    pub payload: serde_json::Value,
}

/// Where an event comes from: a request or another event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Causation {
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub traceparent: Option<String>,
}

impl From<&RequestContext> for Causation {
    fn from(ctx: &RequestContext) -> Self {
        Self {
            correlation_id: ctx.request_id.clone(),
            causation_id: None,
            traceparent: Some(ctx.traceparent.clone()),
        }
    }
}

impl From<&Envelope> for Causation {
    fn from(env: &Envelope) -> Self {
        Self {
            correlation_id: env.correlation_id.clone(),
            causation_id: Some(env.id.to_string()),
            traceparent: env.traceparent.clone(),
        }
    }
}

impl Causation {
    /// Work started by the system itself (a timer, start-up).
    pub fn system() -> Self {
        (&RequestContext::background()).into()
    }
}

impl Envelope {
    pub fn wrap<E: IntegrationEvent>(
        event: &E,
        occurred_at: Timestamp,
        cause: &Causation,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            id: Uuid::now_v7(),
            event_type: E::NAME.to_owned(),
            version: E::VERSION,
            occurred_at,
            source: E::SOURCE.to_owned(),
            correlation_id: cause.correlation_id.clone(),
            causation_id: cause.causation_id.clone(),
            traceparent: cause.traceparent.clone(),
            payload: serde_json::to_value(event)?,
        })
    }

    /// The typed event, if this envelope carries `E` at its version.
    pub fn open<E: IntegrationEvent>(&self) -> anyhow::Result<E> {
        anyhow::ensure!(
            self.event_type == E::NAME && self.version == E::VERSION,
            "expected {} v{}, got {} v{}",
            E::NAME,
            E::VERSION,
            self.event_type,
            self.version
        );
        Ok(serde_json::from_value(self.payload.clone())?)
    }
}

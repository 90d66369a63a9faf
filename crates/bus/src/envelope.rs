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

    /// The typed event: `E` at its own version, at the next one (which may only add
    /// fields, ignored here), or at an older one `E` upcasts. Anything else is refused,
    /// naming both versions (docs/decisions/0037-two-versions-side-by-side-events-are-read.md).
    pub fn open<E: IntegrationEvent>(&self) -> anyhow::Result<E> {
        anyhow::ensure!(
            self.event_type == E::NAME,
            "expected {}, got {}",
            E::NAME,
            self.event_type
        );
        let (name, ours, theirs) = (E::NAME, E::VERSION, self.version);
        let payload = if theirs == ours || theirs == ours.saturating_add(1) {
            self.payload.clone()
        } else if theirs < ours {
            E::upcast(theirs, self.payload.clone())
                .map_err(|e| anyhow::anyhow!("{name} v{theirs} cannot be read as v{ours}: {e}"))?
        } else {
            anyhow::bail!(
                "{name} v{theirs} is newer than this consumer reads (v{ours} and v{})",
                ours.saturating_add(1)
            );
        };
        serde_json::from_value(payload).map_err(|e| {
            if theirs == ours.saturating_add(1) {
                anyhow::anyhow!("{name} v{theirs} changed more than added fields; this consumer reads v{ours}: {e}")
            } else {
                anyhow::anyhow!("{name} v{theirs}: {e}")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `test.priced` as a consumer built for version 1 knows it.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct PricedV1 {
        sku: String,
        amount: i64,
    }

    impl IntegrationEvent for PricedV1 {
        const NAME: &'static str = "test.priced";
        const VERSION: u32 = 1;
        const SOURCE: &'static str = "test";
    }

    /// Version 2 adds a field: a version 1 consumer reads it.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct PricedV2 {
        sku: String,
        amount: i64,
        currency: String,
    }

    impl IntegrationEvent for PricedV2 {
        const NAME: &'static str = "test.priced";
        const VERSION: u32 = 2;
        const SOURCE: &'static str = "test";
    }

    /// Version 3 renames `amount` to `amount_minor` and needs a currency: it upcasts 1 and 2.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct PricedV3 {
        sku: String,
        amount_minor: i64,
        currency: String,
    }

    impl IntegrationEvent for PricedV3 {
        const NAME: &'static str = "test.priced";
        const VERSION: u32 = 3;
        const SOURCE: &'static str = "test";

        fn upcast(
            version: u32,
            mut payload: serde_json::Value,
        ) -> Result<serde_json::Value, String> {
            let map = payload.as_object_mut().ok_or("not an object")?;
            let amount = map.remove("amount").ok_or("no amount")?;
            map.insert("amount_minor".into(), amount);
            if version == 1 {
                // Version 1 priced everything in euros.
                map.insert("currency".into(), "EUR".into());
            }
            Ok(payload)
        }
    }

    fn wrap<E: IntegrationEvent>(e: &E) -> Envelope {
        Envelope::wrap(e, Timestamp::now(), &Causation::system()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_consumer_of_version_1_reads_a_version_2_with_an_added_field() {
        let v2 = wrap(&PricedV2 {
            sku: "MUG".into(),
            amount: 1250,
            currency: "USD".into(),
        });
        assert_eq!(v2.version, 2);
        let read: PricedV1 = v2.open().unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            read,
            PricedV1 {
                sku: "MUG".into(),
                amount: 1250
            }
        );
    }

    #[test]
    fn an_upcaster_reads_older_versions_with_a_renamed_field() {
        let v1 = wrap(&PricedV1 {
            sku: "MUG".into(),
            amount: 1250,
        });
        let read: PricedV3 = v1.open().unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            read,
            PricedV3 {
                sku: "MUG".into(),
                amount_minor: 1250,
                currency: "EUR".into()
            }
        );
        let v2 = wrap(&PricedV2 {
            sku: "MUG".into(),
            amount: 990,
            currency: "USD".into(),
        });
        let read: PricedV3 = v2.open().unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(read.currency, "USD");
        assert_eq!(read.amount_minor, 990);
    }

    #[test]
    fn what_a_consumer_cannot_read_is_refused_naming_both_versions() {
        // Two versions ahead.
        let v3 = wrap(&PricedV3 {
            sku: "MUG".into(),
            amount_minor: 1,
            currency: "EUR".into(),
        });
        let err = v3
            .open::<PricedV1>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("v3") && err.contains("v1"), "{err}");
        // One ahead but not additive (v3 read by a v2 consumer: `amount` is gone).
        let err = v3
            .open::<PricedV2>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("changed more than added fields"), "{err}");
        // Older, without an upcaster.
        let v1 = wrap(&PricedV1 {
            sku: "MUG".into(),
            amount: 1,
        });
        let err = v1
            .open::<PricedV2>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("no upcaster"), "{err}");
        // Another event altogether.
        let mut other = wrap(&PricedV1 {
            sku: "MUG".into(),
            amount: 1,
        });
        other.event_type = "test.other".into();
        assert!(other.open::<PricedV1>().is_err());
    }
}

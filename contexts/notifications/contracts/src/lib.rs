//! Events published by the notifications context (its published language).

use kernel::id::UserId;
use kernel::{IntegrationEvent, Timestamp};
use serde::{Deserialize, Serialize};

/// A message could not be delivered and will not be tried again unless an admin retries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct DeliveryFailed {
    pub delivery_id: String,
    pub customer_id: UserId,
    /// welcome, order_confirmed, order_cancelled, shipment_dispatched or shipment_delivered.
    pub kind: String,
    pub attempts: u32,
    /// The last refusal, as the mail server (or the mail drop) gave it.
    pub error: String,
    pub failed_at: Timestamp,
}

impl IntegrationEvent for DeliveryFailed {
    const NAME: &'static str = "notifications.delivery_failed";
    const VERSION: u32 = 1;
    const SOURCE: &'static str = "notifications";
}

/// A webhook endpoint failed every attempt for the whole retry window and was turned off;
/// its undelivered events are kept for when an admin turns it on again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct WebhookEndpointDisabled {
    pub endpoint_id: String,
    pub url: String,
    pub reason: String,
    pub disabled_at: Timestamp,
}

impl IntegrationEvent for WebhookEndpointDisabled {
    const NAME: &'static str = "notifications.webhook_endpoint_disabled";
    const VERSION: u32 = 1;
    const SOURCE: &'static str = "notifications";
}

/// Invokes `$callback!(Type)` for every event this context publishes: its published
/// language, from which the event catalogue (`openapi/asyncapi.json`) is built.
#[macro_export]
macro_rules! for_each_event {
    ($callback:ident) => {
        $callback!($crate::DeliveryFailed);
        $callback!($crate::WebhookEndpointDisabled);
    };
}

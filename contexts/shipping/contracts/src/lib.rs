//! Events published by the shipping context (its published language).

use kernel::id::{OrderId, ProductId, ShipmentId, UserId};
use kernel::{IntegrationEvent, Timestamp};
use serde::{Deserialize, Serialize};

macro_rules! event {
    ($ty:ty, $name:literal) => {
        impl IntegrationEvent for $ty {
            const NAME: &'static str = $name;
            const VERSION: u32 = 1;
            const SOURCE: &'static str = "shipping";
        }
    };
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ShippedLine {
    pub product_id: ProductId,
    /// The variant shipped, for a product with options (absent: the product's only one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<ProductId>,
    pub quantity: u32,
}

/// A prepaid return label for an approved return: the customer sends the parcel back with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ReturnLabelCreated {
    pub order_id: OrderId,
    pub customer_id: UserId,
    /// The return (ordering's id).
    pub return_id: String,
    pub carrier: String,
    pub tracking_number: String,
    pub created_at: Timestamp,
}
event!(ReturnLabelCreated, "shipping.return_label_created");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ShipmentCreated {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub carrier: String,
    pub tracking_number: String,
    pub created_at: Timestamp,
}
event!(ShipmentCreated, "shipping.shipment_created");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ShipmentDispatched {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub tracking_number: String,
    pub lines: Vec<ShippedLine>,
    pub dispatched_at: Timestamp,
}
event!(ShipmentDispatched, "shipping.shipment_dispatched");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ShipmentDelivered {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub tracking_number: String,
    pub delivered_at: Timestamp,
}
event!(ShipmentDelivered, "shipping.shipment_delivered");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ShipmentCancelled {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub cancelled_at: Timestamp,
}
event!(ShipmentCancelled, "shipping.shipment_cancelled");

/// Invokes `$callback!(Type)` for every event this context publishes: its published
/// language, from which the event catalogue (`openapi/asyncapi.json`) is built.
#[macro_export]
macro_rules! for_each_event {
    ($callback:ident) => {
        $callback!($crate::ShipmentCreated);
        $callback!($crate::ShipmentDispatched);
        $callback!($crate::ShipmentDelivered);
        $callback!($crate::ShipmentCancelled);
        $callback!($crate::ReturnLabelCreated);
    };
}

//! Events published by the ordering context (its published language).

use kernel::address::PostalAddress;
use kernel::id::{OrderId, ProductId, UserId};
use kernel::{IntegrationEvent, Money, Timestamp};
use serde::{Deserialize, Serialize};

macro_rules! event {
    ($ty:ty, $name:literal) => {
        impl IntegrationEvent for $ty {
            const NAME: &'static str = $name;
            const VERSION: u32 = 1;
            const SOURCE: &'static str = "ordering";
        }
    };
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct OrderLine {
    pub product_id: ProductId,
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    pub unit_price: Money,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    StockReserved,
    Paid,
    Confirmed,
    Shipped,
    Delivered,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CancellationReason {
    OutOfStock,
    PaymentDeclined,
    PaymentUnavailable,
    CustomerCancelled,
    ReservationExpired,
}

/// A customer checked out; the saga starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct OrderPlaced {
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub lines: Vec<OrderLine>,
    pub total: Money,
    pub shipping_address: PostalAddress,
    pub placed_at: Timestamp,
}
event!(OrderPlaced, "ordering.order_placed");

/// Payment was authorised; shipping may start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct OrderPaid {
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub lines: Vec<OrderLine>,
    pub total: Money,
    pub shipping_address: PostalAddress,
    pub paid_at: Timestamp,
}
event!(OrderPaid, "ordering.order_paid");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct OrderCancelled {
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub reason: CancellationReason,
    /// A payment was refunded.
    pub refunded: bool,
    pub cancelled_at: Timestamp,
}
event!(OrderCancelled, "ordering.order_cancelled");

/// Any status move, for read models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct OrderStatusChanged {
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub status: OrderStatus,
    pub total: Money,
    pub placed_at: Timestamp,
    pub cancellation_reason: Option<CancellationReason>,
    pub tracking_number: Option<String>,
    pub changed_at: Timestamp,
}
event!(OrderStatusChanged, "ordering.order_status_changed");

/// Invokes `$callback!(Type)` for every event this context publishes: its published
/// language, from which the event catalogue (`openapi/asyncapi.json`) is built.
#[macro_export]
macro_rules! for_each_event {
    ($callback:ident) => {
        $callback!($crate::OrderPlaced);
        $callback!($crate::OrderPaid);
        $callback!($crate::OrderCancelled);
        $callback!($crate::OrderStatusChanged);
    };
}

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
    /// The variant sold, for a product with options; absent: the product's only variant,
    /// whose id is the product's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<ProductId>,
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    pub unit_price: Money,
}

impl OrderLine {
    /// What is stocked and reserved for this line: its variant.
    pub fn stocked_item(&self) -> ProductId {
        self.variant_id.unwrap_or(self.product_id)
    }
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

impl OrderStatus {
    /// Every status, in the order of the checkout (`cancelled` last).
    pub const ALL: [OrderStatus; 7] = [
        Self::Pending,
        Self::StockReserved,
        Self::Paid,
        Self::Confirmed,
        Self::Shipped,
        Self::Delivered,
        Self::Cancelled,
    ];

    /// The wire name (as serialised).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::StockReserved => "stock_reserved",
            Self::Paid => "paid",
            Self::Confirmed => "confirmed",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
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

/// How an order's total is made up: `total = subtotal - discount + shipping + tax`, and the
/// parcel's weight. Absent from events published before orders carried it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct OrderTotals {
    pub subtotal: Money,
    pub discount: Money,
    /// What the customer pays for shipping (without tax when prices include it).
    pub shipping: Money,
    pub tax: Money,
    pub weight_grams: u64,
    /// The promotion code that discounted the order.
    pub promotion_code: Option<String>,
}

/// A customer checked out; the saga starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct OrderPlaced {
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub lines: Vec<OrderLine>,
    pub total: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<OrderTotals>,
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
    /// Shipping learns the parcel's weight and what the customer paid for it from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<OrderTotals>,
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

/// The payment gateway gave money back to the customer: one refund, confirmed. A partial
/// refund an admin granted, or what a cancellation gave back. `total_refunded` is every
/// confirmed refund of the order so far, this one included; it never exceeds the charge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct OrderRefunded {
    pub order_id: OrderId,
    pub customer_id: UserId,
    /// The refund's payment id (as in the order's `payments`).
    pub refund_id: String,
    pub amount: Money,
    pub total_refunded: Money,
    /// What the order was charged.
    pub charged: Money,
    pub reason: Option<String>,
    pub refunded_at: Timestamp,
}
event!(OrderRefunded, "ordering.order_refunded");

/// A line of a return: the variant, how many, and (once received) whether the units go back
/// on sale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ReturnedLine {
    /// The variant sold (what is stocked).
    pub product_id: ProductId,
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    /// Put back on sale (`false`: damaged, written off). Always `true` before receipt.
    pub restock: bool,
}

/// A customer or an admin asked to send units of a shipped or delivered order back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ReturnRequested {
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub return_id: String,
    pub lines: Vec<ReturnedLine>,
    pub reason: String,
    pub requested_at: Timestamp,
}
event!(ReturnRequested, "ordering.return_requested");

/// An admin agreed to take the units back: the customer may send them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ReturnApproved {
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub return_id: String,
    pub lines: Vec<ReturnedLine>,
    /// Shipping is to be refunded with this return.
    pub refund_shipping: bool,
    pub approved_at: Timestamp,
}
event!(ReturnApproved, "ordering.return_approved");

/// An admin refused the return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ReturnRejected {
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub return_id: String,
    pub note: String,
    pub rejected_at: Timestamp,
}
event!(ReturnRejected, "ordering.return_rejected");

/// The units came back: those with `restock` go back on sale (catalog), and `refund` is
/// given back (its `order_refunded` follows once the gateway confirms; none when zero).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ReturnReceived {
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub return_id: String,
    pub lines: Vec<ReturnedLine>,
    pub refund: Money,
    pub received_at: Timestamp,
}
event!(ReturnReceived, "ordering.return_received");

/// A visitor checked out without an account (a cart token): who to mail and how they read
/// the order. Published with the order's [`OrderPlaced`], in the same unit of work.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct GuestCheckedOut {
    pub order_id: OrderId,
    /// The guest's id: the `customer_id` of the order and of its events.
    pub guest_id: UserId,
    /// Where the guest asked to be mailed (lower case).
    pub email: String,
    /// Who to greet: the name on the shipping address.
    pub name: String,
    /// The secret that reads the order (`X-Order-Token`), for the link in the confirmation.
    /// Only the hash is kept by ordering; never logged.
    pub order_token: String,
    pub placed_at: Timestamp,
}
event!(GuestCheckedOut, "ordering.guest_checked_out");

impl std::fmt::Debug for GuestCheckedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestCheckedOut")
            .field("order_id", &self.order_id)
            .field("guest_id", &self.guest_id)
            .field("email", &self.email)
            .field("name", &self.name)
            .field("order_token", &"<redacted>")
            .field("placed_at", &self.placed_at)
            .finish()
    }
}

/// Invokes `$callback!(Type)` for every event this context publishes: its published
/// language, from which the event catalogue (`openapi/asyncapi.json`) is built.
#[macro_export]
macro_rules! for_each_event {
    ($callback:ident) => {
        $callback!($crate::OrderPlaced);
        $callback!($crate::OrderPaid);
        $callback!($crate::OrderCancelled);
        $callback!($crate::OrderStatusChanged);
        $callback!($crate::OrderRefunded);
        $callback!($crate::ReturnRequested);
        $callback!($crate::ReturnApproved);
        $callback!($crate::ReturnRejected);
        $callback!($crate::ReturnReceived);
        $callback!($crate::GuestCheckedOut);
    };
}

#[cfg(test)]
mod tests {
    use super::OrderStatus;

    #[test]
    fn a_status_reads_back_as_it_is_written_and_serialised() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_value(status).ok();
            assert_eq!(
                json.as_ref().and_then(|v| v.as_str()),
                Some(status.as_str())
            );
        }
        assert_eq!(OrderStatus::parse("shipped_twice"), None);
    }

    #[test]
    fn a_guest_order_token_never_shows_in_debug_output() {
        let e = super::GuestCheckedOut {
            order_id: kernel::id::OrderId::new(),
            guest_id: kernel::id::UserId::new(),
            email: "guest@example.com".to_owned(),
            name: "Ada".to_owned(),
            order_token: "s3cret-order-token".to_owned(),
            placed_at: kernel::Timestamp::from_micros(0),
        };
        let shown = format!("{e:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("guest@example.com"));
    }
}

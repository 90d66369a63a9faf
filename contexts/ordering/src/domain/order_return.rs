//! A return's state, as the order holds it (the rules that move it are in `returns`).

use kernel::id::ProductId;
use kernel::{Money, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReturnStatus {
    Requested,
    Approved,
    Rejected,
    Received,
    Refunded,
}

impl ReturnStatus {
    pub(crate) const ALL: [ReturnStatus; 5] = [
        Self::Requested,
        Self::Approved,
        Self::Rejected,
        Self::Received,
        Self::Refunded,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Received => "received",
            Self::Refunded => "refunded",
        }
    }

    pub(crate) fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// The units of a return in this status are spoken for (a rejected one gives them back).
    pub(super) fn holds_units(self) -> bool {
        self != Self::Rejected
    }

    /// The units came back.
    pub(super) fn came_back(self) -> bool {
        matches!(self, Self::Received | Self::Refunded)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReturnLine {
    /// The variant sold (an order line's `product_id`).
    pub(crate) product_id: ProductId,
    pub(crate) quantity: u32,
    /// Put back on sale when received (`false`: damaged, written off).
    pub(crate) restock: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderReturn {
    pub(crate) id: uuid::Uuid,
    pub(crate) status: ReturnStatus,
    pub(crate) reason: String,
    pub(crate) lines: Vec<ReturnLine>,
    /// Before receipt: the admin asked for shipping to be refunded with this return. After:
    /// this return's refund includes shipping.
    pub(crate) refund_shipping: bool,
    /// What receiving it refunds (decided at receipt).
    pub(crate) refund_amount: Option<Money>,
    /// The refund payment it made, if any.
    pub(crate) refund_id: Option<uuid::Uuid>,
    /// Why it was rejected.
    pub(crate) note: Option<String>,
    /// The return label's tracking number, once shipping made one.
    pub(crate) tracking_number: Option<String>,
    /// The `Idempotency-Key` it was asked for with, if any.
    pub(crate) client_key: Option<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

use kernel::address::PostalAddress;
use kernel::id::{OrderId, ProductId, ShipmentId, UserId};
use kernel::{Money, Timestamp};

use super::payment::{Payment, PaymentKind, PaymentStatus};

/// `pending -> stock_reserved -> paid -> confirmed -> shipped -> delivered`, or `cancelled`:
/// the one status vocabulary, published in `ordering-contracts`.
pub(crate) use ordering_contracts::OrderStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancellationReason {
    OutOfStock,
    PaymentDeclined,
    PaymentUnavailable,
    CustomerCancelled,
    ReservationExpired,
}

/// The saga's rules over the status vocabulary.
pub(crate) trait Lifecycle {
    fn may_move_to(&self, next: OrderStatus) -> bool;
}

impl Lifecycle for OrderStatus {
    /// Whether the saga may move an order from `self` to `next`. Fulfilment only moves
    /// forward (events may arrive out of order: a dispatch can overtake the confirmation);
    /// cancellation is possible until the goods leave.
    fn may_move_to(&self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Pending, StockReserved)
                | (StockReserved, Paid)
                | (Paid, Confirmed | Shipped | Delivered)
                | (Confirmed, Shipped | Delivered)
                | (Shipped, Delivered)
                | (Pending | StockReserved | Paid | Confirmed, Cancelled)
        )
    }
}

impl CancellationReason {
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Self::OutOfStock => "out_of_stock",
            Self::PaymentDeclined => "payment_declined",
            Self::PaymentUnavailable => "payment_unavailable",
            Self::CustomerCancelled => "customer_cancelled",
            Self::ReservationExpired => "reservation_expired",
        }
    }

    pub(crate) fn parse(raw: &str) -> Option<Self> {
        [
            Self::OutOfStock,
            Self::PaymentDeclined,
            Self::PaymentUnavailable,
            Self::CustomerCancelled,
            Self::ReservationExpired,
        ]
        .into_iter()
        .find(|r| r.as_str() == raw)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderLine {
    pub(crate) product_id: ProductId,
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) quantity: u32,
    pub(crate) unit_price: Money,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StatusEntry {
    pub(crate) status: OrderStatus,
    pub(crate) reason: Option<CancellationReason>,
    pub(crate) note: Option<String>,
    pub(crate) at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Order {
    pub(crate) id: OrderId,
    pub(crate) customer_id: UserId,
    pub(crate) status: OrderStatus,
    pub(crate) cancellation_reason: Option<CancellationReason>,
    pub(crate) lines: Vec<OrderLine>,
    pub(crate) total: Money,
    pub(crate) shipping_address: PostalAddress,
    pub(crate) payment_token: String,
    pub(crate) shipment_id: Option<ShipmentId>,
    pub(crate) tracking_number: Option<String>,
    pub(crate) placed_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    pub(crate) deadline_at: Option<Timestamp>,
    pub(crate) version: i64,
    pub(crate) history: Vec<StatusEntry>,
    pub(crate) payments: Vec<Payment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CancelError {
    #[error("the order has left the warehouse and can no longer be cancelled")]
    AlreadyShipped,
    #[error("the order is already {0}")]
    AlreadyFinal(&'static str),
}

impl Order {
    /// The authorised charge, if any.
    pub(crate) fn authorized_charge(&self) -> Option<&Payment> {
        self.payments
            .iter()
            .find(|p| p.kind == PaymentKind::Charge && p.status == PaymentStatus::Authorized)
    }

    /// The charge not yet settled either way.
    pub(crate) fn pending_charge(&self) -> Option<&Payment> {
        self.payments
            .iter()
            .find(|p| p.kind == PaymentKind::Charge && p.status == PaymentStatus::Pending)
    }

    pub(crate) fn refund(&self) -> Option<&Payment> {
        self.payments.iter().find(|p| p.kind == PaymentKind::Refund)
    }

    /// A customer may cancel until the goods leave.
    pub(crate) fn check_customer_cancel(&self) -> Result<(), CancelError> {
        match self.status {
            OrderStatus::Shipped => Err(CancelError::AlreadyShipped),
            OrderStatus::Delivered | OrderStatus::Cancelled => {
                Err(CancelError::AlreadyFinal(self.status.as_str()))
            }
            _ => Ok(()),
        }
    }

    /// A cancelled order with an authorised charge owes a refund, exactly once.
    pub(crate) fn owes_refund(&self) -> bool {
        self.status == OrderStatus::Cancelled
            && self.authorized_charge().is_some()
            && self.refund().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::Lifecycle;
    use super::OrderStatus::*;

    #[test]
    fn fulfilment_moves_forward_and_cancellation_stops_at_dispatch() {
        assert!(Pending.may_move_to(StockReserved));
        assert!(!Pending.may_move_to(Paid));
        assert!(
            Paid.may_move_to(Shipped),
            "a dispatch may overtake the confirmation"
        );
        assert!(!Confirmed.may_move_to(Paid));
        assert!(Confirmed.may_move_to(Cancelled));
        assert!(!Shipped.may_move_to(Cancelled));
        assert!(!Cancelled.may_move_to(Confirmed));
        assert!(!Delivered.may_move_to(Cancelled));
    }
}

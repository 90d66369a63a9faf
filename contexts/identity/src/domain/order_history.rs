use kernel::id::{OrderId, UserId};
use kernel::{Money, Timestamp};

/// How far an order has come; later stages never give way to earlier ones, so events that
/// arrive out of order cannot move the history backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum OrderProgress {
    Pending = 0,
    StockReserved = 1,
    Paid = 2,
    Confirmed = 3,
    Shipped = 4,
    Delivered = 5,
    Cancelled = 6,
}

impl OrderProgress {
    pub(crate) fn as_str(&self) -> &'static str {
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

    pub(crate) fn rank(&self) -> i64 {
        *self as i64
    }

    /// A cancelled order stays cancelled; a delivered one cannot be cancelled.
    pub(crate) fn may_move_to(&self, next: OrderProgress) -> bool {
        match (self, next) {
            (Self::Cancelled, _) => false,
            (Self::Delivered, Self::Cancelled) => false,
            (current, next) => next > *current,
        }
    }
}

/// One line of a customer's order history.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderHistoryEntry {
    pub(crate) order_id: OrderId,
    pub(crate) customer_id: UserId,
    pub(crate) status: String,
    pub(crate) total: Money,
    pub(crate) placed_at: Timestamp,
    pub(crate) cancellation_reason: Option<String>,
    pub(crate) tracking_number: Option<String>,
    pub(crate) updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::OrderProgress::*;

    #[test]
    fn progress_only_moves_forward_and_cancellation_is_final() {
        assert!(Pending.may_move_to(Paid));
        assert!(!Paid.may_move_to(Pending));
        assert!(Confirmed.may_move_to(Cancelled));
        assert!(!Cancelled.may_move_to(Delivered));
        assert!(!Delivered.may_move_to(Cancelled));
    }
}

use kernel::id::{OrderId, UserId};
use kernel::{Money, Timestamp};

/// The order's status, in ordering's published vocabulary.
pub(crate) use ordering_contracts::OrderStatus;

/// How far an order has come; later stages never give way to earlier ones, so events that
/// arrive out of order cannot move the history backwards.
pub(crate) trait Progress {
    /// 0 (pending) to 6 (cancelled), in checkout order.
    fn rank(&self) -> i64;
    /// A cancelled order stays cancelled; a delivered one cannot be cancelled.
    fn may_move_to(&self, next: OrderStatus) -> bool;
}

impl Progress for OrderStatus {
    fn rank(&self) -> i64 {
        OrderStatus::ALL
            .iter()
            .position(|s| s == self)
            .map_or(6, |i| i as i64)
    }

    fn may_move_to(&self, next: OrderStatus) -> bool {
        match (self, next) {
            (OrderStatus::Cancelled, _) => false,
            (OrderStatus::Delivered, OrderStatus::Cancelled) => false,
            (current, next) => next.rank() > current.rank(),
        }
    }
}

/// The statuses an order may move from to `next`: where an event bringing `next` applies.
pub(crate) fn moving_to(next: OrderStatus) -> Vec<OrderStatus> {
    OrderStatus::ALL
        .into_iter()
        .filter(|current| current.may_move_to(next))
        .collect()
}

/// One line of a customer's order history.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderHistoryEntry {
    pub(crate) order_id: OrderId,
    pub(crate) customer_id: UserId,
    pub(crate) status: OrderStatus,
    pub(crate) total: Money,
    pub(crate) placed_at: Timestamp,
    pub(crate) cancellation_reason: Option<String>,
    pub(crate) tracking_number: Option<String>,
    pub(crate) updated_at: Timestamp,
    /// What was given back: every confirmed refund (zero when none).
    pub(crate) refunded: Money,
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;
    use super::{moving_to, OrderStatus, Progress};

    #[test]
    fn ranks_follow_the_checkout() {
        let ranks: Vec<i64> = OrderStatus::ALL.iter().map(Progress::rank).collect();
        assert_eq!(ranks, vec![0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn an_event_applies_from_the_statuses_before_it_and_never_after_cancellation() {
        assert_eq!(moving_to(Pending), vec![]);
        assert_eq!(moving_to(Paid), vec![Pending, StockReserved]);
        assert_eq!(
            moving_to(Delivered),
            vec![Pending, StockReserved, Paid, Confirmed, Shipped]
        );
        // Cancelled from anything but delivered; nothing leaves cancelled.
        assert_eq!(
            moving_to(Cancelled),
            vec![Pending, StockReserved, Paid, Confirmed, Shipped]
        );
        for next in OrderStatus::ALL {
            assert!(!moving_to(next).contains(&Cancelled));
        }
    }

    #[test]
    fn progress_only_moves_forward_and_cancellation_is_final() {
        assert!(Pending.may_move_to(Paid));
        assert!(!Paid.may_move_to(Pending));
        assert!(Confirmed.may_move_to(Cancelled));
        assert!(!Cancelled.may_move_to(Delivered));
        assert!(!Delivered.may_move_to(Cancelled));
    }
}

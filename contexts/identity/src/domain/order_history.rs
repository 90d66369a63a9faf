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

/// The status of a stored rank (`Progress::rank`).
pub(crate) fn status_of_rank(rank: i64) -> OrderStatus {
    usize::try_from(rank)
        .ok()
        .and_then(|i| OrderStatus::ALL.get(i).copied())
        .unwrap_or(OrderStatus::Cancelled)
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
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;
    use super::{status_of_rank, OrderStatus, Progress};

    #[test]
    fn ranks_follow_the_checkout_and_read_back() {
        let ranks: Vec<i64> = OrderStatus::ALL.iter().map(Progress::rank).collect();
        assert_eq!(ranks, vec![0, 1, 2, 3, 4, 5, 6]);
        for s in OrderStatus::ALL {
            assert_eq!(status_of_rank(s.rank()), s);
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

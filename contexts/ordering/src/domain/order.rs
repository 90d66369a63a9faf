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
    /// What was sold: a variant's id (a product without options is its own one variant).
    pub(crate) product_id: ProductId,
    /// The product the variant belongs to, for a product with options.
    pub(crate) variant_of: Option<ProductId>,
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) quantity: u32,
    pub(crate) unit_price: Money,
    /// The line's share of the order's discount (without tax; see `pricing`).
    pub(crate) discount: Money,
    pub(crate) tax: Money,
}

/// How the order's total is made up: `total = subtotal − discount + shipping + tax`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Amounts {
    pub(crate) subtotal: Money,
    pub(crate) discount: Money,
    pub(crate) shipping: Money,
    pub(crate) tax: Money,
    pub(crate) weight_grams: u64,
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
    pub(crate) amounts: Amounts,
    /// The code that discounted the order.
    pub(crate) promotion_code: Option<String>,
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
    /// Its returns, in the order they were asked for.
    pub(crate) returns: Vec<super::order_return::OrderReturn>,
}

/// The gateway's answer for one payment, as the saga records it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settlement {
    pub(crate) id: uuid::Uuid,
    pub(crate) status: PaymentStatus,
    pub(crate) reference: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) attempts: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CancelError {
    #[error("the order has left the warehouse and can no longer be cancelled")]
    AlreadyShipped,
    #[error("the order is already {0}")]
    AlreadyFinal(&'static str),
}

/// A move the saga asks of an order (the order part of its decision).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Move<'a> {
    pub(crate) status: Option<OrderStatus>,
    /// Kept only when the move cancels the order.
    pub(crate) reason: Option<CancellationReason>,
    pub(crate) note: Option<&'a str>,
    /// `Some(None)` clears the deadline.
    pub(crate) deadline: Option<Option<Timestamp>>,
    pub(crate) shipment: Option<(ShipmentId, &'a str)>,
}

/// The order's state after an allowed move, and the history line it writes (if any).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Moved {
    pub(crate) status: OrderStatus,
    pub(crate) cancellation_reason: Option<CancellationReason>,
    pub(crate) deadline_at: Option<Timestamp>,
    pub(crate) shipment_id: Option<ShipmentId>,
    pub(crate) tracking_number: Option<String>,
    pub(crate) entry: Option<StatusEntry>,
    pub(crate) at: Timestamp,
    /// The move cancels the order: a promotion use it took is given back.
    pub(crate) releases_promotion: bool,
}

impl Order {
    /// Applies a move at `now` (never before the order's last change). `None` when the
    /// state machine forbids the status it asks for: then nothing changes at all.
    pub(crate) fn apply(&self, m: Move<'_>, now: Timestamp) -> Option<Moved> {
        let at = now.max(self.updated_at);
        let status = m
            .status
            .filter(|s| *s != self.status && self.status.may_move_to(*s));
        if m.status.is_some() && status.is_none() && m.status != Some(self.status) {
            return None;
        }
        let cancelled_now = status == Some(OrderStatus::Cancelled);
        let cancellation_reason = if cancelled_now {
            m.reason
        } else {
            self.cancellation_reason
        };
        let (shipment_id, tracking_number) = match m.shipment {
            Some((id, number)) => (Some(id), Some(number.to_owned())),
            None => (self.shipment_id, self.tracking_number.clone()),
        };
        let new_status = status.unwrap_or(self.status);
        let entry = (status.is_some() || m.note.is_some()).then(|| StatusEntry {
            status: new_status,
            reason: if cancelled_now {
                cancellation_reason
            } else {
                None
            },
            note: m.note.map(str::to_owned),
            at,
        });
        Some(Moved {
            status: new_status,
            cancellation_reason,
            deadline_at: m.deadline.unwrap_or(self.deadline_at),
            shipment_id,
            tracking_number,
            entry,
            at,
            releases_promotion: cancelled_now && self.promotion_code.is_some(),
        })
    }

    /// The order as it reads once `moved` is stored: the new state, one version on, with its
    /// history line appended.
    pub(crate) fn moved(&self, m: &Moved) -> Order {
        let mut after = self.clone();
        after.status = m.status;
        after.cancellation_reason = m.cancellation_reason;
        after.deadline_at = m.deadline_at;
        after.shipment_id = m.shipment_id;
        after.tracking_number.clone_from(&m.tracking_number);
        after.updated_at = m.at;
        after.version = self.version + 1;
        if let Some(entry) = &m.entry {
            after.history.push(entry.clone());
        }
        after
    }

    /// Records a new payment (kept in creation order).
    pub(crate) fn add_payment(&mut self, payment: Payment) {
        self.payments.push(payment);
        self.payments.sort_by(|a, b| {
            (a.created_at, a.id.to_string()).cmp(&(b.created_at, b.id.to_string()))
        });
    }

    /// Records the gateway's answer on one of the order's payments; `false` when the order has
    /// no payment with that id. A missing reference keeps the one already known.
    pub(crate) fn settle_payment(&mut self, settled: &Settlement, at: Timestamp) -> bool {
        let Some(p) = self.payments.iter_mut().find(|p| p.id == settled.id) else {
            return false;
        };
        p.status = settled.status;
        if settled.reference.is_some() {
            p.gateway_reference.clone_from(&settled.reference);
        }
        p.last_error.clone_from(&settled.error);
        p.attempts = settled.attempts;
        p.updated_at = at;
        true
    }

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
}

#[cfg(test)]
pub(crate) mod tests {
    use super::Lifecycle;
    use super::OrderStatus::*;
    use super::*;

    pub(crate) fn order(status: OrderStatus) -> Order {
        let at = Timestamp::from_micros(1_000_000);
        let eur = kernel::Currency::parse("EUR").unwrap_or_else(|e| panic!("{e}"));
        Order {
            id: OrderId::new(),
            customer_id: UserId::new(),
            status,
            cancellation_reason: None,
            lines: vec![],
            amounts: Amounts {
                subtotal: Money::new(1_000, eur).unwrap_or_else(|e| panic!("{e}")),
                discount: Money::zero(eur),
                shipping: Money::zero(eur),
                tax: Money::zero(eur),
                weight_grams: 0,
            },
            promotion_code: None,
            total: Money::new(1_000, eur).unwrap_or_else(|e| panic!("{e}")),
            shipping_address: PostalAddress {
                name: "A".into(),
                line1: "1 Road".into(),
                line2: None,
                city: "Town".into(),
                postal_code: "1000".into(),
                country: "BE".into(),
            },
            payment_token: "tok_ok".into(),
            shipment_id: None,
            tracking_number: None,
            placed_at: at,
            updated_at: at,
            deadline_at: Some(at),
            version: 1,
            history: vec![],
            payments: vec![],
            returns: vec![],
        }
    }

    #[test]
    fn a_forbidden_move_changes_nothing() {
        let shipped = order(Shipped);
        let cancel = Move {
            status: Some(Cancelled),
            reason: Some(CancellationReason::CustomerCancelled),
            ..Move::default()
        };
        assert_eq!(
            shipped.apply(cancel, Timestamp::from_micros(2_000_000)),
            None
        );
        let back = Move {
            status: Some(Pending),
            ..Move::default()
        };
        assert_eq!(
            order(Paid).apply(back, Timestamp::from_micros(2_000_000)),
            None
        );
    }

    #[test]
    fn a_cancellation_keeps_its_reason_and_writes_history() {
        let moved = order(StockReserved)
            .apply(
                Move {
                    status: Some(Cancelled),
                    reason: Some(CancellationReason::PaymentDeclined),
                    deadline: Some(None),
                    ..Move::default()
                },
                Timestamp::from_micros(3_000_000),
            )
            .unwrap_or_else(|| panic!("allowed"));
        assert_eq!(moved.status, Cancelled);
        assert_eq!(
            moved.cancellation_reason,
            Some(CancellationReason::PaymentDeclined)
        );
        assert_eq!(moved.deadline_at, None);
        let entry = moved.entry.unwrap_or_else(|| panic!("history"));
        assert_eq!(entry.reason, Some(CancellationReason::PaymentDeclined));
        assert_eq!(entry.at, Timestamp::from_micros(3_000_000));
    }

    #[test]
    fn a_reason_without_a_cancellation_is_ignored_and_a_note_alone_is_history() {
        let moved = order(Paid)
            .apply(
                Move {
                    reason: Some(CancellationReason::OutOfStock),
                    note: Some("payment announced again"),
                    shipment: Some((ShipmentId::new(), "EMP0123456789")),
                    ..Move::default()
                },
                Timestamp::from_micros(500_000),
            )
            .unwrap_or_else(|| panic!("allowed"));
        assert_eq!(moved.status, Paid);
        assert_eq!(moved.cancellation_reason, None);
        assert_eq!(moved.tracking_number.as_deref(), Some("EMP0123456789"));
        // Time never runs backwards on an order.
        assert_eq!(moved.at, Timestamp::from_micros(1_000_000));
        let entry = moved.entry.unwrap_or_else(|| panic!("history"));
        assert_eq!((entry.status, entry.reason), (Paid, None));
        assert_eq!(entry.note.as_deref(), Some("payment announced again"));
        // Asking for the status it already has is no move, and no history either.
        let same = order(Paid)
            .apply(
                Move {
                    status: Some(Paid),
                    ..Move::default()
                },
                Timestamp::from_micros(2_000_000),
            )
            .unwrap_or_else(|| panic!("allowed"));
        assert_eq!((same.status, same.entry), (Paid, None));
    }

    fn with_status(order: &Order, status: OrderStatus) -> Order {
        let mut after = order.clone();
        after.status = status;
        after.updated_at = Timestamp::from_micros(5_000_000);
        after
    }

    #[test]
    fn an_order_announces_its_placing_and_each_status_move() {
        use crate::domain::OrderEvent;
        let placed = order(Pending);
        let events = placed.placed_events();
        assert!(
            matches!(&events[..], [OrderEvent::Placed(p), OrderEvent::StatusChanged(s)]
            if p.order_id == placed.id && s.status == Pending)
        );
        // No status move, nothing to announce.
        assert_eq!(placed.events_since(&placed), vec![]);
        let reserved = with_status(&placed, StockReserved);
        assert!(matches!(&reserved.events_since(&placed)[..],
            [OrderEvent::StatusChanged(s)] if s.status == StockReserved && s.changed_at == reserved.updated_at));
        let paid = with_status(&reserved, Paid);
        assert!(matches!(&paid.events_since(&reserved)[..],
            [OrderEvent::Paid(p), OrderEvent::StatusChanged(s)] if p.paid_at == paid.updated_at && s.status == Paid));
    }

    #[test]
    fn a_cancellation_announces_its_reason_and_whether_it_is_refunded() {
        use crate::domain::OrderEvent;
        let paid = order(Paid);
        let mut cancelled = with_status(&paid, Cancelled);
        cancelled.cancellation_reason = Some(CancellationReason::PaymentDeclined);
        let events = cancelled.events_since(&paid);
        assert!(
            matches!(&events[..], [OrderEvent::Cancelled(c), OrderEvent::StatusChanged(s)]
            if !c.refunded
                && c.reason == ordering_contracts::CancellationReason::PaymentDeclined
                && s.cancellation_reason == Some(ordering_contracts::CancellationReason::PaymentDeclined))
        );
        cancelled.payments.push(Payment {
            id: uuid::Uuid::now_v7(),
            kind: PaymentKind::Charge,
            status: PaymentStatus::Authorized,
            amount: paid.total,
            idempotency_key: "k".into(),
            gateway_reference: Some("ref".into()),
            attempts: 1,
            last_error: None,
            provider_status: None,
            reason: None,
            created_at: paid.updated_at,
            updated_at: paid.updated_at,
        });
        assert!(
            matches!(&cancelled.events_since(&paid)[..], [OrderEvent::Cancelled(c), _] if c.refunded)
        );
    }

    #[test]
    fn a_refund_is_outstanding_until_a_cancelled_charge_is_given_back() {
        let payment = |kind, status| Payment {
            id: uuid::Uuid::now_v7(),
            kind,
            status,
            amount: order(Paid).total,
            idempotency_key: format!("{kind:?}"),
            gateway_reference: None,
            attempts: 1,
            last_error: None,
            provider_status: None,
            reason: None,
            created_at: Timestamp::from_micros(1),
            updated_at: Timestamp::from_micros(1),
        };
        let charged = |status| {
            let mut o = order(status);
            o.payments
                .push(payment(PaymentKind::Charge, PaymentStatus::Authorized));
            o
        };
        // Paid and going on: nothing to give back.
        assert!(!charged(Paid).refund_outstanding());
        // Cancelled before any charge: nothing either.
        assert!(!order(Cancelled).refund_outstanding());
        // Cancelled after the charge: a refund to create, then to send, then done.
        let mut cancelled = charged(Cancelled);
        assert!(cancelled.refund_outstanding());
        cancelled
            .payments
            .push(payment(PaymentKind::Refund, PaymentStatus::Pending));
        assert!(cancelled.refund_outstanding());
        cancelled.payments[1].status = PaymentStatus::Refunded;
        assert!(!cancelled.refund_outstanding());
    }

    #[test]
    fn only_a_waiting_order_announces_itself_again() {
        use crate::domain::OrderEvent;
        assert!(matches!(
            order(Pending).announcement(),
            Some(OrderEvent::Placed(_))
        ));
        assert!(matches!(
            order(Paid).announcement(),
            Some(OrderEvent::Paid(_))
        ));
        for status in [StockReserved, Confirmed, Shipped, Delivered, Cancelled] {
            assert_eq!(order(status).announcement(), None, "{status:?}");
        }
    }

    #[test]
    fn a_stored_move_reads_as_the_order_one_version_on() {
        let before = order(StockReserved);
        let moved = before
            .apply(
                Move {
                    status: Some(Paid),
                    deadline: Some(None),
                    ..Move::default()
                },
                Timestamp::from_micros(4_000_000),
            )
            .unwrap_or_else(|| panic!("allowed"));
        let after = before.moved(&moved);
        assert_eq!((after.status, after.version), (Paid, before.version + 1));
        assert_eq!(after.updated_at, Timestamp::from_micros(4_000_000));
        assert_eq!(after.deadline_at, None);
        assert_eq!(after.history.len(), before.history.len() + 1);
        let mut settled = after.clone();
        let unknown = Settlement {
            id: uuid::Uuid::now_v7(),
            status: PaymentStatus::Authorized,
            reference: Some("ref".into()),
            error: None,
            attempts: 1,
        };
        assert!(!settled.settle_payment(&unknown, after.updated_at));
        assert_eq!(settled, after);
    }

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

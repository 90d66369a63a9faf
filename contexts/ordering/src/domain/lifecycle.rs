//! What an order does when it is told something: each intention below decides, from the
//! order as it is, the change it makes (or `None`: nothing to do). The repository stores a
//! change as one conditional update guarded by the order's version, with its payment rows,
//! and the order's state machine (`Order::apply`) refuses any status move it does not allow.

use kernel::id::{ShipmentId, UserId};
use kernel::{Money, Timestamp};

use super::order::{
    CancelError, CancellationReason, Lifecycle, Move, Moved, Order, OrderStatus, Settlement,
};
use super::order_return::OrderReturn;
use super::payment::{retry_delay, Payment, PaymentKind, PaymentStatus};

/// A change an intention decided on.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Change {
    pub(crate) status: Option<OrderStatus>,
    pub(crate) reason: Option<CancellationReason>,
    pub(crate) note: Option<String>,
    /// `Some(None)` clears the deadline.
    pub(crate) deadline: Option<Option<Timestamp>>,
    pub(crate) shipment: Option<(ShipmentId, String)>,
    pub(crate) new_payment: Option<NewPayment>,
    pub(crate) payment_update: Option<Settlement>,
    /// A return opened or moved (written as it then is).
    pub(crate) return_written: Option<OrderReturn>,
    /// Publish the event of the order's waiting status again (see `Order::announcement`).
    pub(crate) announce_again: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewPayment {
    pub(crate) id: uuid::Uuid,
    pub(crate) kind: PaymentKind,
    pub(crate) amount: Money,
    pub(crate) idempotency_key: String,
    pub(crate) reason: Option<String>,
}

/// Why the payment gateway did not approve a charge or a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GatewayError {
    Declined(String),
    /// A transient failure: worth retrying.
    Unavailable(String),
}

/// When a charge the gateway could not answer is asked for again, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChargeRetry {
    /// The next try, if the order keeps waiting.
    pub(crate) at: Timestamp,
    /// `false` once the give-up time has passed: the order is then cancelled.
    pub(crate) keep_trying: bool,
}

fn cancel(reason: CancellationReason) -> Change {
    Change {
        status: Some(OrderStatus::Cancelled),
        reason: Some(reason),
        deadline: Some(None),
        ..Change::default()
    }
}

fn note(text: &str) -> Change {
    Change {
        note: Some(text.to_owned()),
        ..Change::default()
    }
}

fn moved_on(status: OrderStatus, deadline: Option<Timestamp>) -> Change {
    Change {
        status: Some(status),
        deadline: Some(deadline),
        ..Change::default()
    }
}

impl NewPayment {
    /// The payment as created at `at`, before the gateway is asked.
    fn pending(&self, at: Timestamp) -> Payment {
        Payment {
            id: self.id,
            kind: self.kind,
            status: PaymentStatus::Pending,
            amount: self.amount,
            idempotency_key: self.idempotency_key.clone(),
            gateway_reference: None,
            attempts: 0,
            last_error: None,
            provider_status: None,
            reason: self.reason.clone(),
            created_at: at,
            updated_at: at,
        }
    }
}

impl Order {
    /// The order once `change` is made at `now` (never before its last change): the move
    /// its state machine allows, which is what the order's row is updated with, and the
    /// order as it then reads, one version on. `None` when the state machine forbids the
    /// status the change asks for: then nothing changes at all.
    pub(crate) fn changed(&self, change: &Change, now: Timestamp) -> Option<(Moved, Order)> {
        let next = self.apply(
            Move {
                status: change.status,
                reason: change.reason,
                note: change.note.as_deref(),
                deadline: change.deadline,
                shipment: change.shipment.as_ref().map(|(id, n)| (*id, n.as_str())),
            },
            now,
        )?;
        let mut after = self.moved(&next);
        if let Some(p) = &change.new_payment {
            after.add_payment(p.pending(next.at));
        }
        if let Some(u) = &change.payment_update {
            after.settle_payment(u, next.at);
        }
        if let Some(r) = &change.return_written {
            let mut r = r.clone();
            if self.find_return(r.id).is_none() {
                r.created_at = next.at;
            }
            r.updated_at = next.at;
            after.put_return(r);
        }
        Some((next, after))
    }

    /// Whose order this is: the customer's, and any admin's.
    pub(crate) fn is_visible_to(&self, caller: UserId, admin: bool) -> bool {
        admin || self.customer_id == caller
    }

    /// The order holds its stock and waits for its charge: the gateway may be asked.
    pub(crate) fn awaits_charge(&self) -> bool {
        self.status == OrderStatus::StockReserved
    }

    /// Catalog holds the stock: the order waits for its charge, created now, until
    /// `payment_deadline`.
    pub(crate) fn reserve_stock(&self, payment_deadline: Timestamp) -> Option<Change> {
        (self.status == OrderStatus::Pending).then(|| Change {
            new_payment: Some(NewPayment {
                id: uuid::Uuid::now_v7(),
                kind: PaymentKind::Charge,
                amount: self.total,
                idempotency_key: format!("{}:charge:1", self.id),
                reason: None,
            }),
            ..moved_on(OrderStatus::StockReserved, Some(payment_deadline))
        })
    }

    /// Catalog has no stock for the order. Pending: nothing was reserved. Paid or
    /// confirmed: the reservation expired before catalog heard of the payment and the units
    /// were sold meanwhile, so the order cannot be served and is cancelled (and refunded).
    pub(crate) fn reject_stock(&self) -> Option<Change> {
        matches!(
            self.status,
            OrderStatus::Pending | OrderStatus::Paid | OrderStatus::Confirmed
        )
        .then(|| cancel(CancellationReason::OutOfStock))
    }

    /// Catalog let the reservation expire. Only an unpaid order is cancelled; a paid one
    /// keeps going (catalog holds its units again when the payment reaches it).
    pub(crate) fn lose_reservation(&self) -> Option<Change> {
        match self.status {
            OrderStatus::Pending | OrderStatus::StockReserved => {
                Some(cancel(CancellationReason::ReservationExpired))
            }
            OrderStatus::Cancelled => None,
            _ => Some(note("stock reservation expired after payment: held again")),
        }
    }

    /// No stock answer came in time: a pending order is given up.
    pub(crate) fn give_up_reservation(&self) -> Option<Change> {
        (self.status == OrderStatus::Pending)
            .then(|| cancel(CancellationReason::ReservationExpired))
    }

    /// The order was cancelled before the gateway was asked: its charge is closed without
    /// calling it.
    pub(crate) fn close_unsent_charge(&self, charge: &Payment) -> Option<Change> {
        self.pending_charge()
            .is_some_and(|p| p.id == charge.id)
            .then(|| Change {
                payment_update: Some(Settlement {
                    id: charge.id,
                    status: PaymentStatus::Failed,
                    reference: None,
                    error: Some("not charged: the order was cancelled first".to_owned()),
                    attempts: charge.attempts,
                }),
                ..Change::default()
            })
    }

    /// Records the gateway's answer to `charge` after `attempts` calls in all. Approved:
    /// paid, waiting for the shipment until `shipment_deadline`. Declined: cancelled.
    /// Unreachable: tried again at `retry.at`, or cancelled once it is time to give up.
    /// An order cancelled meanwhile only records the answer (an authorisation is then
    /// refunded).
    pub(crate) fn record_charge(
        &self,
        charge: &Payment,
        answer: &Result<String, GatewayError>,
        attempts: i64,
        retry: ChargeRetry,
        shipment_deadline: Timestamp,
    ) -> Option<Change> {
        let still_pending = self.pending_charge().is_some_and(|p| p.id == charge.id);
        if !still_pending {
            return None;
        }
        let (status, reference, error) = match answer {
            Ok(reference) => (PaymentStatus::Authorized, Some(reference.clone()), None),
            Err(GatewayError::Declined(why)) => (PaymentStatus::Declined, None, Some(why.clone())),
            Err(GatewayError::Unavailable(why))
                if retry.keep_trying && self.status == OrderStatus::StockReserved =>
            {
                (PaymentStatus::Pending, None, Some(why.clone()))
            }
            Err(GatewayError::Unavailable(why)) => (PaymentStatus::Failed, None, Some(why.clone())),
        };
        let mut change = match (self.status, status) {
            (OrderStatus::StockReserved, PaymentStatus::Authorized) => {
                moved_on(OrderStatus::Paid, Some(shipment_deadline))
            }
            (OrderStatus::StockReserved, PaymentStatus::Declined) => {
                cancel(CancellationReason::PaymentDeclined)
            }
            (OrderStatus::StockReserved, PaymentStatus::Pending) => Change {
                deadline: Some(Some(retry.at)),
                ..note("payment gateway unreachable: the charge will be tried again")
            },
            (OrderStatus::StockReserved, _) => cancel(CancellationReason::PaymentUnavailable),
            _ => Change::default(),
        };
        change.payment_update = Some(Settlement {
            id: charge.id,
            status,
            reference,
            error,
            attempts,
        });
        Some(change)
    }

    /// The customer cancels: allowed until the goods leave.
    pub(crate) fn cancel_for_customer(&self) -> Result<Change, CancelError> {
        self.check_customer_cancel()
            .map(|()| cancel(CancellationReason::CustomerCancelled))
    }

    /// Records the gateway's answer to `refund` after `attempts` calls in all. A refund
    /// that failed stays pending, tried again after a growing wait, and the history says so.
    pub(crate) fn record_refund(
        &self,
        refund: &Payment,
        answer: &Result<String, GatewayError>,
        attempts: i64,
    ) -> Option<Change> {
        let pending = self.pending_refunds().any(|r| r.id == refund.id);
        pending.then(|| match answer {
            Ok(reference) => Change {
                payment_update: Some(Settlement {
                    id: refund.id,
                    status: PaymentStatus::Refunded,
                    reference: Some(reference.clone()),
                    error: None,
                    attempts,
                }),
                return_written: self.return_refunded(refund.id, self.updated_at),
                ..Change::default()
            },
            Err(GatewayError::Unavailable(e) | GatewayError::Declined(e)) => Change {
                payment_update: Some(Settlement {
                    id: refund.id,
                    status: PaymentStatus::Pending,
                    reference: None,
                    error: Some(e.clone()),
                    attempts,
                }),
                ..note(&format!(
                    "refund failed ({e}); next try in {} s",
                    retry_delay(attempts).as_secs()
                ))
            },
        })
    }

    /// A reserved order waiting for its charge waits until `deadline` (the sweeper then
    /// runs the payment step again).
    pub(crate) fn wait_for_payment_until(&self, deadline: Timestamp) -> Option<Change> {
        (self.status == OrderStatus::StockReserved).then(|| Change {
            deadline: Some(Some(deadline)),
            ..Change::default()
        })
    }

    /// An order in no waiting state has no deadline.
    pub(crate) fn stop_waiting(&self) -> Option<Change> {
        Some(Change {
            deadline: Some(None),
            ..Change::default()
        })
    }

    /// A waiting order still in `status` announces itself again (consumers dedupe by
    /// order) and waits until `deadline`.
    pub(crate) fn announce_again(
        &self,
        status: OrderStatus,
        deadline: Timestamp,
    ) -> Option<Change> {
        let what = match status {
            OrderStatus::Pending => "stock request sent again",
            _ => "payment announced again",
        };
        (self.status == status).then(|| Change {
            deadline: Some(Some(deadline)),
            announce_again: true,
            ..note(what)
        })
    }

    /// Shipping created the parcel: the order knows its tracking number and, if it may,
    /// is confirmed.
    pub(crate) fn confirm_shipment(&self, shipment: ShipmentId, tracking: &str) -> Option<Change> {
        let mut change = Change {
            shipment: Some((shipment, tracking.to_owned())),
            ..Change::default()
        };
        if self.status.may_move_to(OrderStatus::Confirmed) {
            change.status = Some(OrderStatus::Confirmed);
            change.deadline = Some(None);
        }
        Some(change)
    }

    /// The carrier took the parcel. After a cancellation that reached shipping too late,
    /// the order stays cancelled (and refunded) and a person arranges the return.
    pub(crate) fn mark_shipped(&self) -> Option<Change> {
        if self.status.may_move_to(OrderStatus::Shipped) {
            Some(moved_on(OrderStatus::Shipped, None))
        } else if self.status == OrderStatus::Cancelled {
            Some(note("dispatched after cancellation: return needed"))
        } else {
            None
        }
    }

    pub(crate) fn mark_delivered(&self) -> Option<Change> {
        self.status
            .may_move_to(OrderStatus::Delivered)
            .then(|| moved_on(OrderStatus::Delivered, None))
    }

    pub(crate) fn note_shipment_cancelled(&self) -> Option<Change> {
        Some(note("shipment cancelled"))
    }
}

//! A reservation: the units an order holds, from the order's placing to its parcel's
//! dispatch. It decides its own transitions, what they do to stock, and the event they
//! cause; the adapter stores them (a move is written only from the status it was decided
//! on, so a concurrent move makes it decide again).
//!
//! ```text
//! held --paid--> paid --dispatched--> committed
//!  |  \            |
//!  |   expired     +--cancelled--> released
//!  |     \--paid (units held again)--> paid
//!  +--cancelled--> released
//! rejected (nothing was free), cancelled (a tombstone: the cancellation came first)
//! ```

use catalog_contracts::{ReleaseReason, StockLine, StockReleased};
use kernel::id::OrderId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReservationStatus {
    /// Units held, until paid or until it expires.
    Held,
    /// Units held until dispatch or cancellation; it no longer expires.
    Paid,
    /// Not paid in time: its units were given back.
    Expired,
    /// The order was cancelled: its units were given back.
    Released,
    /// The parcel left: its units left the stock.
    Committed,
    /// Nothing was held: a line was short when the order was placed.
    Rejected,
    /// A tombstone: the order was cancelled before its reservation was asked for.
    Cancelled,
}

impl ReservationStatus {
    pub(crate) const ALL: [Self; 7] = [
        Self::Held,
        Self::Paid,
        Self::Expired,
        Self::Released,
        Self::Committed,
        Self::Rejected,
        Self::Cancelled,
    ];

    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Paid => "paid",
            Self::Expired => "expired",
            Self::Released => "released",
            Self::Committed => "committed",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }

    pub(crate) fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether the reservation's units are held now.
    fn holds(&self) -> bool {
        matches!(self, Self::Held | Self::Paid)
    }

    /// Whether its units were held once and given back.
    fn gave_back(&self) -> bool {
        matches!(self, Self::Expired | Self::Released)
    }
}

/// What a transition does to the stock of the reservation's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StockMove {
    /// Held units are free again (`reserved` down).
    GiveBack,
    /// Held units leave (`on_hand` and `reserved` down).
    Consume,
    /// Given-back units leave after all: off `on_hand`, as far as they are free (a shortfall
    /// is logged for a stock count).
    TakeOffFree,
    /// Given-back units are held again, all or none; when a line is short the transition
    /// does not happen.
    HoldAgain,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reservation {
    pub(crate) order_id: OrderId,
    pub(crate) status: ReservationStatus,
    /// By product id (the order rows are locked in).
    pub(crate) lines: Vec<StockLine>,
}

/// An allowed move: the status it leads to, what it does to stock, and the event it causes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Transition {
    pub(crate) from: ReservationStatus,
    pub(crate) to: ReservationStatus,
    pub(crate) stock: Option<StockMove>,
    pub(crate) event: Option<StockReleased>,
}

impl Reservation {
    fn to(
        &self,
        to: ReservationStatus,
        stock: Option<StockMove>,
        released: Option<ReleaseReason>,
    ) -> Transition {
        Transition {
            from: self.status,
            to,
            stock,
            event: released.map(|reason| StockReleased {
                order_id: self.order_id,
                reason,
                lines: self.lines.clone(),
            }),
        }
    }

    /// The order was cancelled: held units are given back, once.
    pub(crate) fn cancel(&self) -> Option<Transition> {
        self.status.holds().then(|| {
            self.to(
                ReservationStatus::Released,
                Some(StockMove::GiveBack),
                Some(ReleaseReason::Cancelled),
            )
        })
    }

    /// Its time ran out unpaid: the units are given back. A payment that got in first wins.
    pub(crate) fn expire(&self) -> Option<Transition> {
        (self.status == ReservationStatus::Held).then(|| {
            self.to(
                ReservationStatus::Expired,
                Some(StockMove::GiveBack),
                Some(ReleaseReason::ReservationExpired),
            )
        })
    }

    /// The order was paid: kept until dispatch; one that expired first is held again.
    pub(crate) fn pay(&self) -> Option<Transition> {
        match self.status {
            ReservationStatus::Held => Some(self.to(ReservationStatus::Paid, None, None)),
            ReservationStatus::Expired => {
                Some(self.to(ReservationStatus::Paid, Some(StockMove::HoldAgain), None))
            }
            _ => None,
        }
    }

    /// The parcel left: held units leave the stock, and so do units given back before it
    /// left (as far as they are free).
    pub(crate) fn dispatch(&self) -> Option<Transition> {
        if self.status.holds() {
            Some(self.to(ReservationStatus::Committed, Some(StockMove::Consume), None))
        } else if self.status.gave_back() {
            Some(self.to(
                ReservationStatus::Committed,
                Some(StockMove::TakeOffFree),
                None,
            ))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ReservationStatus::*;
    use super::*;
    use kernel::id::ProductId;

    fn reservation(status: ReservationStatus) -> Reservation {
        Reservation {
            order_id: OrderId::new(),
            status,
            lines: vec![StockLine {
                product_id: ProductId::new(),
                quantity: 2,
            }],
        }
    }

    #[test]
    fn statuses_read_back_as_written() {
        for s in ReservationStatus::ALL {
            assert_eq!(ReservationStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ReservationStatus::parse("HELD"), None);
    }

    #[test]
    fn a_cancellation_gives_held_units_back_once_and_says_so() {
        for status in [Held, Paid] {
            let r = reservation(status);
            let t = r.cancel().unwrap_or_else(|| panic!("{status:?} cancels"));
            assert_eq!(
                (t.from, t.to, t.stock),
                (status, Released, Some(StockMove::GiveBack))
            );
            let event = t.event.unwrap_or_else(|| panic!("stock_released"));
            assert_eq!(event.reason, ReleaseReason::Cancelled);
            assert_eq!((event.order_id, event.lines), (r.order_id, r.lines));
        }
        for status in [Expired, Released, Committed, Rejected, Cancelled] {
            assert_eq!(reservation(status).cancel(), None, "{status:?}");
        }
    }

    #[test]
    fn only_an_unpaid_hold_expires() {
        let t = reservation(Held)
            .expire()
            .unwrap_or_else(|| panic!("held expires"));
        assert_eq!((t.to, t.stock), (Expired, Some(StockMove::GiveBack)));
        assert_eq!(
            t.event.map(|e| e.reason),
            Some(ReleaseReason::ReservationExpired)
        );
        for status in [Paid, Expired, Released, Committed, Rejected, Cancelled] {
            assert_eq!(reservation(status).expire(), None, "{status:?}");
        }
    }

    #[test]
    fn a_payment_keeps_the_hold_or_holds_expired_units_again() {
        let kept = reservation(Held).pay().unwrap_or_else(|| panic!("kept"));
        assert_eq!((kept.to, kept.stock, kept.event), (Paid, None, None));
        let again = reservation(Expired)
            .pay()
            .unwrap_or_else(|| panic!("held again"));
        assert_eq!((again.to, again.stock), (Paid, Some(StockMove::HoldAgain)));
        for status in [Paid, Released, Committed, Rejected, Cancelled] {
            assert_eq!(reservation(status).pay(), None, "{status:?}");
        }
    }

    #[test]
    fn a_dispatch_takes_the_units_off_stock_whatever_became_of_the_hold() {
        for status in [Held, Paid] {
            let t = reservation(status)
                .dispatch()
                .unwrap_or_else(|| panic!("{status:?}"));
            assert_eq!((t.to, t.stock), (Committed, Some(StockMove::Consume)));
        }
        for status in [Expired, Released] {
            let t = reservation(status)
                .dispatch()
                .unwrap_or_else(|| panic!("{status:?}"));
            assert_eq!((t.to, t.stock), (Committed, Some(StockMove::TakeOffFree)));
        }
        for status in [Committed, Rejected, Cancelled] {
            assert_eq!(reservation(status).dispatch(), None, "{status:?}");
        }
    }
}

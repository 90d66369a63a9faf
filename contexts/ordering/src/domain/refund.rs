//! Refunds: what an order may still give back, and the refunds it grants. Every refund is a
//! payment record of its own; the sum of an order's refunds (pending ones included, so a
//! refund being sent counts at once) never exceeds its authorised charge. The repository
//! stores each grant guarded by the order's version and decides it again on what the tables
//! hold when another change won, so concurrent grants are judged one after the other.

use kernel::Money;

use super::lifecycle::{Change, NewPayment};
use super::order::Order;
use super::payment::{Payment, PaymentKind, PaymentStatus};

/// The longest reason a refund may carry (characters).
pub(crate) const MAX_REASON_CHARS: usize = 500;

/// A refund an admin asks for: an amount of the order's currency and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RefundRequest {
    /// The refund's payment id, chosen once by the caller (a decision made again after a
    /// lost race grants the same refund).
    pub(crate) id: uuid::Uuid,
    pub(crate) amount: Money,
    pub(crate) reason: String,
    /// The caller's `Idempotency-Key`: the same key on the same order grants one refund.
    pub(crate) client_key: Option<String>,
}

/// Why a refund is not granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RefundError {
    #[error("the order was never charged: there is nothing to refund")]
    NotCharged,
    #[error("the refund is in {asked}, the order was charged in {charged}")]
    CurrencyMismatch { asked: String, charged: String },
    #[error("a refund must be more than zero")]
    Zero,
    #[error("this refund would exceed the charge: {refundable} can still be refunded")]
    ExceedsCharge { refundable: Money },
    #[error("this Idempotency-Key was already used on this order for a different refund")]
    KeyReused,
}

/// What a grant came to: a new refund, or the one an earlier request with the same key made.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Granted {
    New(Box<Change>),
    Replayed(uuid::Uuid),
}

impl RefundRequest {
    /// The gateway's key for this refund: derived from the caller's key when there is one, so
    /// a retried request finds the refund it made.
    pub(crate) fn idempotency_key(&self, order: &Order) -> String {
        match &self.client_key {
            Some(key) => format!("{}:refund:key:{key}", order.id),
            None => format!("{}:refund:{}", order.id, self.id),
        }
    }
}

impl Order {
    /// The order's refunds, in creation order.
    pub(crate) fn refunds(&self) -> impl Iterator<Item = &Payment> {
        self.payments
            .iter()
            .filter(|p| p.kind == PaymentKind::Refund)
    }

    /// The refunds not yet confirmed by the gateway.
    pub(crate) fn pending_refunds(&self) -> impl Iterator<Item = &Payment> {
        self.refunds()
            .filter(|p| p.status == PaymentStatus::Pending)
    }

    /// What the gateway has given back so far.
    pub(crate) fn refunded(&self) -> Money {
        self.sum_of(
            self.refunds()
                .filter(|p| p.status == PaymentStatus::Refunded),
        )
    }

    /// What may still be refunded: the authorised charge less every refund granted (sent or
    /// not). Zero without an authorised charge.
    pub(crate) fn refundable(&self) -> Money {
        let currency = self.total.currency();
        let Some(charge) = self.authorized_charge() else {
            return Money::zero(currency);
        };
        let granted = self.sum_of(self.refunds()).amount();
        Money::new(
            charge.amount.amount().saturating_sub(granted).max(0),
            currency,
        )
        .unwrap_or_else(|_| Money::zero(currency))
    }

    fn sum_of<'a>(&self, payments: impl Iterator<Item = &'a Payment>) -> Money {
        let currency = self.total.currency();
        let amount = payments.fold(0i64, |acc, p| acc.saturating_add(p.amount.amount()));
        Money::new(amount, currency).unwrap_or_else(|_| Money::zero(currency))
    }

    /// The refund a cancellation owes: whatever of the charge is not refunded yet, once.
    pub(crate) fn owes_refund(&self) -> bool {
        self.status == super::OrderStatus::Cancelled && self.refundable().amount() > 0
    }

    /// A refund still to create or to send: what `Saga::process_refund` has to do.
    pub(crate) fn refund_outstanding(&self) -> bool {
        self.owes_refund() || self.pending_refunds().next().is_some()
    }

    /// A cancelled order with an authorised charge gets one refund of what remains of it.
    pub(crate) fn start_refund(&self) -> Option<Change> {
        self.owes_refund().then(|| Change {
            new_payment: Some(NewPayment {
                id: uuid::Uuid::now_v7(),
                kind: PaymentKind::Refund,
                amount: self.refundable(),
                idempotency_key: format!("{}:refund", self.id),
                reason: Some("order cancelled".to_owned()),
            }),
            ..Change::default()
        })
    }

    /// Grants `request`, or says why not. A request whose key already made a refund on
    /// this order is that refund again, if it asked for the same.
    pub(crate) fn grant_refund(&self, request: &RefundRequest) -> Result<Granted, RefundError> {
        let key = request.idempotency_key(self);
        if let Some(earlier) = self.refunds().find(|p| p.idempotency_key == key) {
            return if earlier.amount == request.amount
                && earlier.reason.as_deref() == Some(request.reason.as_str())
            {
                Ok(Granted::Replayed(earlier.id))
            } else {
                Err(RefundError::KeyReused)
            };
        }
        if self.authorized_charge().is_none() {
            return Err(RefundError::NotCharged);
        }
        if request.amount.currency() != self.total.currency() {
            return Err(RefundError::CurrencyMismatch {
                asked: request.amount.currency().as_str().to_owned(),
                charged: self.total.currency().as_str().to_owned(),
            });
        }
        if request.amount.amount() == 0 {
            return Err(RefundError::Zero);
        }
        let refundable = self.refundable();
        if request.amount.amount() > refundable.amount() {
            return Err(RefundError::ExceedsCharge { refundable });
        }
        Ok(Granted::New(Box::new(Change {
            new_payment: Some(NewPayment {
                id: request.id,
                kind: PaymentKind::Refund,
                amount: request.amount,
                idempotency_key: key,
                reason: Some(request.reason.clone()),
            }),
            note: Some(format!("refund of {} granted", request.amount)),
            ..Change::default()
        })))
    }

    /// Refunds that were confirmed between `before` and `self`.
    pub(crate) fn refunds_settled_since<'a>(
        &'a self,
        before: &'a Order,
    ) -> impl Iterator<Item = &'a Payment> + 'a {
        self.refunds().filter(move |r| {
            r.status == PaymentStatus::Refunded
                && !before
                    .refunds()
                    .any(|b| b.id == r.id && b.status == PaymentStatus::Refunded)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::GatewayError;
    use crate::domain::order::tests::order;
    use crate::domain::OrderStatus::{self, *};
    use proptest::prelude::*;

    fn charged(status: OrderStatus, amount: i64, currency: &str) -> Order {
        let currency = kernel::Currency::parse(currency).unwrap_or_else(|e| panic!("{e}"));
        let mut o = order(status);
        o.total = Money::new(amount, currency).unwrap_or_else(|e| panic!("{e}"));
        o.payments.push(Payment {
            id: uuid::Uuid::now_v7(),
            kind: PaymentKind::Charge,
            status: PaymentStatus::Authorized,
            amount: o.total,
            idempotency_key: format!("{}:charge:1", o.id),
            gateway_reference: Some("ch_1".into()),
            attempts: 1,
            last_error: None,
            provider_status: None,
            reason: None,
            created_at: o.updated_at,
            updated_at: o.updated_at,
        });
        o
    }

    fn ask(o: &Order, amount: i64, key: Option<&str>) -> RefundRequest {
        RefundRequest {
            id: uuid::Uuid::now_v7(),
            amount: Money::new(amount, o.total.currency()).unwrap_or_else(|e| panic!("{e}")),
            reason: "goodwill".into(),
            client_key: key.map(str::to_owned),
        }
    }

    /// The order once `change` is stored.
    fn stored(o: &Order, change: &Change) -> Order {
        o.changed(change, o.updated_at)
            .unwrap_or_else(|| panic!("allowed"))
            .1
    }

    fn grant(o: &Order, request: &RefundRequest) -> Result<Order, RefundError> {
        match o.grant_refund(request)? {
            Granted::New(change) => Ok(stored(o, &change)),
            Granted::Replayed(_) => Ok(o.clone()),
        }
    }

    #[test]
    fn refunds_are_refused_beyond_the_charge_and_without_one() {
        let o = charged(Delivered, 2_500, "EUR");
        let after = grant(&o, &ask(&o, 1_000, None)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(after.refundable().amount(), 1_500);
        assert_eq!(
            after.grant_refund(&ask(&after, 1_501, None)),
            Err(RefundError::ExceedsCharge {
                refundable: after.refundable()
            })
        );
        assert_eq!(
            after.grant_refund(&ask(&after, 0, None)),
            Err(RefundError::Zero)
        );
        let all = grant(&after, &ask(&after, 1_500, None)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(all.refundable().amount(), 0);
        assert_eq!(all.refunds().count(), 2);
        // Nothing was ever charged.
        let unpaid = order(Pending);
        assert_eq!(
            unpaid.grant_refund(&ask(&unpaid, 1, None)),
            Err(RefundError::NotCharged)
        );
        // Another currency than the charge's.
        let usd = RefundRequest {
            amount: Money::new(
                1,
                kernel::Currency::parse("USD").unwrap_or_else(|e| panic!("{e}")),
            )
            .unwrap_or_else(|e| panic!("{e}")),
            ..ask(&o, 1, None)
        };
        assert!(matches!(
            o.grant_refund(&usd),
            Err(RefundError::CurrencyMismatch { .. })
        ));
    }

    #[test]
    fn the_same_key_grants_one_refund_and_refuses_a_different_one() {
        let o = charged(Shipped, 2_500, "EUR");
        let first = ask(&o, 700, Some("k-1"));
        let after = grant(&o, &first).unwrap_or_else(|e| panic!("{e}"));
        let again = RefundRequest {
            id: uuid::Uuid::now_v7(),
            ..first.clone()
        };
        assert_eq!(after.grant_refund(&again), Ok(Granted::Replayed(first.id)));
        let other = RefundRequest {
            amount: Money::new(701, o.total.currency()).unwrap_or_else(|e| panic!("{e}")),
            ..again
        };
        assert_eq!(after.grant_refund(&other), Err(RefundError::KeyReused));
    }

    #[test]
    fn a_cancellation_refunds_only_what_partial_refunds_left() {
        let o = charged(Confirmed, 2_500, "EUR");
        let partly = grant(&o, &ask(&o, 400, None)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!partly.owes_refund(), "a live order owes nothing");
        assert!(
            partly.refund_outstanding(),
            "the partial refund is still to send"
        );
        let mut cancelled = partly.clone();
        cancelled.status = Cancelled;
        let change = cancelled.start_refund().unwrap_or_else(|| panic!("owed"));
        assert_eq!(
            change.new_payment.as_ref().map(|p| p.amount.amount()),
            Some(2_100)
        );
        let after = stored(&cancelled, &change);
        assert!(!after.owes_refund());
        assert_eq!(after.start_refund(), None, "exactly once");
    }

    #[test]
    fn a_settled_refund_counts_as_refunded_and_is_announced_once() {
        let o = charged(Delivered, 999, "EUR");
        let after = grant(&o, &ask(&o, 300, None)).unwrap_or_else(|e| panic!("{e}"));
        let refund = after
            .pending_refunds()
            .next()
            .cloned()
            .unwrap_or_else(|| panic!("pending"));
        assert_eq!(after.refunded().amount(), 0);
        let change = after
            .record_refund(&refund, &Ok("re_1".into()), 1)
            .unwrap_or_else(|| panic!("pending"));
        let settled = stored(&after, &change);
        assert_eq!(settled.refunded().amount(), 300);
        assert_eq!(settled.refunds_settled_since(&after).count(), 1);
        assert_eq!(settled.refunds_settled_since(&settled).count(), 0);
        // A failed call leaves it pending, to be tried again.
        let failed = after
            .record_refund(&refund, &Err(GatewayError::Unavailable("down".into())), 1)
            .unwrap_or_else(|| panic!("pending"));
        assert_eq!(stored(&after, &failed).pending_refunds().count(), 1);
    }

    fn arb_currency() -> impl Strategy<Value = &'static str> {
        // No minor unit, two and three decimals.
        prop_oneof![Just("JPY"), Just("EUR"), Just("KWD")]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Whatever is asked, in whatever order, the refunds granted never exceed the
        /// charge, and refunding what is left always comes to exactly the charge.
        #[test]
        fn refunds_never_exceed_the_charge(
            charge in 1i64..10_000_000,
            currency in arb_currency(),
            asks in proptest::collection::vec((0i64..4_000_000, any::<bool>()), 0..30),
            cancel in any::<bool>(),
        ) {
            let mut o = charged(Delivered, charge, currency);
            for (amount, settle) in asks {
                let before = o.refundable().amount();
                match grant(&o, &ask(&o, amount, None)) {
                    Ok(after) => {
                        prop_assert!(amount > 0 && amount <= before);
                        prop_assert_eq!(after.refundable().amount(), before - amount);
                        o = after;
                    }
                    Err(RefundError::ExceedsCharge { refundable }) => {
                        prop_assert!(amount > before);
                        prop_assert_eq!(refundable.amount(), before);
                    }
                    Err(RefundError::Zero) => prop_assert_eq!(amount, 0),
                    Err(e) => prop_assert!(false, "unexpected refusal {e}"),
                }
                if settle {
                    for r in o.pending_refunds().cloned().collect::<Vec<_>>() {
                        let change = o.record_refund(&r, &Ok("re".into()), 1);
                        if let Some(change) = change {
                            o = stored(&o, &change);
                        }
                    }
                }
                let granted: i64 = o.refunds().map(|r| r.amount.amount()).sum();
                prop_assert!(granted <= charge);
                prop_assert!(o.refunded().amount() <= granted);
            }
            if cancel {
                o.status = Cancelled;
                if let Some(change) = o.start_refund() {
                    o = stored(&o, &change);
                }
            } else {
                let rest = o.refundable().amount();
                if rest > 0 {
                    o = grant(&o, &ask(&o, rest, None)).unwrap_or_else(|e| panic!("{e}"));
                }
            }
            let granted: i64 = o.refunds().map(|r| r.amount.amount()).sum();
            prop_assert_eq!(granted, charge);
            prop_assert_eq!(o.refundable().amount(), 0);
        }
    }
}

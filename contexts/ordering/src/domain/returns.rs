//! Returns: a customer (within the return window) or an admin asks to send back some units
//! of a shipped or delivered order; an admin approves or rejects; when the parcel arrives the
//! admin receives it, which restocks what can be sold again (catalog hears it) and refunds the
//! lines' share of what was charged; the return is `refunded` once the gateway confirms.
//!
//! ```text
//! requested --approve--> approved --receive--> received --refund confirmed--> refunded
//!     +------reject----> rejected
//! ```
//!
//! The refund of returning `q` more units of a line of `Q` of which `r` came back before is
//! `share(r + q) − share(r)`, with `share(n) = charged × n / Q` rounded half-even and `charged`
//! the line's price less its discount share plus its tax. The shares telescope: however the
//! units come back, all of them refund exactly the line's charge. Shipping (with its tax) is
//! refunded with the return that brings the last unit back, or with the one an admin approved
//! with `refund_shipping`, once. A refund is never more than is still refundable.

use std::time::Duration;

use kernel::id::ProductId;
use kernel::{Money, Timestamp};

use super::lifecycle::{Change, NewPayment};
use super::order::{Order, OrderLine, OrderStatus};
use super::order_return::{OrderReturn, ReturnLine, ReturnStatus};
use super::payment::PaymentKind;
use super::pricing::div_half_even;

/// A return asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReturnAsk {
    pub(crate) id: uuid::Uuid,
    /// Variant and quantity (each variant once).
    pub(crate) lines: Vec<(ProductId, u32)>,
    pub(crate) reason: String,
    /// An admin may open a return at any time after dispatch; a customer within the window.
    pub(crate) by_admin: bool,
    pub(crate) window: Duration,
    pub(crate) now: Timestamp,
    /// The caller's `Idempotency-Key`: the same key on the same order opens one return.
    pub(crate) client_key: Option<String>,
}

/// What asking for a return came to: a new one, or the one an earlier request with the same
/// key opened.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Opened {
    New(Box<Change>),
    Replayed(uuid::Uuid),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReturnError {
    #[error("only a shipped or delivered order can be returned; this one is {0}")]
    NotReturnable(&'static str),
    #[error("the return window of this order has closed")]
    WindowClosed,
    #[error("the order has no line for {0}")]
    UnknownLine(ProductId),
    #[error("{product}: at most {returnable} more can be returned")]
    TooMany { product: ProductId, returnable: u32 },
    #[error("no such return")]
    NotFound,
    #[error("the return is {0}: it cannot be {1} now")]
    WrongStatus(&'static str, &'static str),
    #[error("this Idempotency-Key was already used on this order for a different return")]
    KeyReused,
}

impl Order {
    /// When the order's return window opened: its delivery, or its dispatch while it is on
    /// its way.
    fn returnable_since(&self) -> Option<Timestamp> {
        let at = |status| {
            self.history
                .iter()
                .rev()
                .find(|h| h.status == status && h.note.is_none())
                .map(|h| h.at)
        };
        at(OrderStatus::Delivered)
            .or_else(|| at(OrderStatus::Shipped))
            .or(Some(self.updated_at))
    }

    /// The order line that sold `product`.
    pub(crate) fn sold(&self, product: ProductId) -> Option<&OrderLine> {
        self.lines.iter().find(|l| l.product_id == product)
    }

    fn ordered(&self, product: ProductId) -> u32 {
        self.lines
            .iter()
            .filter(|l| l.product_id == product)
            .map(|l| l.quantity)
            .sum()
    }

    /// Units of `product` in returns whose status passes `counts`.
    fn returned(&self, product: ProductId, counts: impl Fn(ReturnStatus) -> bool) -> u32 {
        self.returns
            .iter()
            .filter(|r| counts(r.status))
            .flat_map(|r| &r.lines)
            .filter(|l| l.product_id == product)
            .map(|l| l.quantity)
            .sum()
    }

    pub(crate) fn find_return(&self, id: uuid::Uuid) -> Option<&OrderReturn> {
        self.returns.iter().find(|r| r.id == id)
    }

    /// Opens a return, or says why not.
    pub(crate) fn request_return(&self, ask: &ReturnAsk) -> Result<Opened, ReturnError> {
        let earlier = self.returns.iter().find(|r| {
            r.id == ask.id || (ask.client_key.is_some() && r.client_key == ask.client_key)
        });
        if let Some(earlier) = earlier {
            let same = earlier.reason == ask.reason
                && earlier.lines.len() == ask.lines.len()
                && ask.lines.iter().all(|(p, q)| {
                    earlier
                        .lines
                        .iter()
                        .any(|l| l.product_id == *p && l.quantity == *q)
                });
            return if same {
                Ok(Opened::Replayed(earlier.id))
            } else {
                Err(ReturnError::KeyReused)
            };
        }
        if !matches!(self.status, OrderStatus::Shipped | OrderStatus::Delivered) {
            return Err(ReturnError::NotReturnable(self.status.as_str()));
        }
        if !ask.by_admin {
            let since = self.returnable_since().unwrap_or(self.updated_at);
            if ask.now > since.plus(ask.window) {
                return Err(ReturnError::WindowClosed);
            }
        }
        let mut lines = Vec::with_capacity(ask.lines.len());
        for &(product, quantity) in &ask.lines {
            let ordered = self.ordered(product);
            if ordered == 0 {
                return Err(ReturnError::UnknownLine(product));
            }
            let returnable =
                ordered.saturating_sub(self.returned(product, ReturnStatus::holds_units));
            if quantity > returnable {
                return Err(ReturnError::TooMany {
                    product,
                    returnable,
                });
            }
            lines.push(ReturnLine {
                product_id: product,
                quantity,
                restock: true,
            });
        }
        Ok(Opened::New(Box::new(Change {
            return_written: Some(OrderReturn {
                id: ask.id,
                status: ReturnStatus::Requested,
                reason: ask.reason.clone(),
                lines,
                refund_shipping: false,
                refund_amount: None,
                refund_id: None,
                note: None,
                tracking_number: None,
                client_key: ask.client_key.clone(),
                created_at: ask.now,
                updated_at: ask.now,
            }),
            note: Some(format!("return {} requested", ask.id)),
            ..Change::default()
        })))
    }

    fn moving(
        &self,
        id: uuid::Uuid,
        from: ReturnStatus,
        verb: &'static str,
    ) -> Result<OrderReturn, ReturnError> {
        let r = self.find_return(id).ok_or(ReturnError::NotFound)?;
        if r.status != from {
            return Err(ReturnError::WrongStatus(r.status.as_str(), verb));
        }
        Ok(r.clone())
    }

    /// An admin agrees to take the units back (and, if `refund_shipping`, to refund
    /// shipping with them).
    pub(crate) fn approve_return(
        &self,
        id: uuid::Uuid,
        refund_shipping: bool,
        now: Timestamp,
    ) -> Result<Change, ReturnError> {
        let mut r = self.moving(id, ReturnStatus::Requested, "approved")?;
        r.status = ReturnStatus::Approved;
        r.refund_shipping = refund_shipping;
        r.updated_at = now;
        Ok(Change {
            return_written: Some(r),
            note: Some(format!("return {} approved", id)),
            ..Change::default()
        })
    }

    pub(crate) fn reject_return(
        &self,
        id: uuid::Uuid,
        note: &str,
        now: Timestamp,
    ) -> Result<Change, ReturnError> {
        let mut r = self.moving(id, ReturnStatus::Requested, "rejected")?;
        r.status = ReturnStatus::Rejected;
        r.note = Some(note.to_owned());
        r.updated_at = now;
        Ok(Change {
            return_written: Some(r),
            note: Some(format!("return {} rejected", id)),
            ..Change::default()
        })
    }

    /// The parcel arrived: the lines named in `no_restock` are written off, the others go
    /// back on sale, and the return's refund is granted as the refund `refund_id` (a return
    /// whose refund comes to nothing is `refunded` at once).
    pub(crate) fn receive_return(
        &self,
        id: uuid::Uuid,
        no_restock: &[ProductId],
        refund_id: uuid::Uuid,
        now: Timestamp,
    ) -> Result<Change, ReturnError> {
        let mut r = self.moving(id, ReturnStatus::Approved, "received")?;
        if let Some(p) = no_restock
            .iter()
            .find(|p| !r.lines.iter().any(|l| l.product_id == **p))
        {
            return Err(ReturnError::UnknownLine(*p));
        }
        for line in &mut r.lines {
            line.restock = !no_restock.contains(&line.product_id);
        }
        let (amount, with_shipping) = self.return_refund(&r);
        r.refund_shipping = with_shipping;
        r.refund_amount = Some(amount);
        r.updated_at = now;
        let mut change = Change {
            note: Some(format!("return {} received", id)),
            ..Change::default()
        };
        if amount.amount() > 0 {
            r.status = ReturnStatus::Received;
            r.refund_id = Some(refund_id);
            change.new_payment = Some(NewPayment {
                id: refund_id,
                kind: PaymentKind::Refund,
                amount,
                idempotency_key: format!("{}:return:{}", self.id, id),
                reason: Some(format!("return: {}", r.reason)),
            });
        } else {
            r.status = ReturnStatus::Refunded;
        }
        change.return_written = Some(r);
        Ok(change)
    }

    /// What receiving `r` refunds, and whether that includes shipping.
    fn return_refund(&self, r: &OrderReturn) -> (Money, bool) {
        let currency = self.total.currency();
        let mut amount: i128 = 0;
        for line in &r.lines {
            let before = self.returned(line.product_id, ReturnStatus::came_back);
            for l in self
                .lines
                .iter()
                .filter(|l| l.product_id == line.product_id)
            {
                // One order line per variant; should there be more, each takes its units.
                let q = line.quantity.min(l.quantity.saturating_sub(before));
                let b = before.min(l.quantity);
                amount += share(l, b + q) - share(l, b);
            }
        }
        let shipping_done = self
            .returns
            .iter()
            .any(|x| x.id != r.id && x.status.came_back() && x.refund_shipping);
        let everything_back = self.lines.iter().all(|l| {
            let back = self.returned(l.product_id, ReturnStatus::came_back)
                + r.lines
                    .iter()
                    .filter(|x| x.product_id == l.product_id)
                    .map(|x| x.quantity)
                    .sum::<u32>();
            back >= self.ordered(l.product_id)
        });
        let with_shipping = !shipping_done && (r.refund_shipping || everything_back);
        if with_shipping {
            amount += self.shipping_charged();
        }
        let capped = i64::try_from(amount.max(0))
            .unwrap_or(i64::MAX)
            .min(self.refundable().amount());
        (
            Money::new(capped, currency).unwrap_or_else(|_| Money::zero(currency)),
            with_shipping,
        )
    }

    /// Shipping and its tax: what the total holds beyond the lines' charges.
    fn shipping_charged(&self) -> i128 {
        let lines: i128 = self.lines.iter().map(charged).sum();
        (i128::from(self.total.amount()) - lines).max(0)
    }

    /// Shipping made the return's label: the return knows its tracking number (once).
    pub(crate) fn label_return(&self, id: uuid::Uuid, tracking: &str) -> Option<Change> {
        let mut r = self.find_return(id)?.clone();
        if r.tracking_number.is_some() {
            return None;
        }
        r.tracking_number = Some(tracking.to_owned());
        Some(Change {
            return_written: Some(r),
            ..Change::default()
        })
    }

    /// A confirmed refund completes the return it paid.
    pub(crate) fn return_refunded(
        &self,
        refund: uuid::Uuid,
        now: Timestamp,
    ) -> Option<OrderReturn> {
        let mut r = self
            .returns
            .iter()
            .find(|r| r.refund_id == Some(refund) && r.status == ReturnStatus::Received)?
            .clone();
        r.status = ReturnStatus::Refunded;
        r.updated_at = now;
        Some(r)
    }

    /// Stores `r` on the order (a new return, or a new state of one).
    pub(crate) fn put_return(&mut self, r: OrderReturn) {
        match self.returns.iter_mut().find(|x| x.id == r.id) {
            Some(x) => *x = r,
            None => self.returns.push(r),
        }
    }
}

/// What a line was charged: its price less its discount share, plus its tax.
fn charged(l: &OrderLine) -> i128 {
    i128::from(l.unit_price.amount()) * i128::from(l.quantity) - i128::from(l.discount.amount())
        + i128::from(l.tax.amount())
}

/// The charge of `n` of the line's units.
fn share(l: &OrderLine, n: u32) -> i128 {
    if l.quantity == 0 {
        return 0;
    }
    div_half_even(charged(l) * i128::from(n), i128::from(l.quantity))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::tests::order;
    use crate::domain::order::StatusEntry;
    use crate::domain::payment::{Payment, PaymentStatus};
    use crate::domain::{Granted, RefundRequest};
    use proptest::prelude::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn money(amount: i64, currency: kernel::Currency) -> Money {
        Money::new(amount, currency).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A delivered order of `lines` (unit price, quantity, discount, tax) and `shipping`
    /// (with its tax), charged in full.
    fn delivered(currency: &str, lines: &[(i64, u32, i64, i64)], shipping: i64) -> Order {
        let c = kernel::Currency::parse(currency).unwrap_or_else(|e| panic!("{e}"));
        let mut o = order(OrderStatus::Delivered);
        o.lines = lines
            .iter()
            .map(|&(unit, quantity, discount, tax)| OrderLine {
                product_id: ProductId::new(),
                variant_of: None,
                sku: "SKU".into(),
                name: "Thing".into(),
                quantity,
                unit_price: money(unit, c),
                discount: money(discount, c),
                tax: money(tax, c),
            })
            .collect();
        let lines: i128 = o.lines.iter().map(charged).sum();
        o.total = money(i64::try_from(lines).unwrap_or(0) + shipping, c);
        o.history.push(StatusEntry {
            status: OrderStatus::Delivered,
            reason: None,
            note: None,
            at: o.updated_at,
        });
        o.payments.push(Payment {
            id: uuid::Uuid::now_v7(),
            kind: PaymentKind::Charge,
            status: PaymentStatus::Authorized,
            amount: o.total,
            idempotency_key: "charge".into(),
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

    fn stored(o: &Order, change: &Change) -> Order {
        o.changed(change, o.updated_at)
            .unwrap_or_else(|| panic!("allowed"))
            .1
    }

    /// The change that opens the return `a` asks for.
    fn opened(o: &Order, a: &ReturnAsk) -> Change {
        match o.request_return(a) {
            Ok(Opened::New(change)) => *change,
            other => panic!("not opened: {other:?}"),
        }
    }

    fn ask(o: &Order, lines: Vec<(ProductId, u32)>, by_admin: bool, days_later: u32) -> ReturnAsk {
        ReturnAsk {
            id: uuid::Uuid::now_v7(),
            lines,
            reason: "too small".into(),
            by_admin,
            window: 30 * DAY,
            now: o.updated_at.plus(DAY * days_later),
            client_key: None,
        }
    }

    /// Requests, approves and receives a return of `lines`; the order after, and the refund.
    fn full_cycle(o: &Order, lines: Vec<(ProductId, u32)>, shipping: bool) -> (Order, i64) {
        let a = ask(o, lines, true, 0);
        let o = stored(o, &opened(o, &a));
        let o = stored(
            &o,
            &o.approve_return(a.id, shipping, o.updated_at)
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let change = o
            .receive_return(a.id, &[], uuid::Uuid::now_v7(), o.updated_at)
            .unwrap_or_else(|e| panic!("{e}"));
        let refund = change
            .new_payment
            .as_ref()
            .map(|p| p.amount.amount())
            .unwrap_or(0);
        (stored(&o, &change), refund)
    }

    #[test]
    fn a_customer_returns_within_the_window_and_never_more_than_was_bought() {
        let o = delivered("EUR", &[(1_000, 3, 300, 567), (500, 1, 0, 105)], 595);
        let mug = o.lines[0].product_id;
        assert_eq!(
            o.request_return(&ask(&o, vec![(mug, 1)], false, 31)),
            Err(ReturnError::WindowClosed)
        );
        // An admin may open one later.
        assert!(o.request_return(&ask(&o, vec![(mug, 1)], true, 90)).is_ok());
        assert_eq!(
            o.request_return(&ask(&o, vec![(mug, 4)], false, 1)),
            Err(ReturnError::TooMany {
                product: mug,
                returnable: 3
            })
        );
        let stranger = ProductId::new();
        assert_eq!(
            o.request_return(&ask(&o, vec![(stranger, 1)], false, 1)),
            Err(ReturnError::UnknownLine(stranger))
        );
        let first = ask(&o, vec![(mug, 2)], false, 1);
        let after = stored(&o, &opened(&o, &first));
        assert_eq!(
            after.request_return(&ask(&after, vec![(mug, 2)], false, 1)),
            Err(ReturnError::TooMany {
                product: mug,
                returnable: 1
            })
        );
        // A rejected return gives its units back.
        let rejected = stored(
            &after,
            &after
                .reject_return(first.id, "worn", after.updated_at)
                .unwrap_or_else(|e| panic!("{e}")),
        );
        assert!(rejected
            .request_return(&ask(&rejected, vec![(mug, 3)], false, 1))
            .is_ok());
        assert_eq!(
            rejected.approve_return(first.id, false, rejected.updated_at),
            Err(ReturnError::WrongStatus("rejected", "approved"))
        );
        // Not before dispatch.
        let confirmed = Order {
            status: OrderStatus::Confirmed,
            ..o.clone()
        };
        assert_eq!(
            confirmed.request_return(&ask(&confirmed, vec![(mug, 1)], true, 0)),
            Err(ReturnError::NotReturnable("confirmed"))
        );
    }

    #[test]
    fn a_line_refunds_its_share_after_discount_with_tax_and_shipping_comes_with_the_last_unit() {
        // Three mugs at 10.00 with 3.00 of discount and 5.67 of tax: 32.67 for the line.
        let o = delivered("EUR", &[(1_000, 3, 300, 567), (500, 1, 0, 105)], 595);
        let mug = o.lines[0].product_id;
        let (o1, first) = full_cycle(&o, vec![(mug, 1)], false);
        assert_eq!(first, 1_089, "32.67 / 3, half-even");
        let (o2, second) = full_cycle(&o1, vec![(mug, 2)], false);
        assert_eq!(first + second, 3_267, "the line's charge, exactly");
        let spoon = o.lines[1].product_id;
        let (o3, last) = full_cycle(&o2, vec![(spoon, 1)], false);
        assert_eq!(last, 605 + 595, "the last unit brings shipping back");
        assert_eq!(o3.refundable().amount(), 0);
        let refunds: i64 = o3.refunds().map(|r| r.amount.amount()).sum();
        assert_eq!(refunds, o.total.amount());
    }

    #[test]
    fn shipping_is_refunded_once_when_an_admin_says_so_and_never_beyond_the_charge() {
        let o = delivered("EUR", &[(1_000, 2, 0, 0)], 500);
        let mug = o.lines[0].product_id;
        let (o1, first) = full_cycle(&o, vec![(mug, 1)], true);
        assert_eq!(first, 1_500);
        let (_, second) = full_cycle(&o1, vec![(mug, 1)], false);
        assert_eq!(second, 1_000, "shipping went back already");
        // A goodwill refund beforehand caps what the return gives back.
        let c = o.total.currency();
        let Ok(Granted::New(change)) = o.grant_refund(&RefundRequest {
            id: uuid::Uuid::now_v7(),
            amount: money(2_200, c),
            reason: "late".into(),
            client_key: None,
        }) else {
            panic!("granted")
        };
        let after = stored(&o, &change);
        let (capped, refund) = full_cycle(&after, vec![(mug, 2)], false);
        assert_eq!(refund, 300);
        assert_eq!(capped.refundable().amount(), 0);
        // Nothing left to refund: the return is refunded at once, with no payment.
        let (nothing, zero) = full_cycle(&capped, vec![], true);
        assert_eq!(zero, 0);
        assert_eq!(
            nothing.returns.last().map(|r| r.status),
            Some(ReturnStatus::Refunded)
        );
    }

    #[test]
    fn the_same_key_opens_one_return_and_refuses_a_different_one() {
        let o = delivered("EUR", &[(1_000, 2, 0, 0)], 0);
        let mug = o.lines[0].product_id;
        let first = ReturnAsk {
            client_key: Some("k-1".into()),
            ..ask(&o, vec![(mug, 1)], false, 1)
        };
        let after = stored(&o, &opened(&o, &first));
        let again = ReturnAsk {
            id: uuid::Uuid::now_v7(),
            ..first.clone()
        };
        assert_eq!(after.request_return(&again), Ok(Opened::Replayed(first.id)));
        let other = ReturnAsk {
            lines: vec![(mug, 2)],
            ..again.clone()
        };
        assert_eq!(after.request_return(&other), Err(ReturnError::KeyReused));
        // Without a key, a second request is a second return.
        let unkeyed = ask(&after, vec![(mug, 1)], false, 1);
        assert!(matches!(after.request_return(&unkeyed), Ok(Opened::New(_))));
    }

    #[test]
    fn a_confirmed_refund_completes_its_return() {
        let o = delivered("JPY", &[(900, 1, 0, 0)], 0);
        let mug = o.lines[0].product_id;
        let (received, _) = full_cycle(&o, vec![(mug, 1)], false);
        let r = received.returns[0].clone();
        assert_eq!(r.status, ReturnStatus::Received);
        let refund_id = r.refund_id.unwrap_or_else(|| panic!("refund"));
        let done = received
            .return_refunded(refund_id, received.updated_at)
            .unwrap_or_else(|| panic!("completes"));
        assert_eq!(done.status, ReturnStatus::Refunded);
        assert_eq!(
            received.return_refunded(uuid::Uuid::now_v7(), received.updated_at),
            None
        );
    }

    fn arb_currency() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just("JPY"), Just("EUR"), Just("KWD")]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// For random orders and random sequences of returns and goodwill refunds, the
        /// refunds never exceed the charge, and when everything comes back without goodwill
        /// refunds, exactly the charge is refunded.
        #[test]
        fn returns_refund_exactly_the_charge_and_never_more(
            currency in arb_currency(),
            lines in proptest::collection::vec((1i64..100_000, 1u32..6, 0i64..5_000, 0i64..20_000), 1..5),
            shipping in 0i64..2_000,
            splits in proptest::collection::vec(1u32..4, 1..12),
            goodwill in proptest::option::of(1i64..50_000),
            admin_shipping in any::<bool>(),
        ) {
            // A discount share never exceeds its line's price.
            let lines: Vec<_> = lines
                .into_iter()
                .map(|(u, q, d, t)| (u, q, d.min(u * i64::from(q)), t))
                .collect();
            let mut o = delivered(currency, &lines, shipping);
            let charge = o.total.amount();
            if let Some(g) = goodwill {
                if let Ok(Granted::New(change)) = o.grant_refund(&RefundRequest {
                    id: uuid::Uuid::now_v7(),
                    amount: money(g.min(charge).max(1), o.total.currency()),
                    reason: "goodwill".into(),
                    client_key: None,
                }) {
                    o = stored(&o, &change);
                }
            }
            // Return the units in random bites until none is left.
            let mut bites = splits.into_iter().cycle();
            let mut first = true;
            loop {
                let mut ask_lines = Vec::new();
                for l in &o.lines {
                    let left = l.quantity - o.returned(l.product_id, ReturnStatus::holds_units);
                    let bite = bites.next().unwrap_or(1).min(left);
                    if bite > 0 {
                        ask_lines.push((l.product_id, bite));
                    }
                }
                if ask_lines.is_empty() {
                    break;
                }
                let (after, _) = full_cycle(&o, ask_lines, admin_shipping && first);
                first = false;
                o = after;
                let granted: i64 = o.refunds().map(|r| r.amount.amount()).sum();
                prop_assert!(granted <= charge);
            }
            let granted: i64 = o.refunds().map(|r| r.amount.amount()).sum();
            if goodwill.is_none() {
                prop_assert_eq!(granted, charge);
            } else {
                prop_assert!(granted <= charge);
            }
        }
    }
}

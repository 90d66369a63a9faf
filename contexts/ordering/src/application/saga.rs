//! The checkout saga, ordering's side: a persisted state machine driven by catalog and
//! shipping events (through the inbox), the payment step behind the gateway port, the
//! compensations, and a sweeper that gives every waiting state a timeout.
//!
//! ```text
//! pending --stock_reserved--> stock_reserved --charge ok--> paid --shipment_created--> confirmed
//!    |                             |                          |                          |
//!    +--stock_rejected/expired--> cancelled <--declined/unavailable, customer cancel-----+
//! confirmed --dispatched--> shipped --delivered--> delivered
//! ```

use std::sync::Arc;
use std::time::Duration;

use bus::{Causation, Consumer, DeliveryMode, HandlesOnce, RetryPolicy, UnitOfWork, Units};
use catalog_contracts::{ReleaseReason, StockRejected, StockReleased, StockReserved};
use kernel::id::OrderId;
use kernel::{Clock, Timestamp};
use shipping_contracts::{
    ReturnLabelCreated, ShipmentCancelled, ShipmentCreated, ShipmentDelivered, ShipmentDispatched,
};

use super::ports::{Applied, Decide, GatewayError, OrderRepository, PaymentGateway};
use super::OrderingError;
use crate::domain::{
    retry_delay, ChargeRetry, Granted, Lifecycle, Order, OrderStatus, Payment, RefundRequest,
};

pub(crate) const GROUP: &str = "ordering.saga";

/// The saga hears catalog's answers about stock and shipping's about the parcel.
pub(crate) fn consumer() -> Consumer<Saga> {
    Consumer::new(GROUP, DeliveryMode::Competing)
        .once::<StockReserved>()
        .once::<StockRejected>()
        .once::<StockReleased>()
        // What shipping says only changes the order, in the unit it is given: several
        // of these may share one unit. The stock answers lead to the payment gateway.
        .once_in_batches::<ShipmentCreated>()
        .once_in_batches::<ShipmentDispatched>()
        .once_in_batches::<ShipmentDelivered>()
        .once_in_batches::<ShipmentCancelled>()
        .once_in_batches::<ReturnLabelCreated>()
}

#[derive(Debug, Clone)]
pub(crate) struct Timeouts {
    /// Waiting for catalog's answer before asking again.
    pub(crate) stock: Duration,
    /// Giving up on a reservation that never came (then `reservation_expired`).
    pub(crate) stock_give_up: Duration,
    /// A payment left pending (a crash mid-call) is retried after this.
    pub(crate) payment: Duration,
    /// Waiting for the shipment before announcing the payment again.
    pub(crate) shipment: Duration,
    /// How long an unreachable gateway is retried (with backoff) before the order is
    /// cancelled `payment_unavailable`; below the reservation TTL.
    pub(crate) payment_give_up: Duration,
}

pub(crate) struct Saga {
    pub(crate) orders: Arc<dyn OrderRepository>,
    pub(crate) gateway: Arc<dyn PaymentGateway>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) units: Arc<dyn Units>,
    pub(crate) timeouts: Timeouts,
    pub(crate) gateway_retry: RetryPolicy,
}

impl Saga {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Applies a decision in `work`, with the events the order announces for it.
    async fn apply(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        decide: Decide<'_>,
    ) -> anyhow::Result<Applied> {
        let applied = self.orders.apply(work, order, decide).await?;
        if let Applied::Changed(o) = &applied {
            tracing::info!(order_id = %o.id, status = o.status.as_str(), "order updated");
        }
        Ok(applied)
    }

    /// Applies a decision in a unit of work of its own, committed before it returns.
    pub(super) async fn apply_now(
        &self,
        order: OrderId,
        cause: &Causation,
        decide: Decide<'_>,
    ) -> anyhow::Result<Applied> {
        let mut work = self.units.begin(cause.clone()).await?;
        let applied = self.apply(&mut work, order, decide).await?;
        work.commit().await?;
        Ok(applied)
    }

    async fn on_stock_reserved(
        &self,
        event: StockReserved,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        let deadline = self.now().plus(self.timeouts.payment);
        let order_id = event.order_id;
        let decide = move |o: &Order| o.reserve_stock(deadline);
        let applied = self.apply(work, order_id, &decide).await?;
        // The gateway is called outside the transaction: the reservation is recorded first.
        work.commit().await?;
        if let Applied::Changed(reserved) = applied {
            // What this unit committed: no need to read it back.
            self.process_payment(order_id, work.cause(), Some(*reserved))
                .await?;
        }
        Ok(())
    }

    /// Authorises the order's pending charge (with retries for transient failures) and moves
    /// the order on. Safe to run again at any point: the gateway key makes it one charge.
    /// `known` is the order as the caller has just committed it; `None` reads it.
    pub(crate) async fn process_payment(
        &self,
        order_id: OrderId,
        cause: &Causation,
        known: Option<Order>,
    ) -> anyhow::Result<()> {
        let order = match known {
            Some(order) => order,
            None => match self.orders.get(order_id).await? {
                Some(order) => order,
                None => return Ok(()),
            },
        };
        let Some(charge) = order.pending_charge().cloned() else {
            return Ok(());
        };
        if !order.awaits_charge() {
            // Cancelled before the gateway was asked: close the charge without calling it.
            let decide = move |o: &Order| o.close_unsent_charge(&charge);
            self.apply_now(order_id, cause, &decide).await?;
            return Ok(());
        }
        let max = self.gateway_retry.max_attempts.max(1);
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match self
                .gateway
                .authorize(&charge.idempotency_key, &order.payment_token, charge.amount)
                .await
            {
                Err(GatewayError::Unavailable(e)) if attempt < max => {
                    tracing::warn!(order_id = %order_id, attempt, error = %e, "payment gateway unavailable, retrying");
                    tokio::time::sleep(self.gateway_retry.backoff(attempt)).await;
                }
                other => break other,
            }
        };
        let attempts = charge.attempts + i64::from(attempt);
        let now = self.now();
        let shipment_deadline = now.plus(self.timeouts.shipment);
        // An unreachable gateway is asked again later (the sweeper, with backoff) until the
        // give-up time; only then does the order end `payment_unavailable`.
        let give_up_at = charge.created_at.plus(self.timeouts.payment_give_up);
        let rounds = attempts / i64::from(max);
        let retry = ChargeRetry {
            at: now.plus(retry_delay(rounds)).min(give_up_at),
            keep_trying: now < give_up_at,
        };
        let decide =
            move |o: &Order| o.record_charge(&charge, &outcome, attempts, retry, shipment_deadline);
        let applied = self.apply_now(order_id, cause, &decide).await?;
        // Cancelled while the gateway was asked: the authorisation is given back now. Any
        // later cancellation refunds through its own path (customer, stock, sweeper).
        match applied {
            Applied::Changed(o) | Applied::Unchanged(o) if !o.refund_outstanding() => Ok(()),
            Applied::Missing => Ok(()),
            _ => self.process_refund(order_id, cause).await,
        }
    }

    /// Creates the refund a cancelled order owes (what remains of its charge, exactly once)
    /// and sends every refund of the order still pending, each under its own gateway key.
    /// A refund the gateway does not take stays pending for the sweeper.
    pub(crate) async fn process_refund(
        &self,
        order_id: OrderId,
        cause: &Causation,
    ) -> anyhow::Result<()> {
        let decide = |o: &Order| o.start_refund();
        self.apply_now(order_id, cause, &decide).await?;
        // Read from the tables: the charge's reference as stored is what the gateway knows.
        let Some(order) = self.orders.get(order_id).await? else {
            return Ok(());
        };
        let Some(charge) = order.authorized_charge().cloned() else {
            return Ok(());
        };
        let reference = charge.gateway_reference.clone().unwrap_or_default();
        for refund in order.pending_refunds().cloned().collect::<Vec<_>>() {
            self.send_refund(order_id, &reference, refund, cause)
                .await?;
        }
        Ok(())
    }

    async fn send_refund(
        &self,
        order_id: OrderId,
        reference: &str,
        refund: Payment,
        cause: &Causation,
    ) -> anyhow::Result<()> {
        let max = self.gateway_retry.max_attempts.max(1);
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match self
                .gateway
                .refund(&refund.idempotency_key, reference, refund.amount)
                .await
            {
                Err(GatewayError::Unavailable(_)) if attempt < max => {
                    tokio::time::sleep(self.gateway_retry.backoff(attempt)).await
                }
                other => break other,
            }
        };
        let attempts = refund.attempts + i64::from(attempt);
        if let Err(GatewayError::Unavailable(e) | GatewayError::Declined(e)) = &outcome {
            let kind = if matches!(outcome, Err(GatewayError::Declined(_))) {
                "declined"
            } else {
                "unavailable"
            };
            metrics::counter!("emporium_refund_failures_total", "outcome" => kind).increment(1);
            tracing::warn!(order_id = %order_id, attempts, error = %e, outcome = kind, "refund failed; tried again later");
        }
        let decide = move |o: &Order| o.record_refund(&refund, &outcome, attempts);
        self.apply_now(order_id, cause, &decide).await?;
        Ok(())
    }

    /// Grants an admin's refund of part (or the rest) of an order's charge and sends it.
    /// Concurrent grants are decided one after the other on the stored order, so together
    /// they never exceed the charge.
    pub(crate) async fn grant_refund(
        &self,
        order_id: OrderId,
        request: RefundRequest,
        cause: &Causation,
    ) -> Result<(Order, uuid::Uuid), OrderingError> {
        let decide = |o: &Order| match o.grant_refund(&request) {
            Ok(Granted::New(change)) => Some(*change),
            _ => None,
        };
        let refund_id = match self.apply_now(order_id, cause, &decide).await? {
            Applied::Changed(_) => request.id,
            Applied::Unchanged(order) => match order.grant_refund(&request) {
                Ok(Granted::Replayed(id)) => id,
                Err(e) => return Err(OrderingError::Refund(e)),
                // Granted on the stored order but not stored: the state machine refused.
                Ok(Granted::New(_)) => {
                    return Err(OrderingError::Unexpected(anyhow::anyhow!(
                        "refund of order {order_id} was decided but not stored"
                    )))
                }
            },
            Applied::Missing => return Err(OrderingError::OrderNotFound),
        };
        self.process_refund(order_id, cause).await?;
        let order = self
            .orders
            .get(order_id)
            .await?
            .ok_or(OrderingError::OrderNotFound)?;
        Ok((order, refund_id))
    }

    pub(crate) async fn cancel_by_customer(
        &self,
        order_id: OrderId,
        cause: &Causation,
    ) -> Result<Order, OrderingError> {
        let decide = |o: &Order| o.cancel_for_customer().ok();
        match self.apply_now(order_id, cause, &decide).await? {
            Applied::Changed(order) => {
                self.process_refund(order_id, cause).await?;
                let order = self.orders.get(order_id).await?.unwrap_or(*order);
                Ok(order)
            }
            Applied::Unchanged(order) => Err(OrderingError::CannotCancel(
                order
                    .check_customer_cancel()
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "the order cannot be cancelled now".to_owned()),
            )),
            Applied::Missing => Err(OrderingError::OrderNotFound),
        }
    }

    /// One pass over orders whose waiting state timed out, and refunds still owed. An order
    /// that fails is logged and skipped, so one bad order never holds up the others; the
    /// pass reports how many failed.
    pub(crate) async fn sweep(&self) -> anyhow::Result<()> {
        let now = self.now();
        let mut failed = 0usize;
        let due = self.orders.due(now, 100).await?;
        // Each is handled now; one that stays overdue pass after pass is stuck (an alert).
        metrics::gauge!("emporium_orders_overdue").set(due.len() as f64);
        for order_id in due {
            if let Err(e) = self.sweep_order(order_id, now).await {
                failed += 1;
                tracing::warn!(order_id = %order_id, error = %format!("{e:#}"), "saga sweep: order skipped");
            }
        }
        // A charge left pending on an order cancelled meanwhile is closed without calling
        // the gateway (the order is not charged), once no call for it can still be running.
        let quiet = self
            .gateway_retry
            .max_backoff
            .saturating_mul(self.gateway_retry.max_attempts)
            + Duration::from_secs(5);
        for order_id in self.orders.stale_charges(now.minus(quiet), 50).await? {
            if let Err(e) = self
                .process_payment(order_id, &Causation::system(), None)
                .await
            {
                failed += 1;
                tracing::warn!(order_id = %order_id, error = %format!("{e:#}"), "saga sweep: charge skipped");
            }
        }
        for order_id in self.orders.refunds_due(now, 50).await? {
            if let Err(e) = self.process_refund(order_id, &Causation::system()).await {
                failed += 1;
                tracing::warn!(order_id = %order_id, error = %format!("{e:#}"), "saga sweep: refund skipped");
            }
        }
        if failed > 0 {
            anyhow::bail!("{failed} orders could not be swept this pass");
        }
        Ok(())
    }

    async fn sweep_order(&self, order_id: OrderId, now: Timestamp) -> anyhow::Result<()> {
        let Some(order) = self.orders.get(order_id).await? else {
            return Ok(());
        };
        let cause = Causation::system();
        match order.status {
            OrderStatus::Pending if now > order.placed_at.plus(self.timeouts.stock_give_up) => {
                let decide = |o: &Order| o.give_up_reservation();
                self.apply_now(order_id, &cause, &decide).await?;
            }
            OrderStatus::Pending => self.announce_again(&order, true).await?,
            OrderStatus::StockReserved => {
                let deadline = now.plus(self.timeouts.payment);
                let decide = move |o: &Order| o.wait_for_payment_until(deadline);
                self.apply_now(order_id, &cause, &decide).await?;
                self.process_payment(order_id, &cause, None).await?;
            }
            OrderStatus::Paid => self.announce_again(&order, false).await?,
            _ => {
                let decide = |o: &Order| o.stop_waiting();
                self.apply_now(order_id, &cause, &decide).await?;
            }
        }
        Ok(())
    }

    /// Publishes `order_placed` (or `order_paid`) again after a timeout: consumers dedupe by
    /// order, so a lost or slow first message costs nothing.
    async fn announce_again(&self, order: &Order, placed: bool) -> anyhow::Result<()> {
        let status = order.status;
        let wait = if placed {
            self.timeouts.stock
        } else {
            self.timeouts.shipment
        };
        let deadline = self.now().plus(wait);
        let decide = move |o: &Order| o.announce_again(status, deadline);
        let mut work = self.units.begin(Causation::system()).await?;
        let applied = self.orders.apply(&mut work, order.id, &decide).await?;
        work.commit().await?;
        if let Applied::Changed(_) = applied {
            tracing::warn!(order_id = %order.id, status = status.as_str(), "waiting state timed out; announced again");
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl HandlesOnce<StockReserved> for Saga {
    async fn handle_once(&self, e: StockReserved, work: &mut UnitOfWork) -> anyhow::Result<()> {
        self.on_stock_reserved(e, work).await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<StockRejected> for Saga {
    async fn handle_once(&self, e: StockRejected, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let decide = |o: &Order| o.reject_stock();
        self.apply(work, e.order_id, &decide).await?;
        // The refund calls the gateway, outside the transaction.
        work.commit().await?;
        self.process_refund(e.order_id, work.cause()).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl HandlesOnce<StockReleased> for Saga {
    async fn handle_once(&self, e: StockReleased, work: &mut UnitOfWork) -> anyhow::Result<()> {
        if e.reason == ReleaseReason::ReservationExpired {
            let decide = |o: &Order| o.lose_reservation();
            self.apply(work, e.order_id, &decide).await?;
            work.commit().await?;
            self.process_refund(e.order_id, work.cause()).await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ShipmentCreated> for Saga {
    async fn handle_once(&self, e: ShipmentCreated, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let decide = move |o: &Order| o.confirm_shipment(e.shipment_id, &e.tracking_number);
        let was_confirmable = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = was_confirmable.clone();
        let decide_and_note = move |o: &Order| {
            seen.store(
                o.status.may_move_to(OrderStatus::Confirmed),
                std::sync::atomic::Ordering::Relaxed,
            );
            decide(o)
        };
        if let Applied::Changed(o) = self.apply(work, e.order_id, &decide_and_note).await? {
            if o.status == OrderStatus::Confirmed
                && was_confirmable.load(std::sync::atomic::Ordering::Relaxed)
            {
                // The saga's latency, from checkout to confirmation, counted once the
                // confirmation has committed (a batch rolled back is handled again).
                let elapsed = self
                    .now()
                    .as_micros()
                    .saturating_sub(o.placed_at.as_micros());
                work.after_commit(move || {
                    metrics::histogram!("emporium_checkout_to_confirmed_seconds")
                        .record(elapsed as f64 / 1e6);
                });
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ShipmentDispatched> for Saga {
    async fn handle_once(
        &self,
        e: ShipmentDispatched,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        let decide = |o: &Order| o.mark_shipped();
        self.apply(work, e.order_id, &decide).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ShipmentDelivered> for Saga {
    async fn handle_once(&self, e: ShipmentDelivered, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let decide = |o: &Order| o.mark_delivered();
        self.apply(work, e.order_id, &decide).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ReturnLabelCreated> for Saga {
    async fn handle_once(
        &self,
        e: ReturnLabelCreated,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        let Ok(return_id) = uuid::Uuid::parse_str(&e.return_id) else {
            tracing::warn!(order_id = %e.order_id, return_id = %e.return_id, "return label for a malformed return id; ignored");
            return Ok(());
        };
        let decide = move |o: &Order| o.label_return(return_id, &e.tracking_number);
        self.apply(work, e.order_id, &decide).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ShipmentCancelled> for Saga {
    async fn handle_once(&self, e: ShipmentCancelled, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let decide = |o: &Order| o.note_shipment_cancelled();
        self.apply(work, e.order_id, &decide).await?;
        Ok(())
    }
}

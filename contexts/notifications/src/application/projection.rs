//! What notifications hears: customers from identity, orders from ordering, shipments from
//! shipping. Each fact that deserves a message queues one, at most once per kind and subject.

use std::sync::Arc;

use bus::{Consumer, DeliveryMode, HandlesOnce, UnitOfWork};
use identity_contracts::{
    EmailVerificationRequested, PasswordResetRequested, ProfileChanged, UserRegistered,
    VerificationPurpose,
};
use kernel::id::UserId;
use kernel::Clock;
use ordering_contracts::{
    CancellationReason, GuestCheckedOut, OrderCancelled, OrderPlaced, OrderRefunded, OrderStatus,
    OrderStatusChanged, ReturnApproved, ReturnReceived, ReturnRejected, ReturnRequested,
    ReturnedLine,
};
use serde_json::json;
use shipping_contracts::{
    ReturnLabelCreated, ShipmentCreated, ShipmentDelivered, ShipmentDispatched,
};
use tokio::sync::Notify;

use super::ports::{Deliveries, OrderSummary, Projections, ShipmentSummary};
use crate::domain::{format_amount, Customer, Delivery, MessageKind};

pub(crate) const GROUP: &str = "notifications.messages";

/// Every event notifications hears, in one consumer group.
pub(crate) fn consumer() -> Consumer<Projection> {
    Consumer::new(GROUP, DeliveryMode::Competing)
        .in_batches()
        .once::<UserRegistered>()
        .once::<ProfileChanged>()
        .once::<PasswordResetRequested>()
        .once::<EmailVerificationRequested>()
        .once::<OrderPlaced>()
        .once::<GuestCheckedOut>()
        .once::<OrderStatusChanged>()
        .once::<OrderCancelled>()
        .once::<OrderRefunded>()
        .once::<ReturnRequested>()
        .once::<ReturnApproved>()
        .once::<ReturnRejected>()
        .once::<ReturnReceived>()
        .once::<ReturnLabelCreated>()
        .once::<ShipmentCreated>()
        .once::<ShipmentDispatched>()
        .once::<ShipmentDelivered>()
}

pub(crate) struct Projection {
    pub(crate) projections: Arc<dyn Projections>,
    pub(crate) deliveries: Arc<dyn Deliveries>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Woken when a unit that queued a message commits.
    pub(crate) wake: Arc<Notify>,
    /// Where customers follow a shipment (`…/api/v1/shipping/tracking/{number}`).
    pub(crate) public_url: String,
}

impl Projection {
    /// Queues one message of `kind` about `subject` for `customer`, when they want it.
    async fn queue(
        &self,
        work: &mut UnitOfWork,
        customer: UserId,
        kind: MessageKind,
        subject: &str,
        data: serde_json::Value,
    ) -> anyhow::Result<()> {
        if !kind.always_sent()
            && !kind.wanted_by(&self.projections.preferences_in(work, customer).await?)
        {
            tracing::debug!(%customer, kind = kind.as_str(), "not wanted; nothing queued");
            return Ok(());
        }
        let delivery = Delivery::queued(customer, kind, data, self.clock.now());
        if self
            .deliveries
            .enqueue(work, &kind.dedup_key(subject), &delivery)
            .await?
        {
            let wake = self.wake.clone();
            work.after_commit(move || wake.notify_one());
        }
        Ok(())
    }

    fn tracking_url(&self, number: &str) -> String {
        format!(
            "{}/api/v1/shipping/tracking/{number}",
            self.public_url.trim_end_matches('/')
        )
    }
}

fn reason_text(reason: CancellationReason) -> &'static str {
    match reason {
        CancellationReason::OutOfStock => "an item in it is out of stock",
        CancellationReason::PaymentDeclined => "the payment was declined",
        CancellationReason::PaymentUnavailable => "the payment could not be taken",
        CancellationReason::CustomerCancelled => "you cancelled it",
        CancellationReason::ReservationExpired => "the items could not be held in time",
    }
}

#[async_trait::async_trait]
impl HandlesOnce<UserRegistered> for Projection {
    async fn handle_once(&self, e: UserRegistered, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let customer = Customer {
            id: e.user_id,
            email: e.email,
            name: e.name,
            as_of: e.registered_at,
        };
        self.projections.save_customer(work, &customer).await?;
        let subject = e.user_id.to_string();
        self.queue(work, e.user_id, MessageKind::Welcome, &subject, json!({}))
            .await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ProfileChanged> for Projection {
    /// A proved change of address is told to the address the account had: its owner learns
    /// of a move they did not make.
    async fn handle_once(&self, e: ProfileChanged, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let customer = Customer {
            id: e.user_id,
            email: e.email.clone(),
            name: e.name,
            as_of: e.changed_at,
        };
        self.projections.save_customer(work, &customer).await?;
        let Some(previous) = e.previous_email.filter(|p| *p != e.email) else {
            return Ok(());
        };
        let data = json!({
            "email": e.email,
            "previous_email": previous,
            "send_to": previous,
        });
        let subject = format!("{}:{}", e.user_id, e.changed_at.as_micros());
        self.queue(work, e.user_id, MessageKind::EmailChanged, &subject, data)
            .await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<PasswordResetRequested> for Projection {
    /// The link is a page of the shop (`EMPORIUM_PUBLIC_URL/reset-password`) that sends the
    /// token and the new password to `POST /api/v1/identity/password-resets/confirm`.
    async fn handle_once(
        &self,
        e: PasswordResetRequested,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        let customer = Customer {
            id: e.user_id,
            email: e.email,
            name: e.name,
            as_of: e.requested_at,
        };
        self.projections.save_customer(work, &customer).await?;
        let minutes = (e.expires_at.as_micros() - e.requested_at.as_micros()) / 60_000_000;
        let data = json!({
            "reset_url": format!(
                "{}/reset-password?token={}",
                self.public_url.trim_end_matches('/'),
                e.reset_token
            ),
            "expires_in_minutes": minutes.max(1),
        });
        self.queue(
            work,
            e.user_id,
            MessageKind::PasswordReset,
            &e.reset_id,
            data,
        )
        .await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<EmailVerificationRequested> for Projection {
    /// The link is a page of the shop (`EMPORIUM_PUBLIC_URL/verify-email`) that sends the
    /// token to `POST /api/v1/identity/email-verifications/confirm`. It goes to the address
    /// to verify (`send_to`), which for a change is not yet the customer's.
    async fn handle_once(
        &self,
        e: EmailVerificationRequested,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        let hours = (e.expires_at.as_micros() - e.requested_at.as_micros()) / 3_600_000_000;
        let data = json!({
            "verify_url": format!(
                "{}/verify-email?token={}",
                self.public_url.trim_end_matches('/'),
                e.verification_token
            ),
            "expires_in_hours": hours.max(1),
            "email": e.email,
            "send_to": e.email,
            "change": e.purpose == VerificationPurpose::EmailChange,
        });
        self.queue(
            work,
            e.user_id,
            MessageKind::VerifyEmail,
            &e.verification_id,
            data,
        )
        .await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<OrderPlaced> for Projection {
    async fn handle_once(&self, e: OrderPlaced, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let currency = e.total.currency();
        let lines: Vec<serde_json::Value> = e
            .lines
            .iter()
            .map(|l| {
                let amount = l.unit_price.amount().saturating_mul(i64::from(l.quantity));
                json!({
                    "name": l.name,
                    "sku": l.sku,
                    "quantity": l.quantity,
                    "unit_price": format_amount(l.unit_price.amount(), currency.as_str()),
                    "amount": format_amount(amount, currency.as_str()),
                })
            })
            .collect();
        let summary = OrderSummary {
            order_id: e.order_id,
            customer_id: e.customer_id,
            lines: serde_json::Value::Array(lines),
            total_amount: e.total.amount(),
            currency: currency.as_str().to_owned(),
        };
        self.projections.save_order(work, &summary).await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<GuestCheckedOut> for Projection {
    /// A guest is a customer notifications mails at the address given at checkout; the
    /// confirmation links to `EMPORIUM_PUBLIC_URL/orders/{id}?token=`, a page of the shop
    /// that reads the order with `X-Order-Token`.
    async fn handle_once(&self, e: GuestCheckedOut, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let guest = Customer {
            id: e.guest_id,
            email: e.email,
            name: e.name,
            as_of: e.placed_at,
        };
        self.projections.save_customer(work, &guest).await?;
        let url = format!(
            "{}/orders/{}?token={}",
            self.public_url.trim_end_matches('/'),
            e.order_id,
            e.order_token
        );
        self.projections
            .save_order_link(work, e.order_id, e.guest_id, &url)
            .await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<OrderStatusChanged> for Projection {
    async fn handle_once(
        &self,
        e: OrderStatusChanged,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        if e.status != OrderStatus::Confirmed {
            return Ok(());
        }
        // The lines come from the order's own placement, and only when it is this
        // customer's order: nothing of one customer's order reaches another.
        let lines = match self.projections.order(work, e.order_id).await? {
            Some(order) if order.customer_id == e.customer_id => order.lines,
            _ => json!([]),
        };
        let order_url = self
            .projections
            .order_link(work, e.order_id, e.customer_id)
            .await?;
        let data = json!({
            "order_id": e.order_id.to_string(),
            "lines": lines,
            "total": format_amount(e.total.amount(), e.total.currency().as_str()),
            "order_url": order_url,
        });
        let subject = e.order_id.to_string();
        self.queue(
            work,
            e.customer_id,
            MessageKind::OrderConfirmed,
            &subject,
            data,
        )
        .await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<OrderCancelled> for Projection {
    async fn handle_once(&self, e: OrderCancelled, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let data = json!({
            "order_id": e.order_id.to_string(),
            "reason": reason_text(e.reason),
            "refunded": e.refunded,
        });
        let subject = e.order_id.to_string();
        self.queue(
            work,
            e.customer_id,
            MessageKind::OrderCancelled,
            &subject,
            data,
        )
        .await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<OrderRefunded> for Projection {
    /// One mail per refund (its id is the message's subject).
    async fn handle_once(&self, e: OrderRefunded, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let money = |m: kernel::Money| format_amount(m.amount(), m.currency().as_str());
        let data = json!({
            "order_id": e.order_id.to_string(),
            "amount": money(e.amount),
            "total_refunded": money(e.total_refunded),
            "charged": money(e.charged),
            "reason": e.reason,
        });
        self.queue(
            work,
            e.customer_id,
            MessageKind::RefundIssued,
            &e.refund_id,
            data,
        )
        .await
    }
}

fn returned(lines: &[ReturnedLine]) -> serde_json::Value {
    lines
        .iter()
        .map(|l| json!({"name": l.name, "sku": l.sku, "quantity": l.quantity}))
        .collect()
}

impl Projection {
    /// One mail per step of a return.
    async fn return_update(
        &self,
        work: &mut UnitOfWork,
        customer: kernel::id::UserId,
        return_id: &str,
        step: &str,
        mut data: serde_json::Value,
    ) -> anyhow::Result<()> {
        data["step"] = json!(step);
        let subject = format!("{return_id}:{step}");
        self.queue(work, customer, MessageKind::ReturnUpdate, &subject, data)
            .await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ReturnRequested> for Projection {
    async fn handle_once(&self, e: ReturnRequested, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let data = json!({"order_id": e.order_id.to_string(), "lines": returned(&e.lines)});
        self.return_update(work, e.customer_id, &e.return_id, "requested", data)
            .await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ReturnApproved> for Projection {
    async fn handle_once(&self, e: ReturnApproved, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let data = json!({"order_id": e.order_id.to_string(), "lines": returned(&e.lines)});
        self.return_update(work, e.customer_id, &e.return_id, "approved", data)
            .await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ReturnLabelCreated> for Projection {
    async fn handle_once(
        &self,
        e: ReturnLabelCreated,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        let data = json!({
            "order_id": e.order_id.to_string(),
            "carrier": e.carrier,
            "tracking_number": e.tracking_number,
        });
        self.return_update(work, e.customer_id, &e.return_id, "label", data)
            .await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ReturnRejected> for Projection {
    async fn handle_once(&self, e: ReturnRejected, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let data = json!({"order_id": e.order_id.to_string(), "note": e.note});
        self.return_update(work, e.customer_id, &e.return_id, "rejected", data)
            .await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ReturnReceived> for Projection {
    async fn handle_once(&self, e: ReturnReceived, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let refund = (e.refund.amount() > 0)
            .then(|| format_amount(e.refund.amount(), e.refund.currency().as_str()));
        let data = json!({"order_id": e.order_id.to_string(), "refund": refund, "lines": returned(&e.lines)});
        self.return_update(work, e.customer_id, &e.return_id, "received", data)
            .await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ShipmentCreated> for Projection {
    async fn handle_once(&self, e: ShipmentCreated, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let summary = ShipmentSummary {
            shipment_id: e.shipment_id,
            order_id: e.order_id,
            carrier: e.carrier,
            tracking_number: e.tracking_number,
        };
        self.projections.save_shipment(work, &summary).await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ShipmentDispatched> for Projection {
    async fn handle_once(
        &self,
        e: ShipmentDispatched,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        let carrier = self
            .projections
            .shipment(work, e.shipment_id)
            .await?
            .map(|s| s.carrier);
        let data = json!({
            "order_id": e.order_id.to_string(),
            "carrier": carrier,
            "tracking_number": e.tracking_number,
            "tracking_url": self.tracking_url(&e.tracking_number),
        });
        let subject = e.shipment_id.to_string();
        self.queue(
            work,
            e.customer_id,
            MessageKind::ShipmentDispatched,
            &subject,
            data,
        )
        .await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ShipmentDelivered> for Projection {
    async fn handle_once(&self, e: ShipmentDelivered, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let data = json!({
            "order_id": e.order_id.to_string(),
            "tracking_number": e.tracking_number,
            "tracking_url": self.tracking_url(&e.tracking_number),
        });
        let subject = e.shipment_id.to_string();
        self.queue(
            work,
            e.customer_id,
            MessageKind::ShipmentDelivered,
            &subject,
            data,
        )
        .await
    }
}

//! Shipments: created when an order is paid, moved by carrier updates, cancelled with the
//! order while they have not left.

use std::sync::Arc;

use bus::{Causation, Consumer, DeliveryMode, HandlesOnce, Store, UnitOfWork};
use kernel::id::{OrderId, ShipmentId};
use kernel::{Clock, FieldError, Timestamp};
use ordering_contracts::{OrderCancelled, OrderPaid, ReturnApproved};
use platform::auth::AuthUser;
use platform::pagination::{Page, PageRequest};
use rand::Rng;
use shipping_contracts::{ReturnLabelCreated, ShippedLine};

use super::ports::{CancelOutcome, CreateOutcome, RecordError, Shipment, ShipmentRepository};
use super::ShippingError;
use crate::domain::{CarrierEvent, ShipmentEvent, ShipmentStatus, TrackingNumber};

pub(crate) const GROUP: &str = "shipping.shipments";

/// A paid order gets a shipment; a cancelled one loses it.
pub(crate) fn consumer() -> Consumer<Shipments> {
    Consumer::new(GROUP, DeliveryMode::Competing)
        .in_batches()
        .once::<OrderPaid>()
        .once::<OrderCancelled>()
        .once::<ReturnApproved>()
}

pub(crate) struct Shipments {
    pub(crate) repo: Arc<dyn ShipmentRepository>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: Store,
    pub(crate) carriers: Vec<String>,
}

/// Publishes what the shipment announces at its status, when the unit commits.
fn announce(work: &mut UnitOfWork, shipment: &Shipment, now: Timestamp) -> anyhow::Result<()> {
    match shipment.announcement() {
        Some(ShipmentEvent::Created(e)) => work.publish(&e, now),
        Some(ShipmentEvent::Dispatched(e)) => work.publish(&e, now),
        Some(ShipmentEvent::Delivered(e)) => work.publish(&e, now),
        Some(ShipmentEvent::Cancelled(e)) => work.publish(&e, now),
        None => Ok(()),
    }
}

impl Shipments {
    fn carrier_for(&self, order: OrderId) -> String {
        let n = order.as_uuid().as_u128() as usize;
        self.carriers
            .get(n % self.carriers.len().max(1))
            .cloned()
            .unwrap_or_else(|| "EMP".to_owned())
    }

    pub(crate) async fn record_carrier_event(
        &self,
        id: ShipmentId,
        event: CarrierEvent,
        location: Option<String>,
        occurred_at: Option<Timestamp>,
        cause: &Causation,
    ) -> Result<Shipment, ShippingError> {
        let now = self.clock.now();
        let occurred_at = occurred_at.unwrap_or(now);
        if occurred_at > now.plus(std::time::Duration::from_secs(300)) {
            return Err(ShippingError::Invalid(vec![FieldError::new(
                "occurred_at",
                "must not be in the future",
            )]));
        }
        let location = location
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty());
        if location
            .as_ref()
            .is_some_and(|l| l.chars().count() > 200 || l.chars().any(char::is_control))
        {
            return Err(ShippingError::Invalid(vec![FieldError::new(
                "location",
                "must be at most 200 characters without control characters",
            )]));
        }
        let mut work = self.store.begin(cause.clone()).await?;
        let shipment = self
            .repo
            .record(&mut work, id, event, location.as_deref(), occurred_at)
            .await
            .map_err(|e| match e {
                RecordError::NotFound => ShippingError::NotFound,
                RecordError::Transition(t) => ShippingError::Transition(t),
                RecordError::Unexpected(e) => ShippingError::Unexpected(e),
            })?;
        announce(&mut work, &shipment, now)?;
        work.commit().await?;
        Ok(shipment)
    }

    /// A shipment the caller may see: their own, or any for an admin. Others' are "not found".
    pub(crate) async fn get(
        &self,
        caller: &AuthUser,
        id: ShipmentId,
    ) -> Result<Shipment, ShippingError> {
        let shipment = self.repo.get(id).await?.ok_or(ShippingError::NotFound)?;
        if !caller.is_admin() && shipment.customer_id != caller.user_id {
            return Err(ShippingError::NotFound);
        }
        Ok(shipment)
    }

    pub(crate) async fn list(
        &self,
        caller: &AuthUser,
        order: Option<OrderId>,
        page: &PageRequest,
    ) -> Result<Page<Shipment>, ShippingError> {
        let customer = (!caller.is_admin()).then_some(caller.user_id);
        Ok(self.repo.list(customer, order, page).await?)
    }

    pub(crate) async fn track(&self, raw: &str) -> Result<Shipment, ShippingError> {
        let number = TrackingNumber::parse(raw).map_err(|_| ShippingError::NotFound)?;
        self.repo
            .by_tracking_number(number.as_ref())
            .await?
            .ok_or(ShippingError::NotFound)
    }
}

#[async_trait::async_trait]
impl HandlesOnce<OrderPaid> for Shipments {
    async fn handle_once(&self, event: OrderPaid, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let now = self.clock.now();
        let carrier = self.carrier_for(event.order_id);
        let digits: [u8; 10] = std::array::from_fn(|_| rand::thread_rng().gen_range(0..10));
        let shipment = Shipment {
            id: ShipmentId::new(),
            order_id: event.order_id,
            customer_id: event.customer_id,
            tracking_number: TrackingNumber::new(&carrier, digits).as_ref().to_owned(),
            carrier,
            status: ShipmentStatus::Pending,
            address: event.shipping_address,
            lines: event
                .lines
                .iter()
                .map(|l| ShippedLine {
                    product_id: l.product_id,
                    variant_id: l.variant_id,
                    quantity: l.quantity,
                })
                .collect(),
            weight_grams: event.totals.as_ref().map_or(0, |t| t.weight_grams),
            charge: event.totals.as_ref().map(|t| t.shipping),
            created_at: now,
            updated_at: now,
            events: vec![],
        };
        if let CreateOutcome::Created(s) = self.repo.create(work, &shipment).await? {
            tracing::info!(shipment_id = %s.id, order_id = %s.order_id, tracking = %s.tracking_number, "shipment created");
            announce(work, &s, now)?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ReturnApproved> for Shipments {
    /// An approved return gets a prepaid label of the order's carrier, once.
    async fn handle_once(
        &self,
        event: ReturnApproved,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        let carrier = self.carrier_for(event.order_id);
        let digits: [u8; 10] = std::array::from_fn(|_| rand::thread_rng().gen_range(0..10));
        let label = ReturnLabelCreated {
            order_id: event.order_id,
            customer_id: event.customer_id,
            return_id: event.return_id,
            tracking_number: TrackingNumber::new(&carrier, digits).as_ref().to_owned(),
            carrier,
            created_at: now,
        };
        if self.repo.create_return_label(work, &label).await? {
            tracing::info!(order_id = %label.order_id, return_id = %label.return_id, tracking = %label.tracking_number, "return label created");
            work.publish(&label, now)?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl HandlesOnce<OrderCancelled> for Shipments {
    async fn handle_once(
        &self,
        event: OrderCancelled,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        match self
            .repo
            .cancel_for_order(work, event.order_id, now)
            .await?
        {
            CancelOutcome::Cancelled(s) => {
                tracing::info!(shipment_id = %s.id, "shipment cancelled");
                announce(work, &s, now)?;
            }
            CancelOutcome::AlreadyDispatched(s) => {
                // The dispatch won the race. Nothing here pretends otherwise: the shipment stays
                // dispatched and ordering, hearing of the dispatch, flags the order for a return.
                tracing::warn!(shipment_id = %s.id, order_id = %s.order_id, "cancellation arrived after dispatch; shipment not cancelled");
            }
            CancelOutcome::NoShipment => {}
        }
        Ok(())
    }
}

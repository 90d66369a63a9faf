//! Ports: shipment persistence.

use bus::UnitOfWork;
use kernel::id::{OrderId, ShipmentId, UserId};
use kernel::Timestamp;
use platform::pagination::{Page, PageRequest};
use shipping_contracts::ReturnLabelCreated;

use crate::domain::{CarrierEvent, TransitionError};
pub(crate) use crate::domain::{Shipment, TrackingEvent};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CreateOutcome {
    Created(Box<Shipment>),
    /// The order has its shipment already (a duplicate paid event).
    Exists,
    /// The order was cancelled first.
    OrderCancelled,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CancelOutcome {
    Cancelled(Box<Shipment>),
    /// The goods left before the cancellation arrived: nothing is undone.
    AlreadyDispatched(Box<Shipment>),
    /// No shipment yet; a later paid event will create none.
    NoShipment,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    #[error("no such shipment")]
    NotFound,
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[async_trait::async_trait]
pub(crate) trait ShipmentRepository: Send + Sync {
    /// Creates the order's only shipment, once per envelope; a unique order id makes a
    /// second one impossible even under concurrent duplicates.
    async fn create(
        &self,
        work: &mut UnitOfWork,
        shipment: &Shipment,
    ) -> anyhow::Result<CreateOutcome>;
    async fn cancel_for_order(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        now: Timestamp,
    ) -> anyhow::Result<CancelOutcome>;
    /// Applies a carrier event by statement (the status must still be the one read).
    async fn record(
        &self,
        work: &mut UnitOfWork,
        id: ShipmentId,
        event: CarrierEvent,
        location: Option<&str>,
        occurred_at: Timestamp,
    ) -> Result<Shipment, RecordError>;
    /// Keeps the return's label, once per return: `false` when the return had one already.
    async fn create_return_label(
        &self,
        work: &mut UnitOfWork,
        label: &ReturnLabelCreated,
    ) -> anyhow::Result<bool>;
    async fn get(&self, id: ShipmentId) -> anyhow::Result<Option<Shipment>>;
    async fn by_tracking_number(&self, tracking_number: &str) -> anyhow::Result<Option<Shipment>>;
    /// Shipments, newest first; `customer` limits to one customer's.
    async fn list(
        &self,
        customer: Option<UserId>,
        order: Option<OrderId>,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Shipment>>;
}

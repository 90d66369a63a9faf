//! Ports: what notifications keeps (projections, deliveries), how it renders and how it sends.

use bus::UnitOfWork;
use kernel::id::{OrderId, ShipmentId, UserId};
use kernel::Timestamp;
use platform::pagination::{Page, PageRequest};

use crate::domain::{Customer, Delivery, DeliveryStatus, MessageKind, Preferences, Refusal};

/// What an order confirmation lists, kept from `order_placed`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderSummary {
    pub(crate) order_id: OrderId,
    pub(crate) customer_id: UserId,
    /// Lines as the templates show them (`name`, `sku`, `quantity`, `unit_price`, `amount`).
    pub(crate) lines: serde_json::Value,
    pub(crate) total_amount: i64,
    pub(crate) currency: String,
}

/// A shipment's carrier and number, kept from `shipment_created`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShipmentSummary {
    pub(crate) shipment_id: ShipmentId,
    pub(crate) order_id: OrderId,
    pub(crate) carrier: String,
    pub(crate) tracking_number: String,
}

#[async_trait::async_trait]
pub(crate) trait Projections: Send + Sync {
    /// Keeps the newest statement about a customer (`as_of`); an older one changes nothing.
    async fn save_customer(&self, work: &mut UnitOfWork, customer: &Customer)
        -> anyhow::Result<()>;
    async fn save_order(&self, work: &mut UnitOfWork, order: &OrderSummary) -> anyhow::Result<()>;
    async fn order(
        &self,
        work: &mut UnitOfWork,
        id: OrderId,
    ) -> anyhow::Result<Option<OrderSummary>>;
    /// Keeps the link a guest reads `order` with.
    async fn save_order_link(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        customer: UserId,
        url: &str,
    ) -> anyhow::Result<()>;
    /// The link of a guest's order, when `customer` placed it.
    async fn order_link(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        customer: UserId,
    ) -> anyhow::Result<Option<String>>;
    async fn save_shipment(
        &self,
        work: &mut UnitOfWork,
        shipment: &ShipmentSummary,
    ) -> anyhow::Result<()>;
    async fn shipment(
        &self,
        work: &mut UnitOfWork,
        id: ShipmentId,
    ) -> anyhow::Result<Option<ShipmentSummary>>;
    async fn preferences(&self, customer: UserId) -> anyhow::Result<Preferences>;
    /// The same, read in the unit (a handler holds its connection; on SQLite, waiting for
    /// a second one while holding the write lock could stall every handler).
    async fn preferences_in(
        &self,
        work: &mut UnitOfWork,
        customer: UserId,
    ) -> anyhow::Result<Preferences>;
    async fn set_preferences(
        &self,
        customer: UserId,
        preferences: Preferences,
        now: Timestamp,
    ) -> anyhow::Result<()>;
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RetryOutcome {
    Queued(Box<Delivery>),
    /// Only a failed delivery can be retried.
    NotFailed(DeliveryStatus),
    NotFound,
}

/// The delivery queue.
#[async_trait::async_trait]
pub(crate) trait Deliveries: Send + Sync {
    /// Queues the delivery unless one with the same key exists; true when queued.
    async fn enqueue(
        &self,
        work: &mut UnitOfWork,
        dedup_key: &str,
        delivery: &Delivery,
    ) -> anyhow::Result<bool>;
    /// Queued deliveries whose next attempt is due, the longest waiting first, each with its
    /// customer as the projection knows them (none yet: identity's word has not arrived).
    async fn due(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> anyhow::Result<Vec<(Delivery, Option<Customer>)>>;
    /// Takes a due delivery for one attempt: counts it and hides the delivery from other
    /// senders until `lease_until`. False when another sender took it first.
    async fn claim(&self, delivery: &Delivery, lease_until: Timestamp) -> anyhow::Result<bool>;
    /// Records the delivery sent, with what it said; `forget` keeps neither its facts nor its
    /// text (a message that carried a secret), only that it was sent.
    async fn mark_sent(
        &self,
        id: uuid::Uuid,
        message: &Outgoing,
        forget: bool,
        now: Timestamp,
    ) -> anyhow::Result<()>;
    /// Records a refused attempt and when to try again.
    async fn mark_refused(
        &self,
        id: uuid::Uuid,
        refusal: &Refusal,
        recipient: Option<&str>,
        retry_at: Timestamp,
        now: Timestamp,
    ) -> anyhow::Result<()>;
    /// Gives the delivery up (the caller publishes the failure in the same unit).
    async fn mark_failed(
        &self,
        work: &mut UnitOfWork,
        id: uuid::Uuid,
        refusal: &Refusal,
        recipient: Option<&str>,
        now: Timestamp,
    ) -> anyhow::Result<()>;
    async fn get(&self, id: uuid::Uuid) -> anyhow::Result<Option<Delivery>>;
    /// Newest first; `customer` limits to one customer's, `status` to one status.
    async fn list(
        &self,
        customer: Option<UserId>,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Delivery>>;
    /// Queues a failed delivery again, its attempts reset.
    async fn retry(&self, id: uuid::Uuid, now: Timestamp) -> anyhow::Result<RetryOutcome>;
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: String,
}

pub(crate) trait Renderer: Send + Sync {
    fn render(&self, kind: MessageKind, context: &serde_json::Value) -> anyhow::Result<Rendered>;
}

/// One message ready to leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outgoing {
    pub(crate) delivery_id: uuid::Uuid,
    pub(crate) to_email: String,
    pub(crate) to_name: String,
    pub(crate) rendered: Rendered,
}

#[async_trait::async_trait]
pub(crate) trait Sender: Send + Sync {
    async fn send(&self, message: &Outgoing) -> Result<(), Refusal>;
}

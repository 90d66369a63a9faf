//! The customer's order history: a projection of ordering and shipping events.

use std::sync::Arc;

use bus::{Consumer, DeliveryMode, HandlesOnce, UnitOfWork};
use kernel::id::UserId;
use kernel::IntegrationEvent;
use ordering_contracts::{
    CancellationReason, GuestCheckedOut, OrderCancelled, OrderPaid, OrderPlaced, OrderRefunded,
    OrderStatus, OrderStatusChanged,
};
use platform::pagination::{Page, PageRequest};
use shipping_contracts::{ShipmentCreated, ShipmentDelivered, ShipmentDispatched};

use super::ports::{OrderHistoryChange, OrderHistoryRepository, OrderHistoryUpdate};
use crate::domain::OrderHistoryEntry;

pub(crate) const GROUP: &str = "identity.order_history";

/// The customer's view of an order follows what ordering and shipping publish about it.
pub(crate) fn consumer() -> Consumer<OrderHistoryProjection> {
    Consumer::new(GROUP, DeliveryMode::Competing)
        .in_batches()
        .once::<OrderPlaced>()
        .once::<OrderPaid>()
        .once::<OrderCancelled>()
        .once::<OrderStatusChanged>()
        .once::<OrderRefunded>()
        .once::<GuestCheckedOut>()
        .once::<ShipmentCreated>()
        .once::<ShipmentDispatched>()
        .once::<ShipmentDelivered>()
}

fn reason(reason: CancellationReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub(crate) struct OrderHistoryProjection {
    pub(crate) repository: Arc<dyn OrderHistoryRepository>,
}

/// A status line of the history.
fn status(
    order_id: kernel::id::OrderId,
    customer_id: UserId,
    progress: OrderStatus,
    total: kernel::Money,
    placed_at: kernel::Timestamp,
    reason: Option<String>,
    at: kernel::Timestamp,
) -> OrderHistoryUpdate {
    OrderHistoryUpdate::Status(OrderHistoryChange {
        entry: OrderHistoryEntry {
            order_id,
            customer_id,
            status: progress,
            total,
            placed_at,
            cancellation_reason: reason,
            tracking_number: None,
            updated_at: at,
            refunded: kernel::Money::zero(total.currency()),
        },
        progress,
    })
}

/// What an event says about an order, for the history.
pub(crate) trait Projected {
    fn update(self) -> OrderHistoryUpdate;
}

impl Projected for OrderPlaced {
    fn update(self) -> OrderHistoryUpdate {
        let e = self;
        status(
            e.order_id,
            e.customer_id,
            OrderStatus::Pending,
            e.total,
            e.placed_at,
            None,
            e.placed_at,
        )
    }
}

impl Projected for OrderPaid {
    fn update(self) -> OrderHistoryUpdate {
        let e = self;
        // A paid event may arrive before the placed one; placed_at is then the payment time
        // until the status-changed event with the real one arrives.
        status(
            e.order_id,
            e.customer_id,
            OrderStatus::Paid,
            e.total,
            e.paid_at,
            None,
            e.paid_at,
        )
    }
}

impl Projected for OrderStatusChanged {
    fn update(self) -> OrderHistoryUpdate {
        let e = self;
        let mut update = status(
            e.order_id,
            e.customer_id,
            e.status,
            e.total,
            e.placed_at,
            e.cancellation_reason.map(reason),
            e.changed_at,
        );
        if let OrderHistoryUpdate::Status(change) = &mut update {
            change.entry.tracking_number = e.tracking_number;
        }
        update
    }
}

impl Projected for OrderCancelled {
    fn update(self) -> OrderHistoryUpdate {
        OrderHistoryUpdate::Cancelled {
            order_id: self.order_id,
            customer_id: self.customer_id,
            reason: reason(self.reason),
            at: self.cancelled_at,
        }
    }
}

impl Projected for OrderRefunded {
    fn update(self) -> OrderHistoryUpdate {
        OrderHistoryUpdate::Refunded {
            order_id: self.order_id,
            customer_id: self.customer_id,
            total_refunded: self.total_refunded,
            at: self.refunded_at,
        }
    }
}

impl Projected for GuestCheckedOut {
    /// The order token is not kept: identity only needs whose address it was.
    fn update(self) -> OrderHistoryUpdate {
        OrderHistoryUpdate::Guest {
            order_id: self.order_id,
            guest_id: self.guest_id,
            email: self.email,
        }
    }
}

impl Projected for ShipmentCreated {
    fn update(self) -> OrderHistoryUpdate {
        OrderHistoryUpdate::Tracking {
            order_id: self.order_id,
            customer_id: self.customer_id,
            tracking_number: self.tracking_number,
            at: self.created_at,
        }
    }
}

impl Projected for ShipmentDispatched {
    fn update(self) -> OrderHistoryUpdate {
        OrderHistoryUpdate::Shipment {
            order_id: self.order_id,
            customer_id: self.customer_id,
            progress: OrderStatus::Shipped,
            tracking_number: self.tracking_number,
            at: self.dispatched_at,
        }
    }
}

impl Projected for ShipmentDelivered {
    fn update(self) -> OrderHistoryUpdate {
        OrderHistoryUpdate::Shipment {
            order_id: self.order_id,
            customer_id: self.customer_id,
            progress: OrderStatus::Delivered,
            tracking_number: self.tracking_number,
            at: self.delivered_at,
        }
    }
}

impl OrderHistoryProjection {
    pub(crate) async fn for_customer(
        &self,
        customer: UserId,
        page: &PageRequest,
    ) -> anyhow::Result<Page<OrderHistoryEntry>> {
        self.repository.for_customer(customer, page).await
    }
}

#[async_trait::async_trait]
impl<E: IntegrationEvent + Projected> HandlesOnce<E> for OrderHistoryProjection {
    async fn handle_once(&self, event: E, work: &mut UnitOfWork) -> anyhow::Result<()> {
        self.repository.apply(work, event.update()).await
    }
}

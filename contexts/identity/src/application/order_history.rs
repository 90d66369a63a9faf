//! The customer's order history: a projection of ordering and shipping events.

use std::sync::Arc;

use bus::{Envelope, EventHandler};
use kernel::id::UserId;
use kernel::pagination::{Page, PageRequest};
use ordering_contracts::{
    CancellationReason, OrderCancelled, OrderPaid, OrderPlaced, OrderStatus, OrderStatusChanged,
};
use shipping_contracts::{ShipmentCreated, ShipmentDelivered, ShipmentDispatched};

use super::ports::{OrderHistoryChange, OrderHistoryRepository, OrderHistoryUpdate};
use crate::domain::{OrderHistoryEntry, OrderProgress};

pub(crate) const GROUP: &str = "identity.order_history";

pub(crate) const EVENTS: [&str; 7] = [
    "ordering.order_placed",
    "ordering.order_paid",
    "ordering.order_cancelled",
    "ordering.order_status_changed",
    "shipping.shipment_created",
    "shipping.shipment_dispatched",
    "shipping.shipment_delivered",
];

fn progress(status: OrderStatus) -> OrderProgress {
    match status {
        OrderStatus::Pending => OrderProgress::Pending,
        OrderStatus::StockReserved => OrderProgress::StockReserved,
        OrderStatus::Paid => OrderProgress::Paid,
        OrderStatus::Confirmed => OrderProgress::Confirmed,
        OrderStatus::Shipped => OrderProgress::Shipped,
        OrderStatus::Delivered => OrderProgress::Delivered,
        OrderStatus::Cancelled => OrderProgress::Cancelled,
    }
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

impl OrderHistoryProjection {
    /// What an envelope says about an order, or `None` for an event this projection ignores.
    fn update(envelope: &Envelope) -> anyhow::Result<Option<OrderHistoryUpdate>> {
        let status = |order_id,
                      customer_id,
                      progress: OrderProgress,
                      total,
                      placed_at,
                      reason: Option<String>,
                      at| {
            OrderHistoryUpdate::Status(OrderHistoryChange {
                entry: OrderHistoryEntry {
                    order_id,
                    customer_id,
                    status: progress.as_str().to_owned(),
                    total,
                    placed_at,
                    cancellation_reason: reason,
                    tracking_number: None,
                    updated_at: at,
                },
                progress,
            })
        };
        let update = match envelope.event_type.as_str() {
            "ordering.order_placed" => {
                let e: OrderPlaced = envelope.open()?;
                status(
                    e.order_id,
                    e.customer_id,
                    OrderProgress::Pending,
                    e.total,
                    e.placed_at,
                    None,
                    e.placed_at,
                )
            }
            "ordering.order_paid" => {
                let e: OrderPaid = envelope.open()?;
                // A paid event may arrive before the placed one; placed_at is then the payment time
                // until the status-changed event with the real one arrives.
                status(
                    e.order_id,
                    e.customer_id,
                    OrderProgress::Paid,
                    e.total,
                    e.paid_at,
                    None,
                    e.paid_at,
                )
            }
            "ordering.order_status_changed" => {
                let e: OrderStatusChanged = envelope.open()?;
                let mut update = status(
                    e.order_id,
                    e.customer_id,
                    progress(e.status),
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
            "ordering.order_cancelled" => {
                let e: OrderCancelled = envelope.open()?;
                OrderHistoryUpdate::Cancelled {
                    order_id: e.order_id,
                    customer_id: e.customer_id,
                    reason: reason(e.reason),
                    at: e.cancelled_at,
                }
            }
            "shipping.shipment_created" => {
                let e: ShipmentCreated = envelope.open()?;
                OrderHistoryUpdate::Tracking {
                    order_id: e.order_id,
                    customer_id: e.customer_id,
                    tracking_number: e.tracking_number,
                    at: e.created_at,
                }
            }
            "shipping.shipment_dispatched" => {
                let e: ShipmentDispatched = envelope.open()?;
                OrderHistoryUpdate::Shipment {
                    order_id: e.order_id,
                    customer_id: e.customer_id,
                    progress: OrderProgress::Shipped,
                    tracking_number: e.tracking_number,
                    at: e.dispatched_at,
                }
            }
            "shipping.shipment_delivered" => {
                let e: ShipmentDelivered = envelope.open()?;
                OrderHistoryUpdate::Shipment {
                    order_id: e.order_id,
                    customer_id: e.customer_id,
                    progress: OrderProgress::Delivered,
                    tracking_number: e.tracking_number,
                    at: e.delivered_at,
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(update))
    }

    pub(crate) async fn for_customer(
        &self,
        customer: UserId,
        page: &PageRequest,
    ) -> anyhow::Result<Page<OrderHistoryEntry>> {
        self.repository.for_customer(customer, page).await
    }
}

#[async_trait::async_trait]
impl EventHandler for OrderHistoryProjection {
    async fn handle(&self, envelope: &Envelope) -> anyhow::Result<()> {
        if let Some(update) = Self::update(envelope)? {
            self.repository.apply(GROUP, envelope, update).await?;
        }
        Ok(())
    }
}

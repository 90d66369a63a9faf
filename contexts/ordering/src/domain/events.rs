//! What an order announces: the events a change of the order causes, decided by the order
//! itself from its state before and after (and, for a re-announcement, from its status).

use ordering_contracts as contract;

use super::order::{CancellationReason, Order, OrderStatus};
use super::order_return::{OrderReturn, ReturnStatus};

/// One of the events an order publishes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OrderEvent {
    Placed(contract::OrderPlaced),
    Paid(contract::OrderPaid),
    Cancelled(contract::OrderCancelled),
    StatusChanged(contract::OrderStatusChanged),
    Refunded(contract::OrderRefunded),
    ReturnRequested(contract::ReturnRequested),
    ReturnApproved(contract::ReturnApproved),
    ReturnRejected(contract::ReturnRejected),
    ReturnReceived(contract::ReturnReceived),
}

impl CancellationReason {
    fn published(self) -> contract::CancellationReason {
        match self {
            Self::OutOfStock => contract::CancellationReason::OutOfStock,
            Self::PaymentDeclined => contract::CancellationReason::PaymentDeclined,
            Self::PaymentUnavailable => contract::CancellationReason::PaymentUnavailable,
            Self::CustomerCancelled => contract::CancellationReason::CustomerCancelled,
            Self::ReservationExpired => contract::CancellationReason::ReservationExpired,
        }
    }
}

impl Order {
    fn totals(&self) -> contract::OrderTotals {
        contract::OrderTotals {
            subtotal: self.amounts.subtotal,
            discount: self.amounts.discount,
            shipping: self.amounts.shipping,
            tax: self.amounts.tax,
            weight_grams: self.amounts.weight_grams,
            promotion_code: self.promotion_code.clone(),
        }
    }

    fn published_lines(&self) -> Vec<contract::OrderLine> {
        self.lines
            .iter()
            .map(|l| contract::OrderLine {
                product_id: l.variant_of.unwrap_or(l.product_id),
                variant_id: l.variant_of.map(|_| l.product_id),
                sku: l.sku.clone(),
                name: l.name.clone(),
                quantity: l.quantity,
                unit_price: l.unit_price,
            })
            .collect()
    }

    fn placed(&self) -> contract::OrderPlaced {
        contract::OrderPlaced {
            order_id: self.id,
            customer_id: self.customer_id,
            lines: self.published_lines(),
            total: self.total,
            totals: Some(self.totals()),
            shipping_address: self.shipping_address.clone(),
            placed_at: self.placed_at,
        }
    }

    fn paid(&self) -> contract::OrderPaid {
        contract::OrderPaid {
            order_id: self.id,
            customer_id: self.customer_id,
            lines: self.published_lines(),
            total: self.total,
            totals: Some(self.totals()),
            shipping_address: self.shipping_address.clone(),
            paid_at: self.updated_at,
        }
    }

    fn status_changed(&self) -> contract::OrderStatusChanged {
        contract::OrderStatusChanged {
            order_id: self.id,
            customer_id: self.customer_id,
            status: self.status,
            total: self.total,
            placed_at: self.placed_at,
            cancellation_reason: self.cancellation_reason.map(CancellationReason::published),
            tracking_number: self.tracking_number.clone(),
            changed_at: self.updated_at,
        }
    }

    /// A new order announces itself and its first status.
    pub(crate) fn placed_events(&self) -> Vec<OrderEvent> {
        vec![
            OrderEvent::Placed(self.placed()),
            OrderEvent::StatusChanged(self.status_changed()),
        ]
    }

    /// What a change from `before` to `self` announces: `order_refunded` for each refund
    /// the gateway confirmed; for a status move, `order_paid` or `order_cancelled` for those
    /// moves, and always `order_status_changed`.
    pub(crate) fn events_since(&self, before: &Order) -> Vec<OrderEvent> {
        let mut out = self.return_events(before);
        out.extend(self.refunded_events(before));
        if before.status == self.status {
            return out;
        }
        match self.status {
            OrderStatus::Paid => out.push(OrderEvent::Paid(self.paid())),
            OrderStatus::Cancelled => out.push(OrderEvent::Cancelled(contract::OrderCancelled {
                order_id: self.id,
                customer_id: self.customer_id,
                reason: self
                    .cancellation_reason
                    .unwrap_or(CancellationReason::CustomerCancelled)
                    .published(),
                refunded: self.authorized_charge().is_some(),
                cancelled_at: self.updated_at,
            })),
            _ => {}
        }
        out.push(OrderEvent::StatusChanged(self.status_changed()));
        out
    }

    fn returned_lines(&self, r: &OrderReturn) -> Vec<contract::ReturnedLine> {
        r.lines
            .iter()
            .map(|l| {
                let sold = self.sold(l.product_id);
                contract::ReturnedLine {
                    product_id: l.product_id,
                    sku: sold.map(|o| o.sku.clone()).unwrap_or_default(),
                    name: sold.map(|o| o.name.clone()).unwrap_or_default(),
                    quantity: l.quantity,
                    restock: l.restock,
                }
            })
            .collect()
    }

    /// One event per return that moved: requested, approved, rejected, or received (a
    /// return refunded at once, with nothing to give back, was received too).
    fn return_events(&self, before: &Order) -> Vec<OrderEvent> {
        let mut out = Vec::new();
        for r in &self.returns {
            let was = before.find_return(r.id).map(|b| b.status);
            if was == Some(r.status) {
                continue;
            }
            let (order_id, customer_id, return_id) = (self.id, self.customer_id, r.id.to_string());
            let event = match r.status {
                ReturnStatus::Requested => OrderEvent::ReturnRequested(contract::ReturnRequested {
                    order_id,
                    customer_id,
                    return_id,
                    lines: self.returned_lines(r),
                    reason: r.reason.clone(),
                    requested_at: r.created_at,
                }),
                ReturnStatus::Approved => OrderEvent::ReturnApproved(contract::ReturnApproved {
                    order_id,
                    customer_id,
                    return_id,
                    lines: self.returned_lines(r),
                    refund_shipping: r.refund_shipping,
                    approved_at: r.updated_at,
                }),
                ReturnStatus::Rejected => OrderEvent::ReturnRejected(contract::ReturnRejected {
                    order_id,
                    customer_id,
                    return_id,
                    note: r.note.clone().unwrap_or_default(),
                    rejected_at: r.updated_at,
                }),
                ReturnStatus::Refunded if was == Some(ReturnStatus::Received) => continue,
                ReturnStatus::Received | ReturnStatus::Refunded => {
                    OrderEvent::ReturnReceived(contract::ReturnReceived {
                        order_id,
                        customer_id,
                        return_id,
                        lines: self.returned_lines(r),
                        refund: r
                            .refund_amount
                            .unwrap_or_else(|| kernel::Money::zero(self.total.currency())),
                        received_at: r.updated_at,
                    })
                }
            };
            out.push(event);
        }
        out
    }

    fn refunded_events(&self, before: &Order) -> Vec<OrderEvent> {
        let charged = self
            .authorized_charge()
            .map(|c| c.amount)
            .unwrap_or(self.total);
        let total_refunded = self.refunded();
        self.refunds_settled_since(before)
            .map(|r| {
                OrderEvent::Refunded(contract::OrderRefunded {
                    order_id: self.id,
                    customer_id: self.customer_id,
                    refund_id: r.id.to_string(),
                    amount: r.amount,
                    total_refunded,
                    charged,
                    reason: r.reason.clone(),
                    refunded_at: r.updated_at,
                })
            })
            .collect()
    }

    /// The event a waiting order publishes again when its wait timed out: `order_placed`
    /// while it waits for stock, `order_paid` while it waits for its shipment.
    pub(crate) fn announcement(&self) -> Option<OrderEvent> {
        match self.status {
            OrderStatus::Pending => Some(OrderEvent::Placed(self.placed())),
            OrderStatus::Paid => Some(OrderEvent::Paid(self.paid())),
            _ => None,
        }
    }
}

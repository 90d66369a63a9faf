//! Inventory: stock levels, and the catalog's part of the checkout saga — reserve all lines
//! or none, release on cancellation, keep on payment, commit on dispatch, expire unpaid.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bus::{Causation, Consumer, DeliveryMode, Envelope, Handles, Outbox};
use catalog_contracts::{ShortLine, StockLine, StockRejected, StockReleased, StockReserved};
use kernel::id::{OrderId, ProductId};
use kernel::{Clock, Timestamp};
use ordering_contracts::{OrderCancelled, OrderPaid, OrderPlaced};
use shipping_contracts::ShipmentDispatched;

use super::ports::{
    InventoryRepository, PaidOutcome, ReleaseOutcome, ReserveOutcome, SetStockError,
};
use super::CatalogError;
use crate::domain::StockLevel;

pub(crate) const GROUP: &str = "catalog.inventory";

/// The saga's stock side: what ordering and shipping tell catalog about an order.
pub(crate) fn consumer() -> Consumer<Inventory> {
    Consumer::new(GROUP, DeliveryMode::Competing)
        .on::<OrderPlaced>()
        .on::<OrderPaid>()
        .on::<OrderCancelled>()
        .on::<ShipmentDispatched>()
}

pub(crate) struct Inventory {
    pub(crate) repo: Arc<dyn InventoryRepository>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) outbox: Outbox,
    pub(crate) reservation_ttl: Duration,
}

/// Merges lines of the same product and orders them by product id, so concurrent
/// reservations lock rows in one order.
fn merge(lines: impl IntoIterator<Item = (ProductId, u32)>) -> Vec<StockLine> {
    let mut by_product: BTreeMap<String, (ProductId, u32)> = BTreeMap::new();
    for (product_id, quantity) in lines {
        let entry = by_product
            .entry(product_id.to_string())
            .or_insert((product_id, 0));
        entry.1 = entry.1.saturating_add(quantity);
    }
    by_product
        .into_values()
        .map(|(product_id, quantity)| StockLine {
            product_id,
            quantity,
        })
        .collect()
}

fn release_event(
    order: OrderId,
    outcome: &ReleaseOutcome,
    now: Timestamp,
    cause: &Causation,
) -> anyhow::Result<Vec<Envelope>> {
    match outcome {
        ReleaseOutcome::Released { lines, reason } => Ok(vec![Envelope::wrap(
            &StockReleased {
                order_id: order,
                reason: *reason,
                lines: lines.clone(),
            },
            now,
            cause,
        )?]),
        ReleaseOutcome::Nothing => Ok(vec![]),
    }
}

/// `stock_rejected`: the order's lines that cannot be held.
fn rejected(
    order: OrderId,
    short_lines: &[ShortLine],
    now: Timestamp,
    cause: &Causation,
) -> anyhow::Result<Envelope> {
    Envelope::wrap(
        &StockRejected {
            order_id: order,
            short_lines: short_lines.to_vec(),
        },
        now,
        cause,
    )
}

impl Inventory {
    pub(crate) async fn stock(&self, product: ProductId) -> Result<StockLevel, CatalogError> {
        self.repo
            .stock(product)
            .await?
            .ok_or(CatalogError::ProductNotFound)
    }

    pub(crate) async fn set_on_hand(
        &self,
        product: ProductId,
        on_hand: i64,
    ) -> Result<StockLevel, CatalogError> {
        if on_hand < 0 {
            return Err(CatalogError::field("on_hand", "must not be negative"));
        }
        self.repo
            .set_on_hand(product, on_hand, self.clock.now())
            .await
            .map_err(|e| match e {
                SetStockError::NotFound => CatalogError::ProductNotFound,
                SetStockError::BelowReserved { reserved } => {
                    CatalogError::BelowReserved { reserved }
                }
                SetStockError::Unexpected(e) => CatalogError::Unexpected(e),
            })
    }

    async fn on_order_placed(&self, event: OrderPlaced, envelope: &Envelope) -> anyhow::Result<()> {
        let lines = merge(event.lines.iter().map(|l| (l.product_id, l.quantity)));
        let now = self.clock.now();
        let expires_at = now.plus(self.reservation_ttl);
        let cause = Causation::from(envelope);
        let order = event.order_id;
        let events = move |outcome: &ReserveOutcome| -> anyhow::Result<Vec<Envelope>> {
            Ok(match outcome {
                ReserveOutcome::Reserved { lines, expires_at } => vec![Envelope::wrap(
                    &StockReserved {
                        order_id: order,
                        lines: lines.clone(),
                        expires_at: *expires_at,
                    },
                    now,
                    &cause,
                )?],
                ReserveOutcome::Rejected { short_lines } => {
                    vec![rejected(order, short_lines, now, &cause)?]
                }
                ReserveOutcome::AlreadyClosed | ReserveOutcome::Duplicate => vec![],
            })
        };
        let outcome = self
            .repo
            .reserve(GROUP, envelope, order, &lines, expires_at, &events)
            .await?;
        tracing::info!(order_id = %order, outcome = ?outcome, "reservation");
        self.outbox.wake();
        Ok(())
    }

    async fn on_order_cancelled(
        &self,
        event: OrderCancelled,
        envelope: &Envelope,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        let cause = Causation::from(envelope);
        let order = event.order_id;
        let events = move |outcome: &ReleaseOutcome| release_event(order, outcome, now, &cause);
        self.repo.release(GROUP, envelope, order, &events).await?;
        self.outbox.wake();
        Ok(())
    }

    /// A paid order's reservation is kept until dispatch. One that expired before the payment
    /// was heard of is held again; if its units were sold meanwhile, `stock_rejected` tells
    /// ordering the paid order cannot be served (it cancels and refunds).
    async fn on_order_paid(&self, event: OrderPaid, envelope: &Envelope) -> anyhow::Result<()> {
        let now = self.clock.now();
        let cause = Causation::from(envelope);
        let order = event.order_id;
        let events = move |outcome: &PaidOutcome| -> anyhow::Result<Vec<Envelope>> {
            Ok(match outcome {
                PaidOutcome::Short { short_lines } => {
                    vec![rejected(order, short_lines, now, &cause)?]
                }
                PaidOutcome::Kept | PaidOutcome::HeldAgain | PaidOutcome::Nothing => vec![],
            })
        };
        let outcome = self.repo.mark_paid(GROUP, envelope, order, &events).await?;
        if matches!(outcome, PaidOutcome::Short { .. }) {
            self.outbox.wake();
        }
        Ok(())
    }

    /// Releases reservations whose order was never paid in time.
    pub(crate) async fn expire_due(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let cause = Causation::system();
        let events = move |(order, outcome): &(OrderId, ReleaseOutcome)| {
            release_event(*order, outcome, now, &cause)
        };
        let n = self.repo.expire_due(now, 100, &events).await?;
        if n > 0 {
            tracing::info!(expired = n, "reservations expired");
            self.outbox.wake();
        }
        Ok(n)
    }
}

#[async_trait::async_trait]
impl Handles<OrderPlaced> for Inventory {
    async fn handle(&self, event: OrderPlaced, envelope: &Envelope) -> anyhow::Result<()> {
        self.on_order_placed(event, envelope).await
    }
}

#[async_trait::async_trait]
impl Handles<OrderPaid> for Inventory {
    async fn handle(&self, event: OrderPaid, envelope: &Envelope) -> anyhow::Result<()> {
        self.on_order_paid(event, envelope).await
    }
}

#[async_trait::async_trait]
impl Handles<OrderCancelled> for Inventory {
    async fn handle(&self, event: OrderCancelled, envelope: &Envelope) -> anyhow::Result<()> {
        self.on_order_cancelled(event, envelope).await
    }
}

#[async_trait::async_trait]
impl Handles<ShipmentDispatched> for Inventory {
    async fn handle(&self, event: ShipmentDispatched, envelope: &Envelope) -> anyhow::Result<()> {
        self.repo.commit(GROUP, envelope, event.order_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_sums_repeated_products_and_sorts_by_id() {
        let a = ProductId::new();
        let b = ProductId::new();
        let merged = merge([(b, 1), (a, 2), (b, 3)]);
        assert_eq!(merged.len(), 2);
        assert_eq!(
            merged[0],
            StockLine {
                product_id: a,
                quantity: 2
            }
        );
        assert_eq!(
            merged[1],
            StockLine {
                product_id: b,
                quantity: 4
            }
        );
    }
}

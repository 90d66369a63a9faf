//! Inventory: stock levels, and the catalog's part of the checkout saga — reserve all lines
//! or none, release on cancellation, keep on payment, commit on dispatch, expire unpaid.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bus::{Causation, Consumer, DeliveryMode, HandlesOnce, Store, UnitOfWork};
use catalog_contracts::{ShortLine, StockLine, StockRejected, StockReserved};
use kernel::id::{OrderId, ProductId};
use kernel::{Clock, Timestamp};
use ordering_contracts::{OrderCancelled, OrderPaid, OrderPlaced, ReturnReceived};
use shipping_contracts::ShipmentDispatched;

use super::ports::{InventoryRepository, MoveOutcome, ReserveOutcome, SetStockError};
use super::CatalogError;
use crate::domain::{Reservation, StockLevel};

pub(crate) const GROUP: &str = "catalog.inventory";

/// The saga's stock side: what ordering and shipping tell catalog about an order.
pub(crate) fn consumer() -> Consumer<Inventory> {
    Consumer::new(GROUP, DeliveryMode::Competing)
        .in_batches()
        .once::<OrderPlaced>()
        .once::<OrderPaid>()
        .once::<OrderCancelled>()
        .once::<ShipmentDispatched>()
        .once::<ReturnReceived>()
}

pub(crate) struct Inventory {
    pub(crate) repo: Arc<dyn InventoryRepository>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: Store,
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

/// Publishes what a stored move causes (`stock_released` when units were given back);
/// `true` when the reservation moved.
fn publish_moved(
    work: &mut UnitOfWork,
    moved: Option<MoveOutcome>,
    now: Timestamp,
) -> anyhow::Result<bool> {
    match moved {
        Some(MoveOutcome::Moved(transition)) => {
            if let Some(event) = transition.event {
                work.publish(&event, now)?;
            }
            Ok(true)
        }
        Some(MoveOutcome::Short(short_lines)) => Err(anyhow::anyhow!(
            "a move other than a payment found {} short lines",
            short_lines.len()
        )),
        Some(MoveOutcome::Unchanged(_)) | None => Ok(false),
    }
}

/// `stock_rejected`: the order's lines that cannot be held.
fn rejected(order: OrderId, short_lines: Vec<ShortLine>) -> StockRejected {
    StockRejected {
        order_id: order,
        short_lines,
    }
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

    /// Releases reservations whose order was never paid in time, each in its own unit of
    /// work; returns how many.
    pub(crate) async fn expire_due(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let mut expired = 0;
        for order in self.repo.due(now, 100).await? {
            let mut work = self.store.begin(Causation::system()).await?;
            let moved = self
                .repo
                .change(&mut work, order, Reservation::expire, now)
                .await?;
            if publish_moved(&mut work, moved, now)? {
                expired += 1;
            }
            work.commit().await?;
        }
        if expired > 0 {
            tracing::info!(expired, "reservations expired");
        }
        Ok(expired)
    }
}

#[async_trait::async_trait]
impl HandlesOnce<OrderPlaced> for Inventory {
    async fn handle_once(&self, event: OrderPlaced, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let lines = merge(event.lines.iter().map(|l| (l.stocked_item(), l.quantity)));
        let now = self.clock.now();
        let expires_at = now.plus(self.reservation_ttl);
        let order = event.order_id;
        let outcome = self.repo.reserve(work, order, &lines, expires_at).await?;
        tracing::info!(order_id = %order, outcome = ?outcome, "reservation");
        match outcome {
            ReserveOutcome::Reserved { lines, expires_at } => work.publish(
                &StockReserved {
                    order_id: order,
                    lines,
                    expires_at,
                },
                now,
            ),
            ReserveOutcome::Rejected { short_lines } => {
                work.publish(&rejected(order, short_lines), now)
            }
            ReserveOutcome::AlreadyClosed => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl HandlesOnce<OrderPaid> for Inventory {
    /// A paid order's reservation is kept until dispatch. One that expired before the payment
    /// was heard of is held again; if its units were sold meanwhile, `stock_rejected` tells
    /// ordering the paid order cannot be served (it cancels and refunds).
    async fn handle_once(&self, event: OrderPaid, work: &mut UnitOfWork) -> anyhow::Result<()> {
        let order = event.order_id;
        let now = self.clock.now();
        match self.repo.change(work, order, Reservation::pay, now).await? {
            Some(MoveOutcome::Short(short_lines)) => {
                work.publish(&rejected(order, short_lines), now)
            }
            Some(MoveOutcome::Moved(_) | MoveOutcome::Unchanged(_)) | None => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl HandlesOnce<OrderCancelled> for Inventory {
    async fn handle_once(
        &self,
        event: OrderCancelled,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        let (order, now) = (event.order_id, self.clock.now());
        match self
            .repo
            .change(work, order, Reservation::cancel, now)
            .await?
        {
            // Cancelled before the reservation request arrived: a tombstone stops it.
            None => self.repo.tombstone(work, order, now).await,
            moved => publish_moved(work, moved, now).map(|_| ()),
        }
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ShipmentDispatched> for Inventory {
    async fn handle_once(
        &self,
        event: ShipmentDispatched,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        let (order, now) = (event.order_id, self.clock.now());
        match self
            .repo
            .change(work, order, Reservation::dispatch, now)
            .await?
        {
            Some(MoveOutcome::Moved(_)) => Ok(()),
            other => {
                let status = match other {
                    Some(MoveOutcome::Unchanged(s)) => Some(s.as_str()),
                    _ => None,
                };
                tracing::warn!(order_id = %order, status = ?status, "dispatch of an order without a reservation to take off stock");
                Ok(())
            }
        }
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ReturnReceived> for Inventory {
    /// Units that came back in a sellable state are on hand again (once per return, by the
    /// inbox); written-off ones are not.
    async fn handle_once(
        &self,
        event: ReturnReceived,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        let lines = merge(
            event
                .lines
                .iter()
                .filter(|l| l.restock)
                .map(|l| (l.product_id, l.quantity)),
        );
        if lines.is_empty() {
            return Ok(());
        }
        self.repo.restock(work, &lines, self.clock.now()).await?;
        tracing::info!(order_id = %event.order_id, return_id = %event.return_id, lines = lines.len(), "returned units back on hand");
        Ok(())
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

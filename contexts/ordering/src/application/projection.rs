//! The product projection: what ordering knows of catalog products (name, price, status).

use std::sync::Arc;

use bus::{Consumer, DeliveryMode, HandlesOnce, UnitOfWork};
use catalog_contracts::{
    ProductArchived, ProductCreated, ProductSnapshot, ProductStatus, ProductUpdated,
};

use super::ports::{KnownProduct, ProductProjection};

pub(crate) const GROUP: &str = "ordering.products";

/// Ordering keeps its own copy of what it sells from catalog's product events.
pub(crate) fn consumer() -> Consumer<ProductFeed> {
    Consumer::new(GROUP, DeliveryMode::Competing)
        .in_batches()
        .once::<ProductCreated>()
        .once::<ProductUpdated>()
        .once::<ProductArchived>()
}

pub(crate) struct ProductFeed {
    pub(crate) products: Arc<dyn ProductProjection>,
}

fn known(p: ProductSnapshot) -> KnownProduct {
    KnownProduct {
        id: p.product_id,
        sku: p.sku,
        name: p.name,
        price: p.price,
        active: p.status == ProductStatus::Active,
        revision: p.revision,
        weight_grams: p.weight_grams,
        tax_class: p.tax_class,
        other_prices: p.other_prices,
    }
}

impl ProductFeed {
    async fn keep(&self, snapshot: ProductSnapshot, work: &mut UnitOfWork) -> anyhow::Result<()> {
        self.products.upsert(work, &known(snapshot)).await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ProductCreated> for ProductFeed {
    async fn handle_once(
        &self,
        event: ProductCreated,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        self.keep(event.product, work).await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ProductUpdated> for ProductFeed {
    async fn handle_once(
        &self,
        event: ProductUpdated,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        self.keep(event.product, work).await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<ProductArchived> for ProductFeed {
    async fn handle_once(
        &self,
        event: ProductArchived,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        self.keep(event.product, work).await
    }
}

//! The product projection: what ordering knows of catalog products (name, price, status).

use std::sync::Arc;

use bus::{Consumer, DeliveryMode, Envelope, Handles};
use catalog_contracts::{
    ProductArchived, ProductCreated, ProductSnapshot, ProductStatus, ProductUpdated,
};

use super::ports::{KnownProduct, ProductProjection};

pub(crate) const GROUP: &str = "ordering.products";

/// Ordering keeps its own copy of what it sells from catalog's product events.
pub(crate) fn consumer() -> Consumer<ProductFeed> {
    Consumer::new(GROUP, DeliveryMode::Competing)
        .on::<ProductCreated>()
        .on::<ProductUpdated>()
        .on::<ProductArchived>()
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
    }
}

impl ProductFeed {
    async fn keep(&self, snapshot: ProductSnapshot, envelope: &Envelope) -> anyhow::Result<()> {
        self.products
            .upsert(GROUP, envelope, &known(snapshot))
            .await
    }
}

#[async_trait::async_trait]
impl Handles<ProductCreated> for ProductFeed {
    async fn handle(&self, event: ProductCreated, envelope: &Envelope) -> anyhow::Result<()> {
        self.keep(event.product, envelope).await
    }
}

#[async_trait::async_trait]
impl Handles<ProductUpdated> for ProductFeed {
    async fn handle(&self, event: ProductUpdated, envelope: &Envelope) -> anyhow::Result<()> {
        self.keep(event.product, envelope).await
    }
}

#[async_trait::async_trait]
impl Handles<ProductArchived> for ProductFeed {
    async fn handle(&self, event: ProductArchived, envelope: &Envelope) -> anyhow::Result<()> {
        self.keep(event.product, envelope).await
    }
}

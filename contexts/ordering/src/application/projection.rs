//! The product projection: what ordering knows of catalog products (name, price, status).

use std::sync::Arc;

use bus::{Envelope, EventHandler};
use catalog_contracts::{
    ProductArchived, ProductCreated, ProductSnapshot, ProductStatus, ProductUpdated,
};

use super::ports::{KnownProduct, ProductProjection};

pub(crate) const GROUP: &str = "ordering.products";
pub(crate) const EVENTS: [&str; 3] = [
    "catalog.product_created",
    "catalog.product_updated",
    "catalog.product_archived",
];

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

#[async_trait::async_trait]
impl EventHandler for ProductFeed {
    async fn handle(&self, envelope: &Envelope) -> anyhow::Result<()> {
        let snapshot = match envelope.event_type.as_str() {
            "catalog.product_created" => envelope.open::<ProductCreated>()?.product,
            "catalog.product_updated" => envelope.open::<ProductUpdated>()?.product,
            "catalog.product_archived" => envelope.open::<ProductArchived>()?.product,
            _ => return Ok(()),
        };
        self.products
            .upsert(GROUP, envelope, &known(snapshot))
            .await
    }
}

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

/// What a snapshot sells: each variant of a product with options (named after the product
/// and its values), or the product itself.
fn sold(p: ProductSnapshot) -> Vec<KnownProduct> {
    let active = p.status == ProductStatus::Active;
    if p.options.is_empty() || p.variants.is_empty() {
        return vec![KnownProduct {
            id: p.product_id,
            variant_of: None,
            sku: p.sku,
            name: p.name,
            price: p.price,
            active,
            revision: p.revision,
            weight_grams: p.weight_grams,
            tax_class: p.tax_class,
            other_prices: p.other_prices,
        }];
    }
    p.variants
        .into_iter()
        .map(|v| {
            let values: Vec<&str> = v.options.iter().map(|o| o.value.as_str()).collect();
            KnownProduct {
                id: v.variant_id,
                variant_of: Some(p.product_id),
                sku: v.sku,
                name: format!("{} ({})", p.name, values.join(" / ")),
                price: v.price,
                active,
                revision: p.revision,
                weight_grams: v.weight_grams,
                tax_class: p.tax_class,
                other_prices: v.other_prices,
            }
        })
        .collect()
}

impl ProductFeed {
    async fn keep(&self, snapshot: ProductSnapshot, work: &mut UnitOfWork) -> anyhow::Result<()> {
        for item in sold(snapshot) {
            self.products.upsert(work, &item).await?;
        }
        Ok(())
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

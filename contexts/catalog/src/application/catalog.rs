//! Categories and products: creation, partial updates with optimistic concurrency, archiving,
//! reads. Every change publishes a product event carrying the full snapshot.

use std::sync::Arc;

use bus::{Causation, Consumer, DeliveryMode, Envelope, Handles, Store};
use catalog_contracts::{
    ProductArchived, ProductCreated, ProductSnapshot, ProductStatus as ContractStatus,
    ProductUpdated, TaxClass,
};
use kernel::error::FieldError;
use kernel::id::{CategoryId, ProductId};
use kernel::{Clock, Money};
use platform::pagination::{Page, PageRequest};

use super::cache::ReadCache;
use super::ports::{CatalogRepository, Category, ProductQuery, SaveError};
use super::CatalogError;
use crate::domain::{
    other_prices, CategoryName, Description, Product, ProductName, ProductStatus, Sku, Slug,
    MAX_PRICE, MAX_WEIGHT_GRAMS,
};

pub(crate) struct Catalog {
    pub(crate) repo: Arc<dyn CatalogRepository>,
    pub(crate) cache: Arc<ReadCache>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: Store,
}

pub(crate) struct NewCategory {
    pub(crate) name: String,
    pub(crate) slug: String,
    pub(crate) parent_id: Option<CategoryId>,
}

pub(crate) struct NewProduct {
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) price: Money,
    pub(crate) other_prices: Vec<Money>,
    pub(crate) category_id: Option<CategoryId>,
    pub(crate) weight_grams: Option<u32>,
    pub(crate) tax_class: Option<TaxClass>,
}

/// A partial update; `None` leaves a field alone, `Some(None)` clears an optional one.
#[derive(Default)]
pub(crate) struct ProductChange {
    pub(crate) sku: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) description: Option<Option<String>>,
    pub(crate) price: Option<Money>,
    pub(crate) other_prices: Option<Vec<Money>>,
    pub(crate) category_id: Option<Option<CategoryId>>,
    pub(crate) weight_grams: Option<u32>,
    pub(crate) tax_class: Option<TaxClass>,
}

pub(crate) fn snapshot(p: &Product) -> ProductSnapshot {
    ProductSnapshot {
        product_id: p.id,
        sku: p.sku.as_ref().to_owned(),
        name: p.name.as_ref().to_owned(),
        price: p.price,
        status: match p.status {
            ProductStatus::Active => ContractStatus::Active,
            ProductStatus::Archived => ContractStatus::Archived,
        },
        category_id: p.category_id,
        revision: p.revision,
        weight_grams: p.weight_grams,
        tax_class: p.tax_class,
        other_prices: p.other_prices.clone(),
    }
}

fn check_weight(grams: u32, errors: &mut Vec<FieldError>) {
    if grams > MAX_WEIGHT_GRAMS {
        errors.push(FieldError::new(
            "weight_grams",
            format!("must be at most {MAX_WEIGHT_GRAMS}"),
        ));
    }
}

fn check_price(price: &Money, errors: &mut Vec<FieldError>) {
    if price.amount() > MAX_PRICE {
        errors.push(FieldError::new(
            "price.amount",
            format!("must be at most {MAX_PRICE}"),
        ));
    }
}

fn save_error(e: SaveError) -> CatalogError {
    match e {
        SaveError::Duplicate(what) => CatalogError::Duplicate(what),
        SaveError::Stale => CatalogError::Stale,
        SaveError::Unexpected(e) => CatalogError::Unexpected(e),
    }
}

impl Catalog {
    pub(crate) async fn create_category(&self, new: NewCategory) -> Result<Category, CatalogError> {
        let mut errors = Vec::new();
        let name = CategoryName::parse(&new.name)
            .map_err(|m| errors.push(FieldError::new("name", m)))
            .ok();
        let slug = Slug::parse(&new.slug)
            .map_err(|m| errors.push(FieldError::new("slug", m)))
            .ok();
        if let Some(parent) = new.parent_id {
            if self.repo.category(parent).await?.is_none() {
                errors.push(FieldError::new("parent_id", "no such category"));
            }
        }
        let (Some(name), Some(slug), true) = (name, slug, errors.is_empty()) else {
            return Err(CatalogError::Invalid(errors));
        };
        let category = Category {
            id: CategoryId::new(),
            name,
            slug,
            parent_id: new.parent_id,
            created_at: self.clock.now(),
        };
        self.repo
            .create_category(&category)
            .await
            .map_err(save_error)?;
        Ok(category)
    }

    pub(crate) async fn categories(
        &self,
        page: &PageRequest,
    ) -> Result<Page<Category>, CatalogError> {
        Ok(self.repo.categories(page).await?)
    }

    /// A category by id or slug.
    pub(crate) async fn resolve_category(&self, raw: &str) -> Result<CategoryId, CatalogError> {
        let found = match CategoryId::parse(raw) {
            Ok(id) => self.repo.category(id).await?,
            Err(_) => match Slug::parse(raw) {
                Ok(slug) => self.repo.category_by_slug(&slug).await?,
                Err(_) => None,
            },
        };
        found.map(|c| c.id).ok_or(CatalogError::CategoryNotFound)
    }

    async fn check_category(
        &self,
        id: Option<CategoryId>,
        errors: &mut Vec<FieldError>,
    ) -> anyhow::Result<()> {
        if let Some(id) = id {
            if self.repo.category(id).await?.is_none() {
                errors.push(FieldError::new("category_id", "no such category"));
            }
        }
        Ok(())
    }

    pub(crate) async fn create_product(
        &self,
        new: NewProduct,
        cause: &Causation,
    ) -> Result<Product, CatalogError> {
        let mut errors = Vec::new();
        let sku = Sku::parse(&new.sku)
            .map_err(|m| errors.push(FieldError::new("sku", m)))
            .ok();
        let name = ProductName::parse(&new.name)
            .map_err(|m| errors.push(FieldError::new("name", m)))
            .ok();
        let description = match new.description.as_deref() {
            Some(d) => Description::parse(d)
                .map_err(|m| errors.push(FieldError::new("description", m)))
                .ok(),
            None => None,
        };
        check_price(&new.price, &mut errors);
        let others = other_prices(&new.price, new.other_prices)
            .map_err(|m| errors.push(FieldError::new("other_prices", m)))
            .unwrap_or_default();
        check_weight(new.weight_grams.unwrap_or(0), &mut errors);
        self.check_category(new.category_id, &mut errors).await?;
        let (Some(sku), Some(name), true) = (sku, name, errors.is_empty()) else {
            return Err(CatalogError::Invalid(errors));
        };
        let now = self.clock.now();
        let product = Product {
            id: ProductId::new(),
            sku,
            name,
            description: description.filter(|d| !d.as_ref().is_empty()),
            price: new.price,
            other_prices: others,
            category_id: new.category_id,
            weight_grams: new.weight_grams.unwrap_or(0),
            tax_class: new.tax_class.unwrap_or_default(),
            status: ProductStatus::Active,
            revision: 1,
            created_at: now,
            updated_at: now,
        };
        let mut work = self.store.begin(cause.clone()).await?;
        self.repo
            .create_product(&mut work, &product)
            .await
            .map_err(save_error)?;
        work.publish(
            &ProductCreated {
                product: snapshot(&product),
            },
            now,
        )?;
        work.commit().await?;
        self.cache.invalidate(product.id).await;
        Ok(product)
    }

    pub(crate) async fn product(&self, id: ProductId) -> Result<Product, CatalogError> {
        self.repo
            .product(id)
            .await?
            .ok_or(CatalogError::ProductNotFound)
    }

    pub(crate) async fn products(
        &self,
        query: &ProductQuery,
    ) -> Result<Page<Product>, CatalogError> {
        Ok(self.repo.products(query).await?)
    }

    /// Applies a partial update if the product is still at `if_match` (when given).
    pub(crate) async fn update_product(
        &self,
        id: ProductId,
        change: ProductChange,
        if_match: Option<i64>,
        cause: &Causation,
    ) -> Result<Product, CatalogError> {
        let current = self.product(id).await?;
        let mut errors = Vec::new();
        let mut next = current.clone();
        if let Some(raw) = change.sku.as_deref() {
            match Sku::parse(raw) {
                Ok(sku) => next.sku = sku,
                Err(m) => errors.push(FieldError::new("sku", m)),
            }
        }
        if let Some(raw) = change.name.as_deref() {
            match ProductName::parse(raw) {
                Ok(name) => next.name = name,
                Err(m) => errors.push(FieldError::new("name", m)),
            }
        }
        if let Some(description) = change.description {
            match description.as_deref().map(Description::parse).transpose() {
                Ok(d) => next.description = d.filter(|d| !d.as_ref().is_empty()),
                Err(m) => errors.push(FieldError::new("description", m)),
            }
        }
        if let Some(price) = change.price {
            check_price(&price, &mut errors);
            next.price = price;
        }
        if let Some(others) = change.other_prices {
            next.other_prices = others;
        }
        // The other prices must still fit the default price (whose currency may have changed).
        match other_prices(&next.price, next.other_prices.clone()) {
            Ok(others) => next.other_prices = others,
            Err(m) => errors.push(FieldError::new("other_prices", m)),
        }
        if let Some(grams) = change.weight_grams {
            check_weight(grams, &mut errors);
            next.weight_grams = grams;
        }
        if let Some(class) = change.tax_class {
            next.tax_class = class;
        }
        if let Some(category) = change.category_id {
            self.check_category(category, &mut errors).await?;
            next.category_id = category;
        }
        // A malformed change is 422 whatever its precondition; a well-formed one on a stale
        // revision is 412.
        if !errors.is_empty() {
            return Err(CatalogError::Invalid(errors));
        }
        if if_match.is_some_and(|rev| rev != current.revision) {
            return Err(CatalogError::Stale);
        }
        if next == current {
            return Ok(current);
        }
        self.save(
            current.revision,
            next,
            |product| ProductUpdated { product },
            cause,
        )
        .await
    }

    /// Stores the next revision of a product with its event, if nobody changed it meanwhile.
    async fn save<E: kernel::IntegrationEvent>(
        &self,
        expected_revision: i64,
        mut next: Product,
        event: impl FnOnce(catalog_contracts::ProductSnapshot) -> E,
        cause: &Causation,
    ) -> Result<Product, CatalogError> {
        next.revision = expected_revision + 1;
        next.updated_at = self.clock.now();
        let mut work = self.store.begin(cause.clone()).await?;
        self.repo
            .update_product(&mut work, &next, expected_revision)
            .await
            .map_err(save_error)?;
        work.publish(&event(snapshot(&next)), next.updated_at)?;
        work.commit().await?;
        self.cache.invalidate(next.id).await;
        Ok(next)
    }

    /// Archives (the API's delete): hidden from browsing, kept for orders and links.
    pub(crate) async fn archive(
        &self,
        id: ProductId,
        if_match: Option<i64>,
        cause: &Causation,
    ) -> Result<Product, CatalogError> {
        let current = self.product(id).await?;
        if if_match.is_some_and(|rev| rev != current.revision) {
            return Err(CatalogError::Stale);
        }
        if current.status == ProductStatus::Archived {
            return Ok(current);
        }
        let mut next = current.clone();
        next.status = ProductStatus::Archived;
        self.save(
            current.revision,
            next,
            |product| ProductArchived { product },
            cause,
        )
        .await
    }
}

/// Broadcast handler: another instance changed a product; forget what this one cached.
pub(crate) struct CacheInvalidation {
    pub(crate) cache: Arc<ReadCache>,
}

pub(crate) const CACHE_GROUP: &str = "catalog.cache";

/// Every instance hears of every product change, to drop what it cached.
pub(crate) fn cache_consumer() -> Consumer<CacheInvalidation> {
    Consumer::new(CACHE_GROUP, DeliveryMode::Broadcast)
        .on::<ProductCreated>()
        .on::<ProductUpdated>()
        .on::<ProductArchived>()
}

#[async_trait::async_trait]
impl Handles<ProductCreated> for CacheInvalidation {
    async fn handle(&self, event: ProductCreated, _: &Envelope) -> anyhow::Result<()> {
        self.cache.invalidate(event.product.product_id).await;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Handles<ProductUpdated> for CacheInvalidation {
    async fn handle(&self, event: ProductUpdated, _: &Envelope) -> anyhow::Result<()> {
        self.cache.invalidate(event.product.product_id).await;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Handles<ProductArchived> for CacheInvalidation {
    async fn handle(&self, event: ProductArchived, _: &Envelope) -> anyhow::Result<()> {
        self.cache.invalidate(event.product.product_id).await;
        Ok(())
    }
}

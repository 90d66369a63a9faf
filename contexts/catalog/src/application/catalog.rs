//! Categories and products: creation, partial updates with optimistic concurrency, archiving,
//! reads. Every change publishes a product event carrying the full snapshot.

use std::sync::Arc;

use bus::{Causation, Consumer, DeliveryMode, Envelope, Handles, Store};
use catalog_contracts::{
    ProductArchived, ProductCreated, ProductOption, ProductSnapshot,
    ProductStatus as ContractStatus, ProductUpdated, TaxClass, VariantSnapshot,
};
use kernel::error::FieldError;
use kernel::id::{CategoryId, ProductId};
use kernel::{Clock, Money};
use platform::pagination::{Page, PageRequest};

use super::cache::ReadCache;
use super::ports::{CatalogRepository, Category, ProductQuery, SaveError};
use super::CatalogError;
use crate::domain::{
    check_options, check_set, check_variant, other_prices, CategoryName, Defaults, Description,
    Product, ProductName, ProductStatus, Sku, Slug, Variant, VariantDraft, MAX_PRICE,
    MAX_WEIGHT_GRAMS,
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
    pub(crate) options: Vec<ProductOption>,
    pub(crate) variants: Vec<VariantDraft>,
}

/// A partial update of one variant; `None` leaves a field alone.
#[derive(Default)]
pub(crate) struct VariantChange {
    pub(crate) sku: Option<String>,
    pub(crate) price: Option<Money>,
    pub(crate) other_prices: Option<Vec<Money>>,
    pub(crate) weight_grams: Option<u32>,
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
        options: p.options.clone(),
        variants: p
            .sold()
            .into_iter()
            .map(|v| VariantSnapshot {
                variant_id: v.id,
                sku: v.sku.as_ref().to_owned(),
                options: v.options,
                price: v.price,
                other_prices: v.other_prices,
                weight_grams: v.weight_grams,
            })
            .collect(),
    }
}

/// Checks variant drafts against the product's options and defaults, and the set as a whole.
fn check_variants(
    product: &Product,
    drafts: Vec<VariantDraft>,
    errors: &mut Vec<FieldError>,
) -> Vec<Variant> {
    let defaults = Defaults {
        price: &product.price,
        other_prices: &product.other_prices,
        weight_grams: product.weight_grams,
    };
    let variants: Vec<Variant> = drafts
        .into_iter()
        .enumerate()
        .filter_map(|(i, draft)| {
            check_variant(
                ProductId::new(),
                draft,
                &product.options,
                &defaults,
                &format!("variants[{i}]"),
                errors,
            )
        })
        .collect();
    if errors.is_empty() {
        check_set(&variants, &product.sku, errors);
    }
    variants
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
        let options = check_options(new.options, &mut errors);
        if options.is_empty() && !new.variants.is_empty() && errors.is_empty() {
            errors.push(FieldError::new(
                "variants",
                "variants need options to tell them apart",
            ));
        }
        let (Some(sku), Some(name), true) = (sku, name, errors.is_empty()) else {
            return Err(CatalogError::Invalid(errors));
        };
        let now = self.clock.now();
        let mut product = Product {
            id: ProductId::new(),
            sku,
            name,
            description: description.filter(|d| !d.as_ref().is_empty()),
            price: new.price,
            other_prices: others,
            category_id: new.category_id,
            weight_grams: new.weight_grams.unwrap_or(0),
            tax_class: new.tax_class.unwrap_or_default(),
            options,
            variants: Vec::new(),
            status: ProductStatus::Active,
            revision: 1,
            created_at: now,
            updated_at: now,
        };
        if !product.options.is_empty() {
            product.variants = check_variants(&product, new.variants, &mut errors);
            if !errors.is_empty() {
                return Err(CatalogError::Invalid(errors));
            }
            product.refresh_price();
        }
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
        if current.has_variants() {
            for (field, given) in [
                ("price", change.price.is_some()),
                ("other_prices", change.other_prices.is_some()),
                ("weight_grams", change.weight_grams.is_some()),
            ] {
                if given {
                    errors.push(FieldError::new(
                        field,
                        "this product has variants: change it on each variant",
                    ));
                }
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
        if next.has_variants() && errors.is_empty() {
            check_set(&next.variants, &next.sku, &mut errors);
        }
        self.store_change(current, next, errors, if_match, cause)
            .await
    }

    /// Stores `next` as the change of `current`. A malformed change is 422 whatever its
    /// precondition; a well-formed one on a stale revision is 412; no change stores nothing.
    async fn store_change(
        &self,
        current: Product,
        mut next: Product,
        errors: Vec<FieldError>,
        if_match: Option<i64>,
        cause: &Causation,
    ) -> Result<Product, CatalogError> {
        if !errors.is_empty() {
            return Err(CatalogError::Invalid(errors));
        }
        if if_match.is_some_and(|rev| rev != current.revision) {
            return Err(CatalogError::Stale);
        }
        next.refresh_price();
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

    /// Changes one variant; for a product without options, its one variant is the product
    /// itself (`variant` = the product's id).
    pub(crate) async fn update_variant(
        &self,
        id: ProductId,
        variant: ProductId,
        change: VariantChange,
        if_match: Option<i64>,
        cause: &Causation,
    ) -> Result<Product, CatalogError> {
        let current = self.product(id).await?;
        if !current.has_variants() {
            if variant != id {
                return Err(CatalogError::VariantNotFound);
            }
            let change = ProductChange {
                sku: change.sku,
                price: change.price,
                other_prices: change.other_prices,
                weight_grams: change.weight_grams,
                ..ProductChange::default()
            };
            return self.update_product(id, change, if_match, cause).await;
        }
        let Some(index) = current.variants.iter().position(|v| v.id == variant) else {
            return Err(CatalogError::VariantNotFound);
        };
        let mut errors = Vec::new();
        let mut next = current.clone();
        let v = &mut next.variants[index];
        if let Some(raw) = change.sku.as_deref() {
            match Sku::parse(raw) {
                Ok(sku) => v.sku = sku,
                Err(m) => errors.push(FieldError::new("sku", m)),
            }
        }
        if let Some(price) = change.price {
            check_price(&price, &mut errors);
            if price.currency() != current.price.currency() {
                errors.push(FieldError::new(
                    "price.currency",
                    format!(
                        "must be the product's currency, {}; other currencies go in other_prices",
                        current.price.currency()
                    ),
                ));
            }
            v.price = price;
        }
        if let Some(others) = change.other_prices {
            v.other_prices = others;
        }
        match other_prices(&v.price, v.other_prices.clone()) {
            Ok(others) => v.other_prices = others,
            Err(m) => errors.push(FieldError::new("other_prices", m)),
        }
        if let Some(grams) = change.weight_grams {
            check_weight(grams, &mut errors);
            v.weight_grams = grams;
        }
        if errors.is_empty() {
            check_set(&next.variants, &next.sku, &mut errors);
        }
        self.store_change(current, next, errors, if_match, cause)
            .await
    }

    /// Adds a variant to a product with options; a value an option does not have yet is
    /// added to it.
    pub(crate) async fn add_variant(
        &self,
        id: ProductId,
        mut draft: VariantDraft,
        if_match: Option<i64>,
        cause: &Causation,
    ) -> Result<(Product, ProductId), CatalogError> {
        let current = self.product(id).await?;
        if !current.has_variants() {
            return Err(CatalogError::field(
                "options",
                "this product has no options; it is sold as itself",
            ));
        }
        let mut next = current.clone();
        for option in &mut next.options {
            let given = draft
                .options
                .iter()
                .find(|(n, _)| crate::domain::key(n) == crate::domain::key(&option.name));
            if let Some((_, value)) = given {
                let known = option
                    .values
                    .iter()
                    .any(|v| crate::domain::key(v) == crate::domain::key(value));
                if !known {
                    option.values.push(value.trim().to_owned());
                }
            }
        }
        let mut errors = Vec::new();
        next.options = check_options(next.options, &mut errors);
        let defaults = Defaults {
            price: &current.price,
            other_prices: &current.other_prices,
            weight_grams: current.weight_grams,
        };
        draft.sku = draft.sku.trim().to_owned();
        let added = check_variant(
            ProductId::new(),
            draft,
            &next.options,
            &defaults,
            "variant",
            &mut errors,
        );
        if let Some(v) = &added {
            next.variants.push(v.clone());
            check_set(&next.variants, &next.sku, &mut errors);
        }
        let Some(added) = added else {
            return Err(CatalogError::Invalid(errors));
        };
        let saved = self
            .store_change(current, next, errors, if_match, cause)
            .await?;
        Ok((saved, added.id))
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
        let Some(next) = current.archived() else {
            return Ok(current);
        };
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

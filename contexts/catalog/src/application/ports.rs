//! Ports: persistence of the catalog and of inventory.

use bus::UnitOfWork;
use catalog_contracts::{ReleaseReason, ShortLine, StockLine};
use kernel::id::{CategoryId, OrderId, ProductId};
use kernel::Timestamp;
use platform::pagination::{Page, PageRequest};

use crate::domain::{CategoryName, Product, Slug, StockLevel};

#[derive(Debug, Clone)]
pub(crate) struct Category {
    pub(crate) id: CategoryId,
    pub(crate) name: CategoryName,
    pub(crate) slug: Slug,
    pub(crate) parent_id: Option<CategoryId>,
    pub(crate) created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sort {
    Newest,
    PriceAsc,
    PriceDesc,
    Name,
}

#[derive(Debug, Clone)]
pub(crate) struct ProductQuery {
    /// Products in this category or any below it.
    pub(crate) category: Option<CategoryId>,
    /// Lower-cased words that must all appear in the name or description.
    pub(crate) words: Vec<String>,
    pub(crate) sort: Sort,
    pub(crate) page: PageRequest,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SaveError {
    #[error("{0} already exists")]
    Duplicate(&'static str),
    #[error("the product changed since it was read")]
    Stale,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[async_trait::async_trait]
pub(crate) trait CatalogRepository: Send + Sync {
    async fn create_category(&self, category: &Category) -> Result<(), SaveError>;
    async fn category(&self, id: CategoryId) -> anyhow::Result<Option<Category>>;
    async fn category_by_slug(&self, slug: &Slug) -> anyhow::Result<Option<Category>>;
    async fn categories(&self, page: &PageRequest) -> anyhow::Result<Page<Category>>;
    /// Stores a new product (with zero stock).
    async fn create_product(
        &self,
        work: &mut UnitOfWork,
        product: &Product,
    ) -> Result<(), SaveError>;
    /// Stores `product` if the stored revision is still `expected_revision`.
    async fn update_product(
        &self,
        work: &mut UnitOfWork,
        product: &Product,
        expected_revision: i64,
    ) -> Result<(), SaveError>;
    async fn product(&self, id: ProductId) -> anyhow::Result<Option<Product>>;
    async fn products(&self, query: &ProductQuery) -> anyhow::Result<Page<Product>>;
}

/// What became of an order's reservation request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ReserveOutcome {
    Reserved {
        lines: Vec<StockLine>,
        expires_at: Timestamp,
    },
    Rejected {
        short_lines: Vec<ShortLine>,
    },
    /// The order was cancelled before its reservation was asked for: nothing to do.
    AlreadyClosed,
}

/// What became of a release or commit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ReleaseOutcome {
    Released {
        lines: Vec<StockLine>,
        reason: ReleaseReason,
    },
    Nothing,
}

/// What a payment did to an order's reservation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PaidOutcome {
    /// Held, now kept until dispatch or cancellation (never expires).
    Kept,
    /// It had expired before the payment was heard of; its units were free and are held again.
    HeldAgain,
    /// It had expired and its units were sold meanwhile: the paid order cannot be served.
    Short { short_lines: Vec<ShortLine> },
    /// Nothing open or expired (released, committed, duplicate delivery).
    Nothing,
}

#[async_trait::async_trait]
pub(crate) trait InventoryRepository: Send + Sync {
    async fn stock(&self, product: ProductId) -> anyhow::Result<Option<StockLevel>>;
    /// Sets on_hand unless that would fall below what is reserved.
    async fn set_on_hand(
        &self,
        product: ProductId,
        on_hand: i64,
        now: Timestamp,
    ) -> Result<StockLevel, SetStockError>;
    /// Reserves every line or none, atomically.
    async fn reserve(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        lines: &[StockLine],
        expires_at: Timestamp,
    ) -> anyhow::Result<ReserveOutcome>;
    /// Gives held units back (cancellation); a tombstone stops a later reservation.
    async fn release(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
    ) -> anyhow::Result<ReleaseOutcome>;
    /// The order is paid: its reservation no longer expires (one that expired first is
    /// held again if its units are still free).
    async fn mark_paid(&self, work: &mut UnitOfWork, order: OrderId)
        -> anyhow::Result<PaidOutcome>;
    /// The goods left: reserved units leave on_hand too. A dispatch whose reservation was
    /// already given back (expired or released) still takes its units off on_hand.
    async fn commit(&self, work: &mut UnitOfWork, order: OrderId) -> anyhow::Result<()>;
    /// Orders whose held reservation is past its expiry, oldest first.
    async fn due(&self, now: Timestamp, limit: i64) -> anyhow::Result<Vec<OrderId>>;
    /// Releases the order's reservation if it is still held and unpaid.
    async fn expire(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        now: Timestamp,
    ) -> anyhow::Result<ReleaseOutcome>;
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SetStockError {
    #[error("no such product")]
    NotFound,
    #[error("below reserved")]
    BelowReserved { reserved: i64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

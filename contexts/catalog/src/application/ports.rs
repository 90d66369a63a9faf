//! Ports: persistence of the catalog and of inventory.

use bus::Envelope;
use catalog_contracts::{ReleaseReason, ShortLine, StockLine};
use kernel::id::{CategoryId, OrderId, ProductId};
use kernel::pagination::{Page, PageRequest};
use kernel::Timestamp;

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
    /// Stores a new product (with zero stock) and its events.
    async fn create_product(&self, product: &Product, events: &[Envelope])
        -> Result<(), SaveError>;
    /// Stores `product` if the stored revision is still `expected_revision`.
    async fn update_product(
        &self,
        product: &Product,
        expected_revision: i64,
        events: &[Envelope],
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
    /// The envelope was handled before.
    Duplicate,
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

/// Builds the events an outcome publishes, in the adapter's transaction.
pub(crate) type EventsFor<'a, T> = &'a (dyn Fn(&T) -> anyhow::Result<Vec<Envelope>> + Send + Sync);

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
    /// Reserves every line or none, atomically, once per envelope.
    async fn reserve(
        &self,
        group: &str,
        envelope: &Envelope,
        order: OrderId,
        lines: &[StockLine],
        expires_at: Timestamp,
        events: EventsFor<'_, ReserveOutcome>,
    ) -> anyhow::Result<ReserveOutcome>;
    /// Gives held units back (cancellation); a tombstone stops a later reservation.
    async fn release(
        &self,
        group: &str,
        envelope: &Envelope,
        order: OrderId,
        events: EventsFor<'_, ReleaseOutcome>,
    ) -> anyhow::Result<ReleaseOutcome>;
    /// The order is paid: its reservation no longer expires (one that expired first is
    /// held again if its units are still free).
    async fn mark_paid(
        &self,
        group: &str,
        envelope: &Envelope,
        order: OrderId,
        events: EventsFor<'_, PaidOutcome>,
    ) -> anyhow::Result<PaidOutcome>;
    /// The goods left: reserved units leave on_hand too. A dispatch whose reservation was
    /// already given back (expired or released) still takes its units off on_hand.
    async fn commit(&self, group: &str, envelope: &Envelope, order: OrderId) -> anyhow::Result<()>;
    /// Releases held reservations past their expiry; returns how many.
    async fn expire_due(
        &self,
        now: Timestamp,
        limit: i64,
        events: EventsFor<'_, (OrderId, ReleaseOutcome)>,
    ) -> anyhow::Result<usize>;
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

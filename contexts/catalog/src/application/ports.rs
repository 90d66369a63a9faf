//! Ports: persistence of the catalog and of inventory.

use bus::UnitOfWork;
use catalog_contracts::{ShortLine, StockLine};
use kernel::id::{CategoryId, OrderId, ProductId};
use kernel::Timestamp;
use platform::pagination::{Page, PageRequest};

use crate::domain::{
    CategoryName, Product, Reservation, ReservationStatus, Slug, StockLevel, Transition,
};

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
    /// Lower-cased (option name, value) pairs a product must have a variant with.
    pub(crate) options: Vec<(String, String)>,
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

/// Chooses a move of a reservation from its state (one of `Reservation`'s transitions).
pub(crate) type DecideMove = fn(&Reservation) -> Option<Transition>;

/// What a decided move did to an order's reservation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MoveOutcome {
    /// Stored, with its stock move; the transition carries the event it causes.
    Moved(Transition),
    /// The reservation's status allows no such move (a duplicate, a late event).
    Unchanged(ReservationStatus),
    /// Its units were to be held again and some were sold meanwhile: nothing changed.
    Short(Vec<ShortLine>),
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
    /// Lets `decide` choose a move of the order's reservation and stores it with its stock
    /// move, deciding again if the reservation moved meanwhile; `None` when the order has no
    /// reservation.
    async fn change(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        decide: DecideMove,
        now: Timestamp,
    ) -> anyhow::Result<Option<MoveOutcome>>;
    /// Records that the order was cancelled before its reservation was asked for, so a late
    /// request holds nothing.
    async fn tombstone(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        now: Timestamp,
    ) -> anyhow::Result<()>;
    /// Puts returned units back on hand (a product no longer stocked is skipped).
    async fn restock(
        &self,
        work: &mut UnitOfWork,
        lines: &[StockLine],
        now: Timestamp,
    ) -> anyhow::Result<()>;
    /// Orders whose held reservation is past its expiry, oldest first.
    async fn due(&self, now: Timestamp, limit: i64) -> anyhow::Result<Vec<OrderId>>;
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

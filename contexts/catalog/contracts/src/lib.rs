//! Events published by the catalog context (its published language).

use kernel::id::{CategoryId, OrderId, ProductId};
use kernel::{IntegrationEvent, Money, Timestamp};
use serde::{Deserialize, Serialize};

macro_rules! event {
    ($ty:ty, $name:literal) => {
        impl IntegrationEvent for $ty {
            const NAME: &'static str = $name;
            const VERSION: u32 = 1;
            const SOURCE: &'static str = "catalog";
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    Active,
    Archived,
}

/// How a product is taxed; each destination sets a rate per class (ordering's tax rates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaxClass {
    #[default]
    Standard,
    Reduced,
    Zero,
}

impl TaxClass {
    pub const ALL: [TaxClass; 3] = [Self::Standard, Self::Reduced, Self::Zero];

    /// The wire name (as serialised).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Reduced => "reduced",
            Self::Zero => "zero",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }
}

/// An option a product comes in (a size, a colour) and its values, in display order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ProductOption {
    pub name: String,
    pub values: Vec<String>,
}

/// One value of one option, as a variant has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct OptionValue {
    pub name: String,
    pub value: String,
}

/// What is sold and stocked: one combination of a product's option values, with its own
/// SKU, prices and weight. A product without options has one variant whose id is the
/// product's; stock, reservations and the stock events' `product_id` name variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct VariantSnapshot {
    pub variant_id: ProductId,
    pub sku: String,
    /// One value per product option, in the product's option order (empty without options).
    pub options: Vec<OptionValue>,
    pub price: Money,
    /// Prices in currencies other than `price`'s, at most one per currency.
    pub other_prices: Vec<Money>,
    pub weight_grams: u32,
}

/// Everything a product projection needs, sent whole on each change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ProductSnapshot {
    pub product_id: ProductId,
    pub sku: String,
    pub name: String,
    pub price: Money,
    pub status: ProductStatus,
    pub category_id: Option<CategoryId>,
    /// Increases with every change; projections keep the highest.
    pub revision: i64,
    /// Shipping weight of one unit (0 when a snapshot from before weights is replayed).
    #[serde(default)]
    pub weight_grams: u32,
    #[serde(default)]
    pub tax_class: TaxClass,
    /// Prices in currencies other than `price`'s, at most one per currency.
    #[serde(default)]
    pub other_prices: Vec<Money>,
    /// The options the product comes in (empty: one variant, the product itself).
    #[serde(default)]
    pub options: Vec<ProductOption>,
    /// Every variant sold. Empty in snapshots from before variants: the product is then its
    /// only variant, with the product's id, SKU, prices and weight. For a product with
    /// variants, `sku` is the product's own (base) SKU and `price` the lowest variant price.
    #[serde(default)]
    pub variants: Vec<VariantSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ProductCreated {
    pub product: ProductSnapshot,
}
event!(ProductCreated, "catalog.product_created");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ProductUpdated {
    pub product: ProductSnapshot,
}
event!(ProductUpdated, "catalog.product_updated");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ProductArchived {
    pub product: ProductSnapshot,
}
event!(ProductArchived, "catalog.product_archived");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct StockLine {
    /// The variant stocked (a product without options: its one variant, the product's id).
    pub product_id: ProductId,
    pub quantity: u32,
}

/// Every line of the order is reserved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct StockReserved {
    pub order_id: OrderId,
    pub lines: Vec<StockLine>,
    pub expires_at: Timestamp,
}
event!(StockReserved, "catalog.stock_reserved");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ShortLine {
    /// The variant short (a product without options: its one variant, the product's id).
    pub product_id: ProductId,
    pub requested: u32,
    pub available: i64,
}

/// Nothing was reserved: these lines could not be met.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct StockRejected {
    pub order_id: OrderId,
    pub short_lines: Vec<ShortLine>,
}
event!(StockRejected, "catalog.stock_rejected");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    Cancelled,
    ReservationExpired,
}

/// A reservation was given back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct StockReleased {
    pub order_id: OrderId,
    pub reason: ReleaseReason,
    pub lines: Vec<StockLine>,
}
event!(StockReleased, "catalog.stock_released");

/// Invokes `$callback!(Type)` for every event this context publishes: its published
/// language, from which the event catalogue (`openapi/asyncapi.json`) is built.
#[macro_export]
macro_rules! for_each_event {
    ($callback:ident) => {
        $callback!($crate::ProductCreated);
        $callback!($crate::ProductUpdated);
        $callback!($crate::ProductArchived);
        $callback!($crate::StockReserved);
        $callback!($crate::StockRejected);
        $callback!($crate::StockReleased);
    };
}

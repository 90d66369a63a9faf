//! Catalog's domain: categories, products, stock levels and reservations. Pure: no I/O.

mod category;
mod product;
mod reservation;
mod sellable;
mod stock;
mod variant;

pub(crate) use category::{CategoryName, Slug};
pub(crate) use product::{Description, Product, ProductName, ProductStatus};
pub(crate) use reservation::{Reservation, ReservationStatus, StockMove, Transition};
pub(crate) use sellable::{other_prices, Sku, MAX_PRICE, MAX_WEIGHT_GRAMS};
pub(crate) use stock::StockLevel;
pub(crate) use variant::{
    check_options, check_set, check_variant, key, Defaults, Variant, VariantDraft,
};

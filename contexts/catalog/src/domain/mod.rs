//! Catalog's domain: categories, products and stock levels. Pure: no I/O.

mod category;
mod product;
mod stock;

pub(crate) use category::{CategoryName, Slug};
pub(crate) use product::{Description, Product, ProductName, ProductStatus, Sku, MAX_PRICE};
pub(crate) use stock::StockLevel;

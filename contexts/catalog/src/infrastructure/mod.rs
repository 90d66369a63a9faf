//! Catalog's SQL adapters.

pub(crate) mod sql_catalog;
pub(crate) mod sql_inventory;

//! Catalog's use cases and ports.

pub(crate) mod cache;
pub(crate) mod catalog;
pub(crate) mod inventory;
pub(crate) mod ports;
pub(crate) mod seed;

use kernel::error::FieldError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum CatalogError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("{0} already exists")]
    Duplicate(&'static str),
    #[error("no such product")]
    ProductNotFound,
    #[error("no such variant")]
    VariantNotFound,
    #[error("no such category")]
    CategoryNotFound,
    #[error("the product changed since it was read")]
    Stale,
    #[error("on_hand cannot go below the {reserved} units reserved")]
    BelowReserved { reserved: i64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl CatalogError {
    pub(crate) fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}

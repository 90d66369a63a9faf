//! Shipping's SQL adapter.

pub(crate) mod sql_shipments;

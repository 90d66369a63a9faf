//! Black-box API tests: the real server on port 0, through HTTP, on SQLite and PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod abuse;
mod accounts;
mod address_book;
mod admin_console;
mod catalog;
mod chaos;
mod checkout;
#[cfg(feature = "otlp")]
mod collector;
mod conventions;
mod dashboard;
mod fault_proxy;
mod faults;
mod gateway;
mod guests;
mod helpers;
mod identity;
mod matrix;
mod notifications;
mod observability;
mod operations;
mod pricing;
mod refund_crash;
mod refunds;
mod replicas;
mod returns;
mod saga_faults;
mod schema_compat;
mod shared_state;
mod shipping;
mod split;
mod stripe;
mod variants;
mod webhooks;

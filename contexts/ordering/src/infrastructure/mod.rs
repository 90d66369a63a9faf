//! Ordering's adapters: SQL repositories and the simulated payment gateway.

pub(crate) mod simulated_gateway;
pub(crate) mod sql_carts;
pub(crate) mod sql_customers;
pub(crate) mod sql_guests;
pub(crate) mod sql_orders;
pub(crate) mod sql_promotions;
pub(crate) mod sql_provider_events;
pub(crate) mod sql_rates;
pub(crate) mod stripe_gateway;
pub(crate) mod stripe_webhook;
mod versions;

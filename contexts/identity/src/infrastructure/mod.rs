//! Identity's adapters: SQL repositories, argon2id, Ed25519 signing keys, login throttling.

pub(crate) mod argon;
pub(crate) mod keys;
pub(crate) mod sql_address_book;
pub(crate) mod sql_email_verifications;
pub(crate) mod sql_order_history;
pub(crate) mod sql_password_resets;
pub(crate) mod sql_sessions;
pub(crate) mod sql_users;
pub(crate) mod throttle;

//! Identity's domain: accounts, names, passwords, roles, address books and the order-history
//! read model.
//! Pure: no I/O.

pub(crate) mod address_book;
mod order_history;
mod password;
mod user;

pub(crate) use order_history::{moving_to, OrderHistoryEntry, OrderStatus, Progress};
pub(crate) use password::Password;
pub(crate) use user::{Roles, User, UserName};

//! Identity's domain: accounts, names, passwords, roles and the order-history read model.
//! Pure: no I/O.

mod order_history;
mod password;
mod user;

pub(crate) use order_history::{moving_to, OrderHistoryEntry, OrderStatus, Progress};
pub(crate) use password::Password;
pub(crate) use user::{Roles, User, UserName};

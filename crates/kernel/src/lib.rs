//! The shared kernel: value types every context speaks (ids, money, email, time, pages), the
//! problem+json error, database access for both backends, request plumbing and token checks.

pub mod address;
pub mod auth;
pub mod client_ip;
pub mod clock;
pub mod db;
pub mod email;
pub mod error;
pub mod event;
pub mod fault;
pub mod http;
pub mod id;
pub mod module;
pub mod money;
pub mod pagination;
pub mod schema;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod trace_context;

pub use clock::{Clock, SystemClock};
pub use email::EmailAddress;
pub use error::{ApiError, FieldError};
pub use event::IntegrationEvent;
pub use money::{Currency, Money, MoneyError};
pub use time::Timestamp;

/// Crates the kernel's macros refer to.
#[doc(hidden)]
pub mod reexport {
    pub use utoipa;
}

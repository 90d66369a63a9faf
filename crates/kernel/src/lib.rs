//! The shared kernel: the value types every context and every published event speaks (ids,
//! money, email, addresses, time, the clock, `IntegrationEvent`). It depends on no web
//! framework, database driver or HTTP client, so the `*-contracts` crates can be used by an
//! outside consumer; the runtime plumbing is the `platform` crate's.

pub mod address;
pub mod clock;
pub mod email;
pub mod error;
pub mod event;
pub mod id;
pub mod money;
pub mod schema;
pub mod time;

pub use clock::{Clock, SystemClock};
pub use email::EmailAddress;
pub use error::FieldError;
pub use event::IntegrationEvent;
pub use money::{Currency, Money, MoneyError};
pub use time::Timestamp;

/// Crates the kernel's macros refer to.
#[doc(hidden)]
pub mod reexport {
    pub use utoipa;
}

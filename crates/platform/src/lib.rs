//! The platform the contexts run on: database access for both backends, request plumbing
//! (extractors, body limits, request ids, client addresses), the problem+json error, token
//! checks, cursor paging, fault classification and trace context. Value types live in
//! `kernel`, which the published language depends on without any of this.

pub mod auth;
pub mod client_ip;
pub mod db;
pub mod error;
pub mod fault;
pub mod http;
pub mod module;
pub mod pagination;
pub mod secret;
pub mod shared;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trace_context;

pub use error::ApiError;

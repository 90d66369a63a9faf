//! The composition root: configuration, context wiring, the HTTP server and operations
//! endpoints. Only this crate knows every context.

pub mod admin;
pub mod app;
pub mod asyncapi;
pub mod compression;
pub mod config;
pub mod contexts;
pub mod dashboard;
pub mod gateway;
pub mod limits;
pub mod openapi;
pub mod ops;
pub mod problems;
pub mod service_tokens;
pub mod telemetry;
pub mod upstream;

pub use app::Application;
pub use config::Config;

//! The integration-event contract: what every `*-contracts` event type declares.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// An event one context publishes for others. `NAME` is `<context>.<event>` and, with
/// `VERSION`, the contract: a breaking change to the payload is a new version.
pub trait IntegrationEvent: Serialize + DeserializeOwned + Send + Sync + 'static {
    const NAME: &'static str;
    const VERSION: u32;
    /// The producing context.
    const SOURCE: &'static str;
}

//! The integration-event contract: what every `*-contracts` event type declares.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// An event one context publishes for others. `NAME` is `<context>.<event>` and, with
/// `VERSION`, the contract. A consumer of version N reads N and N+1 (N+1 may only add
/// fields; unknown fields are ignored) and, through [`IntegrationEvent::upcast`], older
/// versions whose fields were renamed, split or retyped (docs/decisions/0037-two-versions-side-by-side-events-are-read.md).
pub trait IntegrationEvent: Serialize + DeserializeOwned + Send + Sync + 'static {
    const NAME: &'static str;
    const VERSION: u32;
    /// The producing context.
    const SOURCE: &'static str;

    /// Brings the payload of an older `version` (below `VERSION`) to this version's shape.
    /// The default knows no older version.
    fn upcast(version: u32, payload: serde_json::Value) -> Result<serde_json::Value, String> {
        let _ = payload;
        Err(format!("no upcaster from version {version}"))
    }
}

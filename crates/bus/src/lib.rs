//! The event bus: envelopes, the `EventBus` port and its adapters, the transactional outbox
//! and its relay, the inbox, retries and dead letters.
//!
//! Delivery is at-least-once on every adapter. Producers write envelopes to their outbox in
//! the transaction of the change; the relay publishes them and only then marks them sent.
//! Consumers record each envelope id in their inbox in the transaction of the effect, so a
//! duplicate has no second effect.

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod consumer;
pub mod dead_letter;
pub mod envelope;
pub mod handler;
pub mod inbox;
pub mod memory;
pub mod outbox;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
#[cfg(feature = "sqs")]
pub mod sqs;
pub mod unit_of_work;

use std::sync::Arc;

pub use consumer::{Consumer, Declaration, EventType, Handles, HandlesEnvelopeOnce, HandlesOnce};
pub use dead_letter::{DeadLetter, DeadLetterStore, SqlDeadLetters, EVERY_GROUP};
pub use envelope::{Causation, Envelope};
pub use handler::{dispatch, DeliveryMode, EventHandler, RetryPolicy, Subscription};
pub use memory::MemoryBus;
pub use outbox::{Outbox, Relay};
pub use unit_of_work::{DetachedUnits, Store, UnitOfWork, Units};

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("no subscription for consumer group {0}")]
    UnknownGroup(String),
    #[error("the bus is shut down")]
    Closed,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The port every adapter implements.
#[async_trait::async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes one envelope. Returns once the adapter guarantees delivery (memory: every
    /// group has handled or dead-lettered it; a broker: it confirmed the message).
    async fn publish(&self, envelope: &Envelope) -> Result<(), BusError>;

    /// Publishes several envelopes, with a result for each (the relay's pass). By default
    /// one `publish` each, concurrently; the memory adapter hands a group that takes
    /// batches its share in one transaction.
    async fn publish_batch(&self, envelopes: &[Envelope]) -> Vec<Result<(), BusError>> {
        futures::future::join_all(envelopes.iter().map(|e| self.publish(e))).await
    }

    /// Registers a handler for a consumer group.
    async fn subscribe(&self, subscription: Subscription) -> Result<(), BusError>;

    /// Delivers an envelope again to one group only (dead-letter replay). The memory adapter
    /// runs the handler and reports its error; broker adapters re-queue to the group.
    async fn redeliver(&self, group: &str, envelope: &Envelope) -> Result<(), BusError>;

    /// Records what the broker itself dead-lettered (its dead-letter queue) in `store`, so it
    /// is listed and replayable with the SQL dead letters. Adapters without such a queue
    /// (memory) have nothing to collect.
    async fn collect_dead_letters(&self, store: Arc<dyn DeadLetterStore>) -> Result<(), BusError> {
        let _ = store;
        Ok(())
    }

    /// Whether the adapter can currently publish (readiness).
    async fn ready(&self) -> bool;

    /// Stops consuming; in-flight handlers finish.
    async fn shutdown(&self);

    fn name(&self) -> &'static str;
}

pub type SharedBus = Arc<dyn EventBus>;

/// Replays a dead letter of `group`: redelivered to that group, or, for a letter the broker
/// parked without naming its group (`EVERY_GROUP`), published to every group again, whose
/// inboxes skip it where it was handled.
pub async fn replay(bus: &dyn EventBus, group: &str, envelope: &Envelope) -> Result<(), BusError> {
    if group == EVERY_GROUP {
        bus.publish(envelope).await
    } else {
        bus.redeliver(group, envelope).await
    }
}

/// A context's messaging: its store (units of work over its database and outbox), and the
/// relay task that drains the outbox onto the bus.
pub fn messaging(
    context: &'static str,
    db: platform::db::Database,
    bus: SharedBus,
) -> (Store, platform::module::BackgroundTask) {
    let outbox = Outbox::new();
    let relay = Relay::new(context, db.clone(), bus, outbox.clone());
    let task: platform::module::BackgroundTask =
        Box::new(move |shutdown| Box::pin(relay.run(shutdown)));
    (Store::new(db, outbox), task)
}

//! Typed subscriptions. A context declares a consumer group as the contract types it handles
//! (`Consumer::new(GROUP, mode).on::<StockReserved>()`), and implements [`Handles<E>`] for
//! each. The declaration is made without a handler instance, so the event catalogue
//! (AsyncAPI) and the broker topology are derived from the very list that `bind` subscribes
//! with: event names come from the contract (`E::NAME`), never from a string in a context.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use kernel::IntegrationEvent;

use crate::dead_letter::DeadLetterStore;
use crate::envelope::Envelope;
use crate::handler::{DeliveryMode, EventHandler, Subscription};

/// Handles one contract type, opened from its envelope (which carries the id the inbox
/// deduplicates on and the causation of what the handler publishes).
#[async_trait::async_trait]
pub trait Handles<E: IntegrationEvent>: Send + Sync + 'static {
    async fn handle(&self, event: E, envelope: &Envelope) -> anyhow::Result<()>;
}

/// One contract type, as a catalogue names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventType {
    pub name: &'static str,
    pub version: u32,
    /// The producing context.
    pub source: &'static str,
}

impl EventType {
    pub fn of<E: IntegrationEvent>() -> Self {
        Self {
            name: E::NAME,
            version: E::VERSION,
            source: E::SOURCE,
        }
    }
}

/// What a consumer group is, without its handler: enough to build queues and a catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    pub group: &'static str,
    pub mode: DeliveryMode,
    pub events: Vec<EventType>,
}

impl Declaration {
    pub fn consumes(&self, event_type: &str) -> bool {
        self.events.iter().any(|e| e.name == event_type)
    }
}

type Route<H> = for<'a> fn(&'a H, &'a Envelope) -> BoxFuture<'a, anyhow::Result<()>>;

fn route<'a, E, H>(handler: &'a H, envelope: &'a Envelope) -> BoxFuture<'a, anyhow::Result<()>>
where
    E: IntegrationEvent,
    H: Handles<E>,
{
    Box::pin(async move {
        let event: E = envelope.open()?;
        <H as Handles<E>>::handle(handler, event, envelope).await
    })
}

/// A consumer group's declaration: its name, how its instances share events, and a route
/// per contract type to `H`'s [`Handles`] implementation.
pub struct Consumer<H> {
    group: &'static str,
    mode: DeliveryMode,
    routes: Vec<(EventType, Route<H>)>,
}

impl<H: Send + Sync + 'static> Consumer<H> {
    pub fn new(group: &'static str, mode: DeliveryMode) -> Self {
        Self {
            group,
            mode,
            routes: Vec::new(),
        }
    }

    /// Adds a contract type this group handles.
    pub fn on<E: IntegrationEvent>(mut self) -> Self
    where
        H: Handles<E>,
    {
        debug_assert!(
            self.routes.iter().all(|(t, _)| t.name != E::NAME),
            "{} declared twice in {}",
            E::NAME,
            self.group
        );
        self.routes.push((EventType::of::<E>(), route::<E, H>));
        self
    }

    pub fn declaration(&self) -> Declaration {
        Declaration {
            group: self.group,
            mode: self.mode,
            events: self.routes.iter().map(|(t, _)| *t).collect(),
        }
    }

    /// The subscription that runs `handler` for the declared types.
    pub fn bind(self, handler: Arc<H>, dead_letters: Arc<dyn DeadLetterStore>) -> Subscription {
        let names: Vec<&str> = self.routes.iter().map(|(t, _)| t.name).collect();
        let router = Router {
            group: self.group,
            handler,
            routes: self.routes.iter().map(|(t, r)| (t.name, *r)).collect(),
        };
        Subscription::new(
            self.group,
            self.mode,
            &names,
            Arc::new(router),
            dead_letters,
        )
    }
}

/// Sends each envelope to the route of its type.
struct Router<H> {
    group: &'static str,
    handler: Arc<H>,
    routes: HashMap<&'static str, Route<H>>,
}

#[async_trait::async_trait]
impl<H: Send + Sync + 'static> EventHandler for Router<H> {
    async fn handle(&self, envelope: &Envelope) -> anyhow::Result<()> {
        match self.routes.get(envelope.event_type.as_str()) {
            Some(route) => route(&self.handler, envelope).await,
            None => {
                // Queues are built from the same declarations, so this is a binding left by
                // an older release: acknowledged, but counted and logged, never silent.
                tracing::warn!(group = self.group, event_type = %envelope.event_type, "event type this group does not handle: acknowledged without effect");
                metrics::counter!(
                    "emporium_events_unrouted_total",
                    "group" => self.group,
                    "type" => envelope.event_type.clone()
                )
                .increment(1);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::sync::Mutex;

    use kernel::Timestamp;
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::envelope::Causation;

    #[derive(Debug, Serialize, Deserialize)]
    struct Left {
        n: u32,
    }
    impl IntegrationEvent for Left {
        const NAME: &'static str = "test.left";
        const VERSION: u32 = 1;
        const SOURCE: &'static str = "test";
    }
    #[derive(Debug, Serialize, Deserialize)]
    struct Right {
        word: String,
    }
    impl IntegrationEvent for Right {
        const NAME: &'static str = "test.right";
        const VERSION: u32 = 2;
        const SOURCE: &'static str = "test";
    }
    #[derive(Debug, Serialize, Deserialize)]
    struct Other;
    impl IntegrationEvent for Other {
        const NAME: &'static str = "test.other";
        const VERSION: u32 = 1;
        const SOURCE: &'static str = "test";
    }

    /// The router never dead-letters (dispatch does); nothing is stored here.
    struct NoDeadLetters;

    #[async_trait::async_trait]
    impl DeadLetterStore for NoDeadLetters {
        async fn put(&self, _: &str, _: &Envelope, _: &str, _: u32) -> anyhow::Result<()> {
            panic!("the router does not dead-letter")
        }
        async fn list(
            &self,
            _: &kernel::pagination::PageRequest,
        ) -> anyhow::Result<kernel::pagination::Page<crate::DeadLetter>> {
            panic!("not listed")
        }
        async fn get(&self, _: uuid::Uuid) -> anyhow::Result<Option<crate::DeadLetter>> {
            Ok(None)
        }
        async fn mark_replayed(&self, _: uuid::Uuid, _: Timestamp) -> anyhow::Result<()> {
            Ok(())
        }
    }

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);

    #[async_trait::async_trait]
    impl Handles<Left> for Seen {
        async fn handle(&self, event: Left, _: &Envelope) -> anyhow::Result<()> {
            self.0.lock().unwrap().push(format!("left {}", event.n));
            Ok(())
        }
    }
    #[async_trait::async_trait]
    impl Handles<Right> for Seen {
        async fn handle(&self, event: Right, _: &Envelope) -> anyhow::Result<()> {
            self.0.lock().unwrap().push(format!("right {}", event.word));
            Ok(())
        }
    }

    fn consumer() -> Consumer<Seen> {
        Consumer::new("test.group", DeliveryMode::Broadcast)
            .on::<Left>()
            .on::<Right>()
    }

    fn wrap<E: IntegrationEvent>(event: &E) -> Envelope {
        Envelope::wrap(event, Timestamp::now(), &Causation::system()).unwrap()
    }

    #[test]
    fn the_declaration_names_the_contract_types() {
        let d = consumer().declaration();
        assert_eq!(d.group, "test.group");
        assert_eq!(d.mode, DeliveryMode::Broadcast);
        assert_eq!(
            d.events,
            vec![
                EventType {
                    name: "test.left",
                    version: 1,
                    source: "test"
                },
                EventType {
                    name: "test.right",
                    version: 2,
                    source: "test"
                }
            ]
        );
        assert!(d.consumes("test.right") && !d.consumes("test.other"));
    }

    #[tokio::test]
    async fn each_type_reaches_its_own_handler_opened() {
        let seen = Arc::new(Seen::default());
        let dead = Arc::new(NoDeadLetters);
        let sub = consumer().bind(seen.clone(), dead);
        assert_eq!(sub.event_types, vec!["test.left", "test.right"]);
        sub.handler
            .handle(&wrap(&Right { word: "x".into() }))
            .await
            .unwrap();
        sub.handler.handle(&wrap(&Left { n: 7 })).await.unwrap();
        // A type the group does not declare has no effect.
        sub.handler.handle(&wrap(&Other)).await.unwrap();
        assert_eq!(*seen.0.lock().unwrap(), vec!["right x", "left 7"]);
    }

    #[tokio::test]
    async fn a_payload_that_does_not_fit_its_type_is_an_error() {
        let seen = Arc::new(Seen::default());
        let sub = consumer().bind(seen.clone(), Arc::new(NoDeadLetters));
        let mut bad = wrap(&Left { n: 1 });
        bad.payload = serde_json::json!({"n": "not a number"});
        assert!(sub.handler.handle(&bad).await.is_err());
        let mut newer = wrap(&Left { n: 1 });
        newer.version = 9;
        assert!(sub.handler.handle(&newer).await.is_err());
        assert!(seen.0.lock().unwrap().is_empty());
    }
}

//! Typed subscriptions. A context declares a consumer group as the contract types it handles
//! (`Consumer::new(GROUP, mode).on::<StockReserved>()`), and implements [`Handles<E>`] for
//! each. The declaration is made without a handler instance, so the event catalogue
//! (AsyncAPI) and the broker topology are derived from the very list that `bind` subscribes
//! with: event names come from the contract (`E::NAME`), never from a string in a context.
//!
//! A handler that changes state implements [`HandlesOnce<E>`] and is declared with
//! `once::<E>()`: the bus begins the unit of work, records the envelope in the group's inbox
//! (a duplicate stops there), runs the handler on it, and commits the change with the
//! events it published.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use kernel::IntegrationEvent;

use crate::dead_letter::{DeadLetterStore, SqlDeadLetters};
use crate::envelope::{Causation, Envelope};
use crate::handler::{DeliveryMode, EventHandler, Subscription};
use crate::unit_of_work::{Store, UnitOfWork};

/// Handles one contract type, opened from its envelope (which carries the id the inbox
/// deduplicates on and the causation of what the handler publishes).
#[async_trait::async_trait]
pub trait Handles<E: IntegrationEvent>: Send + Sync + 'static {
    async fn handle(&self, event: E, envelope: &Envelope) -> anyhow::Result<()>;
}

/// Handles one contract type once per consumer group, inside a unit of work that already
/// holds the envelope's inbox record. The handler may commit early (to call something
/// outside the database afterwards); otherwise the bus commits when it returns `Ok`.
#[async_trait::async_trait]
pub trait HandlesOnce<E: IntegrationEvent>: Send + Sync + 'static {
    async fn handle_once(&self, event: E, work: &mut UnitOfWork) -> anyhow::Result<()>;
}

/// Handles an envelope of a declared type once per consumer group, as it travelled: its
/// payload untouched (a relay of events to the outside, which must pass on what was said,
/// not what this release's contract type keeps of it). The unit of work already holds the
/// envelope's inbox record, as for [`HandlesOnce`].
#[async_trait::async_trait]
pub trait HandlesEnvelopeOnce: Send + Sync + 'static {
    async fn handle_envelope_once(
        &self,
        envelope: &Envelope,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()>;
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

/// What a route needs besides the handler: the group (for the inbox) and the store.
struct Ctx<'a> {
    group: &'static str,
    store: &'a Store,
}

type Route<H> = for<'a> fn(&'a H, &'a Envelope, Ctx<'a>) -> BoxFuture<'a, anyhow::Result<()>>;

/// A `once` route's work inside a unit the caller has opened and recorded in the inbox.
type Step<H> =
    for<'a> fn(&'a H, &'a Envelope, &'a mut UnitOfWork) -> BoxFuture<'a, anyhow::Result<()>>;

fn route<'a, E, H>(
    handler: &'a H,
    envelope: &'a Envelope,
    _: Ctx<'a>,
) -> BoxFuture<'a, anyhow::Result<()>>
where
    E: IntegrationEvent,
    H: Handles<E>,
{
    Box::pin(async move {
        let event: E = envelope.open()?;
        <H as Handles<E>>::handle(handler, event, envelope).await
    })
}

fn route_once<'a, E, H>(
    handler: &'a H,
    envelope: &'a Envelope,
    ctx: Ctx<'a>,
) -> BoxFuture<'a, anyhow::Result<()>>
where
    E: IntegrationEvent,
    H: HandlesOnce<E>,
{
    Box::pin(async move {
        let mut work = ctx.store.begin(Causation::from(envelope)).await?;
        if !crate::inbox::first_delivery(work.conn()?, ctx.group, envelope).await? {
            // Handled before: the transaction is dropped, nothing happens again.
            return Ok(());
        }
        step_once::<E, H>(handler, envelope, &mut work).await?;
        work.commit().await
    })
}

fn step_once<'a, E, H>(
    handler: &'a H,
    envelope: &'a Envelope,
    work: &'a mut UnitOfWork,
) -> BoxFuture<'a, anyhow::Result<()>>
where
    E: IntegrationEvent,
    H: HandlesOnce<E>,
{
    Box::pin(async move {
        let event: E = envelope.open()?;
        <H as HandlesOnce<E>>::handle_once(handler, event, work).await
    })
}

fn route_envelope_once<'a, H>(
    handler: &'a H,
    envelope: &'a Envelope,
    ctx: Ctx<'a>,
) -> BoxFuture<'a, anyhow::Result<()>>
where
    H: HandlesEnvelopeOnce,
{
    Box::pin(async move {
        let mut work = ctx.store.begin(Causation::from(envelope)).await?;
        if !crate::inbox::first_delivery(work.conn()?, ctx.group, envelope).await? {
            return Ok(());
        }
        handler.handle_envelope_once(envelope, &mut work).await?;
        work.commit().await
    })
}

fn step_envelope_once<'a, H>(
    handler: &'a H,
    envelope: &'a Envelope,
    work: &'a mut UnitOfWork,
) -> BoxFuture<'a, anyhow::Result<()>>
where
    H: HandlesEnvelopeOnce,
{
    Box::pin(async move { handler.handle_envelope_once(envelope, work).await })
}

/// A consumer group's declaration: its name, how its instances share events, and a route
/// per contract type to `H`'s [`Handles`] implementation.
pub struct Consumer<H> {
    group: &'static str,
    mode: DeliveryMode,
    routes: Vec<RouteOf<H>>,
    batched: bool,
}

/// One declared type: how it is handled alone, and (`once` routes) its work inside a unit
/// someone else opened, with whether that unit may hold other envelopes too.
struct RouteOf<H> {
    event: EventType,
    route: Route<H>,
    step: Option<Step<H>>,
    batchable: bool,
}

impl<H: Send + Sync + 'static> RouteOf<H> {
    fn once<E: IntegrationEvent>(batchable: bool) -> Self
    where
        H: HandlesOnce<E>,
    {
        Self {
            event: EventType::of::<E>(),
            route: route_once::<E, H>,
            step: Some(step_once::<E, H>),
            batchable,
        }
    }
}

impl<H: Send + Sync + 'static> Consumer<H> {
    pub fn new(group: &'static str, mode: DeliveryMode) -> Self {
        Self {
            group,
            mode,
            routes: Vec::new(),
            batched: false,
        }
    }

    /// Lets the bus hand this group several envelopes in one unit of work, committed once
    /// (the in-process bus does, for what one relay pass publishes). For groups whose
    /// `once` handlers do all their work in the unit they are given, never committing it
    /// early nor calling out of the database. A batch that fails is rolled back whole and
    /// its envelopes are delivered one by one, each with its own retries and dead letter.
    pub fn in_batches(mut self) -> Self {
        self.batched = true;
        self
    }

    /// Adds a contract type this group handles.
    pub fn on<E: IntegrationEvent>(self) -> Self
    where
        H: Handles<E>,
    {
        self.with_route(RouteOf {
            event: EventType::of::<E>(),
            route: route::<E, H>,
            step: None,
            batchable: false,
        })
    }

    /// Adds a contract type this group handles once, in a unit of work (see
    /// [`HandlesOnce`]).
    pub fn once<E: IntegrationEvent>(self) -> Self
    where
        H: HandlesOnce<E>,
    {
        self.with_route(RouteOf::once::<E>(false))
    }

    /// As [`Consumer::once`], and several envelopes of this type (and of the group's other
    /// batched types) may share one unit of work, as in a group declared
    /// [`Consumer::in_batches`], under the same conditions on the handler. A batch that
    /// holds any other type is delivered one by one.
    pub fn once_in_batches<E: IntegrationEvent>(self) -> Self
    where
        H: HandlesOnce<E>,
    {
        self.with_route(RouteOf::once::<E>(true))
    }

    /// Adds a contract type whose envelopes this group handles once, as they travelled
    /// (see [`HandlesEnvelopeOnce`]); batched when the group is.
    pub fn once_envelope<E: IntegrationEvent>(self) -> Self
    where
        H: HandlesEnvelopeOnce,
    {
        self.with_route(RouteOf {
            event: EventType::of::<E>(),
            route: route_envelope_once::<H>,
            step: Some(step_envelope_once::<H>),
            batchable: false,
        })
    }

    fn with_route(mut self, route: RouteOf<H>) -> Self {
        debug_assert!(
            self.routes.iter().all(|r| r.event.name != route.event.name),
            "{} declared twice in {}",
            route.event.name,
            self.group
        );
        self.routes.push(route);
        self
    }

    pub fn declaration(&self) -> Declaration {
        Declaration {
            group: self.group,
            mode: self.mode,
            events: self.routes.iter().map(|r| r.event).collect(),
        }
    }

    /// The subscription that runs `handler` for the declared types, in units of work of
    /// `store`, dead-lettering to the store's database.
    pub fn bind(self, handler: Arc<H>, store: &Store) -> Subscription {
        let dead_letters: Arc<dyn DeadLetterStore> =
            Arc::new(SqlDeadLetters::new(store.db().clone()));
        self.bind_with(handler, store, dead_letters)
    }

    /// As [`Consumer::bind`], with another dead-letter store.
    pub fn bind_with(
        self,
        handler: Arc<H>,
        store: &Store,
        dead_letters: Arc<dyn DeadLetterStore>,
    ) -> Subscription {
        let names: Vec<&str> = self.routes.iter().map(|r| r.event.name).collect();
        let router = Router {
            group: self.group,
            handler,
            store: store.clone(),
            routes: self
                .routes
                .iter()
                .map(|r| (r.event.name, r.route))
                .collect(),
            steps: self
                .routes
                .iter()
                .filter(|r| self.batched || r.batchable)
                .filter_map(|r| r.step.map(|s| (r.event.name, s)))
                .collect(),
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
    store: Store,
    routes: HashMap<&'static str, Route<H>>,
    /// The `once` steps a batch may run in one unit (all of them in a group declared in
    /// batches, those declared `once_in_batches` in another).
    steps: HashMap<&'static str, Step<H>>,
}

#[async_trait::async_trait]
impl<H: Send + Sync + 'static> EventHandler for Router<H> {
    async fn handle(&self, envelope: &Envelope) -> anyhow::Result<()> {
        match self.routes.get(envelope.event_type.as_str()) {
            Some(route) => {
                let ctx = Ctx {
                    group: self.group,
                    store: &self.store,
                };
                route(&self.handler, envelope, ctx).await
            }
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

    async fn handle_batch(&self, envelopes: &[&Envelope]) -> anyhow::Result<bool> {
        let mut steps = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            match self.steps.get(envelope.event_type.as_str()) {
                Some(step) => steps.push(*step),
                None => return Ok(false),
            }
        }
        let Some(first) = envelopes.first() else {
            return Ok(true);
        };
        let mut work = self.store.begin(Causation::from(*first)).await?;
        let fresh = crate::inbox::first_deliveries(work.conn()?, self.group, envelopes).await?;
        for ((envelope, step), fresh) in envelopes.iter().zip(steps).zip(fresh) {
            if !fresh {
                continue;
            }
            // What a handler publishes is caused by its own envelope.
            work.caused_by(Causation::from(*envelope));
            step(&self.handler, envelope, &mut work).await?;
        }
        work.commit().await?;
        Ok(true)
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

    use crate::unit_of_work::tests::{count, store};

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
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(Seen::default());
        let sub = consumer().bind(seen.clone(), &store(dir.path()).await);
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
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(Seen::default());
        let sub = consumer().bind(seen.clone(), &store(dir.path()).await);
        let mut bad = wrap(&Left { n: 1 });
        bad.payload = serde_json::json!({"n": "not a number"});
        assert!(sub.handler.handle(&bad).await.is_err());
        let mut newer = wrap(&Left { n: 1 });
        newer.version = 9;
        assert!(sub.handler.handle(&newer).await.is_err());
        assert!(seen.0.lock().unwrap().is_empty());
    }

    /// Writes an effect row and publishes an event; after writing, fails when told to, and
    /// always refuses `n == 13`.
    struct Effect {
        fail: std::sync::atomic::AtomicBool,
    }

    impl Effect {
        fn new(fail: bool) -> Arc<Self> {
            Arc::new(Self {
                fail: std::sync::atomic::AtomicBool::new(fail),
            })
        }
    }

    #[async_trait::async_trait]
    impl HandlesOnce<Left> for Effect {
        async fn handle_once(&self, event: Left, work: &mut UnitOfWork) -> anyhow::Result<()> {
            sqlx::query(
                "insert into conformance_effect (consumer_group, envelope_id, instance) values ('g', $1, 'i')",
            )
            .bind(event.n.to_string())
            .execute(work.conn()?)
            .await?;
            work.publish(
                &Right {
                    word: event.n.to_string(),
                },
                Timestamp::now(),
            )?;
            anyhow::ensure!(
                !self.fail.load(std::sync::atomic::Ordering::SeqCst),
                "failed after writing"
            );
            anyhow::ensure!(event.n != 13, "13 is refused");
            Ok(())
        }
    }

    #[tokio::test]
    async fn once_records_the_inbox_the_effect_and_the_events_in_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let effect = Effect::new(true);
        let sub = Consumer::new("test.once", DeliveryMode::Competing)
            .once::<Left>()
            .bind(effect.clone(), &store);
        let envelope = wrap(&Left { n: 3 });
        // A failure rolls everything back, the inbox record too: the retry runs again.
        assert!(sub.handler.handle(&envelope).await.is_err());
        for table in ["conformance_effect", "outbox", "inbox"] {
            let n = count(&store, &format!("select count(*) from {table}")).await;
            assert_eq!(n, 0, "{table} after a failure");
        }
        effect
            .fail
            .store(false, std::sync::atomic::Ordering::SeqCst);
        sub.handler.handle(&envelope).await.unwrap();
        // A duplicate is stopped by the inbox before the handler.
        sub.handler.handle(&envelope).await.unwrap();
        for table in ["conformance_effect", "outbox", "inbox"] {
            let n = count(&store, &format!("select count(*) from {table}")).await;
            assert_eq!(n, 1, "{table} after a success and a duplicate");
        }
    }

    async fn causes(store: &Store) -> Vec<String> {
        let rows: Vec<String> =
            sqlx::query_scalar("select envelope from outbox order by created_at, outbox_id")
                .fetch_all(store.db().pool())
                .await
                .unwrap();
        rows.iter()
            .map(|raw| {
                serde_json::from_str::<Envelope>(raw)
                    .unwrap()
                    .causation_id
                    .unwrap_or_default()
            })
            .collect()
    }

    #[tokio::test]
    async fn a_batched_group_handles_a_batch_in_one_unit_all_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let mut sub = Consumer::new("test.batched", DeliveryMode::Competing)
            .in_batches()
            .once::<Left>()
            .bind(Effect::new(false), &store);
        sub.retry.max_attempts = 1;
        let (one, two) = (wrap(&Left { n: 1 }), wrap(&Left { n: 2 }));
        // A duplicate within the batch is stopped by the inbox, as across batches.
        assert!(sub.handler.handle_batch(&[&one, &two, &one]).await.unwrap());
        assert_eq!(
            count(&store, "select count(*) from conformance_effect").await,
            2
        );
        assert_eq!(count(&store, "select count(*) from inbox").await, 2);
        // Each event published is caused by the envelope its handler was given.
        assert_eq!(
            causes(&store).await,
            vec![one.id.to_string(), two.id.to_string()]
        );

        // One refusal rolls the whole batch back...
        let (four, bad) = (wrap(&Left { n: 4 }), wrap(&Left { n: 13 }));
        assert!(sub.handler.handle_batch(&[&four, &bad]).await.is_err());
        assert_eq!(
            count(&store, "select count(*) from conformance_effect").await,
            2
        );
        // ...and the bus then delivers its envelopes one by one: the good one is handled,
        // the refused one dead-lettered.
        let outcomes = crate::handler::dispatch_batch(&sub, &[&four, &bad]).await;
        assert!(matches!(
            outcomes[0],
            Ok(crate::handler::Outcome::Handled { .. })
        ));
        assert!(matches!(
            outcomes[1],
            Ok(crate::handler::Outcome::DeadLettered { .. })
        ));
        assert_eq!(
            count(&store, "select count(*) from conformance_effect").await,
            3
        );
        assert_eq!(count(&store, "select count(*) from dead_letter").await, 1);
    }

    #[derive(Default)]
    struct Both(Mutex<Vec<String>>);

    #[async_trait::async_trait]
    impl HandlesOnce<Left> for Both {
        async fn handle_once(&self, e: Left, _: &mut UnitOfWork) -> anyhow::Result<()> {
            self.0.lock().unwrap().push(format!("left {}", e.n));
            Ok(())
        }
    }
    #[async_trait::async_trait]
    impl HandlesOnce<Right> for Both {
        async fn handle_once(&self, e: Right, _: &mut UnitOfWork) -> anyhow::Result<()> {
            self.0.lock().unwrap().push(format!("right {}", e.word));
            Ok(())
        }
    }

    #[tokio::test]
    async fn only_types_declared_in_batches_share_a_unit() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let both = Arc::new(Both::default());
        let sub = Consumer::new("test.some", DeliveryMode::Competing)
            .once::<Left>()
            .once_in_batches::<Right>()
            .bind(both.clone(), &store);
        let (a, b) = (
            wrap(&Right { word: "a".into() }),
            wrap(&Right { word: "b".into() }),
        );
        assert!(sub.handler.handle_batch(&[&a, &b]).await.unwrap());
        assert_eq!(count(&store, "select count(*) from inbox").await, 2);
        // A batch with a type that is not batched is declined whole, nothing recorded.
        let (left, c) = (wrap(&Left { n: 1 }), wrap(&Right { word: "c".into() }));
        assert!(!sub.handler.handle_batch(&[&c, &left]).await.unwrap());
        assert_eq!(count(&store, "select count(*) from inbox").await, 2);
        assert_eq!(*both.0.lock().unwrap(), vec!["right a", "right b"]);
    }

    #[tokio::test]
    async fn a_group_not_declared_in_batches_takes_envelopes_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let sub = Consumer::new("test.single", DeliveryMode::Competing)
            .once::<Left>()
            .bind(Effect::new(false), &store);
        let (one, two) = (wrap(&Left { n: 1 }), wrap(&Left { n: 2 }));
        assert!(!sub.handler.handle_batch(&[&one, &two]).await.unwrap());
        assert_eq!(count(&store, "select count(*) from inbox").await, 0);
        let outcomes = crate::handler::dispatch_batch(&sub, &[&one, &two]).await;
        assert!(outcomes
            .iter()
            .all(|o| matches!(o, Ok(crate::handler::Outcome::Handled { .. }))));
        assert_eq!(
            count(&store, "select count(*) from conformance_effect").await,
            2
        );
    }
}

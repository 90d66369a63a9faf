//! The RabbitMQ adapter (`EMPORIUM_BUS=rabbitmq`).
//!
//! - One durable topic exchange `<ns>.events`; the routing key is the event type.
//! - A competing group is a durable queue `<ns>.<group>` bound to its event types (a quorum
//!   queue with a delivery limit and at-least-once dead-lettering to `<ns>.dead-letter`); a
//!   broadcast group gets an exclusive, auto-deleted queue per running instance.
//! - Messages are persistent and published with `mandatory` and publisher confirms: a publish
//!   counts only when the broker confirmed it and did not return it as unroutable, so the
//!   outbox marks a row sent only then.
//! - Consumers ack after the handler's transaction committed (through the shared `dispatch`:
//!   retries with backoff, then the SQL dead letter); if even that fails the message is
//!   nacked and requeued, and the queue's delivery limit moves it to the dead-letter exchange.
//! - A supervisor reconnects with backoff after the broker goes away and re-subscribes.
//! - With a dead-letter sink (`collect_dead_letters`), the process consumes `<ns>.dead-letter`
//!   and records each message as an SQL dead letter of the group it came from (the
//!   `x-first-death-queue` header), so what the broker parked is listed and replayable in the
//!   admin API and counted in `emporium_broker_dead_letters_total`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::Confirmation;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::RwLock;
use tokio::task::JoinHandle;

use crate::dead_letter::{DeadLetterStore, EVERY_GROUP};
use crate::envelope::Envelope;
use crate::handler::{dispatch, dispatch_once, DeliveryMode, Subscription};
use crate::{BusError, EventBus};

#[derive(Debug, Clone)]
pub struct RabbitConfig {
    pub url: String,
    /// Prefix of every exchange and queue name (one namespace per deployment).
    pub namespace: String,
    /// Unacknowledged deliveries per consumer.
    pub prefetch: u16,
    /// Deliveries of one message before the broker dead-letters it (quorum queues).
    pub delivery_limit: i64,
    /// Delete idle queues after this long (tests); `None` in production.
    pub queue_expires: Option<Duration>,
    /// Queues to declare before anything is published, so no event is lost because its
    /// consumer has not started yet: `(group, event types)`.
    pub topology: Vec<(String, Vec<String>)>,
    /// Groups whose queue keeps only the newest N messages, dropping the oldest (parking
    /// queues for events no consumer handles yet): `(group, N)`.
    pub capped: Vec<(String, u32)>,
}

impl RabbitConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            namespace: "emporium".to_owned(),
            prefetch: 32,
            delivery_limit: 5,
            queue_expires: None,
            topology: Vec::new(),
            capped: Vec::new(),
        }
    }
}

struct Link {
    connection: Connection,
    publisher: Channel,
}

pub struct RabbitBus {
    config: RabbitConfig,
    instance: String,
    link: RwLock<Option<Link>>,
    subscriptions: Mutex<Vec<Arc<Subscription>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    closed: AtomicBool,
    /// Where messages of the broker's dead-letter queue are recorded (`collect_dead_letters`).
    dead_letter_sink: Mutex<Option<Arc<dyn DeadLetterStore>>>,
}

fn short(s: &str) -> ShortString {
    ShortString::from(s)
}

impl RabbitBus {
    /// Connects (retrying briefly), declares the topology and starts the reconnect supervisor.
    pub async fn connect(config: RabbitConfig) -> anyhow::Result<Arc<Self>> {
        let bus = Arc::new(Self {
            config,
            instance: uuid::Uuid::now_v7().simple().to_string(),
            link: RwLock::new(None),
            subscriptions: Mutex::new(Vec::new()),
            dead_letter_sink: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        });
        let mut wait = Duration::from_millis(200);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match bus.establish().await {
                Ok(()) => break,
                Err(e) if attempts < 5 => {
                    tracing::warn!(error = %format!("{e:#}"), "RabbitMQ not reachable yet, retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e.context("EMPORIUM_AMQP_URL: cannot connect to RabbitMQ")),
            }
        }
        let weak = Arc::downgrade(&bus);
        let supervisor = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(500);
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let Some(bus) = weak.upgrade() else { break };
                if bus.closed.load(Ordering::SeqCst) {
                    break;
                }
                if bus.connected().await {
                    backoff = Duration::from_millis(500);
                    continue;
                }
                tracing::warn!("RabbitMQ connection lost; reconnecting");
                match bus.establish().await {
                    Ok(()) => tracing::info!("RabbitMQ reconnected"),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "RabbitMQ reconnect failed");
                        tokio::time::sleep(backoff).await;
                        // Capped low: once the broker is back, readiness returns within
                        // seconds (an attempt against a broker that is down costs little).
                        backoff = (backoff * 2).min(Duration::from_secs(4));
                    }
                }
            }
        });
        bus.track(supervisor);
        Ok(bus)
    }

    fn track(&self, task: JoinHandle<()>) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
        }
    }

    fn exchange(&self) -> String {
        format!("{}.events", self.config.namespace)
    }

    fn dead_letter_exchange(&self) -> String {
        format!("{}.dead-letter", self.config.namespace)
    }

    fn queue(&self, group: &str, mode: DeliveryMode) -> String {
        match mode {
            DeliveryMode::Competing => format!("{}.{group}", self.config.namespace),
            DeliveryMode::Broadcast => {
                format!("{}.{group}.{}", self.config.namespace, self.instance)
            }
        }
    }

    async fn connected(&self) -> bool {
        self.link
            .read()
            .await
            .as_ref()
            .is_some_and(|l| l.connection.status().connected() && l.publisher.status().connected())
    }

    /// Opens a connection, declares exchanges and known queues, and (re)starts consumers.
    async fn establish(&self) -> anyhow::Result<()> {
        let connection = Connection::connect(&self.config.url, ConnectionProperties::default())
            .await
            .context("cannot connect")?;
        let publisher = connection.create_channel().await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let durable = ExchangeDeclareOptions {
            durable: true,
            auto_delete: self.config.queue_expires.is_some(),
            ..ExchangeDeclareOptions::default()
        };
        publisher
            .exchange_declare(
                short(&self.exchange()),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await?;
        publisher
            .exchange_declare(
                short(&self.dead_letter_exchange()),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await?;
        let dead = self.dead_letter_exchange();
        self.declare_queue(&publisher, &dead, DeliveryMode::Competing, false)
            .await?;
        publisher
            .queue_bind(
                short(&dead),
                short(&dead),
                short(""),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        for (group, types) in &self.config.topology {
            let queue = self.queue(group, DeliveryMode::Competing);
            self.declare_queue(&publisher, &queue, DeliveryMode::Competing, true)
                .await?;
            for t in types {
                publisher
                    .queue_bind(
                        short(&queue),
                        short(&self.exchange()),
                        short(t),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
        }
        *self.link.write().await = Some(Link {
            connection,
            publisher,
        });
        let subscriptions: Vec<Arc<Subscription>> = self
            .subscriptions
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        for sub in subscriptions {
            self.consume(sub).await?;
        }
        let sink = self.dead_letter_sink.lock().ok().and_then(|s| s.clone());
        if let Some(store) = sink {
            self.collect(store).await?;
        }
        Ok(())
    }

    async fn declare_queue(
        &self,
        channel: &Channel,
        name: &str,
        mode: DeliveryMode,
        dead_letter: bool,
    ) -> anyhow::Result<()> {
        let mut args = FieldTable::default();
        if let Some(expires) = self.config.queue_expires {
            args.insert(
                short("x-expires"),
                AMQPValue::LongLongInt(expires.as_millis() as i64),
            );
        }
        let options = match mode {
            DeliveryMode::Competing => {
                args.insert(
                    short("x-queue-type"),
                    AMQPValue::LongString("quorum".into()),
                );
                let cap = self
                    .config
                    .capped
                    .iter()
                    .find(|(group, _)| self.queue(group, DeliveryMode::Competing) == name)
                    .map(|(_, cap)| *cap);
                if let Some(cap) = cap {
                    args.insert(short("x-max-length"), AMQPValue::LongLongInt(cap.into()));
                    args.insert(
                        short("x-overflow"),
                        AMQPValue::LongString("drop-head".into()),
                    );
                } else if dead_letter {
                    args.insert(
                        short("x-delivery-limit"),
                        AMQPValue::LongLongInt(self.config.delivery_limit),
                    );
                    args.insert(
                        short("x-dead-letter-exchange"),
                        AMQPValue::LongString(self.dead_letter_exchange().into()),
                    );
                    args.insert(
                        short("x-dead-letter-strategy"),
                        AMQPValue::LongString("at-least-once".into()),
                    );
                    args.insert(
                        short("x-overflow"),
                        AMQPValue::LongString("reject-publish".into()),
                    );
                }
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                }
            }
            DeliveryMode::Broadcast => QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
        };
        channel
            .queue_declare(short(name), options, args)
            .await
            .with_context(|| format!("cannot declare queue {name}"))?;
        Ok(())
    }

    /// Declares the subscription's queue and bindings and starts consuming it.
    async fn consume(&self, sub: Arc<Subscription>) -> anyhow::Result<()> {
        let guard = self.link.read().await;
        let link = guard
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("not connected"))?;
        let channel = link.connection.create_channel().await?;
        channel
            .basic_qos(self.config.prefetch, BasicQosOptions::default())
            .await?;
        let queue = self.queue(&sub.group, sub.mode);
        self.declare_queue(&channel, &queue, sub.mode, true).await?;
        for t in &sub.event_types {
            channel
                .queue_bind(
                    short(&queue),
                    short(&self.exchange()),
                    short(t),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        let tag = format!("{}-{}", sub.group, self.instance);
        let mut consumer = channel
            .basic_consume(
                short(&queue),
                short(&tag),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        drop(guard);
        let task = tokio::spawn(async move {
            let _channel = channel;
            while let Some(delivery) = consumer.next().await {
                let Ok(delivery) = delivery else { break };
                let sub = sub.clone();
                tokio::spawn(async move {
                    let envelope: Envelope = match serde_json::from_slice(&delivery.data) {
                        Ok(e) => e,
                        Err(e) => {
                            tracing::error!(error = %e, "unreadable message, dead-lettered");
                            let _ = delivery
                                .nack(BasicNackOptions {
                                    requeue: false,
                                    multiple: false,
                                })
                                .await;
                            return;
                        }
                    };
                    match dispatch(&sub, &envelope).await {
                        Ok(_) => {
                            let _ = delivery.ack(BasicAckOptions::default()).await;
                        }
                        Err(e) => {
                            tracing::error!(error = %format!("{e:#}"), "delivery not handled, requeued");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            let _ = delivery
                                .nack(BasicNackOptions {
                                    requeue: true,
                                    multiple: false,
                                })
                                .await;
                        }
                    }
                });
            }
        });
        self.track(task);
        Ok(())
    }

    /// Consumes the deployment's dead-letter queue into `store`: each message becomes an SQL
    /// dead letter of the group whose queue gave up on it. A message is acked only once it is
    /// recorded; while the store fails, it stays unacked and the write is retried.
    async fn collect(&self, store: Arc<dyn DeadLetterStore>) -> anyhow::Result<()> {
        let guard = self.link.read().await;
        let link = guard
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("not connected"))?;
        let channel = link.connection.create_channel().await?;
        channel.basic_qos(8, BasicQosOptions::default()).await?;
        let queue = self.dead_letter_exchange();
        let mut consumer = channel
            .basic_consume(
                short(&queue),
                short(&format!("dead-letters-{}", self.instance)),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        drop(guard);
        let prefix = format!("{}.", self.config.namespace);
        let limit = u32::try_from(self.config.delivery_limit).unwrap_or(u32::MAX);
        let task = tokio::spawn(async move {
            let _channel = channel;
            while let Some(delivery) = consumer.next().await {
                let Ok(delivery) = delivery else { break };
                let header = |name: &str| -> Option<String> {
                    let headers = delivery.properties.headers().as_ref()?;
                    match headers.inner().get(name)? {
                        AMQPValue::LongString(s) => Some(s.to_string()),
                        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
                        _ => None,
                    }
                };
                let group = header("x-first-death-queue")
                    .and_then(|q| q.strip_prefix(&prefix).map(str::to_owned))
                    .unwrap_or_else(|| EVERY_GROUP.to_owned());
                let reason = header("x-first-death-reason").unwrap_or_else(|| "?".to_owned());
                let Ok(envelope) = serde_json::from_slice::<Envelope>(&delivery.data) else {
                    tracing::error!(group = %group, bytes = delivery.data.len(), payload = %String::from_utf8_lossy(&delivery.data[..delivery.data.len().min(512)]), "unreadable message in the broker's dead-letter queue: dropped");
                    metrics::counter!("emporium_broker_dead_letters_total", "group" => group, "outcome" => "unreadable").increment(1);
                    let _ = delivery.ack(BasicAckOptions::default()).await;
                    continue;
                };
                let error = format!(
                    "dead-lettered by the broker ({reason}) after its delivery limit: the handler kept failing and its dead letter could not be recorded then"
                );
                crate::dead_letter::collect_one(&*store, &group, &envelope, &error, limit).await;
                let _ = delivery.ack(BasicAckOptions::default()).await;
            }
        });
        self.track(task);
        Ok(())
    }

    async fn publish_to(
        &self,
        exchange: &str,
        routing_key: &str,
        envelope: &Envelope,
    ) -> Result<(), BusError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(BusError::Closed);
        }
        let payload = serde_json::to_vec(envelope).map_err(anyhow::Error::from)?;
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(short("application/json"))
            .with_message_id(short(&envelope.id.to_string()))
            .with_type(short(&envelope.event_type));
        let guard = self.link.read().await;
        let link = guard
            .as_ref()
            .ok_or_else(|| BusError::Other(anyhow::anyhow!("RabbitMQ is not connected")))?;
        let confirm = link
            .publisher
            .basic_publish(
                short(exchange),
                short(routing_key),
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                &payload,
                properties,
            )
            .await
            .map_err(anyhow::Error::from)?
            .await
            .map_err(anyhow::Error::from)?;
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => Err(BusError::Other(anyhow::anyhow!(
                "{} was returned as unroutable: no queue is bound for it",
                envelope.event_type
            ))),
            Confirmation::Nack(_) => Err(BusError::Other(anyhow::anyhow!(
                "the broker refused {}",
                envelope.event_type
            ))),
            Confirmation::NotRequested => Err(BusError::Other(anyhow::anyhow!(
                "publisher confirms are off"
            ))),
        }
    }
}

#[async_trait::async_trait]
impl EventBus for RabbitBus {
    async fn publish(&self, envelope: &Envelope) -> Result<(), BusError> {
        let exchange = self.exchange();
        self.publish_to(&exchange, &envelope.event_type, envelope)
            .await
    }

    async fn subscribe(&self, subscription: Subscription) -> Result<(), BusError> {
        let sub = Arc::new(subscription);
        if let Ok(mut subs) = self.subscriptions.lock() {
            subs.push(sub.clone());
        }
        if self.connected().await {
            self.consume(sub).await?;
        }
        Ok(())
    }

    async fn redeliver(&self, group: &str, envelope: &Envelope) -> Result<(), BusError> {
        match crate::handler::local_group(&self.subscriptions, group) {
            // A group this process runs: handle it here and report the outcome.
            Some(sub) => Ok(dispatch_once(&sub, envelope).await?),
            // Another process's group: put it back on that group's queue.
            None => {
                let queue = self.queue(group, DeliveryMode::Competing);
                self.publish_to("", &queue, envelope).await
            }
        }
    }

    async fn ready(&self) -> bool {
        self.connected().await
    }

    async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut tasks) = self.tasks.lock() {
            for t in tasks.drain(..) {
                t.abort();
            }
        }
        if let Some(link) = self.link.write().await.take() {
            let _ = link.connection.close(200, short("shutdown")).await;
        }
    }

    async fn collect_dead_letters(&self, store: Arc<dyn DeadLetterStore>) -> Result<(), BusError> {
        if let Ok(mut sink) = self.dead_letter_sink.lock() {
            *sink = Some(store.clone());
        }
        if self.connected().await {
            self.collect(store).await?;
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "rabbitmq"
    }
}

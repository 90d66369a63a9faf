//! The Amazon SNS + SQS adapter (`EMPORIUM_BUS=sqs`, cargo feature `sqs`).
//!
//! - One SNS topic `<ns>-events`; every envelope is published to it once, with its event type
//!   as the `type` message attribute.
//! - A competing group is an SQS queue `<ns>-<group>` subscribed to the topic with raw delivery
//!   and a filter policy on `type`; a broadcast group gets a queue per running instance,
//!   removed at shutdown. Every queue has a redrive policy to `<ns>-dead-letter` after
//!   `delivery_limit` receives.
//! - With a dead-letter sink (`collect_dead_letters`) the process drains `<ns>-dead-letter`
//!   into SQL dead letters for every group (SQS does not name the queue that gave up), so they
//!   are listed and replayable in the admin API.
//! - Consumers long-poll, run the shared `dispatch` (retries with backoff, then the SQL dead
//!   letter) and delete the message only after the handler's transaction committed. A message
//!   that could not even be dead-lettered is made visible again a little later; past the
//!   delivery limit SQS moves it to the dead-letter queue.
//! - A publish counts when SNS accepted it. SNS cannot tell that nobody is subscribed, so the
//!   topology of every competing group is created at start-up (as on RabbitMQ) and events
//!   published before a consumer first runs wait in its queue.
//! - Requests are plain HTTPS: a broken connection or throttling is retried by the SDK, and
//!   pollers back off and resume on their own.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_sqs::types::QueueAttributeName;
use tokio::task::JoinHandle;

use crate::dead_letter::{DeadLetterStore, EVERY_GROUP};
use crate::envelope::Envelope;
use crate::handler::{dispatch, dispatch_once, DeliveryMode, Subscription};
use crate::{BusError, EventBus};

#[derive(Debug, Clone)]
pub struct SqsConfig {
    /// A custom endpoint (a local emulator); `None`: the region's AWS endpoints.
    pub endpoint: Option<String>,
    /// `None`: from the environment (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// Fixed credentials (emulators, tests); `None`: the SDK's default chain.
    pub static_credentials: Option<(String, String)>,
    /// Prefix of the topic and every queue (one namespace per deployment).
    pub namespace: String,
    /// Receives of one message before SQS moves it to the dead-letter queue.
    pub delivery_limit: u32,
    /// How long a received message stays hidden from other consumers.
    pub visibility_timeout: Duration,
    /// Long-poll wait (at most 20 s).
    pub wait_time: Duration,
    /// Competing groups created at start-up: `(group, event types)`.
    pub topology: Vec<(String, Vec<String>)>,
}

impl SqsConfig {
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            endpoint: None,
            region: None,
            static_credentials: None,
            namespace: namespace.into(),
            delivery_limit: 5,
            visibility_timeout: Duration::from_secs(30),
            wait_time: Duration::from_secs(20),
            topology: Vec::new(),
        }
    }
}

/// A queue this instance created and subscribed.
#[derive(Debug, Clone)]
struct Queue {
    url: String,
    subscription_arn: Option<String>,
}

pub struct SqsBus {
    config: SqsConfig,
    instance: String,
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    topic_arn: String,
    dead_letter_arn: String,
    dead_letter_url: String,
    /// Queue URLs by queue name.
    queues: Mutex<BTreeMap<String, Queue>>,
    subscriptions: Mutex<Vec<Arc<Subscription>>>,
    /// Per-instance queues, deleted at shutdown.
    broadcast_queues: Mutex<Vec<Queue>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    closed: Arc<AtomicBool>,
}

/// SQS queue and SNS topic names: letters, digits, `-` and `_`, at most 80 characters. A
/// longer name keeps its start and gets a hash of the whole, so it stays unique.
pub fn resource_name(parts: &[&str]) -> String {
    let joined = parts.join("-");
    let clean: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.len() <= 80 {
        return clean;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(joined.as_bytes());
    let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    format!("{}-{hash}", &clean[..69])
}

fn sdk_error(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> anyhow::Error {
    anyhow::Error::new(e).context(what.to_owned())
}

impl SqsBus {
    /// Connects, creates the topic, the dead-letter queue and every known group's queue.
    pub async fn connect(config: SqsConfig) -> anyhow::Result<Arc<Self>> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(region) = &config.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some((key, secret)) = &config.static_credentials {
            loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
                key, secret, None, None, "static",
            ));
        }
        let shared = loader.load().await;
        let sns = aws_sdk_sns::Client::new(&shared);
        let sqs = aws_sdk_sqs::Client::new(&shared);

        let topic = resource_name(&[&config.namespace, "events"]);
        let topic_arn = sns
            .create_topic()
            .name(&topic)
            .send()
            .await
            .map_err(|e| sdk_error("cannot create the SNS topic", e))?
            .topic_arn()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("SNS returned no topic ARN"))?;
        let dead_letter = resource_name(&[&config.namespace, "dead-letter"]);
        let dead_letter_url = create_queue(&sqs, &dead_letter, &[]).await?;
        let dead_letter_arn = queue_arn(&sqs, &dead_letter_url).await?;

        let bus = Arc::new(Self {
            instance: uuid::Uuid::now_v7().simple().to_string()[20..].to_owned(),
            sns,
            sqs,
            topic_arn,
            dead_letter_arn,
            dead_letter_url,
            queues: Mutex::new(BTreeMap::new()),
            subscriptions: Mutex::new(Vec::new()),
            broadcast_queues: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
            closed: Arc::new(AtomicBool::new(false)),
            config,
        });
        for (group, types) in bus.config.topology.clone() {
            bus.declare(&group, DeliveryMode::Competing, &types).await?;
        }
        Ok(bus)
    }

    fn queue_name(&self, group: &str, mode: DeliveryMode) -> String {
        match mode {
            DeliveryMode::Competing => resource_name(&[&self.config.namespace, group]),
            DeliveryMode::Broadcast => {
                resource_name(&[&self.config.namespace, group, &self.instance])
            }
        }
    }

    /// Creates the group's queue (idempotent), lets the topic write to it, and subscribes it
    /// with a filter on the event types. Returns the queue URL.
    async fn declare(
        &self,
        group: &str,
        mode: DeliveryMode,
        types: &[String],
    ) -> anyhow::Result<String> {
        let name = self.queue_name(group, mode);
        if let Some(q) = self.queues.lock().ok().and_then(|q| q.get(&name).cloned()) {
            return Ok(q.url);
        }
        let redrive = serde_json::json!({
            "deadLetterTargetArn": self.dead_letter_arn,
            "maxReceiveCount": self.config.delivery_limit.to_string(),
        })
        .to_string();
        let retention = match mode {
            // Fourteen days (the maximum): a consumer can be down for a long time.
            DeliveryMode::Competing => "1209600",
            // Cache invalidations are worthless after a minute; an instance that died
            // without deleting its queue leaves nothing large behind.
            DeliveryMode::Broadcast => "60",
        };
        let visibility = self.config.visibility_timeout.as_secs().max(1).to_string();
        let url = create_queue(
            &self.sqs,
            &name,
            &[
                (QueueAttributeName::RedrivePolicy, redrive),
                (
                    QueueAttributeName::MessageRetentionPeriod,
                    retention.to_owned(),
                ),
                (QueueAttributeName::VisibilityTimeout, visibility),
            ],
        )
        .await?;
        let arn = queue_arn(&self.sqs, &url).await?;
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": self.topic_arn}},
            }],
        })
        .to_string();
        self.sqs
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::Policy, policy)
            .send()
            .await
            .map_err(|e| sdk_error("cannot allow the topic to write to the queue", e))?;
        let subscription_arn = self
            .sns
            .subscribe()
            .topic_arn(&self.topic_arn)
            .protocol("sqs")
            .endpoint(&arn)
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(|e| sdk_error("cannot subscribe the queue to the topic", e))?
            .subscription_arn()
            .map(str::to_owned);
        if let Some(sub) = &subscription_arn {
            let filter = serde_json::json!({ "type": types }).to_string();
            for (name, value) in [("RawMessageDelivery", "true"), ("FilterPolicy", &filter)] {
                self.sns
                    .set_subscription_attributes()
                    .subscription_arn(sub)
                    .attribute_name(name)
                    .attribute_value(value)
                    .send()
                    .await
                    .map_err(|e| sdk_error("cannot configure the subscription", e))?;
            }
        }
        let queue = Queue {
            url: url.clone(),
            subscription_arn,
        };
        if let Ok(mut queues) = self.queues.lock() {
            queues.insert(name, queue.clone());
        }
        if mode == DeliveryMode::Broadcast {
            if let Ok(mut b) = self.broadcast_queues.lock() {
                b.push(queue);
            }
        }
        Ok(url)
    }

    fn track(&self, task: JoinHandle<()>) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
        }
    }

    /// Long-polls the queue until shutdown; handles each batch concurrently.
    fn poll(&self, sub: Arc<Subscription>, url: String) {
        let sqs = self.sqs.clone();
        let closed = self.closed.clone();
        let wait = self.config.wait_time.as_secs().min(20) as i32;
        let task = tokio::spawn(async move {
            let mut receiver = Receiver::new(&sqs, &url, wait, &sub.group);
            while !closed.load(Ordering::SeqCst) {
                let Some(messages) = receiver.next().await else {
                    continue;
                };
                let handled = messages.into_iter().map(|m| handle(&sqs, &sub, &url, m));
                futures::future::join_all(handled).await;
            }
        });
        self.track(task);
    }
}

/// Long-polls one queue for batches, backing off (0.2 s doubling to 30 s) while SQS fails.
struct Receiver<'a> {
    sqs: &'a aws_sdk_sqs::Client,
    url: &'a str,
    wait: i32,
    what: &'a str,
    backoff: Duration,
}

impl<'a> Receiver<'a> {
    fn new(sqs: &'a aws_sdk_sqs::Client, url: &'a str, wait: i32, what: &'a str) -> Self {
        Self {
            sqs,
            url,
            wait,
            what,
            backoff: Duration::from_millis(200),
        }
    }

    /// The next batch (possibly empty); `None` after a failed receive and its backoff.
    async fn next(&mut self) -> Option<Vec<aws_sdk_sqs::types::Message>> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(self.wait)
            .send()
            .await;
        match received {
            Ok(out) => {
                self.backoff = Duration::from_millis(200);
                Some(out.messages.unwrap_or_default())
            }
            Err(e) => {
                tracing::warn!(queue = self.what, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "SQS receive failed; retrying");
                tokio::time::sleep(self.backoff).await;
                self.backoff = (self.backoff * 2).min(Duration::from_secs(30));
                None
            }
        }
    }
}

/// Moves the dead-letter queue's messages into `store` until shutdown. SQS does not say which
/// queue gave up on a message, so each is recorded for every group (`EVERY_GROUP`); a
/// replay publishes it to the topic again and the groups that handled it skip it.
fn collect_loop(
    sqs: aws_sdk_sqs::Client,
    url: String,
    store: Arc<dyn DeadLetterStore>,
    closed: Arc<AtomicBool>,
    wait: i32,
    limit: u32,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut receiver = Receiver::new(&sqs, &url, wait, "dead letters");
        while !closed.load(Ordering::SeqCst) {
            let Some(messages) = receiver.next().await else {
                continue;
            };
            for m in messages {
                let Some(receipt) = m.receipt_handle() else {
                    continue;
                };
                let Ok(envelope) = serde_json::from_str::<Envelope>(m.body().unwrap_or_default())
                else {
                    // Left in the queue, out of sight for 12 hours, for a person to look at.
                    tracing::error!("unreadable message in the SQS dead-letter queue: left there");
                    metrics::counter!("emporium_broker_dead_letters_total", "group" => EVERY_GROUP, "outcome" => "unreadable").increment(1);
                    let _ = sqs
                        .change_message_visibility()
                        .queue_url(&url)
                        .receipt_handle(receipt)
                        .visibility_timeout(43_200)
                        .send()
                        .await;
                    continue;
                };
                let error = "dead-lettered by SQS after its receive limit: the handler kept failing and its dead letter could not be recorded then";
                crate::dead_letter::collect_one(&*store, EVERY_GROUP, &envelope, error, limit)
                    .await;
                if let Err(e) = sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "cannot delete a collected dead letter; it may be recorded twice");
                }
            }
        }
    })
}

/// Runs one message through `dispatch`; deletes it once handled (or dead-lettered in SQL),
/// otherwise lets it reappear soon.
async fn handle(
    sqs: &aws_sdk_sqs::Client,
    sub: &Subscription,
    url: &str,
    message: aws_sdk_sqs::types::Message,
) {
    let Some(receipt) = message.receipt_handle() else {
        return;
    };
    let envelope: Result<Envelope, _> = serde_json::from_str(message.body().unwrap_or_default());
    let done = match envelope {
        Ok(envelope) => match dispatch(sub, &envelope).await {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "delivery not handled; it will be received again");
                false
            }
        },
        Err(e) => {
            // Received again until the redrive policy moves it to the dead-letter queue.
            tracing::error!(error = %e, "unreadable message");
            false
        }
    };
    let result = if done {
        sqs.delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
    } else {
        sqs.change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
    };
    if let Err(e) = result {
        // The message reappears after its visibility timeout; the inbox makes the second
        // delivery harmless.
        tracing::warn!(error = %e, "cannot settle an SQS message");
    }
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> anyhow::Result<String> {
    let mut request = sqs.create_queue().queue_name(name);
    for (k, v) in attributes {
        request = request.attributes(k.clone(), v);
    }
    request
        .send()
        .await
        .map_err(|e| sdk_error(&format!("cannot create queue {name}"), e))?
        .queue_url()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("SQS returned no URL for {name}"))
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sdk_error("cannot read a queue's ARN", e))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .with_context(|| format!("no ARN for {url}"))
}

#[async_trait::async_trait]
impl EventBus for SqsBus {
    async fn publish(&self, envelope: &Envelope) -> Result<(), BusError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(BusError::Closed);
        }
        let body = serde_json::to_string(envelope).map_err(anyhow::Error::from)?;
        let kind = aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(&envelope.event_type)
            .build()
            .map_err(anyhow::Error::from)?;
        self.sns
            .publish()
            .topic_arn(&self.topic_arn)
            .message(body)
            .message_attributes("type", kind)
            .send()
            .await
            .map_err(|e| {
                BusError::Other(anyhow::anyhow!(
                    "SNS refused {}: {}",
                    envelope.event_type,
                    aws_sdk_sns::error::DisplayErrorContext(e)
                ))
            })?;
        Ok(())
    }

    async fn subscribe(&self, subscription: Subscription) -> Result<(), BusError> {
        let sub = Arc::new(subscription);
        let url = self.declare(&sub.group, sub.mode, &sub.event_types).await?;
        if let Ok(mut subs) = self.subscriptions.lock() {
            subs.push(sub.clone());
        }
        self.poll(sub, url);
        Ok(())
    }

    async fn redeliver(&self, group: &str, envelope: &Envelope) -> Result<(), BusError> {
        match crate::handler::local_group(&self.subscriptions, group) {
            Some(sub) => Ok(dispatch_once(&sub, envelope).await?),
            None => {
                let name = self.queue_name(group, DeliveryMode::Competing);
                let url = self
                    .sqs
                    .get_queue_url()
                    .queue_name(&name)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&format!("no queue {name}"), e))?
                    .queue_url()
                    .map(str::to_owned)
                    .ok_or_else(|| BusError::UnknownGroup(group.to_owned()))?;
                let body = serde_json::to_string(envelope).map_err(anyhow::Error::from)?;
                self.sqs
                    .send_message()
                    .queue_url(url)
                    .message_body(body)
                    .send()
                    .await
                    .map_err(|e| sdk_error("cannot requeue the event", e))?;
                Ok(())
            }
        }
    }

    async fn ready(&self) -> bool {
        if self.closed.load(Ordering::SeqCst) {
            return false;
        }
        let probe = self
            .sns
            .get_topic_attributes()
            .topic_arn(&self.topic_arn)
            .send();
        matches!(
            tokio::time::timeout(Duration::from_secs(2), probe).await,
            Ok(Ok(_))
        )
    }

    async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut tasks) = self.tasks.lock() {
            for t in tasks.drain(..) {
                t.abort();
            }
        }
        let broadcast: Vec<Queue> = self
            .broadcast_queues
            .lock()
            .map(|mut b| b.drain(..).collect())
            .unwrap_or_default();
        for q in broadcast {
            if let Some(arn) = &q.subscription_arn {
                let _ = self.sns.unsubscribe().subscription_arn(arn).send().await;
            }
            let _ = self.sqs.delete_queue().queue_url(&q.url).send().await;
        }
    }

    async fn collect_dead_letters(&self, store: Arc<dyn DeadLetterStore>) -> Result<(), BusError> {
        let task = collect_loop(
            self.sqs.clone(),
            self.dead_letter_url.clone(),
            store,
            self.closed.clone(),
            self.config.wait_time.as_secs().min(20) as i32,
            self.config.delivery_limit,
        );
        self.track(task);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "sqs"
    }
}

impl Drop for SqsBus {
    /// Pollers stop with the bus (broadcast queues are removed only by `shutdown`).
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut tasks) = self.tasks.lock() {
            for t in tasks.drain(..) {
                t.abort();
            }
        }
    }
}

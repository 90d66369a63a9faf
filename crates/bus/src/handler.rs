//! Subscriptions, and the dispatch loop every adapter shares: retry with backoff, then a
//! dead letter carrying the last error.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::dead_letter::DeadLetterStore;
use crate::envelope::Envelope;

#[async_trait::async_trait]
pub trait EventHandler: Send + Sync + 'static {
    async fn handle(&self, envelope: &Envelope) -> anyhow::Result<()>;

    /// Handles several envelopes in one transaction, all or none. `Ok(false)` when this
    /// handler takes them one at a time (the default): nothing was done.
    async fn handle_batch(&self, _envelopes: &[&Envelope]) -> anyhow::Result<bool> {
        Ok(false)
    }
}

/// How a consumer group shares events among its running instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// One instance of the group handles each event.
    Competing,
    /// Every running instance handles each event (e.g. cache invalidation).
    Broadcast,
}

/// How long a delivery that keeps failing transiently is retried before it is dead-lettered
/// anyway (`EMPORIUM_TRANSIENT_RETRY_SECS`, set once at start-up; default 15 minutes).
static TRANSIENT_RETRY_SECS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(15 * 60);

/// Sets how long transient failures are retried, for every subscription of this process.
pub fn set_transient_retry_limit(limit: Duration) {
    TRANSIENT_RETRY_SECS.store(limit.as_secs(), std::sync::atomic::Ordering::Relaxed);
}

fn transient_retry_limit() -> Duration {
    Duration::from_secs(TRANSIENT_RETRY_SECS.load(std::sync::atomic::Ordering::Relaxed))
}

/// Two kinds of failure, two policies. A *deterministic* failure (bad payload, a rule that
/// rejects the event) is tried `max_attempts` times, then dead-lettered. A *transient* one
/// (`platform::fault::is_transient`: a database or broker unreachable, a pool timeout, a
/// serialization failure) does not count as an attempt: it is retried with exponential
/// backoff and jitter, up to `transient_max_backoff` apart, for `transient_for` (default: the
/// process-wide limit), so an outage of minutes dead-letters and cancels nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// `None`: the process-wide limit.
    pub transient_for: Option<Duration>,
    pub transient_max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            transient_for: None,
            transient_max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Backoff before attempt `attempt + 1` (exponential, x4, with up to 25% jitter).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 4u32.saturating_pow(attempt.saturating_sub(1));
        let base = self
            .first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        jitter(base)
    }

    /// Backoff after the `failures`-th transient failure in a row (x2, up to 25% jitter).
    pub fn transient_backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        jitter(
            self.first_backoff
                .saturating_mul(factor)
                .min(self.transient_max_backoff),
        )
    }

    fn transient_limit(&self) -> Duration {
        self.transient_for.unwrap_or_else(transient_retry_limit)
    }
}

fn jitter(base: Duration) -> Duration {
    base.mul_f64(1.0 + rand::random::<f64>() * 0.25)
}

#[derive(Clone)]
pub struct Subscription {
    pub group: String,
    pub mode: DeliveryMode,
    pub event_types: Vec<String>,
    pub handler: Arc<dyn EventHandler>,
    pub dead_letters: Arc<dyn DeadLetterStore>,
    pub retry: RetryPolicy,
    /// Held while a batch runs: two batches of one group (from two relays) never hold row
    /// locks at the same time, so they cannot deadlock on each other.
    batch_turn: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("group", &self.group)
            .field("mode", &self.mode)
            .field("event_types", &self.event_types)
            .finish()
    }
}

impl Subscription {
    pub fn new(
        group: impl Into<String>,
        mode: DeliveryMode,
        event_types: &[&str],
        handler: Arc<dyn EventHandler>,
        dead_letters: Arc<dyn DeadLetterStore>,
    ) -> Self {
        Self {
            group: group.into(),
            mode,
            event_types: event_types.iter().map(|s| (*s).to_owned()).collect(),
            handler,
            dead_letters,
            retry: RetryPolicy::default(),
            batch_turn: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.iter().any(|t| t == event_type)
    }
}

/// What became of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Handled { attempts: u32 },
    DeadLettered { attempts: u32, error: String },
}

/// Runs the handler with retries; after the last failed attempt the envelope goes to the
/// group's dead letters. An error is returned only when even that could not be stored, so
/// the caller must not acknowledge the message.
pub async fn dispatch(sub: &Subscription, envelope: &Envelope) -> anyhow::Result<Outcome> {
    let span = tracing::info_span!("handle event", group = %sub.group, event_type = %envelope.event_type, event_id = %envelope.id, correlation_id = %envelope.correlation_id);
    // The handling continues the trace of whatever published the event.
    if let Some(parent) = &envelope.traceparent {
        platform::trace_context::adopt(&span, parent);
    }
    dispatch_in_span(sub, envelope).instrument(span).await
}

async fn dispatch_in_span(sub: &Subscription, envelope: &Envelope) -> anyhow::Result<Outcome> {
    let max = sub.retry.max_attempts.max(1);
    let started = std::time::Instant::now();
    let mut attempt = 0;
    let mut transient_failures = 0u32;
    loop {
        attempt += 1;
        let error = match sub.handler.handle(envelope).await {
            Ok(()) => {
                handled(sub, envelope, "handled");
                return Ok(Outcome::Handled { attempts: attempt });
            }
            Err(e) => e,
        };
        let transient = platform::fault::is_transient(&error);
        if transient && started.elapsed() < sub.retry.transient_limit() {
            transient_failures += 1;
            // Logged on the first failure and then sparingly, not once per retry.
            if transient_failures == 1 || transient_failures.is_power_of_two() {
                tracing::warn!(
                    attempt,
                    transient_failures,
                    error = %format!("{error:#}"),
                    "handler failed transiently, will keep retrying"
                );
            }
            handled(sub, envelope, "retried_transient");
            tokio::time::sleep(sub.retry.transient_backoff(transient_failures)).await;
            continue;
        }
        let deterministic_attempts = attempt - transient_failures;
        if !transient && deterministic_attempts < max {
            handled(sub, envelope, "retried");
            tracing::warn!(attempt, error = %format!("{error:#}"), "handler failed, will retry");
            tokio::time::sleep(sub.retry.backoff(deterministic_attempts)).await;
            continue;
        }
        let error = format!("{error:#}");
        tracing::error!(attempt, transient, error = %error, "handler failed, dead-lettering");
        sub.dead_letters
            .put(&sub.group, envelope, &error, attempt)
            .await?;
        handled(sub, envelope, "dead_lettered");
        return Ok(Outcome::DeadLettered {
            attempts: attempt,
            error,
        });
    }
}

/// Delivers several envelopes to one subscription: in one transaction when its handler
/// takes batches, and otherwise, or when that batch fails (it is then rolled back whole),
/// one by one through [`dispatch`], with their retries and dead letters.
pub async fn dispatch_batch(
    sub: &Subscription,
    envelopes: &[&Envelope],
) -> Vec<anyhow::Result<Outcome>> {
    if envelopes.len() > 1 {
        let span =
            tracing::info_span!("handle events", group = %sub.group, events = envelopes.len());
        let batched = {
            let _turn = sub.batch_turn.lock().await;
            sub.handler.handle_batch(envelopes).instrument(span).await
        };
        match batched {
            Ok(true) => {
                for envelope in envelopes {
                    handled(sub, envelope, "handled");
                }
                return envelopes
                    .iter()
                    .map(|_| Ok(Outcome::Handled { attempts: 1 }))
                    .collect();
            }
            Ok(false) => {}
            Err(e) => {
                metrics::counter!("emporium_event_batches_split_total", "group" => sub.group.clone())
                    .increment(1);
                tracing::debug!(group = %sub.group, error = %format!("{e:#}"), "batch failed, delivering one by one");
            }
        }
    }
    futures::future::join_all(envelopes.iter().map(|e| dispatch(sub, e))).await
}

/// The subscription of `group` among an adapter's own, if this process runs that group.
pub(crate) fn local_group(
    subscriptions: &std::sync::Mutex<Vec<Arc<Subscription>>>,
    group: &str,
) -> Option<Arc<Subscription>> {
    subscriptions
        .lock()
        .ok()
        .and_then(|subs| subs.iter().find(|s| s.group == group).cloned())
}

/// Counts a delivery's outcome per consumer group and event type.
fn handled(sub: &Subscription, envelope: &Envelope, outcome: &'static str) {
    metrics::counter!(
        "emporium_events_handled_total",
        "group" => sub.group.clone(),
        "type" => envelope.event_type.clone(),
        "outcome" => outcome
    )
    .increment(1);
}

/// Runs the handler once, for a replay: the error goes back to the caller.
pub async fn dispatch_once(sub: &Subscription, envelope: &Envelope) -> anyhow::Result<()> {
    sub.handler.handle(envelope).await
}

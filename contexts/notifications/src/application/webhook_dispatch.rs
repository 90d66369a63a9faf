//! Webhooks on their way out: the fan-out (each published event an enabled endpoint hears
//! becomes a delivery, in the unit that records the event in the inbox) and the dispatcher
//! (signs and POSTs due deliveries, endpoint by endpoint, retrying on the schedule behind a
//! per-endpoint circuit, and turns off an endpoint that failed for the whole window).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bus::{Causation, Consumer, DeliveryMode, Envelope, HandlesEnvelopeOnce, Store, UnitOfWork};
use kernel::Clock;
use notifications_contracts::{DeliveryFailed, WebhookEndpointDisabled};
use serde_json::json;
use tokio::sync::{watch, Notify, Semaphore};

use super::ports::Deliveries;
use super::webhooks::{WebhookStore, WebhookTransport};
use crate::domain::webhook::{
    signature, AttemptOutcome, Endpoint, EndpointAfterFailure, WebhookAttempt, WebhookDelivery,
    WebhookSchedule,
};
use crate::domain::{Delivery, MessageKind};

pub(crate) const GROUP: &str = "notifications.webhooks";

/// The events endpoints can subscribe to: every integration event but those that carry a
/// one-time secret (password reset and verification links, a guest's order token), which
/// never leave the shop.
pub(crate) fn consumer() -> Consumer<Fanout> {
    Consumer::new(GROUP, DeliveryMode::Competing)
        .in_batches()
        .once_envelope::<identity_contracts::UserRegistered>()
        .once_envelope::<identity_contracts::ProfileChanged>()
        .once_envelope::<identity_contracts::EmailVerified>()
        .once_envelope::<identity_contracts::AddressBookChanged>()
        .once_envelope::<catalog_contracts::ProductCreated>()
        .once_envelope::<catalog_contracts::ProductUpdated>()
        .once_envelope::<catalog_contracts::ProductArchived>()
        .once_envelope::<catalog_contracts::StockReserved>()
        .once_envelope::<catalog_contracts::StockRejected>()
        .once_envelope::<catalog_contracts::StockReleased>()
        .once_envelope::<ordering_contracts::OrderPlaced>()
        .once_envelope::<ordering_contracts::OrderPaid>()
        .once_envelope::<ordering_contracts::OrderCancelled>()
        .once_envelope::<ordering_contracts::OrderStatusChanged>()
        .once_envelope::<ordering_contracts::OrderRefunded>()
        .once_envelope::<ordering_contracts::ReturnRequested>()
        .once_envelope::<ordering_contracts::ReturnApproved>()
        .once_envelope::<ordering_contracts::ReturnRejected>()
        .once_envelope::<ordering_contracts::ReturnReceived>()
        .once_envelope::<shipping_contracts::ShipmentCreated>()
        .once_envelope::<shipping_contracts::ShipmentDispatched>()
        .once_envelope::<shipping_contracts::ShipmentDelivered>()
        .once_envelope::<shipping_contracts::ShipmentCancelled>()
        .once_envelope::<shipping_contracts::ReturnLabelCreated>()
        .once_envelope::<DeliveryFailed>()
        .once_envelope::<WebhookEndpointDisabled>()
}

/// The event types endpoints may hear, in the catalogue's order.
pub(crate) fn catalogue() -> Vec<&'static str> {
    consumer()
        .declaration()
        .events
        .into_iter()
        .map(|e| e.name)
        .collect()
}

/// The body every attempt of a delivery sends: the envelope's facts and the payload as it
/// was published.
pub(crate) fn body_of(envelope: &Envelope) -> anyhow::Result<String> {
    Ok(serde_json::to_string(&json!({
        "id": envelope.id,
        "type": envelope.event_type,
        "version": envelope.version,
        "timestamp": envelope.occurred_at,
        "source": envelope.source,
        "correlation_id": envelope.correlation_id,
        "data": envelope.payload,
    }))?)
}

pub(crate) struct Fanout {
    pub(crate) store: Arc<dyn WebhookStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) wake: Arc<Notify>,
}

#[async_trait::async_trait]
impl HandlesEnvelopeOnce for Fanout {
    async fn handle_envelope_once(
        &self,
        envelope: &Envelope,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        let listeners = self.store.listeners_in(work, &envelope.event_type).await?;
        if listeners.is_empty() {
            return Ok(());
        }
        let body = body_of(envelope)?;
        let now = self.clock.now();
        let mut queued = false;
        for endpoint in listeners {
            let delivery = WebhookDelivery::new(
                endpoint.id,
                envelope.id,
                envelope.event_type.clone(),
                body.clone(),
                now,
            );
            queued |= self.store.enqueue(work, &delivery).await?;
        }
        if queued {
            let wake = self.wake.clone();
            work.after_commit(move || wake.notify_one());
        }
        Ok(())
    }
}

/// Deliveries read per round.
const BATCH: u32 = 100;
/// Endpoints being called at once.
const CONCURRENT_ENDPOINTS: usize = 16;

pub(crate) struct Dispatcher {
    pub(crate) store: Arc<dyn WebhookStore>,
    pub(crate) transport: Arc<dyn WebhookTransport>,
    pub(crate) clock: Arc<dyn Clock>,
    /// For the unit that turns an endpoint off: its event and its mail.
    pub(crate) units: Store,
    pub(crate) mail: Arc<dyn Deliveries>,
    pub(crate) mail_wake: Arc<Notify>,
    pub(crate) schedule: WebhookSchedule,
    pub(crate) wake: Arc<Notify>,
    pub(crate) poll: Duration,
    /// How long a taken delivery stays hidden from other dispatchers: longer than an
    /// attempt can take.
    pub(crate) lease: Duration,
    /// Endpoints this process is calling now: one worker each, so a slow receiver holds
    /// only its own deliveries.
    pub(crate) busy: Mutex<HashSet<uuid::Uuid>>,
    pub(crate) slots: Arc<Semaphore>,
}

impl Dispatcher {
    pub(crate) fn slots() -> Arc<Semaphore> {
        Arc::new(Semaphore::new(CONCURRENT_ENDPOINTS))
    }

    /// Runs until the stop signal turns true.
    pub(crate) async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            if let Err(e) = self.clone().round().await {
                tracing::warn!(error = %format!("{e:#}"), "webhook dispatch round failed");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Hands what is due to one worker per endpoint that has none running.
    pub(crate) async fn round(self: Arc<Self>) -> anyhow::Result<()> {
        let due = self.store.due(self.clock.now(), BATCH).await?;
        let mut groups: Vec<(Endpoint, Vec<WebhookDelivery>)> = Vec::new();
        for (delivery, endpoint) in due {
            match groups.iter_mut().find(|(e, _)| e.id == endpoint.id) {
                Some((_, list)) => list.push(delivery),
                None => groups.push((endpoint, vec![delivery])),
            }
        }
        for (endpoint, deliveries) in groups {
            {
                let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
                if !busy.insert(endpoint.id) {
                    continue;
                }
            }
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                return Ok(());
            };
            let me = self.clone();
            tokio::spawn(async move {
                let id = endpoint.id;
                let again = match me.work_through(endpoint, deliveries).await {
                    Ok(again) => again,
                    Err(e) => {
                        tracing::warn!(endpoint_id = %id, error = %format!("{e:#}"), "webhook delivery failed to record");
                        false
                    }
                };
                me.busy
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                drop(permit);
                if again {
                    me.wake.notify_one();
                }
            });
        }
        Ok(())
    }

    /// Tries an endpoint's due deliveries in order; true when more may be due at once (the
    /// receiver came back).
    async fn work_through(
        &self,
        mut endpoint: Endpoint,
        deliveries: Vec<WebhookDelivery>,
    ) -> anyhow::Result<bool> {
        if !endpoint.lets_through(self.clock.now()) {
            return Ok(false);
        }
        let probing = endpoint.probing(&self.schedule);
        for mut delivery in deliveries {
            let now = self.clock.now();
            if !self
                .store
                .claim(&delivery, now.plus(self.lease), now)
                .await?
            {
                continue;
            }
            let took = Instant::now();
            let outcome = self.attempt(&endpoint, &delivery).await;
            let took = took.elapsed();
            let (after, current) = self.record(&mut delivery, &outcome, now, took).await?;
            endpoint = current;
            match after {
                Some(EndpointAfterFailure::Open) => {}
                Some(_) => return Ok(false),
                None if probing => {
                    // The receiver is back: what waited behind the circuit goes now.
                    let released = self
                        .store
                        .release_held(endpoint.id, self.clock.now())
                        .await?;
                    tracing::info!(endpoint_id = %endpoint.id, released, "webhook receiver answers again; circuit closed");
                    return Ok(true);
                }
                None => {}
            }
            if probing {
                return Ok(false);
            }
        }
        Ok(false)
    }

    async fn attempt(&self, endpoint: &Endpoint, delivery: &WebhookDelivery) -> AttemptOutcome {
        let id = delivery.event_id.to_string();
        let timestamp = self.clock.now().as_micros().div_euclid(1_000_000);
        let Some(signed) = signature(&endpoint.secret, &id, timestamp, &delivery.body) else {
            return AttemptOutcome::Unreached("the endpoint's secret cannot sign".into());
        };
        let headers = [
            ("webhook-id", id),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signed),
        ];
        self.transport
            .post(&endpoint.url, &headers, &delivery.body)
            .await
    }

    /// Writes the attempt, the delivery's next step and the endpoint's health in one unit;
    /// an endpoint turned off says so on the bus and by mail to the admin who made it.
    async fn record(
        &self,
        delivery: &mut WebhookDelivery,
        outcome: &AttemptOutcome,
        started: kernel::Timestamp,
        took: Duration,
    ) -> anyhow::Result<(Option<EndpointAfterFailure>, Endpoint)> {
        let now = self.clock.now();
        let duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        delivery.attempted(outcome, now, &self.schedule, rand::random::<f64>());
        let attempt = WebhookAttempt {
            number: delivery.attempts,
            at: started,
            status_code: outcome.status_code(),
            error: outcome.error(),
            duration_ms,
        };
        let mut work = self.units.begin(Causation::system()).await?;
        self.store
            .record_attempt(&mut work, delivery, &attempt)
            .await?;
        let mut endpoint = self
            .store
            .endpoint_in(&mut work, delivery.endpoint_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("endpoint {} is gone", delivery.endpoint_id))?;
        let after = match outcome {
            AttemptOutcome::Accepted(_) => {
                endpoint.succeeded();
                None
            }
            _ => Some(endpoint.failed(now, &self.schedule, rand::random::<f64>())),
        };
        self.store.update_endpoint_in(&mut work, &endpoint).await?;
        let outcome_label = match outcome {
            AttemptOutcome::Accepted(_) => "delivered",
            _ if delivery.status == crate::domain::webhook::WebhookStatus::Failed => "failed",
            _ => "retried",
        };
        metrics::counter!("emporium_webhook_attempts_total", "outcome" => outcome_label)
            .increment(1);
        if after == Some(EndpointAfterFailure::Disabled) {
            self.disabled(&mut work, &endpoint, now).await?;
        }
        work.commit().await?;
        match outcome_label {
            "delivered" => {
                tracing::info!(delivery_id = %delivery.id, endpoint_id = %endpoint.id, event_type = %delivery.event_type, "webhook delivered");
            }
            "failed" => {
                tracing::error!(delivery_id = %delivery.id, endpoint_id = %endpoint.id, attempts = delivery.attempts, error = delivery.last_error.as_deref().unwrap_or(""), "webhook delivery failed; an admin can replay it");
            }
            _ => {
                tracing::warn!(delivery_id = %delivery.id, endpoint_id = %endpoint.id, attempts = delivery.attempts, error = delivery.last_error.as_deref().unwrap_or(""), "webhook attempt failed; will retry");
            }
        }
        Ok((after, endpoint))
    }

    async fn disabled(
        &self,
        work: &mut UnitOfWork,
        endpoint: &Endpoint,
        now: kernel::Timestamp,
    ) -> anyhow::Result<()> {
        let reason = endpoint.health.disabled_reason.clone().unwrap_or_default();
        tracing::error!(endpoint_id = %endpoint.id, url = %endpoint.url, %reason, "webhook endpoint turned off");
        work.publish(
            &WebhookEndpointDisabled {
                endpoint_id: endpoint.id.to_string(),
                url: endpoint.url.clone(),
                reason: reason.clone(),
                disabled_at: now,
            },
            now,
        )?;
        let mail = Delivery::queued(
            endpoint.created_by,
            MessageKind::WebhookDisabled,
            json!({"endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason}),
            now,
        );
        let key =
            MessageKind::WebhookDisabled.dedup_key(&format!("{}:{}", endpoint.id, now.as_micros()));
        if self.mail.enqueue(work, &key, &mail).await? {
            let wake = self.mail_wake.clone();
            work.after_commit(move || wake.notify_one());
        }
        Ok(())
    }
}

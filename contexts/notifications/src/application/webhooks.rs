//! Outbound webhooks, as admins manage them: endpoints (where, which event types), their
//! deliveries and attempts, and replaying what failed. The ports the fan-out and the
//! dispatcher (`webhook_dispatch`) work through are here too.

use std::sync::Arc;

use bus::UnitOfWork;
use kernel::id::UserId;
use kernel::{Clock, Timestamp};
use platform::pagination::{Page, PageRequest};
use tokio::sync::Notify;

use crate::domain::webhook::{
    check_url, secret_from_key, Endpoint, TargetRefused, WebhookAttempt, WebhookDelivery,
    WebhookStatus,
};

/// The webhook tables.
#[async_trait::async_trait]
pub(crate) trait WebhookStore: Send + Sync {
    async fn insert_endpoint(&self, endpoint: &Endpoint) -> anyhow::Result<()>;
    /// Writes what an admin changed (URL, types, description, enabled and health).
    async fn update_endpoint(&self, endpoint: &Endpoint) -> anyhow::Result<()>;
    /// The same, in a unit (the dispatcher's record of an attempt).
    async fn update_endpoint_in(
        &self,
        work: &mut UnitOfWork,
        endpoint: &Endpoint,
    ) -> anyhow::Result<()>;
    async fn endpoint(&self, id: uuid::Uuid) -> anyhow::Result<Option<Endpoint>>;
    async fn endpoint_in(
        &self,
        work: &mut UnitOfWork,
        id: uuid::Uuid,
    ) -> anyhow::Result<Option<Endpoint>>;
    /// Newest first.
    async fn endpoints(&self, page: &PageRequest) -> anyhow::Result<Page<Endpoint>>;
    /// Removes the endpoint with its deliveries and their attempts; false when none was.
    async fn delete_endpoint(&self, id: uuid::Uuid) -> anyhow::Result<bool>;
    /// The enabled endpoints that hear `event_type`, read in the unit.
    async fn listeners_in(
        &self,
        work: &mut UnitOfWork,
        event_type: &str,
    ) -> anyhow::Result<Vec<Endpoint>>;
    /// Queues a delivery unless the endpoint has one for that event; true when queued.
    async fn enqueue(
        &self,
        work: &mut UnitOfWork,
        delivery: &WebhookDelivery,
    ) -> anyhow::Result<bool>;
    /// Pending deliveries due at `now`, not held by a lease, whose endpoint is enabled and
    /// whose circuit lets them through, oldest first, with their endpoint.
    async fn due(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> anyhow::Result<Vec<(WebhookDelivery, Endpoint)>>;
    /// Takes a due delivery for one attempt, hiding it from other dispatchers until
    /// `lease_until`. False when another took it first.
    async fn claim(
        &self,
        delivery: &WebhookDelivery,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> anyhow::Result<bool>;
    /// Writes the delivery after an attempt (its lease ends) with the attempt's record.
    async fn record_attempt(
        &self,
        work: &mut UnitOfWork,
        delivery: &WebhookDelivery,
        attempt: &WebhookAttempt,
    ) -> anyhow::Result<()>;
    /// Makes every pending delivery of the endpoint due at `now` (its receiver is back).
    async fn release_held(&self, endpoint: uuid::Uuid, now: Timestamp) -> anyhow::Result<u64>;
    async fn delivery(&self, id: uuid::Uuid) -> anyhow::Result<Option<WebhookDelivery>>;
    async fn attempts(&self, delivery: uuid::Uuid) -> anyhow::Result<Vec<WebhookAttempt>>;
    /// Newest first, of one endpoint and one status when asked.
    async fn deliveries(
        &self,
        endpoint: Option<uuid::Uuid>,
        status: Option<WebhookStatus>,
        page: &PageRequest,
    ) -> anyhow::Result<Page<WebhookDelivery>>;
    /// Writes a replayed delivery when it is still failed; false when it no longer was.
    async fn save_replay(&self, delivery: &WebhookDelivery) -> anyhow::Result<bool>;
}

/// How a receiver is reached.
#[async_trait::async_trait]
pub(crate) trait WebhookTransport: Send + Sync {
    /// Resolves the URL's host and refuses it when an address it names may not be called.
    async fn vet(&self, url: &url::Url) -> Result<(), TargetRefused>;
    /// POSTs the body with the headers; how the receiver answered, or why it did not.
    async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: &str,
    ) -> crate::domain::webhook::AttemptOutcome;
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum WebhooksError {
    #[error("no such webhook endpoint")]
    EndpointNotFound,
    #[error("no such webhook delivery")]
    DeliveryNotFound,
    #[error("{0}")]
    TargetRefused(#[from] TargetRefused),
    #[error("{0:?} is not an event type a webhook can subscribe to (GET /api/v1/webhooks/event-types lists them)")]
    UnknownEventType(String),
    #[error("only a failed delivery can be replayed; this one is {0}")]
    NotFailed(&'static str),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// A new endpoint, as an admin asks for it.
pub(crate) struct NewEndpoint {
    pub(crate) url: String,
    pub(crate) event_types: Vec<String>,
    pub(crate) description: String,
    pub(crate) created_by: UserId,
}

/// What an admin changes on an endpoint; `None` keeps.
#[derive(Default)]
pub(crate) struct EndpointChange {
    pub(crate) url: Option<String>,
    pub(crate) event_types: Option<Vec<String>>,
    pub(crate) description: Option<String>,
    pub(crate) enabled: Option<bool>,
}

pub(crate) struct Webhooks {
    pub(crate) store: Arc<dyn WebhookStore>,
    pub(crate) transport: Arc<dyn WebhookTransport>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The event types endpoints may hear (what the fan-out group consumes).
    pub(crate) catalogue: Vec<&'static str>,
    pub(crate) allow_private: bool,
    /// Wakes the dispatcher (an endpoint turned on, a delivery replayed).
    pub(crate) wake: Arc<Notify>,
}

impl Webhooks {
    async fn vet_url(&self, raw: &str) -> Result<String, WebhooksError> {
        let url = check_url(raw, self.allow_private)?;
        self.transport.vet(&url).await?;
        Ok(url.to_string())
    }

    fn vet_types(&self, types: Vec<String>) -> Result<Vec<String>, WebhooksError> {
        let mut kept: Vec<String> = Vec::with_capacity(types.len());
        for t in types {
            if !self.catalogue.contains(&t.as_str()) {
                return Err(WebhooksError::UnknownEventType(t));
            }
            if !kept.contains(&t) {
                kept.push(t);
            }
        }
        Ok(kept)
    }

    /// Makes an endpoint with a new signing secret (returned in it, shown once).
    pub(crate) async fn create(&self, new: NewEndpoint) -> Result<Endpoint, WebhooksError> {
        let event_types = self.vet_types(new.event_types)?;
        let url = self.vet_url(&new.url).await?;
        let endpoint = Endpoint::new(
            url,
            event_types,
            new.description,
            new.created_by,
            secret_from_key(&platform::secret::random_key()),
            self.clock.now(),
        );
        self.store.insert_endpoint(&endpoint).await?;
        tracing::info!(endpoint_id = %endpoint.id, url = %endpoint.url, "webhook endpoint created");
        Ok(endpoint)
    }

    pub(crate) async fn endpoint(&self, id: uuid::Uuid) -> Result<Endpoint, WebhooksError> {
        self.store
            .endpoint(id)
            .await?
            .ok_or(WebhooksError::EndpointNotFound)
    }

    pub(crate) async fn endpoints(
        &self,
        page: &PageRequest,
    ) -> Result<Page<Endpoint>, WebhooksError> {
        Ok(self.store.endpoints(page).await?)
    }

    pub(crate) async fn change(
        &self,
        id: uuid::Uuid,
        change: EndpointChange,
    ) -> Result<Endpoint, WebhooksError> {
        let mut endpoint = self.endpoint(id).await?;
        let now = self.clock.now();
        if let Some(types) = change.event_types {
            endpoint.event_types = self.vet_types(types)?;
        }
        if let Some(url) = change.url {
            endpoint.url = self.vet_url(&url).await?;
        }
        if let Some(description) = change.description {
            endpoint.description = description;
        }
        match change.enabled {
            Some(true) if !endpoint.enabled => endpoint.enable(now),
            Some(false) if endpoint.enabled => endpoint.disable(now),
            _ => {}
        }
        endpoint.updated_at = now;
        self.store.update_endpoint(&endpoint).await?;
        if endpoint.enabled {
            self.wake.notify_one();
        }
        Ok(endpoint)
    }

    pub(crate) async fn delete(&self, id: uuid::Uuid) -> Result<(), WebhooksError> {
        if self.store.delete_endpoint(id).await? {
            Ok(())
        } else {
            Err(WebhooksError::EndpointNotFound)
        }
    }

    pub(crate) async fn deliveries(
        &self,
        endpoint: Option<uuid::Uuid>,
        status: Option<WebhookStatus>,
        page: &PageRequest,
    ) -> Result<Page<WebhookDelivery>, WebhooksError> {
        Ok(self.store.deliveries(endpoint, status, page).await?)
    }

    /// A delivery with its attempts, oldest first.
    pub(crate) async fn delivery(
        &self,
        id: uuid::Uuid,
    ) -> Result<(WebhookDelivery, Vec<WebhookAttempt>), WebhooksError> {
        let delivery = self
            .store
            .delivery(id)
            .await?
            .ok_or(WebhooksError::DeliveryNotFound)?;
        let attempts = self.store.attempts(id).await?;
        Ok((delivery, attempts))
    }

    /// Sends a failed delivery again, with a new retry window.
    pub(crate) async fn replay(&self, id: uuid::Uuid) -> Result<WebhookDelivery, WebhooksError> {
        let mut delivery = self
            .store
            .delivery(id)
            .await?
            .ok_or(WebhooksError::DeliveryNotFound)?;
        delivery
            .replay(self.clock.now())
            .map_err(|e| WebhooksError::NotFailed(e.0.as_str()))?;
        if !self.store.save_replay(&delivery).await? {
            // Replayed by another admin a moment ago.
            return Err(WebhooksError::NotFailed(WebhookStatus::Pending.as_str()));
        }
        self.wake.notify_one();
        Ok(delivery)
    }
}

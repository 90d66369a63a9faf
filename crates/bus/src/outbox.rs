//! The transactional outbox and its relay.
//!
//! `Outbox::enqueue` writes an envelope in the caller's transaction. The `Relay` claims
//! unsent rows with a lease (so two relays on one database never publish the same row at
//! the same time, and a crashed relay's rows are taken over when its lease runs out),
//! publishes them, and marks them sent only after the bus accepted them: a crash between
//! publish and mark means a second publish, which consumers' inboxes absorb.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kernel::Timestamp;
use platform::db::{Backend, Database};
use sqlx::{AnyConnection, Row};
use tokio::sync::{watch, Notify};

use crate::envelope::Envelope;
use crate::EventBus;

/// A context's outbox: where its use cases put events, and the doorbell of its relay.
#[derive(Debug, Clone)]
pub struct Outbox {
    notify: Arc<Notify>,
}

impl Default for Outbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Outbox {
    pub fn new() -> Self {
        Self {
            notify: Arc::new(Notify::new()),
        }
    }

    /// Writes the envelopes inside the caller's transaction, in one statement per hundred.
    pub async fn enqueue(
        &self,
        conn: &mut AnyConnection,
        envelopes: &[Envelope],
    ) -> anyhow::Result<()> {
        let now = Timestamp::now().as_micros();
        for chunk in envelopes.chunks(100) {
            // Refused here, in the producer's transaction, rather than looping in the relay.
            let encoded = chunk
                .iter()
                .map(encode)
                .collect::<anyhow::Result<Vec<_>>>()?;
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let n = i * 4;
                    format!("(${}, ${}, ${}, ${}, 0)", n + 1, n + 2, n + 3, n + 4)
                })
                .collect();
            let sql = format!(
                "insert into outbox (outbox_id, event_type, envelope, created_at, attempts) values {}",
                rows.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for (envelope, encoded) in chunk.iter().zip(encoded) {
                query = query
                    .bind(envelope.id.to_string())
                    .bind(envelope.event_type.clone())
                    .bind(encoded)
                    .bind(now);
            }
            query
                .execute(&mut *conn)
                .await
                .context("cannot write outbox")?;
        }
        Ok(())
    }

    /// Wakes the relay; call after the transaction that enqueued has committed.
    pub fn wake(&self) {
        self.notify.notify_one();
    }
}

#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub batch: i64,
    pub lease: Duration,
    pub idle_poll: Duration,
    pub retention: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch: 64,
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_millis(500),
            retention: Duration::from_secs(24 * 3600),
        }
    }
}

pub struct Relay {
    name: String,
    /// Publishing (or the database) is failing: logged once when it starts and once when it
    /// ends, not per row and per try.
    failing: std::sync::atomic::AtomicBool,
    db: Database,
    bus: Arc<dyn EventBus>,
    outbox: Outbox,
    instance: String,
    config: RelayConfig,
}

impl Relay {
    pub fn new(
        name: impl Into<String>,
        db: Database,
        bus: Arc<dyn EventBus>,
        outbox: Outbox,
    ) -> Self {
        Self {
            name: name.into(),
            failing: std::sync::atomic::AtomicBool::new(false),
            db,
            bus,
            outbox,
            instance: uuid::Uuid::now_v7().to_string(),
            config: RelayConfig::default(),
        }
    }

    pub fn with_config(mut self, config: RelayConfig) -> Self {
        self.config = config;
        self
    }

    /// Runs until `shutdown` turns true; the batch in flight is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(context = %self.name, "outbox relay started");
        let mut last_purge = std::time::Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let claimed = match self.pass().await {
                Ok((claimed, _)) => claimed,
                Err(e) => {
                    self.failing(&format!("{e:#}"), "outbox relay pass failed");
                    0
                }
            };
            if last_purge.elapsed() > Duration::from_secs(60) {
                last_purge = std::time::Instant::now();
                if let Err(e) = self.purge().await {
                    tracing::warn!(error = %format!("{e:#}"), "outbox purge failed");
                }
            }
            // A pass that took less than a full batch has emptied the outbox as it stood:
            // the next waits for a unit to commit (its wake is kept if it came meanwhile)
            // instead of asking again at once for rows that are not there.
            if claimed < usize::try_from(self.config.batch).unwrap_or(usize::MAX) {
                tokio::select! {
                    _ = self.outbox.notify.notified() => {}
                    _ = tokio::time::sleep(self.config.idle_poll) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        tracing::info!(context = %self.name, "outbox relay stopped");
    }

    /// Claims one batch, publishes it and marks what was accepted. Returns how many were sent.
    pub async fn relay_once(&self) -> anyhow::Result<usize> {
        Ok(self.pass().await?.1)
    }

    /// One pass: how many rows it claimed, and how many of them were sent.
    async fn pass(&self) -> anyhow::Result<(usize, usize)> {
        let now = Timestamp::now();
        let lease_end = now.plus(self.config.lease);
        let lock = match self.db.backend() {
            Backend::Postgres => " for update skip locked",
            Backend::Sqlite => "",
        };
        let claim = format!(
            "update outbox set claimed_by = $1, claimed_until = $2 \
             where outbox_id in (select outbox_id from outbox \
                 where published_at is null and (claimed_until is null or claimed_until < $3) \
                 order by created_at, outbox_id limit $4{lock}) \
             and published_at is null and (claimed_until is null or claimed_until < $3) \
             returning outbox_id, envelope, created_at, attempts"
        );
        let rows = sqlx::query(&claim)
            .bind(&self.instance)
            .bind(lease_end.as_micros())
            .bind(now.as_micros())
            .bind(self.config.batch)
            .fetch_all(self.db.pool())
            .await
            .context("cannot claim outbox rows")?;
        if rows.is_empty() {
            return Ok((0, 0));
        }
        let mut batch = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("outbox_id")?;
            let created: i64 = row.try_get("created_at")?;
            let raw: String = row.try_get("envelope")?;
            let attempts: i64 = row.try_get("attempts")?;
            match serde_json::from_str::<Envelope>(&raw) {
                Ok(env) => batch.push((created, id, env, attempts)),
                Err(e) => {
                    tracing::error!(outbox_id = %id, error = %e, "unreadable outbox row, parked");
                    self.fail(
                        &id,
                        &format!("unreadable envelope: {e}"),
                        Duration::from_secs(3600),
                    )
                    .await?;
                }
            }
        }
        batch.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let envelopes: Vec<Envelope> = batch.iter().map(|(_, _, env, _)| env.clone()).collect();
        let results = self.bus.publish_batch(&envelopes).await;
        let mut sent = Vec::new();
        for ((_, id, env, attempts), result) in batch.iter().zip(results) {
            match result {
                Ok(()) => {
                    metrics::counter!("emporium_events_published_total", "type" => env.event_type.clone())
                        .increment(1);
                    sent.push(id.clone());
                }
                Err(e) => {
                    metrics::counter!("emporium_event_publish_failures_total", "type" => env.event_type.clone())
                        .increment(1);
                    self.failing(
                        &format!("{e:#}"),
                        "publishing failed; retrying with backoff",
                    );
                    tracing::debug!(event_id = %env.id, event_type = %env.event_type, error = %e, "publish failed, will retry");
                    self.fail(id, &e.to_string(), publish_backoff(*attempts))
                        .await?;
                }
            }
        }
        self.mark_sent(&sent).await?;
        if !sent.is_empty()
            && self
                .failing
                .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::info!(context = %self.name, "outbox relay recovered: publishing again");
        }
        Ok((rows.len(), sent.len()))
    }

    /// Logs a failure when the relay goes from working to failing, not on every try.
    fn failing(&self, error: &str, what: &str) {
        if !self
            .failing
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(context = %self.name, error = %error, "{what}");
        }
    }

    async fn mark_sent(&self, ids: &[String]) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "update outbox set published_at = $1, claimed_until = null where outbox_id in ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(Timestamp::now().as_micros());
        for id in ids {
            query = query.bind(id);
        }
        query
            .execute(self.db.pool())
            .await
            .context("cannot mark outbox rows sent")?;
        Ok(())
    }

    async fn fail(&self, id: &str, error: &str, retry_in: Duration) -> anyhow::Result<()> {
        sqlx::query(
            "update outbox set attempts = attempts + 1, last_error = $1, claimed_until = $2 where outbox_id = $3",
        )
        .bind(error.chars().take(2000).collect::<String>())
        .bind(Timestamp::now().plus(retry_in).as_micros())
        .bind(id)
        .execute(self.db.pool())
        .await
        .context("cannot record publish failure")?;
        Ok(())
    }

    async fn purge(&self) -> anyhow::Result<()> {
        let before = Timestamp::now().minus(self.config.retention);
        sqlx::query("delete from outbox where published_at is not null and published_at < $1")
            .bind(before.as_micros())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }
}

/// Rows not yet published (for readiness, metrics and tests).
pub async fn pending(db: &Database) -> anyhow::Result<i64> {
    let n: i64 = sqlx::query_scalar("select count(*) from outbox where published_at is null")
        .fetch_one(db.pool())
        .await?;
    Ok(n)
}

/// The largest envelope the outbox accepts, as JSON: below SNS's 256 KiB message limit with
/// room for its attributes, and far below RabbitMQ's.
pub const MAX_EVENT_BYTES: usize = 200 * 1024;

/// An event too large for every broker: a deterministic failure of the change that made it.
#[derive(Debug, thiserror::Error)]
#[error("event {event_type} is {bytes} bytes as JSON; the limit is {MAX_EVENT_BYTES}")]
pub struct EventTooLarge {
    pub event_type: String,
    pub bytes: usize,
}

fn encode(envelope: &Envelope) -> anyhow::Result<String> {
    let encoded = serde_json::to_string(envelope)?;
    if encoded.len() > MAX_EVENT_BYTES {
        return Err(EventTooLarge {
            event_type: envelope.event_type.clone(),
            bytes: encoded.len(),
        }
        .into());
    }
    Ok(encoded)
}

/// How long a row waits after its `attempts`-th failed publish: 2 s doubling to a minute,
/// with up to 25% jitter, so an outage does not turn into a retry storm.
fn publish_backoff(attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.clamp(0, 5)).unwrap_or(5);
    let base = Duration::from_secs(2).saturating_mul(2u32.pow(exponent));
    base.min(Duration::from_secs(60))
        .mul_f64(1.0 + rand::random::<f64>() * 0.25)
}

#[cfg(test)]
mod backoff_tests {
    use super::*;

    #[test]
    fn an_event_over_the_size_limit_is_refused_when_enqueued() {
        let small = Envelope::wrap(
            &crate::conformance::Ping { n: 1 },
            Timestamp::now(),
            &crate::Causation::system(),
        );
        let Ok(mut envelope) = small else {
            panic!("cannot wrap")
        };
        assert!(encode(&envelope).is_ok());
        envelope.payload = serde_json::json!({"padding": "x".repeat(MAX_EVENT_BYTES)});
        let refused = encode(&envelope).err();
        assert!(refused
            .as_ref()
            .is_some_and(|e| e.downcast_ref::<EventTooLarge>().is_some()));
        assert!(refused.is_some_and(|e| !platform::fault::is_transient(&e)));
    }

    #[test]
    fn publish_retries_back_off_to_a_minute() {
        assert!(publish_backoff(0) >= Duration::from_secs(2));
        assert!(publish_backoff(0) <= Duration::from_millis(2500));
        assert!(publish_backoff(3) >= Duration::from_secs(16));
        for attempts in [5, 6, 50, i64::MAX] {
            let wait = publish_backoff(attempts);
            assert!(wait >= Duration::from_secs(60) && wait <= Duration::from_secs(75));
        }
    }
}

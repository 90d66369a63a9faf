//! Dead letters: deliveries that failed every attempt, kept with their error so an operator
//! can read them and replay them. Each context stores its groups' dead letters in its own
//! database (table `dead_letter`).

use anyhow::Context as _;
use kernel::Timestamp;
use platform::db::Database;
use platform::pagination::{Page, PageRequest};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use crate::envelope::Envelope;

/// The group of a dead letter the broker parked without saying which queue gave up on it
/// (SQS): a replay publishes it again to every group, whose inboxes skip it where it was
/// handled already.
pub const EVERY_GROUP: &str = "*";

/// Records one message taken from a broker's dead-letter queue, retrying (2 s to 60 s apart)
/// until the store takes it: the caller acknowledges the message only afterwards.
pub async fn collect_one(
    store: &dyn DeadLetterStore,
    group: &str,
    envelope: &Envelope,
    error: &str,
    attempts: u32,
) {
    let mut wait = std::time::Duration::from_secs(2);
    loop {
        match store.put(group, envelope, error, attempts).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(group, event_id = %envelope.id, error = %format!("{e:#}"), "cannot record a broker dead letter yet; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(60));
            }
        }
    }
    tracing::warn!(group, event_id = %envelope.id, event_type = %envelope.event_type, "the broker dead-lettered a delivery; recorded for replay");
    metrics::counter!("emporium_broker_dead_letters_total", "group" => group.to_owned(), "outcome" => "recorded").increment(1);
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub id: Uuid,
    pub consumer_group: String,
    pub envelope: Envelope,
    pub error: String,
    pub attempts: u32,
    pub failed_at: Timestamp,
    pub replayed_at: Option<Timestamp>,
}

#[async_trait::async_trait]
pub trait DeadLetterStore: Send + Sync + 'static {
    async fn put(
        &self,
        group: &str,
        envelope: &Envelope,
        error: &str,
        attempts: u32,
    ) -> anyhow::Result<()>;
    /// Newest first.
    async fn list(&self, page: &PageRequest) -> anyhow::Result<Page<DeadLetter>>;
    async fn get(&self, id: Uuid) -> anyhow::Result<Option<DeadLetter>>;
    async fn mark_replayed(&self, id: Uuid, at: Timestamp) -> anyhow::Result<()>;
}

#[derive(Debug, Clone)]
pub struct SqlDeadLetters {
    db: Database,
}

impl SqlDeadLetters {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Dead letters not replayed yet.
    pub async fn open(&self) -> anyhow::Result<i64> {
        let n: i64 =
            sqlx::query_scalar("select count(*) from dead_letter where replayed_at is null")
                .fetch_one(self.db.pool())
                .await?;
        Ok(n)
    }
}

const COLUMNS: &str =
    "dead_letter_id, consumer_group, envelope, error, attempts, failed_at, replayed_at";

fn from_row(row: &sqlx::any::AnyRow) -> anyhow::Result<DeadLetter> {
    let id: String = row.try_get("dead_letter_id")?;
    let envelope: String = row.try_get("envelope")?;
    let attempts: i64 = row.try_get("attempts")?;
    let replayed_at: Option<i64> = row.try_get("replayed_at")?;
    Ok(DeadLetter {
        id: Uuid::parse_str(&id)?,
        consumer_group: row.try_get("consumer_group")?,
        envelope: serde_json::from_str(&envelope)?,
        error: row.try_get("error")?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        failed_at: Timestamp::from_micros(row.try_get("failed_at")?),
        replayed_at: replayed_at.map(Timestamp::from_micros),
    })
}

#[async_trait::async_trait]
impl DeadLetterStore for SqlDeadLetters {
    async fn put(
        &self,
        group: &str,
        envelope: &Envelope,
        error: &str,
        attempts: u32,
    ) -> anyhow::Result<()> {
        let error: String = error.chars().take(4000).collect();
        sqlx::query(
            "insert into dead_letter (dead_letter_id, consumer_group, envelope_id, event_type, envelope, error, attempts, failed_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(group)
        .bind(envelope.id.to_string())
        .bind(&envelope.event_type)
        .bind(serde_json::to_string(envelope)?)
        .bind(error)
        .bind(i64::from(attempts))
        .bind(Timestamp::now().as_micros())
        .execute(self.db.pool())
        .await
        .context("cannot store dead letter")?;
        Ok(())
    }

    async fn list(&self, page: &PageRequest) -> anyhow::Result<Page<DeadLetter>> {
        let rows = match &page.after {
            None => {
                sqlx::query(&format!(
                    "select {COLUMNS} from dead_letter order by dead_letter_id desc limit $1"
                ))
                .bind(page.fetch_limit())
                .fetch_all(self.db.pool())
                .await
            }
            Some(cursor) => {
                sqlx::query(&format!(
                    "select {COLUMNS} from dead_letter where dead_letter_id < $1 order by dead_letter_id desc limit $2"
                ))
                .bind(&cursor.parts()[0])
                .bind(page.fetch_limit())
                .fetch_all(self.db.pool())
                .await
            }
        }
        .context("cannot list dead letters")?;
        let items = rows
            .iter()
            .map(from_row)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(page.finish(items, |d| vec![d.id.to_string()]))
    }

    async fn get(&self, id: Uuid) -> anyhow::Result<Option<DeadLetter>> {
        let row = sqlx::query(&format!(
            "select {COLUMNS} from dead_letter where dead_letter_id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.db.pool())
        .await
        .context("cannot read dead letter")?;
        row.as_ref().map(from_row).transpose()
    }

    async fn mark_replayed(&self, id: Uuid, at: Timestamp) -> anyhow::Result<()> {
        sqlx::query("update dead_letter set replayed_at = $1 where dead_letter_id = $2")
            .bind(at.as_micros())
            .bind(id.to_string())
            .execute(self.db.pool())
            .await
            .context("cannot mark dead letter replayed")?;
        Ok(())
    }
}

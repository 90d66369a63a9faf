//! The webhook tables in SQL (SQLite or PostgreSQL, one dialect).

use anyhow::Context as _;
use bus::UnitOfWork;
use kernel::id::UserId;
use kernel::Timestamp;
use platform::db::Database;
use platform::pagination::{Page, PageRequest};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::application::webhooks::WebhookStore;
use crate::domain::webhook::{Endpoint, Health, WebhookAttempt, WebhookDelivery, WebhookStatus};

pub(crate) struct SqlWebhooks {
    pub(crate) db: Database,
}

const ENDPOINT: &str = "endpoint_id, url, description, event_types, secret, enabled, created_by, created_at, updated_at, consecutive_failures, failing_since, circuit_open_until, disabled_reason";
const DELIVERY: &str = "delivery_id, endpoint_id, event_id, event_type, body, status, attempts, next_attempt_at, window_start, last_status, last_error, created_at, updated_at, delivered_at";
/// A receiver's answer kept on a delivery is cut to this many characters.
const ERROR_CHARS: usize = 1000;
/// Deliveries of one endpoint in one dispatch round: one busy receiver does not fill it.
const PER_ENDPOINT: i64 = 10;

fn micros(row: &AnyRow, column: &str) -> anyhow::Result<Option<Timestamp>> {
    Ok(row
        .try_get::<Option<i64>, _>(column)?
        .map(Timestamp::from_micros))
}

fn endpoint_from(row: &AnyRow) -> anyhow::Result<Endpoint> {
    endpoint_columns(row, "")
}

/// An endpoint from a row whose endpoint columns are named `{prefix}{column}`.
fn endpoint_columns(row: &AnyRow, prefix: &str) -> anyhow::Result<Endpoint> {
    let col = |name: &str| format!("{prefix}{name}");
    let id: String = row.try_get(col("endpoint_id").as_str())?;
    let types: String = row.try_get(col("event_types").as_str())?;
    let by: String = row.try_get(col("created_by").as_str())?;
    let failures: i64 = row.try_get(col("consecutive_failures").as_str())?;
    Ok(Endpoint {
        id: uuid::Uuid::parse_str(&id)?,
        url: row.try_get(col("url").as_str())?,
        description: row.try_get(col("description").as_str())?,
        event_types: serde_json::from_str(&types)?,
        secret: row.try_get(col("secret").as_str())?,
        enabled: row.try_get::<i64, _>(col("enabled").as_str())? != 0,
        created_by: UserId::parse(&by)?,
        created_at: Timestamp::from_micros(row.try_get(col("created_at").as_str())?),
        updated_at: Timestamp::from_micros(row.try_get(col("updated_at").as_str())?),
        health: Health {
            consecutive_failures: u32::try_from(failures).unwrap_or(u32::MAX),
            failing_since: micros(row, &col("failing_since"))?,
            circuit_open_until: micros(row, &col("circuit_open_until"))?,
            disabled_reason: row.try_get(col("disabled_reason").as_str())?,
        },
    })
}

fn delivery_from(row: &AnyRow) -> anyhow::Result<WebhookDelivery> {
    let id: String = row.try_get("delivery_id")?;
    let endpoint: String = row.try_get("endpoint_id")?;
    let event: String = row.try_get("event_id")?;
    let status: String = row.try_get("status")?;
    let attempts: i64 = row.try_get("attempts")?;
    Ok(WebhookDelivery {
        id: uuid::Uuid::parse_str(&id)?,
        endpoint_id: uuid::Uuid::parse_str(&endpoint)?,
        event_id: uuid::Uuid::parse_str(&event)?,
        event_type: row.try_get("event_type")?,
        body: row.try_get("body")?,
        status: WebhookStatus::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("unknown webhook status {status}"))?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: Timestamp::from_micros(row.try_get("next_attempt_at")?),
        window_start: Timestamp::from_micros(row.try_get("window_start")?),
        last_status: row
            .try_get::<Option<i64>, _>("last_status")?
            .and_then(|s| u16::try_from(s).ok()),
        last_error: row.try_get("last_error")?,
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
        updated_at: Timestamp::from_micros(row.try_get("updated_at")?),
        delivered_at: micros(row, "delivered_at")?,
    })
}

/// The endpoint's columns as bound to `$1`..`$13` in [`ENDPOINT`]'s order.
fn bind_endpoint<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    e: &Endpoint,
) -> anyhow::Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>> {
    Ok(q.bind(e.id.to_string())
        .bind(e.url.clone())
        .bind(e.description.clone())
        .bind(serde_json::to_string(&e.event_types)?)
        .bind(e.secret.clone())
        .bind(i64::from(e.enabled))
        .bind(e.created_by.to_string())
        .bind(e.created_at.as_micros())
        .bind(e.updated_at.as_micros())
        .bind(i64::from(e.health.consecutive_failures))
        .bind(e.health.failing_since.map(|t| t.as_micros()))
        .bind(e.health.circuit_open_until.map(|t| t.as_micros()))
        .bind(e.health.disabled_reason.clone()))
}

const UPDATE_ENDPOINT: &str = "update webhook_endpoint set url = $2, description = $3, event_types = $4, secret = $5, enabled = $6, \
     created_by = $7, created_at = $8, updated_at = $9, consecutive_failures = $10, failing_since = $11, \
     circuit_open_until = $12, disabled_reason = $13 where endpoint_id = $1";

async fn update_endpoint(conn: &mut AnyConnection, e: &Endpoint) -> anyhow::Result<()> {
    bind_endpoint(sqlx::query(UPDATE_ENDPOINT), e)?
        .execute(conn)
        .await
        .context("cannot update webhook endpoint")?;
    Ok(())
}

async fn read_endpoint(
    conn: &mut AnyConnection,
    id: uuid::Uuid,
) -> anyhow::Result<Option<Endpoint>> {
    let row = sqlx::query(&format!(
        "select {ENDPOINT} from webhook_endpoint where endpoint_id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(conn)
    .await
    .context("cannot read webhook endpoint")?;
    row.as_ref().map(endpoint_from).transpose()
}

#[async_trait::async_trait]
impl WebhookStore for SqlWebhooks {
    async fn insert_endpoint(&self, e: &Endpoint) -> anyhow::Result<()> {
        let sql = format!(
            "insert into webhook_endpoint ({ENDPOINT}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        bind_endpoint(sqlx::query(&sql), e)?
            .execute(self.db.pool())
            .await
            .context("cannot save webhook endpoint")?;
        Ok(())
    }

    async fn update_endpoint(&self, e: &Endpoint) -> anyhow::Result<()> {
        let mut conn = self.db.pool().acquire().await?;
        update_endpoint(&mut conn, e).await
    }

    async fn update_endpoint_in(&self, work: &mut UnitOfWork, e: &Endpoint) -> anyhow::Result<()> {
        update_endpoint(work.conn()?, e).await
    }

    async fn endpoint(&self, id: uuid::Uuid) -> anyhow::Result<Option<Endpoint>> {
        let mut conn = self.db.pool().acquire().await?;
        read_endpoint(&mut conn, id).await
    }

    async fn endpoint_in(
        &self,
        work: &mut UnitOfWork,
        id: uuid::Uuid,
    ) -> anyhow::Result<Option<Endpoint>> {
        read_endpoint(work.conn()?, id).await
    }

    async fn endpoints(&self, page: &PageRequest) -> anyhow::Result<Page<Endpoint>> {
        let after = page.after.as_ref().map(|c| c.parts()[0].clone());
        let sql = format!(
            "select {ENDPOINT} from webhook_endpoint where ($1 = '' or endpoint_id < $1) order by endpoint_id desc limit $2"
        );
        let rows = sqlx::query(&sql)
            .bind(after.unwrap_or_default())
            .bind(page.fetch_limit())
            .fetch_all(self.db.pool())
            .await
            .context("cannot list webhook endpoints")?;
        let items = rows
            .iter()
            .map(endpoint_from)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(page.finish(items, |e| vec![e.id.to_string()]))
    }

    async fn delete_endpoint(&self, id: uuid::Uuid) -> anyhow::Result<bool> {
        let mut tx = self.db.begin().await?;
        let id = id.to_string();
        sqlx::query(
            "delete from webhook_attempt where delivery_id in (select delivery_id from webhook_delivery where endpoint_id = $1)",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("delete from webhook_delivery where endpoint_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("delete from webhook_endpoint where endpoint_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        tx.commit()
            .await
            .context("cannot delete webhook endpoint")?;
        Ok(done.rows_affected() == 1)
    }

    async fn listeners_in(
        &self,
        work: &mut UnitOfWork,
        event_type: &str,
    ) -> anyhow::Result<Vec<Endpoint>> {
        // Few endpoints, read whole: the types are a JSON array, matched here.
        let rows = sqlx::query(&format!(
            "select {ENDPOINT} from webhook_endpoint where enabled = 1"
        ))
        .fetch_all(work.conn()?)
        .await
        .context("cannot read webhook endpoints")?;
        let mut listeners = Vec::new();
        for row in &rows {
            let endpoint = endpoint_from(row)?;
            if endpoint.hears(event_type) {
                listeners.push(endpoint);
            }
        }
        Ok(listeners)
    }

    async fn enqueue(&self, work: &mut UnitOfWork, d: &WebhookDelivery) -> anyhow::Result<bool> {
        let done = sqlx::query(&format!(
            "insert into webhook_delivery ({DELIVERY}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             on conflict (endpoint_id, event_id) do nothing"
        ))
        .bind(d.id.to_string())
        .bind(d.endpoint_id.to_string())
        .bind(d.event_id.to_string())
        .bind(&d.event_type)
        .bind(&d.body)
        .bind(d.status.as_str())
        .bind(i64::from(d.attempts))
        .bind(d.next_attempt_at.as_micros())
        .bind(d.window_start.as_micros())
        .bind(d.last_status.map(i64::from))
        .bind(d.last_error.as_deref())
        .bind(d.created_at.as_micros())
        .bind(d.updated_at.as_micros())
        .bind(d.delivered_at.map(|t| t.as_micros()))
        .execute(work.conn()?)
        .await
        .context("cannot queue webhook delivery")?;
        Ok(done.rows_affected() == 1)
    }

    async fn due(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> anyhow::Result<Vec<(WebhookDelivery, Endpoint)>> {
        let d_cols: Vec<String> = DELIVERY.split(", ").map(|c| format!("d.{c}")).collect();
        let e_cols: Vec<String> = ENDPOINT
            .split(", ")
            .map(|c| format!("e.{c} as e_{c}"))
            .collect();
        let sql = format!(
            "select * from (select {}, {}, row_number() over (partition by d.endpoint_id order by d.next_attempt_at, d.delivery_id) as place \
             from webhook_delivery d join webhook_endpoint e on e.endpoint_id = d.endpoint_id \
             where d.status = 'pending' and d.next_attempt_at <= $1 and e.enabled = 1 \
             and (e.circuit_open_until is null or e.circuit_open_until <= $1)) due \
             where place <= $2 order by next_attempt_at, delivery_id limit $3",
            d_cols.join(", "),
            e_cols.join(", ")
        );
        let rows = sqlx::query(&sql)
            .bind(now.as_micros())
            .bind(PER_ENDPOINT)
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await
            .context("cannot read due webhook deliveries")?;
        rows.iter()
            .map(|row| Ok((delivery_from(row)?, endpoint_columns(row, "e_")?)))
            .collect()
    }

    async fn claim(
        &self,
        d: &WebhookDelivery,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> anyhow::Result<bool> {
        // Conditional on the row being as read: of two dispatchers, one wins.
        let done = sqlx::query(
            "update webhook_delivery set next_attempt_at = $1, updated_at = $2 \
             where delivery_id = $3 and status = 'pending' and next_attempt_at = $4",
        )
        .bind(lease_until.as_micros())
        .bind(now.as_micros())
        .bind(d.id.to_string())
        .bind(d.next_attempt_at.as_micros())
        .execute(self.db.pool())
        .await
        .context("cannot take webhook delivery")?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_attempt(
        &self,
        work: &mut UnitOfWork,
        d: &WebhookDelivery,
        a: &WebhookAttempt,
    ) -> anyhow::Result<()> {
        let error: Option<String> = d
            .last_error
            .as_ref()
            .map(|e| e.chars().take(ERROR_CHARS).collect());
        sqlx::query(
            "update webhook_delivery set status = $1, attempts = $2, next_attempt_at = $3, last_status = $4, last_error = $5, \
             updated_at = $6, delivered_at = $7 where delivery_id = $8",
        )
        .bind(d.status.as_str())
        .bind(i64::from(d.attempts))
        .bind(d.next_attempt_at.as_micros())
        .bind(d.last_status.map(i64::from))
        .bind(error.clone())
        .bind(d.updated_at.as_micros())
        .bind(d.delivered_at.map(|t| t.as_micros()))
        .bind(d.id.to_string())
        .execute(work.conn()?)
        .await
        .context("cannot record webhook delivery")?;
        sqlx::query(
            "insert into webhook_attempt (delivery_id, attempt, attempted_at, status_code, error, duration_ms) \
             values ($1, $2, $3, $4, $5, $6) on conflict (delivery_id, attempt) do nothing",
        )
        .bind(d.id.to_string())
        .bind(i64::from(a.number))
        .bind(a.at.as_micros())
        .bind(a.status_code.map(i64::from))
        .bind(
            a.error
                .as_ref()
                .map(|e| e.chars().take(ERROR_CHARS).collect::<String>()),
        )
        .bind(i64::try_from(a.duration_ms).unwrap_or(i64::MAX))
        .execute(work.conn()?)
        .await
        .context("cannot record webhook attempt")?;
        Ok(())
    }

    async fn release_held(&self, endpoint: uuid::Uuid, now: Timestamp) -> anyhow::Result<u64> {
        let done = sqlx::query(
            "update webhook_delivery set next_attempt_at = $1 where endpoint_id = $2 and status = 'pending' and next_attempt_at > $1",
        )
        .bind(now.as_micros())
        .bind(endpoint.to_string())
        .execute(self.db.pool())
        .await
        .context("cannot release held webhook deliveries")?;
        Ok(done.rows_affected())
    }

    async fn delivery(&self, id: uuid::Uuid) -> anyhow::Result<Option<WebhookDelivery>> {
        let row = sqlx::query(&format!(
            "select {DELIVERY} from webhook_delivery where delivery_id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.db.pool())
        .await
        .context("cannot read webhook delivery")?;
        row.as_ref().map(delivery_from).transpose()
    }

    async fn attempts(&self, delivery: uuid::Uuid) -> anyhow::Result<Vec<WebhookAttempt>> {
        let rows = sqlx::query(
            "select attempt, attempted_at, status_code, error, duration_ms from webhook_attempt \
             where delivery_id = $1 order by attempt",
        )
        .bind(delivery.to_string())
        .fetch_all(self.db.pool())
        .await
        .context("cannot read webhook attempts")?;
        rows.iter()
            .map(|r| {
                Ok(WebhookAttempt {
                    number: u32::try_from(r.try_get::<i64, _>("attempt")?).unwrap_or(u32::MAX),
                    at: Timestamp::from_micros(r.try_get("attempted_at")?),
                    status_code: r
                        .try_get::<Option<i64>, _>("status_code")?
                        .and_then(|s| u16::try_from(s).ok()),
                    error: r.try_get("error")?,
                    duration_ms: u64::try_from(r.try_get::<i64, _>("duration_ms")?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn deliveries(
        &self,
        endpoint: Option<uuid::Uuid>,
        status: Option<WebhookStatus>,
        page: &PageRequest,
    ) -> anyhow::Result<Page<WebhookDelivery>> {
        let mut sql = format!("select {DELIVERY} from webhook_delivery where 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        if let Some(e) = endpoint {
            binds.push(e.to_string());
            sql.push_str(&format!(" and endpoint_id = ${}", binds.len()));
        }
        if let Some(s) = status {
            binds.push(s.as_str().to_owned());
            sql.push_str(&format!(" and status = ${}", binds.len()));
        }
        if let Some(cursor) = &page.after {
            binds.push(cursor.parts()[0].clone());
            sql.push_str(&format!(" and delivery_id < ${}", binds.len()));
        }
        sql.push_str(&format!(
            " order by delivery_id desc limit ${}",
            binds.len() + 1
        ));
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        let rows = q
            .bind(page.fetch_limit())
            .fetch_all(self.db.pool())
            .await
            .context("cannot list webhook deliveries")?;
        let items = rows
            .iter()
            .map(delivery_from)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(page.finish(items, |d| vec![d.id.to_string()]))
    }

    async fn save_replay(&self, d: &WebhookDelivery) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "update webhook_delivery set status = $1, next_attempt_at = $2, window_start = $3, updated_at = $4 \
             where delivery_id = $5 and status = 'failed'",
        )
        .bind(d.status.as_str())
        .bind(d.next_attempt_at.as_micros())
        .bind(d.window_start.as_micros())
        .bind(d.updated_at.as_micros())
        .bind(d.id.to_string())
        .execute(self.db.pool())
        .await
        .context("cannot replay webhook delivery")?;
        Ok(done.rows_affected() == 1)
    }
}

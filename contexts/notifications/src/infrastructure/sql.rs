//! The projections and the delivery queue in SQL (SQLite or PostgreSQL, one dialect).

use anyhow::Context as _;
use bus::UnitOfWork;
use kernel::id::{OrderId, ShipmentId, UserId};
use kernel::Timestamp;
use platform::db::Database;
use platform::pagination::{Page, PageRequest};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::application::ports::{
    Deliveries, OrderSummary, Outgoing, Projections, RetryOutcome, ShipmentSummary,
};
use crate::domain::{Customer, Delivery, DeliveryStatus, MessageKind, Preferences, Refusal};

pub(crate) struct SqlNotifications {
    pub(crate) db: Database,
}

const COLUMNS: &str = "delivery_id, customer_id, kind, data, status, attempts, next_attempt_at, last_error, recipient, subject, body_text, created_at, updated_at, sent_at";

/// Errors kept on a delivery are cut to this many characters (a server can say a lot).
const ERROR_CHARS: usize = 1000;

fn from_row(row: &AnyRow) -> anyhow::Result<Delivery> {
    let id: String = row.try_get("delivery_id")?;
    let customer: String = row.try_get("customer_id")?;
    let kind: String = row.try_get("kind")?;
    let data: String = row.try_get("data")?;
    let status: String = row.try_get("status")?;
    let attempts: i64 = row.try_get("attempts")?;
    Ok(Delivery {
        id: uuid::Uuid::parse_str(&id)?,
        customer_id: UserId::parse(&customer)?,
        kind: MessageKind::parse(&kind).ok_or_else(|| anyhow::anyhow!("unknown kind {kind}"))?,
        data: serde_json::from_str(&data)?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("unknown status {status}"))?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: Timestamp::from_micros(row.try_get("next_attempt_at")?),
        last_error: row.try_get("last_error")?,
        recipient: row.try_get("recipient")?,
        subject: row.try_get("subject")?,
        body_text: row.try_get("body_text")?,
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
        updated_at: Timestamp::from_micros(row.try_get("updated_at")?),
        sent_at: row
            .try_get::<Option<i64>, _>("sent_at")?
            .map(Timestamp::from_micros),
    })
}

/// The customer's columns of a row (absent when a join found none).
fn customer_from_row(id: UserId, row: &AnyRow) -> anyhow::Result<Option<Customer>> {
    let Some(email) = row.try_get::<Option<String>, _>("email")? else {
        return Ok(None);
    };
    Ok(Some(Customer {
        id,
        email,
        name: row.try_get("name")?,
        as_of: Timestamp::from_micros(row.try_get("as_of")?),
    }))
}

async fn read_preferences(
    conn: &mut AnyConnection,
    customer: UserId,
) -> anyhow::Result<Preferences> {
    let shipment_updates: Option<i64> =
        sqlx::query_scalar("select shipment_updates from preference where customer_id = $1")
            .bind(customer.to_string())
            .fetch_optional(conn)
            .await?;
    Ok(
        shipment_updates.map_or_else(Preferences::default, |v| Preferences {
            shipment_updates: v != 0,
        }),
    )
}

fn error_text(refusal: &Refusal) -> String {
    refusal.message().chars().take(ERROR_CHARS).collect()
}

/// What is kept of a sent message that carried a secret.
const FORGOTTEN_TEXT: &str = "(not kept: the message carried a one-time link)";

#[async_trait::async_trait]
impl Projections for SqlNotifications {
    async fn save_customer(&self, work: &mut UnitOfWork, c: &Customer) -> anyhow::Result<()> {
        sqlx::query(
            "insert into customer (customer_id, email, name, as_of) values ($1, $2, $3, $4) \
             on conflict (customer_id) do update set email = excluded.email, name = excluded.name, as_of = excluded.as_of \
             where customer.as_of <= excluded.as_of",
        )
        .bind(c.id.to_string())
        .bind(&c.email)
        .bind(&c.name)
        .bind(c.as_of.as_micros())
        .execute(work.conn()?)
        .await
        .context("cannot save customer")?;
        Ok(())
    }

    async fn save_order(&self, work: &mut UnitOfWork, o: &OrderSummary) -> anyhow::Result<()> {
        sqlx::query(
            "insert into order_summary (order_id, customer_id, lines, total_amount, currency) values ($1, $2, $3, $4, $5) \
             on conflict (order_id) do nothing",
        )
        .bind(o.order_id.to_string())
        .bind(o.customer_id.to_string())
        .bind(serde_json::to_string(&o.lines)?)
        .bind(o.total_amount)
        .bind(&o.currency)
        .execute(work.conn()?)
        .await
        .context("cannot save order summary")?;
        Ok(())
    }

    async fn order(
        &self,
        work: &mut UnitOfWork,
        id: OrderId,
    ) -> anyhow::Result<Option<OrderSummary>> {
        let row = sqlx::query(
            "select customer_id, lines, total_amount, currency from order_summary where order_id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(work.conn()?)
        .await?;
        row.map(|r| {
            let customer: String = r.try_get("customer_id")?;
            let lines: String = r.try_get("lines")?;
            Ok(OrderSummary {
                order_id: id,
                customer_id: UserId::parse(&customer)?,
                lines: serde_json::from_str(&lines)?,
                total_amount: r.try_get("total_amount")?,
                currency: r.try_get("currency")?,
            })
        })
        .transpose()
    }

    async fn save_order_link(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        customer: UserId,
        url: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "insert into guest_order_link (order_id, customer_id, order_url) values ($1, $2, $3) \
             on conflict (order_id) do nothing",
        )
        .bind(order.to_string())
        .bind(customer.to_string())
        .bind(url)
        .execute(work.conn()?)
        .await
        .context("cannot save a guest order's link")?;
        Ok(())
    }

    async fn order_link(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        customer: UserId,
    ) -> anyhow::Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "select order_url from guest_order_link where order_id = $1 and customer_id = $2",
        )
        .bind(order.to_string())
        .bind(customer.to_string())
        .fetch_optional(work.conn()?)
        .await
        .context("cannot read a guest order's link")?)
    }

    async fn save_shipment(
        &self,
        work: &mut UnitOfWork,
        s: &ShipmentSummary,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "insert into shipment_summary (shipment_id, order_id, carrier, tracking_number) values ($1, $2, $3, $4) \
             on conflict (shipment_id) do nothing",
        )
        .bind(s.shipment_id.to_string())
        .bind(s.order_id.to_string())
        .bind(&s.carrier)
        .bind(&s.tracking_number)
        .execute(work.conn()?)
        .await
        .context("cannot save shipment summary")?;
        Ok(())
    }

    async fn shipment(
        &self,
        work: &mut UnitOfWork,
        id: ShipmentId,
    ) -> anyhow::Result<Option<ShipmentSummary>> {
        let row = sqlx::query(
            "select order_id, carrier, tracking_number from shipment_summary where shipment_id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(work.conn()?)
        .await?;
        row.map(|r| {
            let order: String = r.try_get("order_id")?;
            Ok(ShipmentSummary {
                shipment_id: id,
                order_id: OrderId::parse(&order)?,
                carrier: r.try_get("carrier")?,
                tracking_number: r.try_get("tracking_number")?,
            })
        })
        .transpose()
    }

    async fn preferences(&self, customer: UserId) -> anyhow::Result<Preferences> {
        let mut conn = self.db.pool().acquire().await?;
        read_preferences(&mut conn, customer).await
    }

    async fn preferences_in(
        &self,
        work: &mut UnitOfWork,
        customer: UserId,
    ) -> anyhow::Result<Preferences> {
        read_preferences(work.conn()?, customer).await
    }

    async fn set_preferences(
        &self,
        customer: UserId,
        p: Preferences,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "insert into preference (customer_id, shipment_updates, updated_at) values ($1, $2, $3) \
             on conflict (customer_id) do update set shipment_updates = excluded.shipment_updates, updated_at = excluded.updated_at",
        )
        .bind(customer.to_string())
        .bind(i64::from(p.shipment_updates))
        .bind(now.as_micros())
        .execute(self.db.pool())
        .await
        .context("cannot save preferences")?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Deliveries for SqlNotifications {
    async fn enqueue(
        &self,
        work: &mut UnitOfWork,
        dedup_key: &str,
        d: &Delivery,
    ) -> anyhow::Result<bool> {
        let done = sqlx::query(&format!(
            "insert into delivery (dedup_key, {COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             on conflict (dedup_key) do nothing"
        ))
        .bind(dedup_key)
        .bind(d.id.to_string())
        .bind(d.customer_id.to_string())
        .bind(d.kind.as_str())
        .bind(serde_json::to_string(&d.data)?)
        .bind(d.status.as_str())
        .bind(i64::from(d.attempts))
        .bind(d.next_attempt_at.as_micros())
        .bind(d.last_error.as_deref())
        .bind(d.recipient.as_deref())
        .bind(d.subject.as_deref())
        .bind(d.body_text.as_deref())
        .bind(d.created_at.as_micros())
        .bind(d.updated_at.as_micros())
        .bind(d.sent_at.map(|t| t.as_micros()))
        .execute(work.conn()?)
        .await
        .context("cannot queue delivery")?;
        Ok(done.rows_affected() == 1)
    }

    async fn due(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> anyhow::Result<Vec<(Delivery, Option<Customer>)>> {
        let rows = sqlx::query(&format!(
            "select {COLUMNS}, email, name, as_of from delivery left join customer using (customer_id) \
             where status = 'queued' and next_attempt_at <= $1 \
             order by next_attempt_at, delivery_id limit $2"
        ))
        .bind(now.as_micros())
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await
        .context("cannot read due deliveries")?;
        rows.iter()
            .map(|row| {
                let delivery = from_row(row)?;
                let customer = customer_from_row(delivery.customer_id, row)?;
                Ok((delivery, customer))
            })
            .collect()
    }

    async fn claim(&self, d: &Delivery, lease_until: Timestamp) -> anyhow::Result<bool> {
        // Conditional on the row being as read: of two senders, one wins.
        let done = sqlx::query(
            "update delivery set attempts = attempts + 1, next_attempt_at = $1, updated_at = $2 \
             where delivery_id = $3 and status = 'queued' and next_attempt_at = $4",
        )
        .bind(lease_until.as_micros())
        .bind(Timestamp::now().as_micros())
        .bind(d.id.to_string())
        .bind(d.next_attempt_at.as_micros())
        .execute(self.db.pool())
        .await
        .context("cannot claim delivery")?;
        Ok(done.rows_affected() == 1)
    }

    async fn mark_sent(
        &self,
        id: uuid::Uuid,
        m: &Outgoing,
        forget: bool,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        let text = if forget {
            FORGOTTEN_TEXT
        } else {
            m.rendered.text.as_str()
        };
        sqlx::query(
            "update delivery set status = 'sent', sent_at = $1, updated_at = $1, recipient = $2, subject = $3, body_text = $4, last_error = null, \
             data = case when $6 = 1 then '{}' else data end \
             where delivery_id = $5",
        )
        .bind(now.as_micros())
        .bind(&m.to_email)
        .bind(&m.rendered.subject)
        .bind(text)
        .bind(id.to_string())
        .bind(i64::from(forget))
        .execute(self.db.pool())
        .await
        .context("cannot mark delivery sent")?;
        Ok(())
    }

    async fn mark_refused(
        &self,
        id: uuid::Uuid,
        refusal: &Refusal,
        recipient: Option<&str>,
        retry_at: Timestamp,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "update delivery set last_error = $1, recipient = coalesce($2, recipient), next_attempt_at = $3, updated_at = $4 \
             where delivery_id = $5 and status = 'queued'",
        )
        .bind(error_text(refusal))
        .bind(recipient)
        .bind(retry_at.as_micros())
        .bind(now.as_micros())
        .bind(id.to_string())
        .execute(self.db.pool())
        .await
        .context("cannot record refusal")?;
        Ok(())
    }

    async fn mark_failed(
        &self,
        work: &mut UnitOfWork,
        id: uuid::Uuid,
        refusal: &Refusal,
        recipient: Option<&str>,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "update delivery set status = 'failed', last_error = $1, recipient = coalesce($2, recipient), updated_at = $3 \
             where delivery_id = $4 and status = 'queued'",
        )
        .bind(error_text(refusal))
        .bind(recipient)
        .bind(now.as_micros())
        .bind(id.to_string())
        .execute(work.conn()?)
        .await
        .context("cannot mark delivery failed")?;
        Ok(())
    }

    async fn get(&self, id: uuid::Uuid) -> anyhow::Result<Option<Delivery>> {
        let row = sqlx::query(&format!(
            "select {COLUMNS} from delivery where delivery_id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn list(
        &self,
        customer: Option<UserId>,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Delivery>> {
        let mut sql = format!("select {COLUMNS} from delivery where 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        if let Some(c) = customer {
            binds.push(c.to_string());
            sql.push_str(&format!(" and customer_id = ${}", binds.len()));
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
            .context("cannot list deliveries")?;
        let items = rows
            .iter()
            .map(from_row)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(page.finish(items, |d| vec![d.id.to_string()]))
    }

    async fn retry(&self, id: uuid::Uuid, now: Timestamp) -> anyhow::Result<RetryOutcome> {
        let done = sqlx::query(
            "update delivery set status = 'queued', attempts = 0, next_attempt_at = $1, updated_at = $1, created_at = $1 \
             where delivery_id = $2 and status = 'failed'",
        )
        .bind(now.as_micros())
        .bind(id.to_string())
        .execute(self.db.pool())
        .await
        .context("cannot retry delivery")?;
        let current = self.get(id).await?;
        Ok(match current {
            None => RetryOutcome::NotFound,
            Some(d) if done.rows_affected() == 1 => RetryOutcome::Queued(Box::new(d)),
            Some(d) => RetryOutcome::NotFailed(d.status),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::db::DatabaseTarget;
    use serde_json::json;

    #[tokio::test]
    async fn due_deliveries_come_with_their_customer_once_it_is_known() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = Database::connect(&DatabaseTarget::Sqlite {
            path: dir.path().join("notifications.db"),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        db.migrate(&crate::MIGRATOR)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let store = bus::Store::new(db.clone(), bus::Outbox::new());
        let sql = SqlNotifications { db };
        let now = Timestamp::now();
        let (known, unknown) = (UserId::new(), UserId::new());
        let mut work = store
            .begin(bus::Causation::system())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let ada = Customer {
            id: known,
            email: "ada@example.com".into(),
            name: "Ada".into(),
            as_of: now,
        };
        sql.save_customer(&mut work, &ada)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for customer in [known, unknown] {
            let queued = Delivery::queued(customer, MessageKind::Welcome, json!({}), now);
            let key = MessageKind::Welcome.dedup_key(&customer.to_string());
            sql.enqueue(&mut work, &key, &queued)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        work.commit().await.unwrap_or_else(|e| panic!("{e}"));

        let due = sql.due(now, 10).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(due.len(), 2);
        for (delivery, customer) in due {
            if delivery.customer_id == known {
                assert_eq!(customer, Some(ada.clone()));
            } else {
                assert_eq!(customer, None, "identity's word has not arrived");
            }
        }
    }
}

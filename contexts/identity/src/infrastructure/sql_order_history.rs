use anyhow::Context as _;
use bus::UnitOfWork;
use kernel::id::{OrderId, UserId};
use kernel::{Currency, Money, Timestamp};
use platform::db::Database;
use platform::pagination::{Page, PageRequest};
use sqlx::{AnyConnection, Row};

use crate::application::ports::{OrderHistoryRepository, OrderHistoryUpdate};
use crate::domain::{status_of_rank, OrderHistoryEntry, OrderStatus, Progress};

pub(crate) struct SqlOrderHistory {
    pub(crate) db: Database,
}

impl SqlOrderHistory {
    /// Makes sure the row exists and locks it; returns its current progress.
    async fn lock_row(
        &self,
        tx: &mut AnyConnection,
        order: OrderId,
        customer: UserId,
        at: Timestamp,
    ) -> anyhow::Result<OrderStatus> {
        sqlx::query(
            "insert into order_history (order_id, customer_id, status, status_rank, updated_at) values ($1, $2, 'pending', -1, $3) \
             on conflict (order_id) do nothing",
        )
        .bind(order.to_string())
        .bind(customer.to_string())
        .bind(at.as_micros())
        .execute(&mut *tx)
        .await?;
        // A no-op update takes the row's write lock on every backend (no `for update`
        // dialect), so two events of one order are applied one after the other.
        let rank: i64 = sqlx::query_scalar(
            "update order_history set status_rank = status_rank where order_id = $1 returning status_rank",
        )
        .bind(order.to_string())
        .fetch_one(&mut *tx)
        .await?;
        Ok(if rank < 0 {
            OrderStatus::Pending
        } else {
            status_of_rank(rank)
        })
    }

    /// Moves the status to `next` if the row is new or `next` is further along.
    async fn advance(
        &self,
        tx: &mut AnyConnection,
        order: OrderId,
        from: (OrderStatus, bool),
        next: OrderStatus,
        reason: Option<&str>,
        at: Timestamp,
    ) -> anyhow::Result<()> {
        let (current, fresh_row) = from;
        if fresh_row || current.may_move_to(next) {
            sqlx::query(
                "update order_history set status = $1, status_rank = $2, cancellation_reason = coalesce($3, cancellation_reason), updated_at = $4 \
                 where order_id = $5",
            )
            .bind(next.as_str())
            .bind(next.rank())
            .bind(reason)
            .bind(at.as_micros())
            .bind(order.to_string())
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl OrderHistoryRepository for SqlOrderHistory {
    async fn apply(&self, work: &mut UnitOfWork, update: OrderHistoryUpdate) -> anyhow::Result<()> {
        let tx = work.conn()?;
        let (order, customer, at) = match &update {
            OrderHistoryUpdate::Status(c) => {
                (c.entry.order_id, c.entry.customer_id, c.entry.updated_at)
            }
            OrderHistoryUpdate::Cancelled {
                order_id,
                customer_id,
                at,
                ..
            }
            | OrderHistoryUpdate::Tracking {
                order_id,
                customer_id,
                at,
                ..
            }
            | OrderHistoryUpdate::Shipment {
                order_id,
                customer_id,
                at,
                ..
            } => (*order_id, *customer_id, *at),
        };
        let fresh: bool =
            sqlx::query_scalar::<_, i64>("select count(*) from order_history where order_id = $1")
                .bind(order.to_string())
                .fetch_one(&mut *tx)
                .await?
                == 0;
        let current = self.lock_row(&mut *tx, order, customer, at).await?;
        match update {
            OrderHistoryUpdate::Status(change) => {
                let e = &change.entry;
                sqlx::query(
                    "update order_history set total_amount = $1, currency = $2, \
                     placed_at = case when placed_at is null or placed_at > $3 then $3 else placed_at end, \
                     tracking_number = coalesce($4, tracking_number) where order_id = $5",
                )
                .bind(e.total.amount())
                .bind(e.total.currency().as_str())
                .bind(e.placed_at.as_micros())
                .bind(e.tracking_number.as_deref())
                .bind(order.to_string())
                .execute(&mut *tx)
                .await?;
                self.advance(
                    &mut *tx,
                    order,
                    (current, fresh),
                    change.progress,
                    e.cancellation_reason.as_deref(),
                    at,
                )
                .await?;
            }
            OrderHistoryUpdate::Cancelled { reason, .. } => {
                self.advance(
                    &mut *tx,
                    order,
                    (current, fresh),
                    OrderStatus::Cancelled,
                    Some(&reason),
                    at,
                )
                .await?;
            }
            OrderHistoryUpdate::Tracking {
                tracking_number, ..
            } => {
                sqlx::query("update order_history set tracking_number = $1 where order_id = $2")
                    .bind(tracking_number)
                    .bind(order.to_string())
                    .execute(&mut *tx)
                    .await?;
                self.advance(
                    &mut *tx,
                    order,
                    (current, fresh),
                    OrderStatus::Confirmed,
                    None,
                    at,
                )
                .await?;
            }
            OrderHistoryUpdate::Shipment {
                progress,
                tracking_number,
                ..
            } => {
                sqlx::query("update order_history set tracking_number = $1 where order_id = $2")
                    .bind(tracking_number)
                    .bind(order.to_string())
                    .execute(&mut *tx)
                    .await?;
                self.advance(&mut *tx, order, (current, fresh), progress, None, at)
                    .await?;
            }
        }
        Ok(())
    }

    async fn for_customer(
        &self,
        customer: UserId,
        page: &PageRequest,
    ) -> anyhow::Result<Page<OrderHistoryEntry>> {
        const COLUMNS: &str = "order_id, customer_id, status, total_amount, currency, placed_at, cancellation_reason, tracking_number, updated_at";
        // Newest first: (placed_at, order_id) descending.
        let rows = match &page.after {
            None => {
                sqlx::query(&format!(
                    "select {COLUMNS} from order_history where customer_id = $1 and total_amount is not null \
                     order by placed_at desc, order_id desc limit $2"
                ))
                .bind(customer.to_string())
                .bind(page.fetch_limit())
                .fetch_all(self.db.pool())
                .await
            }
            Some(cursor) => {
                let placed: i64 = cursor.parts()[0].parse().unwrap_or(i64::MAX);
                sqlx::query(&format!(
                    "select {COLUMNS} from order_history where customer_id = $1 and total_amount is not null \
                     and (placed_at < $2 or (placed_at = $2 and order_id < $3)) \
                     order by placed_at desc, order_id desc limit $4"
                ))
                .bind(customer.to_string())
                .bind(placed)
                .bind(&cursor.parts()[1])
                .bind(page.fetch_limit())
                .fetch_all(self.db.pool())
                .await
            }
        }
        .context("cannot read order history")?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in &rows {
            let order_id: String = row.try_get("order_id")?;
            let customer_id: String = row.try_get("customer_id")?;
            let amount: i64 = row.try_get("total_amount")?;
            let currency: String = row.try_get("currency")?;
            entries.push(OrderHistoryEntry {
                order_id: OrderId::parse(&order_id)?,
                customer_id: UserId::parse(&customer_id)?,
                status: {
                    let raw: String = row.try_get("status")?;
                    OrderStatus::parse(&raw)
                        .ok_or_else(|| anyhow::anyhow!("unknown order status {raw:?}"))?
                },
                total: Money::new(amount, Currency::parse(&currency)?)?,
                placed_at: Timestamp::from_micros(row.try_get("placed_at")?),
                cancellation_reason: row.try_get("cancellation_reason")?,
                tracking_number: row.try_get("tracking_number")?,
                updated_at: Timestamp::from_micros(row.try_get("updated_at")?),
            });
        }
        Ok(page.finish(entries, |e| {
            vec![e.placed_at.as_micros().to_string(), e.order_id.to_string()]
        }))
    }
}

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
    /// Makes sure the row exists and locks it; returns its current progress, and whether
    /// this event created it.
    async fn lock_row(
        &self,
        tx: &mut AnyConnection,
        order: OrderId,
        customer: UserId,
        at: Timestamp,
    ) -> anyhow::Result<(OrderStatus, bool)> {
        // Creates the row, or takes its write lock with a no-op update (no `for update`
        // dialect needed), so two events of one order are applied one after the other. A
        // rank below zero is a row this event created: every event gives it a status.
        let rank: i64 = sqlx::query_scalar(
            "insert into order_history (order_id, customer_id, status, status_rank, updated_at) values ($1, $2, 'pending', -1, $3) \
             on conflict (order_id) do update set status_rank = order_history.status_rank returning status_rank",
        )
        .bind(order.to_string())
        .bind(customer.to_string())
        .bind(at.as_micros())
        .fetch_one(&mut *tx)
        .await?;
        Ok(if rank < 0 {
            (OrderStatus::Pending, true)
        } else {
            (status_of_rank(rank), false)
        })
    }
}

/// One `update order_history` statement: the fields an event carries and, when the order
/// moves on, its new status.
struct RowUpdate<'a> {
    /// `total_amount = $, currency = $, placed_at = earliest of the two`.
    totals: Option<(Money, Timestamp)>,
    tracking_number: Option<&'a str>,
    /// `(status, reason, at)` when the status moves.
    status: Option<(OrderStatus, Option<&'a str>, Timestamp)>,
}

impl RowUpdate<'_> {
    async fn execute(&self, tx: &mut AnyConnection, order: OrderId) -> anyhow::Result<()> {
        let mut sets = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if self.totals.is_some() {
            let (amount, currency, placed) = (next(), next(), next());
            sets.push(format!(
                "total_amount = {amount}, currency = {currency}, \
                 placed_at = case when placed_at is null or placed_at > {placed} then {placed} else placed_at end"
            ));
        }
        if self.tracking_number.is_some() {
            sets.push(format!("tracking_number = {}", next()));
        }
        if self.status.is_some() {
            let (status, rank, reason, at) = (next(), next(), next(), next());
            sets.push(format!(
                "status = {status}, status_rank = {rank}, cancellation_reason = coalesce({reason}, cancellation_reason), updated_at = {at}"
            ));
        }
        if sets.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "update order_history set {} where order_id = {}",
            sets.join(", "),
            next()
        );
        let mut query = sqlx::query(&sql);
        if let Some((total, placed)) = &self.totals {
            query = query
                .bind(total.amount())
                .bind(total.currency().as_str().to_owned())
                .bind(placed.as_micros());
        }
        if let Some(number) = self.tracking_number {
            query = query.bind(number);
        }
        if let Some((status, reason, at)) = &self.status {
            query = query
                .bind(status.as_str())
                .bind(status.rank())
                .bind(*reason)
                .bind(at.as_micros());
        }
        query.bind(order.to_string()).execute(&mut *tx).await?;
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
        let (current, fresh) = self.lock_row(&mut *tx, order, customer, at).await?;
        // A new row takes the event's status whatever it is; a known one only moves forward.
        let moving = |next: OrderStatus| fresh || current.may_move_to(next);
        let row = match &update {
            OrderHistoryUpdate::Status(change) => {
                let e = &change.entry;
                RowUpdate {
                    totals: Some((e.total, e.placed_at)),
                    tracking_number: e.tracking_number.as_deref(),
                    status: moving(change.progress).then_some((
                        change.progress,
                        e.cancellation_reason.as_deref(),
                        at,
                    )),
                }
            }
            OrderHistoryUpdate::Cancelled { reason, .. } => RowUpdate {
                totals: None,
                tracking_number: None,
                status: moving(OrderStatus::Cancelled).then_some((
                    OrderStatus::Cancelled,
                    Some(reason.as_str()),
                    at,
                )),
            },
            OrderHistoryUpdate::Tracking {
                tracking_number, ..
            } => RowUpdate {
                totals: None,
                tracking_number: Some(tracking_number),
                status: moving(OrderStatus::Confirmed).then_some((
                    OrderStatus::Confirmed,
                    None,
                    at,
                )),
            },
            OrderHistoryUpdate::Shipment {
                progress,
                tracking_number,
                ..
            } => RowUpdate {
                totals: None,
                tracking_number: Some(tracking_number),
                status: moving(*progress).then_some((*progress, None, at)),
            },
        };
        row.execute(&mut *tx, order).await
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

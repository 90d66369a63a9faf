use anyhow::Context as _;
use bus::UnitOfWork;
use kernel::id::{OrderId, UserId};
use kernel::{Currency, Money, Timestamp};
use platform::db::Database;
use platform::pagination::{Page, PageRequest};
use sqlx::Row;

use crate::application::ports::{OrderHistoryRepository, OrderHistoryUpdate};
use crate::domain::{moving_to, OrderHistoryEntry, OrderStatus, Progress};

pub(crate) struct SqlOrderHistory {
    pub(crate) db: Database,
}

/// What one event says about an order: the status it brings and the fields it knows.
struct Said<'a> {
    order: OrderId,
    customer: UserId,
    at: Timestamp,
    status: OrderStatus,
    reason: Option<&'a str>,
    tracking_number: Option<&'a str>,
    /// The total and when the order was placed.
    totals: Option<(Money, Timestamp)>,
}

impl<'a> Said<'a> {
    /// `None` for what is not about the order's progress (who placed a guest order).
    fn of(update: &'a OrderHistoryUpdate) -> Option<Self> {
        Some(match update {
            OrderHistoryUpdate::Status(change) => {
                let e = &change.entry;
                Said {
                    order: e.order_id,
                    customer: e.customer_id,
                    at: e.updated_at,
                    status: change.progress,
                    reason: e.cancellation_reason.as_deref(),
                    tracking_number: e.tracking_number.as_deref(),
                    totals: Some((e.total, e.placed_at)),
                }
            }
            OrderHistoryUpdate::Cancelled {
                order_id,
                customer_id,
                reason,
                at,
            } => Said {
                order: *order_id,
                customer: *customer_id,
                at: *at,
                status: OrderStatus::Cancelled,
                reason: Some(reason),
                tracking_number: None,
                totals: None,
            },
            OrderHistoryUpdate::Tracking {
                order_id,
                customer_id,
                tracking_number,
                at,
            } => Said::shipment(
                (*order_id, *customer_id),
                OrderStatus::Confirmed,
                tracking_number,
                *at,
            ),
            OrderHistoryUpdate::Shipment {
                order_id,
                customer_id,
                progress,
                tracking_number,
                at,
            } => Said::shipment((*order_id, *customer_id), *progress, tracking_number, *at),
            OrderHistoryUpdate::Guest { .. } | OrderHistoryUpdate::Refunded { .. } => return None,
        })
    }

    /// What shipping says: a tracking number and how far the parcel brings the order.
    fn shipment(
        (order, customer): (OrderId, UserId),
        status: OrderStatus,
        tracking_number: &'a str,
        at: Timestamp,
    ) -> Self {
        Said {
            order,
            customer,
            at,
            status,
            reason: None,
            tracking_number: Some(tracking_number),
            totals: None,
        }
    }
}

/// The account that has proved the address a guest order was placed with (`g`).
const CLAIMED: &str = "select u.user_id from guest_order g join user_account u \
                       on u.email = g.email and u.email_verified_at is not null";

/// Keeps who placed a guest order, and gives a history row already there to the account
/// that has proved the address, if one has.
async fn guest_order(
    work: &mut UnitOfWork,
    order: OrderId,
    guest: UserId,
    email: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "insert into guest_order (order_id, guest_id, email) values ($1, $2, $3) \
         on conflict (order_id) do nothing",
    )
    .bind(order.to_string())
    .bind(guest.to_string())
    .bind(email)
    .execute(work.conn()?)
    .await
    .context("cannot record a guest order")?;
    sqlx::query(&format!(
        "update order_history set customer_id = ({CLAIMED} where g.order_id = $1) \
         where order_id = $1 and exists ({CLAIMED} where g.order_id = $1)"
    ))
    .bind(order.to_string())
    .execute(work.conn()?)
    .await
    .context("cannot give a guest order to its account")?;
    Ok(())
}

/// Keeps the largest running total of refunds heard for the order (events may come in any
/// order); a row not there yet is started at `pending`, which any later status moves on.
async fn refunded(
    work: &mut UnitOfWork,
    (order, customer): (OrderId, UserId),
    total: Money,
    at: Timestamp,
) -> anyhow::Result<()> {
    let owner = format!("coalesce(({CLAIMED} where g.order_id = $1), $2)");
    sqlx::query(&format!(
        "insert into order_history (order_id, customer_id, status, status_rank, currency, refunded_amount, updated_at) \
         values ($1, {owner}, $3, $4, $5, $6, $7) \
         on conflict (order_id) do update set \
         currency = coalesce(order_history.currency, excluded.currency), \
         refunded_amount = case when excluded.refunded_amount > coalesce(order_history.refunded_amount, 0) \
             then excluded.refunded_amount else order_history.refunded_amount end"
    ))
    .bind(order.to_string())
    .bind(customer.to_string())
    .bind(OrderStatus::Pending.as_str())
    .bind(OrderStatus::Pending.rank())
    .bind(total.currency().as_str())
    .bind(total.amount())
    .bind(at.as_micros())
    .execute(work.conn()?)
    .await
    .context("cannot record a refund in the order history")?;
    Ok(())
}

#[async_trait::async_trait]
impl OrderHistoryRepository for SqlOrderHistory {
    async fn claim_in(
        &self,
        work: &mut UnitOfWork,
        user: UserId,
        email: &kernel::EmailAddress,
    ) -> anyhow::Result<u64> {
        let claimed = sqlx::query(
            "update order_history set customer_id = $1 \
             where order_id in (select order_id from guest_order where email = $2)",
        )
        .bind(user.to_string())
        .bind(email.as_ref())
        .execute(work.conn()?)
        .await
        .context("cannot give guest orders to their account")?
        .rows_affected();
        Ok(claimed)
    }

    /// One statement: a new row takes everything the event says; a known row takes the
    /// fields the event knows, and its status only from a status that may move to the
    /// event's (`moving_to`, the domain's rule, given as the ranks it allows: `,0,2,`).
    async fn apply(&self, work: &mut UnitOfWork, update: OrderHistoryUpdate) -> anyhow::Result<()> {
        let Some(said) = Said::of(&update) else {
            match &update {
                OrderHistoryUpdate::Guest {
                    order_id,
                    guest_id,
                    email,
                } => guest_order(work, *order_id, *guest_id, email).await?,
                OrderHistoryUpdate::Refunded {
                    order_id,
                    customer_id,
                    total_refunded,
                    at,
                } => refunded(work, (*order_id, *customer_id), *total_refunded, *at).await?,
                _ => {}
            }
            return Ok(());
        };
        let from: String = moving_to(said.status)
            .iter()
            .map(|s| format!("{},", s.rank()))
            .collect();
        let moves = "($11 like ('%,' || order_history.status_rank || ',%'))";
        // A guest's order heard of after its address was proved goes to that account.
        let owner = format!("coalesce(({CLAIMED} where g.order_id = $1), $2)");
        let sql = format!(
            "insert into order_history (order_id, customer_id, status, status_rank, cancellation_reason, tracking_number, \
             total_amount, currency, placed_at, updated_at) values ($1, {OWNER}, $3, $4, $5, $6, $7, $8, $9, $10) \
             on conflict (order_id) do update set \
             total_amount = coalesce(excluded.total_amount, order_history.total_amount), \
             currency = coalesce(excluded.currency, order_history.currency), \
             placed_at = case when order_history.placed_at is null or order_history.placed_at > excluded.placed_at \
                 then excluded.placed_at else order_history.placed_at end, \
             tracking_number = coalesce(excluded.tracking_number, order_history.tracking_number), \
             status = case when {moves} then excluded.status else order_history.status end, \
             status_rank = case when {moves} then excluded.status_rank else order_history.status_rank end, \
             cancellation_reason = case when {moves} \
                 then coalesce(excluded.cancellation_reason, order_history.cancellation_reason) \
                 else order_history.cancellation_reason end, \
             updated_at = case when {moves} then excluded.updated_at else order_history.updated_at end",
            OWNER = owner
        );
        sqlx::query(&sql)
            .bind(said.order.to_string())
            .bind(said.customer.to_string())
            .bind(said.status.as_str())
            .bind(said.status.rank())
            .bind(said.reason)
            .bind(said.tracking_number)
            .bind(said.totals.map(|(total, _)| total.amount()))
            .bind(
                said.totals
                    .map(|(total, _)| total.currency().as_str().to_owned()),
            )
            .bind(said.totals.map(|(_, placed)| placed.as_micros()))
            .bind(said.at.as_micros())
            .bind(format!(",{from}"))
            .execute(work.conn()?)
            .await
            .context("cannot record order history")?;
        Ok(())
    }

    async fn for_customer(
        &self,
        customer: UserId,
        page: &PageRequest,
    ) -> anyhow::Result<Page<OrderHistoryEntry>> {
        const COLUMNS: &str = "order_id, customer_id, status, total_amount, currency, placed_at, cancellation_reason, tracking_number, updated_at, refunded_amount";
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
            let currency = Currency::parse(&row.try_get::<String, _>("currency")?)?;
            let refunded: Option<i64> = row.try_get("refunded_amount")?;
            entries.push(OrderHistoryEntry {
                order_id: OrderId::parse(&order_id)?,
                customer_id: UserId::parse(&customer_id)?,
                status: {
                    let raw: String = row.try_get("status")?;
                    OrderStatus::parse(&raw)
                        .ok_or_else(|| anyhow::anyhow!("unknown order status {raw:?}"))?
                },
                total: Money::new(amount, currency)?,
                refunded: Money::new(refunded.unwrap_or(0), currency)?,
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

//! Stock and reservations. Every change is a conditional statement whose row count decides
//! (`reserved = reserved + q where on_hand - reserved >= q`), so concurrent reservations can
//! never oversell; rows are locked in product-id order, so they cannot deadlock.

use anyhow::Context as _;
use bus::UnitOfWork;
use catalog_contracts::{ReleaseReason, ShortLine, StockLine};
use kernel::id::{OrderId, ProductId};
use kernel::Timestamp;
use platform::db::Database;
use sqlx::{AnyConnection, Row};

use crate::application::ports::{
    InventoryRepository, PaidOutcome, ReleaseOutcome, ReserveOutcome, SetStockError,
};
use crate::domain::StockLevel;

pub(crate) struct SqlInventory {
    pub(crate) db: Database,
}

async fn reservation_status(
    conn: &mut AnyConnection,
    order: OrderId,
) -> anyhow::Result<Option<String>> {
    Ok(
        sqlx::query_scalar("select status from reservation where order_id = $1")
            .bind(order.to_string())
            .fetch_optional(conn)
            .await?,
    )
}

async fn reservation_lines(
    conn: &mut AnyConnection,
    order: OrderId,
) -> anyhow::Result<Vec<StockLine>> {
    let rows = sqlx::query(
        "select product_id, quantity from reservation_line where order_id = $1 order by product_id",
    )
    .bind(order.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let id: String = r.try_get("product_id")?;
            let q: i64 = r.try_get("quantity")?;
            Ok(StockLine {
                product_id: ProductId::parse(&id)?,
                quantity: u32::try_from(q)?,
            })
        })
        .collect()
}

/// Which open reservations a close applies to.
#[derive(Clone, Copy)]
enum Open {
    /// Held or paid (cancellation, dispatch).
    Any,
    /// Only held, never paid (expiry: a payment that got in first wins).
    Unpaid,
}

/// Moves an open reservation to `to` and gives its units back (`consume`: they also leave
/// on_hand, for a dispatch). Returns the lines, or `None` if it was not open.
async fn close(
    conn: &mut AnyConnection,
    order: OrderId,
    open: Open,
    to: &str,
    consume: bool,
    now: Timestamp,
) -> anyhow::Result<Option<Vec<StockLine>>> {
    let statuses = match open {
        Open::Any => "('held', 'paid')",
        Open::Unpaid => "('held')",
    };
    let closed = sqlx::query(&format!(
        "update reservation set status = $1, expires_at = null, updated_at = $2 where order_id = $3 and status in {statuses}"
    ))
    .bind(to)
    .bind(now.as_micros())
    .bind(order.to_string())
    .execute(&mut *conn)
    .await?;
    if closed.rows_affected() != 1 {
        return Ok(None);
    }
    let lines = reservation_lines(conn, order).await?;
    let sql = if consume {
        "update stock set on_hand = on_hand - $1, reserved = reserved - $1, updated_at = $2 where product_id = $3"
    } else {
        "update stock set reserved = reserved - $1, updated_at = $2 where product_id = $3"
    };
    for line in &lines {
        sqlx::query(sql)
            .bind(i64::from(line.quantity))
            .bind(now.as_micros())
            .bind(line.product_id.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(Some(lines))
}

/// Units of a product neither held nor gone (0 for an unknown product).
async fn free_units(conn: &mut AnyConnection, product: ProductId) -> anyhow::Result<i64> {
    let available: Option<i64> =
        sqlx::query_scalar("select on_hand - reserved from stock where product_id = $1")
            .bind(product.to_string())
            .fetch_optional(conn)
            .await?;
    Ok(available.unwrap_or(0))
}

/// The lines whose product has fewer free units than they ask for.
async fn short_of(conn: &mut AnyConnection, lines: &[StockLine]) -> anyhow::Result<Vec<ShortLine>> {
    let mut short_lines = Vec::new();
    for line in lines {
        let available = free_units(conn, line.product_id).await?;
        if available < i64::from(line.quantity) {
            short_lines.push(ShortLine {
                product_id: line.product_id,
                requested: line.quantity,
                available,
            });
        }
    }
    Ok(short_lines)
}

/// Holds every line if its units are free (one conditional statement per line, so
/// concurrent holds never oversell); `false` at the first line that is short, leaving the
/// caller to roll back.
async fn hold_lines(
    conn: &mut AnyConnection,
    lines: &[StockLine],
    now: Timestamp,
) -> anyhow::Result<bool> {
    for line in lines {
        let held = sqlx::query(
            "update stock set reserved = reserved + $1, updated_at = $2 where product_id = $3 and on_hand - reserved >= $1",
        )
        .bind(i64::from(line.quantity))
        .bind(now.as_micros())
        .bind(line.product_id.to_string())
        .execute(&mut *conn)
        .await
        .context("cannot reserve")?;
        if held.rows_affected() != 1 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Holds an expired reservation's lines again, all or none (the order was paid after it
/// expired). A line whose units were taken meanwhile makes it `Short`, and nothing is held.
async fn hold_again(
    conn: &mut AnyConnection,
    order: OrderId,
    now: Timestamp,
) -> anyhow::Result<PaidOutcome> {
    let lines = reservation_lines(conn, order).await?;
    let short_lines = short_of(conn, &lines).await?;
    if !short_lines.is_empty() {
        tracing::warn!(order_id = %order, "paid after its reservation expired, and the stock is gone");
        return Ok(PaidOutcome::Short { short_lines });
    }
    if !hold_lines(conn, &lines, now).await? {
        // Taken between the check and the hold: let the delivery be tried again.
        anyhow::bail!("stock changed while holding order {order} again");
    }
    sqlx::query("update reservation set status = 'paid', expires_at = null, updated_at = $1 where order_id = $2 and status = 'expired'")
        .bind(now.as_micros())
        .bind(order.to_string())
        .execute(&mut *conn)
        .await?;
    tracing::warn!(order_id = %order, "paid after its reservation expired: held again");
    Ok(PaidOutcome::HeldAgain)
}

/// A dispatch of an order whose units were given back (its reservation expired or was
/// released before the carrier took the parcel): the goods left all the same, so they leave
/// on_hand, as far as units are not held for other orders; any shortfall is logged for a
/// stock count.
async fn take_off_given_back(
    conn: &mut AnyConnection,
    order: OrderId,
    now: Timestamp,
) -> anyhow::Result<()> {
    let status = reservation_status(conn, order).await?;
    if !matches!(status.as_deref(), Some("expired" | "released")) {
        tracing::warn!(order_id = %order, status = ?status, "dispatch of an order without a reservation to take off stock");
        return Ok(());
    }
    for line in reservation_lines(conn, order).await? {
        let q = i64::from(line.quantity);
        let taken = q.min(free_units(conn, line.product_id).await?).max(0);
        sqlx::query(
            "update stock set on_hand = on_hand - $1, updated_at = $2 where product_id = $3",
        )
        .bind(taken)
        .bind(now.as_micros())
        .bind(line.product_id.to_string())
        .execute(&mut *conn)
        .await?;
        if taken < q {
            tracing::warn!(order_id = %order, product_id = %line.product_id, shortfall = q - taken, "dispatched more units than were free: count the stock");
        }
    }
    sqlx::query("update reservation set status = 'committed', updated_at = $1 where order_id = $2")
        .bind(now.as_micros())
        .bind(order.to_string())
        .execute(&mut *conn)
        .await?;
    tracing::warn!(order_id = %order, "dispatched after its units were given back: taken off stock");
    Ok(())
}

/// Tries to hold every line, inside a savepoint; `Ok(None)` when a line is short (the
/// savepoint is rolled back, nothing is held).
async fn try_hold(
    conn: &mut AnyConnection,
    order: OrderId,
    lines: &[StockLine],
    expires_at: Timestamp,
) -> anyhow::Result<Option<ReserveOutcome>> {
    let now = Timestamp::now();
    if reservation_status(conn, order).await?.is_some() {
        // Cancelled before it was reserved (a tombstone), or reserved under another envelope.
        return Ok(Some(ReserveOutcome::AlreadyClosed));
    }
    let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
    if !hold_lines(&mut savepoint, lines, now).await? {
        savepoint.rollback().await?;
        return Ok(None);
    }
    savepoint.commit().await?;
    sqlx::query("insert into reservation (order_id, status, expires_at, created_at, updated_at) values ($1, 'held', $2, $3, $3)")
        .bind(order.to_string())
        .bind(expires_at.as_micros())
        .bind(now.as_micros())
        .execute(&mut *conn)
        .await?;
    for line in lines {
        sqlx::query(
            "insert into reservation_line (order_id, product_id, quantity) values ($1, $2, $3)",
        )
        .bind(order.to_string())
        .bind(line.product_id.to_string())
        .bind(i64::from(line.quantity))
        .execute(&mut *conn)
        .await?;
    }
    Ok(Some(ReserveOutcome::Reserved {
        lines: lines.to_vec(),
        expires_at,
    }))
}

/// Records the order as rejected with what is short; `Ok(None)` when nothing is short any
/// more (stock came back since the hold failed).
async fn reject(
    conn: &mut AnyConnection,
    order: OrderId,
    lines: &[StockLine],
) -> anyhow::Result<Option<ReserveOutcome>> {
    let now = Timestamp::now();
    let short_lines = short_of(conn, lines).await?;
    if short_lines.is_empty() {
        return Ok(None);
    }
    sqlx::query("insert into reservation (order_id, status, created_at, updated_at) values ($1, 'rejected', $2, $2)")
        .bind(order.to_string())
        .bind(now.as_micros())
        .execute(&mut *conn)
        .await?;
    Ok(Some(ReserveOutcome::Rejected { short_lines }))
}

#[async_trait::async_trait]
impl InventoryRepository for SqlInventory {
    async fn stock(&self, product: ProductId) -> anyhow::Result<Option<StockLevel>> {
        let row = sqlx::query("select on_hand, reserved from stock where product_id = $1")
            .bind(product.to_string())
            .fetch_optional(self.db.pool())
            .await
            .context("cannot read stock")?;
        row.map(|r| {
            Ok(StockLevel {
                on_hand: r.try_get("on_hand")?,
                reserved: r.try_get("reserved")?,
            })
        })
        .transpose()
    }

    async fn set_on_hand(
        &self,
        product: ProductId,
        on_hand: i64,
        now: Timestamp,
    ) -> Result<StockLevel, SetStockError> {
        let done = sqlx::query("update stock set on_hand = $1, updated_at = $2 where product_id = $3 and reserved <= $1")
            .bind(on_hand)
            .bind(now.as_micros())
            .bind(product.to_string())
            .execute(self.db.pool())
            .await
            .context("cannot set stock")?;
        let level = self.stock(product).await?.ok_or(SetStockError::NotFound)?;
        if done.rows_affected() != 1 {
            return Err(SetStockError::BelowReserved {
                reserved: level.reserved,
            });
        }
        Ok(level)
    }

    async fn reserve(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        lines: &[StockLine],
        expires_at: Timestamp,
    ) -> anyhow::Result<ReserveOutcome> {
        let conn = work.conn()?;
        for _ in 0..5 {
            if let Some(outcome) = try_hold(conn, order, lines, expires_at).await? {
                return Ok(outcome);
            }
            if let Some(outcome) = reject(conn, order, lines).await? {
                return Ok(outcome);
            }
        }
        anyhow::bail!("stock kept changing while reserving order {order}")
    }

    async fn release(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
    ) -> anyhow::Result<ReleaseOutcome> {
        let tx = work.conn()?;
        let now = Timestamp::now();
        if reservation_status(tx, order).await?.is_none() {
            // Cancelled before the reservation request arrived: leave a tombstone.
            sqlx::query("insert into reservation (order_id, status, created_at, updated_at) values ($1, 'cancelled', $2, $2)")
                .bind(order.to_string())
                .bind(now.as_micros())
                .execute(&mut *tx)
                .await?;
            return Ok(ReleaseOutcome::Nothing);
        }
        Ok(
            match close(tx, order, Open::Any, "released", false, now).await? {
                Some(lines) => ReleaseOutcome::Released {
                    lines,
                    reason: ReleaseReason::Cancelled,
                },
                None => ReleaseOutcome::Nothing,
            },
        )
    }

    async fn mark_paid(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
    ) -> anyhow::Result<PaidOutcome> {
        let tx = work.conn()?;
        let now = Timestamp::now();
        let kept = sqlx::query("update reservation set status = 'paid', expires_at = null, updated_at = $1 where order_id = $2 and status = 'held'")
            .bind(now.as_micros())
            .bind(order.to_string())
            .execute(&mut *tx)
            .await?;
        Ok(if kept.rows_affected() == 1 {
            PaidOutcome::Kept
        } else if reservation_status(tx, order).await?.as_deref() == Some("expired") {
            hold_again(tx, order, now).await?
        } else {
            PaidOutcome::Nothing
        })
    }

    async fn commit(&self, work: &mut UnitOfWork, order: OrderId) -> anyhow::Result<()> {
        let tx = work.conn()?;
        let now = Timestamp::now();
        if close(tx, order, Open::Any, "committed", true, now)
            .await?
            .is_none()
        {
            take_off_given_back(tx, order, now).await?;
        }
        Ok(())
    }

    async fn due(&self, now: Timestamp, limit: i64) -> anyhow::Result<Vec<OrderId>> {
        let due: Vec<String> = sqlx::query_scalar(
            "select order_id from reservation where status = 'held' and expires_at < $1 order by expires_at limit $2",
        )
        .bind(now.as_micros())
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        due.iter().map(|raw| Ok(OrderId::parse(raw)?)).collect()
    }

    async fn expire(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        now: Timestamp,
    ) -> anyhow::Result<ReleaseOutcome> {
        let tx = work.conn()?;
        Ok(
            match close(tx, order, Open::Unpaid, "expired", false, now).await? {
                Some(lines) => ReleaseOutcome::Released {
                    lines,
                    reason: ReleaseReason::ReservationExpired,
                },
                None => ReleaseOutcome::Nothing,
            },
        )
    }
}

//! Stock and reservations. Every change is a conditional statement whose row count decides
//! (`reserved = reserved + q where on_hand - reserved >= q`), so concurrent reservations can
//! never oversell; rows are locked in product-id order, so they cannot deadlock.

use anyhow::Context as _;
use bus::UnitOfWork;
use catalog_contracts::{ShortLine, StockLine};
use kernel::id::{OrderId, ProductId};
use kernel::Timestamp;
use platform::db::Database;
use sqlx::{AnyConnection, Row};

use crate::application::ports::{
    DecideMove, InventoryRepository, MoveOutcome, ReserveOutcome, SetStockError,
};
use crate::domain::{Reservation, ReservationStatus, StockLevel, StockMove};

pub(crate) struct SqlInventory {
    pub(crate) db: Database,
}

/// The order's reservation with its lines (one statement), if there is one.
async fn load(conn: &mut AnyConnection, order: OrderId) -> anyhow::Result<Option<Reservation>> {
    let rows = sqlx::query(
        "select r.status, l.product_id, l.quantity from reservation r \
         left join reservation_line l on l.order_id = r.order_id where r.order_id = $1 order by l.product_id",
    )
    .bind(order.to_string())
    .fetch_all(conn)
    .await
    .context("cannot read reservation")?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let raw: String = first.try_get("status")?;
    let status = ReservationStatus::parse(&raw)
        .ok_or_else(|| anyhow::anyhow!("unknown reservation status {raw:?}"))?;
    let mut lines = Vec::with_capacity(rows.len());
    for row in &rows {
        let product: Option<String> = row.try_get("product_id")?;
        let quantity: Option<i64> = row.try_get("quantity")?;
        if let (Some(product), Some(quantity)) = (product, quantity) {
            lines.push(StockLine {
                product_id: ProductId::parse(&product)?,
                quantity: u32::try_from(quantity)?,
            });
        }
    }
    Ok(Some(Reservation {
        order_id: order,
        status,
        lines,
    }))
}

/// Applies a transition's stock move to the reservation's lines (in product-id order).
async fn move_stock(
    conn: &mut AnyConnection,
    reservation: &Reservation,
    stock: StockMove,
    now: Timestamp,
) -> anyhow::Result<()> {
    let order = reservation.order_id;
    let sql = match stock {
        StockMove::GiveBack => {
            "update stock set reserved = reserved - $1, updated_at = $2 where product_id = $3"
        }
        StockMove::Consume => {
            "update stock set on_hand = on_hand - $1, reserved = reserved - $1, updated_at = $2 where product_id = $3"
        }
        StockMove::TakeOffFree => return take_off_free(conn, reservation, now).await,
        StockMove::HoldAgain => {
            if !hold_lines(conn, &reservation.lines, now).await? {
                // Taken between the check and the hold: let the delivery be tried again.
                anyhow::bail!("stock changed while holding order {order} again");
            }
            tracing::warn!(order_id = %order, "paid after its reservation expired: held again");
            return Ok(());
        }
    };
    for line in &reservation.lines {
        sqlx::query(sql)
            .bind(i64::from(line.quantity))
            .bind(now.as_micros())
            .bind(line.product_id.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
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

/// A dispatch of an order whose units were given back (its reservation expired or was
/// released before the carrier took the parcel): the goods left all the same, so they leave
/// on_hand, as far as units are not held for other orders; any shortfall is logged for a
/// stock count.
async fn take_off_free(
    conn: &mut AnyConnection,
    reservation: &Reservation,
    now: Timestamp,
) -> anyhow::Result<()> {
    let order = reservation.order_id;
    for line in &reservation.lines {
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
    tracing::warn!(order_id = %order, "dispatched after its units were given back: taken off stock");
    Ok(())
}

/// Tries to hold every line, inside a savepoint when there are several; `Ok(None)` when a
/// line is short (the savepoint is rolled back, nothing is held).
async fn try_hold(
    conn: &mut AnyConnection,
    order: OrderId,
    lines: &[StockLine],
    expires_at: Timestamp,
) -> anyhow::Result<Option<ReserveOutcome>> {
    let now = Timestamp::now();
    if load(conn, order).await?.is_some() {
        // Cancelled before it was reserved (a tombstone), or reserved under another envelope.
        return Ok(Some(ReserveOutcome::AlreadyClosed));
    }
    if let [_] = lines {
        // One line: a hold that fails has changed nothing, no savepoint needed.
        if !hold_lines(&mut *conn, lines, now).await? {
            return Ok(None);
        }
    } else {
        let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
        if !hold_lines(&mut savepoint, lines, now).await? {
            savepoint.rollback().await?;
            return Ok(None);
        }
        savepoint.commit().await?;
    }
    sqlx::query("insert into reservation (order_id, status, expires_at, created_at, updated_at) values ($1, $2, $3, $4, $4)")
        .bind(order.to_string())
        .bind(ReservationStatus::Held.as_str())
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

/// A reservation that holds nothing: rejected, or a tombstone.
async fn insert_closed(
    conn: &mut AnyConnection,
    order: OrderId,
    status: ReservationStatus,
    now: Timestamp,
) -> anyhow::Result<()> {
    sqlx::query("insert into reservation (order_id, status, created_at, updated_at) values ($1, $2, $3, $3)")
        .bind(order.to_string())
        .bind(status.as_str())
        .bind(now.as_micros())
        .execute(conn)
        .await?;
    Ok(())
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
    insert_closed(conn, order, ReservationStatus::Rejected, now).await?;
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

    async fn change(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        decide: DecideMove,
        now: Timestamp,
    ) -> anyhow::Result<Option<MoveOutcome>> {
        let conn = work.conn()?;
        for _ in 0..5 {
            let Some(reservation) = load(conn, order).await? else {
                return Ok(None);
            };
            let Some(transition) = decide(&reservation) else {
                return Ok(Some(MoveOutcome::Unchanged(reservation.status)));
            };
            if transition.stock == Some(StockMove::HoldAgain) {
                let short_lines = short_of(conn, &reservation.lines).await?;
                if !short_lines.is_empty() {
                    tracing::warn!(order_id = %order, "paid after its reservation expired, and the stock is gone");
                    return Ok(Some(MoveOutcome::Short(short_lines)));
                }
            }
            // Written only from the status it was decided on: a concurrent move (an expiry
            // racing a payment) makes it decide again.
            let moved = sqlx::query(
                "update reservation set status = $1, expires_at = null, updated_at = $2 where order_id = $3 and status = $4",
            )
            .bind(transition.to.as_str())
            .bind(now.as_micros())
            .bind(order.to_string())
            .bind(transition.from.as_str())
            .execute(&mut *conn)
            .await?;
            if moved.rows_affected() != 1 {
                continue;
            }
            if let Some(stock) = transition.stock {
                move_stock(conn, &reservation, stock, now).await?;
            }
            return Ok(Some(MoveOutcome::Moved(transition)));
        }
        anyhow::bail!("the reservation of order {order} kept changing")
    }

    async fn tombstone(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        insert_closed(work.conn()?, order, ReservationStatus::Cancelled, now).await
    }

    async fn restock(
        &self,
        work: &mut UnitOfWork,
        lines: &[StockLine],
        now: Timestamp,
    ) -> anyhow::Result<()> {
        let conn = work.conn()?;
        for line in lines {
            sqlx::query(
                "update stock set on_hand = on_hand + $1, updated_at = $2 where product_id = $3",
            )
            .bind(i64::from(line.quantity))
            .bind(now.as_micros())
            .bind(line.product_id.to_string())
            .execute(&mut *conn)
            .await
            .context("cannot restock returned units")?;
        }
        Ok(())
    }

    async fn due(&self, now: Timestamp, limit: i64) -> anyhow::Result<Vec<OrderId>> {
        let due: Vec<String> = sqlx::query_scalar(
            "select order_id from reservation where status = $1 and expires_at < $2 order by expires_at limit $3",
        )
        .bind(ReservationStatus::Held.as_str())
        .bind(now.as_micros())
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        due.iter().map(|raw| Ok(OrderId::parse(raw)?)).collect()
    }
}

//! Orders, lines, status history and payments. Every saga step runs in the unit of work it
//! is given: the order's move (guarded by its version), payment rows and history, with the
//! inbox record and the events the bus adds to the same transaction.

use std::sync::Arc;

use anyhow::Context as _;
use bus::UnitOfWork;
use kernel::address::PostalAddress;
use kernel::id::{OrderId, ProductId, ShipmentId, UserId};
use kernel::{Currency, Money, Timestamp};
use platform::db::{is_unique_violation, Database};
use platform::pagination::{Page, PageRequest};
use sqlx::{AnyConnection, Row};

use crate::application::ports::{
    Applied, Decide, Idempotency, Inserted, OrderFilter, OrderRepository, OrderSummary,
    SUMMARY_SAMPLE,
};
use crate::application::publish;
use crate::domain::{
    retry_delay, Amounts, CancellationReason, Order, OrderLine, OrderReturn, OrderStatus, Payment,
    PaymentKind, PaymentStatus, ReturnLine, ReturnStatus, StatusEntry,
};

use super::sql_promotions;
use super::versions::Versions;

pub(crate) struct SqlOrders {
    db: Database,
    /// Orders as last read, each at its version. A version is never written twice, so an
    /// entry whose version is the row's current one is exactly what the tables hold: a read
    /// checks the version (one indexed lookup) instead of reading four tables. Only committed
    /// states go in: read from the database, or written by a change once its unit committed.
    /// A change (the saga's, a cancellation's) may be decided on a kept copy, but it is
    /// written only where the row is still at the copy's version, and decided again on the
    /// tables otherwise; a decision to change nothing is always taken on the tables. So a
    /// change made behind the repository's back (by hand, without a version bump) can only
    /// make a shown order lag until its next change.
    read: moka::sync::Cache<OrderId, Arc<Order>>,
    /// Where a view asks for the order's current version (one statement for many).
    versions: Versions,
}

/// Orders kept by `SqlOrders::read`: a few MiB at most.
const ORDERS_KEPT: u64 = 4096;

impl SqlOrders {
    pub(crate) fn new(db: Database) -> Self {
        Self {
            versions: Versions::start(db.clone()),
            db,
            read: moka::sync::Cache::new(ORDERS_KEPT),
        }
    }

    /// The orders named, as `view` shows them, as one page: their versions asked for
    /// together, the orders not kept at them read one after the other.
    async fn page_of(&self, ids: Vec<String>, page: &PageRequest) -> anyhow::Result<Page<Order>> {
        let ids = ids
            .iter()
            .map(|id| OrderId::parse(id))
            .collect::<Result<Vec<_>, _>>()?;
        let versions =
            futures::future::try_join_all(ids.iter().map(|id| self.versions.of(*id))).await?;
        let mut conn = None;
        let mut orders = Vec::with_capacity(ids.len());
        for (id, version) in ids.into_iter().zip(versions) {
            let Some(version) = version else { continue };
            if let Some(known) = self.kept(id, version) {
                orders.push(known);
                continue;
            }
            let conn = match &mut conn {
                Some(conn) => conn,
                None => conn.insert(self.db.pool().acquire().await?),
            };
            if let Some(o) = self.load_and_keep(conn, id).await? {
                orders.push(o);
            }
        }
        Ok(page.finish(orders, |o| vec![o.id.to_string()]))
    }

    /// The committed order, from `read` when it holds the current version.
    async fn current(&self, id: OrderId) -> anyhow::Result<Option<Order>> {
        let Some(version) = self.versions.of(id).await? else {
            return Ok(None);
        };
        if let Some(known) = self.kept(id, version) {
            return Ok(Some(known));
        }
        let mut conn = self.db.pool().acquire().await?;
        self.load_and_keep(&mut conn, id).await
    }

    /// The kept copy of the order, if it is at `version`.
    fn kept(&self, id: OrderId, version: i64) -> Option<Order> {
        self.read
            .get(&id)
            .filter(|o| o.version == version)
            .map(|o| Order::clone(&o))
    }

    async fn load_and_keep(
        &self,
        conn: &mut AnyConnection,
        id: OrderId,
    ) -> anyhow::Result<Option<Order>> {
        let order = load(conn, id).await?;
        if let Some(o) = &order {
            self.read.insert(id, Arc::new(o.clone()));
        }
        Ok(order)
    }
}

fn money(amount: i64, currency: &str) -> anyhow::Result<Money> {
    Ok(Money::new(amount, Currency::parse(currency)?)?)
}

async fn load(conn: &mut AnyConnection, id: OrderId) -> anyhow::Result<Option<Order>> {
    let row = sqlx::query(
        "select order_id, customer_id, status, cancellation_reason, total_amount, currency, shipping_address, payment_token, \
         shipment_id, tracking_number, placed_at, updated_at, deadline_at, version, subtotal_amount, discount_amount, \
         shipping_amount, tax_amount, weight_grams, promotion_code from customer_order where order_id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await
    .context("cannot read order")?;
    let Some(row) = row else { return Ok(None) };
    let customer: String = row.try_get("customer_id")?;
    let status: String = row.try_get("status")?;
    let reason: Option<String> = row.try_get("cancellation_reason")?;
    let currency: String = row.try_get("currency")?;
    let address: String = row.try_get("shipping_address")?;
    let shipment: Option<String> = row.try_get("shipment_id")?;
    let deadline: Option<i64> = row.try_get("deadline_at")?;

    // Lines, history and payments in one round trip: one `union all` whose rows say which
    // table they come from (`part`), in each table's order. Its nulls are typed, as
    // PostgreSQL types a union's columns from its first branches.
    let rows = sqlx::query(
        "select 1 as part, 0 as s1, product_id as s2, product_id as t1, sku as t2, name as t3, currency as t4, \
                variant_of as t5, cast(null as text) as t6, cast(null as text) as t7, cast(null as text) as t8, \
                cast(null as text) as t9, quantity as i1, unit_price_amount as i2, discount_amount as i3, tax_amount as i4 \
         from order_line where order_id = $1 \
         union all \
         select 2, seq, '', status, reason, note, cast(null as text), cast(null as text), cast(null as text), \
                cast(null as text), cast(null as text), cast(null as text), occurred_at, cast(null as bigint), cast(null as bigint), cast(null as bigint) \
         from order_status_history where order_id = $1 \
         union all \
         select 3, created_at, payment_id, payment_id, kind, status, currency, idempotency_key, gateway_reference, \
                last_error, provider_status, reason, amount, attempts, created_at, updated_at \
         from payment where order_id = $1 \
         union all \
         select 4, created_at, return_id, return_id, status, reason, refund_id, note, tracking_number, \
                client_key, cast(null as text), cast(null as text), refund_shipping, refund_amount, created_at, updated_at \
         from order_return where order_id = $1 \
         union all \
         select 5, l.seq, l.return_id, l.return_id, l.product_id, cast(null as text), cast(null as text), cast(null as text), \
                cast(null as text), cast(null as text), cast(null as text), cast(null as text), l.quantity, l.restock, \
                cast(null as bigint), cast(null as bigint) \
         from order_return_line l join order_return r on r.return_id = l.return_id where r.order_id = $1 \
         order by part, s1, s2",
    )
    .bind(id.to_string())
    .fetch_all(&mut *conn)
    .await
    .context("cannot read order lines, history and payments")?;
    let (mut lines, mut history, mut payments) = (Vec::new(), Vec::new(), Vec::new());
    let mut returns: Vec<OrderReturn> = Vec::new();
    for r in &rows {
        let text = |column: &str| -> anyhow::Result<Option<String>> { Ok(r.try_get(column)?) };
        let required = |column: &str| -> anyhow::Result<String> {
            text(column)?.ok_or_else(|| anyhow::anyhow!("order row without {column}"))
        };
        let number = |column: &str| -> anyhow::Result<i64> {
            let n: Option<i64> = r.try_get(column)?;
            n.ok_or_else(|| anyhow::anyhow!("order row without {column}"))
        };
        let part: i64 = r.try_get("part")?;
        match part {
            1 => lines.push(OrderLine {
                product_id: ProductId::parse(&required("t1")?)?,
                variant_of: text("t5")?.map(|p| ProductId::parse(&p)).transpose()?,
                sku: required("t2")?,
                name: required("t3")?,
                quantity: u32::try_from(number("i1")?)?,
                unit_price: money(number("i2")?, &required("t4")?)?,
                discount: money(number("i3")?, &required("t4")?)?,
                tax: money(number("i4")?, &required("t4")?)?,
            }),
            2 => {
                let status = required("t1")?;
                history.push(StatusEntry {
                    status: OrderStatus::parse(&status)
                        .ok_or_else(|| anyhow::anyhow!("unknown status {status}"))?,
                    reason: text("t2")?.as_deref().and_then(CancellationReason::parse),
                    note: text("t3")?,
                    at: Timestamp::from_micros(number("i1")?),
                });
            }
            4 => {
                let status = required("t2")?;
                returns.push(OrderReturn {
                    id: uuid::Uuid::parse_str(&required("t1")?)?,
                    status: ReturnStatus::parse(&status)
                        .ok_or_else(|| anyhow::anyhow!("unknown return status {status}"))?,
                    reason: required("t3")?,
                    lines: Vec::new(),
                    refund_shipping: number("i1")? != 0,
                    refund_amount: r
                        .try_get::<Option<i64>, _>("i2")?
                        .map(|a| money(a, &currency))
                        .transpose()?,
                    refund_id: text("t4")?
                        .map(|id| uuid::Uuid::parse_str(&id))
                        .transpose()?,
                    note: text("t5")?,
                    tracking_number: text("t6")?,
                    client_key: text("t7")?,
                    created_at: Timestamp::from_micros(number("i3")?),
                    updated_at: Timestamp::from_micros(number("i4")?),
                });
            }
            5 => {
                let id = uuid::Uuid::parse_str(&required("t1")?)?;
                let line = ReturnLine {
                    product_id: ProductId::parse(&required("t2")?)?,
                    quantity: u32::try_from(number("i1")?)?,
                    restock: number("i2")? != 0,
                };
                returns
                    .iter_mut()
                    .find(|x| x.id == id)
                    .ok_or_else(|| anyhow::anyhow!("return line without its return"))?
                    .lines
                    .push(line);
            }
            _ => {
                let currency = required("t4")?;
                payments.push(Payment {
                    id: uuid::Uuid::parse_str(&required("t1")?)?,
                    kind: PaymentKind::parse(&required("t2")?)
                        .ok_or_else(|| anyhow::anyhow!("unknown payment kind"))?,
                    status: PaymentStatus::parse(&required("t3")?)
                        .ok_or_else(|| anyhow::anyhow!("unknown payment status"))?,
                    amount: money(number("i1")?, &currency)?,
                    idempotency_key: required("t5")?,
                    gateway_reference: text("t6")?,
                    attempts: number("i2")?,
                    last_error: text("t7")?,
                    provider_status: text("t8")?,
                    reason: text("t9")?,
                    created_at: Timestamp::from_micros(number("i3")?),
                    updated_at: Timestamp::from_micros(number("i4")?),
                });
            }
        }
    }

    Ok(Some(Order {
        id,
        customer_id: UserId::parse(&customer)?,
        status: OrderStatus::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("unknown status {status}"))?,
        cancellation_reason: reason.as_deref().and_then(CancellationReason::parse),
        lines,
        amounts: Amounts {
            subtotal: money(row.try_get("subtotal_amount")?, &currency)?,
            discount: money(row.try_get("discount_amount")?, &currency)?,
            shipping: money(row.try_get("shipping_amount")?, &currency)?,
            tax: money(row.try_get("tax_amount")?, &currency)?,
            weight_grams: u64::try_from(row.try_get::<i64, _>("weight_grams")?)?,
        },
        promotion_code: row.try_get("promotion_code")?,
        total: money(row.try_get("total_amount")?, &currency)?,
        shipping_address: serde_json::from_str::<PostalAddress>(&address)?,
        payment_token: row.try_get("payment_token")?,
        shipment_id: shipment.map(|s| ShipmentId::parse(&s)).transpose()?,
        tracking_number: row.try_get("tracking_number")?,
        placed_at: Timestamp::from_micros(row.try_get("placed_at")?),
        updated_at: Timestamp::from_micros(row.try_get("updated_at")?),
        deadline_at: deadline.map(Timestamp::from_micros),
        version: row.try_get("version")?,
        history,
        payments,
        returns,
    }))
}

/// Writes a return as it now is: its row, and its lines (whose restock flag may change).
async fn write_return(
    conn: &mut AnyConnection,
    order: OrderId,
    r: &OrderReturn,
) -> anyhow::Result<()> {
    sqlx::query(
        "insert into order_return (return_id, order_id, status, reason, refund_shipping, refund_amount, refund_id, note, created_at, updated_at, tracking_number, client_key) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) on conflict (return_id) do update set \
         status = excluded.status, refund_shipping = excluded.refund_shipping, refund_amount = excluded.refund_amount, \
         refund_id = excluded.refund_id, note = excluded.note, updated_at = excluded.updated_at, tracking_number = excluded.tracking_number",
    )
    .bind(r.id.to_string())
    .bind(order.to_string())
    .bind(r.status.as_str())
    .bind(&r.reason)
    .bind(i64::from(r.refund_shipping))
    .bind(r.refund_amount.map(|m| m.amount()))
    .bind(r.refund_id.map(|id| id.to_string()))
    .bind(r.note.as_deref())
    .bind(r.created_at.as_micros())
    .bind(r.updated_at.as_micros())
    .bind(r.tracking_number.as_deref())
    .bind(r.client_key.as_deref())
    .execute(&mut *conn)
    .await
    .context("cannot write a return")?;
    for (seq, line) in r.lines.iter().enumerate() {
        sqlx::query(
            "insert into order_return_line (return_id, seq, product_id, quantity, restock) values ($1, $2, $3, $4, $5) \
             on conflict (return_id, seq) do update set restock = excluded.restock",
        )
        .bind(r.id.to_string())
        .bind(i64::try_from(seq)?)
        .bind(line.product_id.to_string())
        .bind(i64::from(line.quantity))
        .bind(i64::from(line.restock))
        .execute(&mut *conn)
        .await
        .context("cannot write a return line")?;
    }
    Ok(())
}

async fn add_history(
    conn: &mut AnyConnection,
    order: OrderId,
    seq: usize,
    entry: &StatusEntry,
) -> anyhow::Result<()> {
    sqlx::query("insert into order_status_history (order_id, seq, status, reason, note, occurred_at) values ($1, $2, $3, $4, $5, $6)")
        .bind(order.to_string())
        .bind(i64::try_from(seq)?)
        .bind(entry.status.as_str())
        .bind(entry.reason.map(|r| r.as_str()))
        .bind(entry.note.as_deref())
        .bind(entry.at.as_micros())
        .execute(conn)
        .await?;
    Ok(())
}

/// The order placed with `key` by the customer, and its request's hash, as `conn` reads them.
async fn replayed(
    conn: &mut AnyConnection,
    customer: UserId,
    key: &str,
) -> anyhow::Result<Option<(Order, String)>> {
    let row: Option<(String, String)> = sqlx::query_as(
        "select order_id, request_hash from customer_order where customer_id = $1 and idempotency_key = $2",
    )
    .bind(customer.to_string())
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((id, request_hash)) = row else {
        return Ok(None);
    };
    let order = load(conn, OrderId::parse(&id)?)
        .await?
        .ok_or_else(|| anyhow::anyhow!("order vanished"))?;
    Ok(Some((order, request_hash)))
}

#[async_trait::async_trait]
impl OrderRepository for SqlOrders {
    async fn replayed_in(
        &self,
        work: &mut UnitOfWork,
        customer: UserId,
        key: &str,
    ) -> anyhow::Result<Option<(Order, String)>> {
        replayed(work.conn()?, customer, key).await
    }

    async fn replayed(
        &self,
        customer: UserId,
        key: &str,
    ) -> anyhow::Result<Option<(Order, String)>> {
        let mut conn = self.db.pool().acquire().await?;
        replayed(&mut conn, customer, key).await
    }

    async fn insert(
        &self,
        work: &mut UnitOfWork,
        order: &Order,
        idempotency: Option<&Idempotency>,
    ) -> anyhow::Result<Inserted> {
        let tx = work.conn()?;
        let amounts = &order.amounts;
        let inserted = sqlx::query(
            "insert into customer_order (order_id, customer_id, status, total_amount, currency, shipping_address, payment_token, \
             idempotency_key, request_hash, placed_at, updated_at, deadline_at, version, subtotal_amount, discount_amount, \
             shipping_amount, tax_amount, weight_grams, promotion_code) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        )
        .bind(order.id.to_string())
        .bind(order.customer_id.to_string())
        .bind(order.status.as_str())
        .bind(order.total.amount())
        .bind(order.total.currency().as_str())
        .bind(serde_json::to_string(&order.shipping_address)?)
        .bind(&order.payment_token)
        .bind(idempotency.map(|i| i.key.clone()))
        .bind(idempotency.map(|i| i.request_hash.clone()))
        .bind(order.placed_at.as_micros())
        .bind(order.updated_at.as_micros())
        .bind(order.deadline_at.map(|d| d.as_micros()))
        .bind(order.version)
        .bind(amounts.subtotal.amount())
        .bind(amounts.discount.amount())
        .bind(amounts.shipping.amount())
        .bind(amounts.tax.amount())
        .bind(i64::try_from(amounts.weight_grams)?)
        .bind(order.promotion_code.as_deref())
        .execute(&mut *tx)
        .await;
        match inserted {
            // The key's unique index: the one race a checkout can lose here.
            Err(e) if is_unique_violation(&e) && idempotency.is_some() => {
                return Ok(Inserted::KeyTaken)
            }
            other => {
                other.context("cannot insert order")?;
            }
        }
        for line in &order.lines {
            sqlx::query(
                "insert into order_line (order_id, product_id, sku, name, quantity, unit_price_amount, currency, discount_amount, tax_amount, variant_of) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(order.id.to_string())
            .bind(line.product_id.to_string())
            .bind(&line.sku)
            .bind(&line.name)
            .bind(i64::from(line.quantity))
            .bind(line.unit_price.amount())
            .bind(line.unit_price.currency().as_str())
            .bind(line.discount.amount())
            .bind(line.tax.amount())
            .bind(line.variant_of.map(|p| p.to_string()))
            .execute(&mut *tx)
            .await?;
        }
        for (n, entry) in order.history.iter().enumerate() {
            add_history(&mut *tx, order.id, n + 1, entry).await?;
        }
        let (read, known, id) = (self.read.clone(), Arc::new(order.clone()), order.id);
        work.after_commit(move || read.insert(id, known));
        Ok(Inserted::Stored)
    }

    async fn apply(
        &self,
        work: &mut UnitOfWork,
        order_id: OrderId,
        decide: Decide<'_>,
    ) -> anyhow::Result<Applied> {
        // The order as last committed, if kept: a change decided on it is written only if
        // the row is still at its version, so a copy that is not current costs one failed
        // update and the decision is made again on what the tables hold. A decision to do
        // nothing is only ever taken on the tables.
        let mut kept = self.read.get(&order_id);
        for _ in 0..10 {
            let tx = work.conn()?;
            let copy = kept.take();
            let before = match &copy {
                Some(known) => Order::clone(known),
                None => match load(&mut *tx, order_id).await? {
                    Some(order) => order,
                    None => return Ok(Applied::Missing),
                },
            };
            let Some(change) = decide(&before) else {
                if copy.is_some() {
                    continue;
                }
                return Ok(Applied::Unchanged(Box::new(before)));
            };
            let Some((next, mut after)) = before.changed(&change, Timestamp::now()) else {
                if copy.is_some() {
                    continue;
                }
                // The decision asked for a move the state machine forbids: nothing happens.
                return Ok(Applied::Unchanged(Box::new(before)));
            };
            let now = next.at;
            let moved = sqlx::query(
                "update customer_order set status = $1, cancellation_reason = $2, deadline_at = $3, shipment_id = $4, \
                 tracking_number = $5, updated_at = $6, version = version + 1 where order_id = $7 and version = $8",
            )
            .bind(next.status.as_str())
            .bind(next.cancellation_reason.map(|r| r.as_str()))
            .bind(next.deadline_at.map(|d| d.as_micros()))
            .bind(next.shipment_id.map(|s| s.to_string()))
            .bind(next.tracking_number.as_deref())
            .bind(now.as_micros())
            .bind(order_id.to_string())
            .bind(before.version)
            .execute(&mut *tx)
            .await
            .context("cannot update order")?;
            if moved.rows_affected() != 1 {
                // The kept copy was behind, or the order moved since we read it
                // (PostgreSQL): decide again on the tables, which this transaction now reads.
                continue;
            }
            if let Some(entry) = &next.entry {
                add_history(&mut *tx, order_id, before.history.len() + 1, entry).await?;
            }
            if next.releases_promotion {
                sql_promotions::give_back(&mut *tx, order_id, now).await?;
            }
            // `after` is the order as the statements below leave it when each finds the
            // rows as expected; when one does not, the order is read back instead.
            let mut exact = true;
            if let Some(p) = &change.new_payment {
                let inserted = sqlx::query(
                    "insert into payment (payment_id, order_id, kind, status, amount, currency, idempotency_key, attempts, created_at, updated_at, reason) \
                     values ($1, $2, $3, 'pending', $4, $5, $6, 0, $7, $7, $8) on conflict (idempotency_key) do nothing",
                )
                .bind(p.id.to_string())
                .bind(order_id.to_string())
                .bind(p.kind.as_str())
                .bind(p.amount.amount())
                .bind(p.amount.currency().as_str())
                .bind(&p.idempotency_key)
                .bind(now.as_micros())
                .bind(p.reason.as_deref())
                .execute(&mut *tx)
                .await?;
                exact &= inserted.rows_affected() == 1;
            }
            if let Some(u) = &change.payment_update {
                let updated = sqlx::query(
                    "update payment set status = $1, gateway_reference = coalesce($2, gateway_reference), last_error = $3, attempts = $4, updated_at = $5 \
                     where payment_id = $6",
                )
                .bind(u.status.as_str())
                .bind(u.reference.as_deref())
                .bind(u.error.as_deref())
                .bind(u.attempts)
                .bind(now.as_micros())
                .bind(u.id.to_string())
                .execute(&mut *tx)
                .await?;
                exact &=
                    updated.rows_affected() == 1 && after.payments.iter().any(|p| p.id == u.id);
            }
            if let Some(r) = change
                .return_written
                .as_ref()
                .and_then(|r| after.find_return(r.id))
            {
                write_return(&mut *tx, order_id, r).await?;
            }
            if !exact {
                after = load(&mut *tx, order_id)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("order vanished"))?;
            }
            let mut events = after.events_since(&before);
            if change.announce_again {
                events.extend(after.announcement());
            }
            publish(work, events, after.updated_at)?;
            let (read, known) = (self.read.clone(), Arc::new(after.clone()));
            work.after_commit(move || read.insert(order_id, known));
            return Ok(Applied::Changed(Box::new(after)));
        }
        anyhow::bail!("order {order_id} kept changing; giving up this attempt")
    }

    async fn get(&self, id: OrderId) -> anyhow::Result<Option<Order>> {
        let mut conn = self.db.pool().acquire().await?;
        load(&mut conn, id).await
    }

    async fn view(&self, id: OrderId) -> anyhow::Result<Option<Order>> {
        self.current(id).await
    }

    async fn list(&self, customer: UserId, page: &PageRequest) -> anyhow::Result<Page<Order>> {
        let after = page
            .after
            .as_ref()
            .map(|c| c.parts()[0].clone())
            .unwrap_or_else(|| "~".to_owned());
        let ids: Vec<String> = sqlx::query_scalar(
            "select order_id from customer_order where customer_id = $1 and order_id < $2 order by order_id desc limit $3",
        )
        .bind(customer.to_string())
        .bind(after)
        .bind(page.fetch_limit())
        .fetch_all(self.db.pool())
        .await
        .context("cannot list orders")?;
        self.page_of(ids, page).await
    }

    async fn counts(&self, customer: UserId) -> anyhow::Result<Vec<(String, i64)>> {
        sqlx::query_as(
            "select status, count(*) from customer_order where customer_id = $1 group by status order by status",
        )
        .bind(customer.to_string())
        .fetch_all(self.db.pool())
        .await
        .context("cannot count orders")
    }

    async fn search(
        &self,
        filter: &OrderFilter,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Order>> {
        let after = page
            .after
            .as_ref()
            .map(|c| c.parts()[0].clone())
            .unwrap_or_else(|| "~".to_owned());
        // Only the conditions asked for, so each plan can use an index.
        let mut sql = String::from("select order_id from customer_order where order_id < $1");
        let mut n = 1;
        let mut next = |column: &str, op: &str| {
            n += 1;
            format!(" and {column} {op} ${n}")
        };
        if filter.status.is_some() {
            sql += &next("status", "=");
        }
        if filter.customer.is_some() {
            sql += &next("customer_id", "=");
        }
        if filter.placed_from.is_some() {
            sql += &next("placed_at", ">=");
        }
        if filter.placed_to.is_some() {
            sql += &next("placed_at", "<");
        }
        sql += &format!(" order by order_id desc limit ${}", n + 1);
        let mut query = sqlx::query_scalar::<_, String>(&sql).bind(after);
        if let Some(status) = filter.status {
            query = query.bind(status.as_str());
        }
        if let Some(customer) = filter.customer {
            query = query.bind(customer.to_string());
        }
        if let Some(from) = filter.placed_from {
            query = query.bind(from.as_micros());
        }
        if let Some(to) = filter.placed_to {
            query = query.bind(to.as_micros());
        }
        let ids = query
            .bind(page.fetch_limit())
            .fetch_all(self.db.pool())
            .await
            .context("cannot search orders")?;
        self.page_of(ids, page).await
    }

    async fn summary(&self, since: Timestamp) -> anyhow::Result<OrderSummary> {
        let parse = |rows: Vec<(String, i64)>| -> anyhow::Result<Vec<(OrderStatus, i64)>> {
            rows.into_iter()
                .map(|(s, n)| {
                    let status = OrderStatus::parse(&s)
                        .with_context(|| format!("unknown order status {s:?}"))?;
                    Ok((status, n))
                })
                .collect()
        };
        let by_status = sqlx::query_as(
            "select status, count(*) from customer_order where placed_at >= $1 group by status",
        )
        .bind(since.as_micros())
        .fetch_all(self.db.pool())
        .await
        .context("cannot count orders by status")?;
        let reached = sqlx::query_as(
            "select h.status, count(distinct h.order_id) from order_status_history h \
             join customer_order o on o.order_id = h.order_id \
             where o.placed_at >= $1 group by h.status",
        )
        .bind(since.as_micros())
        .fetch_all(self.db.pool())
        .await
        .context("cannot count the statuses orders reached")?;
        let mut placed_to_confirmed: Vec<i64> = sqlx::query_scalar(
            "select min(h.occurred_at) - o.placed_at from order_status_history h \
             join customer_order o on o.order_id = h.order_id \
             where o.placed_at >= $1 and h.status = 'confirmed' \
             group by o.order_id, o.placed_at order by o.placed_at desc limit $2",
        )
        .bind(since.as_micros())
        .bind(SUMMARY_SAMPLE)
        .fetch_all(self.db.pool())
        .await
        .context("cannot measure confirmations")?;
        placed_to_confirmed.sort_unstable();
        Ok(OrderSummary {
            by_status: parse(by_status)?,
            reached: parse(reached)?,
            placed_to_confirmed,
        })
    }

    async fn due(&self, now: Timestamp, limit: i64) -> anyhow::Result<Vec<OrderId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "select order_id from customer_order where deadline_at is not null and deadline_at < $1 order by deadline_at limit $2",
        )
        .bind(now.as_micros())
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        ids.iter().map(|i| Ok(OrderId::parse(i)?)).collect()
    }

    async fn stale_charges(&self, before: Timestamp, limit: i64) -> anyhow::Result<Vec<OrderId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "select c.order_id from payment c join customer_order o on o.order_id = c.order_id \
             where c.kind = 'charge' and c.status = 'pending' and o.status = 'cancelled' and c.updated_at < $1 \
             order by c.updated_at limit $2",
        )
        .bind(before.as_micros())
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        ids.iter().map(|i| Ok(OrderId::parse(i)?)).collect()
    }

    async fn refunds_due(&self, now: Timestamp, limit: i64) -> anyhow::Result<Vec<OrderId>> {
        // Owed refunds: a cancelled order's charge not wholly refunded yet (none tried), or a
        // pending refund never tried or whose backoff has passed (the wait grows with its
        // attempts, see `retry_delay`), the longest-waiting first.
        let rows: Vec<(String, Option<i64>, Option<i64>)> = sqlx::query_as(
            "select r.order_id, r.attempts, r.updated_at from payment r \
             where r.kind = 'refund' and r.status = 'pending' \
             union all \
             select o.order_id, cast(null as bigint), cast(null as bigint) from customer_order o \
             join payment c on c.order_id = o.order_id and c.kind = 'charge' and c.status = 'authorized' \
             where o.status = 'cancelled' \
             and c.amount > (select coalesce(sum(x.amount), 0) from payment x where x.order_id = o.order_id and x.kind = 'refund') \
             order by 3 nulls first limit $1",
        )
        .bind(limit.saturating_mul(4))
        .fetch_all(self.db.pool())
        .await?;
        let now = now.as_micros();
        rows.into_iter()
            .filter(|(_, attempts, updated_at)| match (attempts, updated_at) {
                (Some(attempts), Some(updated_at)) => {
                    let wait =
                        i64::try_from(retry_delay(*attempts).as_micros()).unwrap_or(i64::MAX);
                    updated_at.saturating_add(wait) <= now
                }
                _ => true,
            })
            .map(|(id, _, _)| id)
            .fold(Vec::<String>::new(), |mut ids, id| {
                if !ids.contains(&id) {
                    ids.push(id);
                }
                ids
            })
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(0))
            .map(|id| Ok(OrderId::parse(&id)?))
            .collect()
    }
}

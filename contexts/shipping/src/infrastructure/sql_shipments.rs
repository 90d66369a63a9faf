use anyhow::Context as _;
use bus::UnitOfWork;
use kernel::id::{OrderId, ShipmentId, UserId};
use kernel::Timestamp;
use platform::db::{is_unique_violation, Database};
use platform::pagination::{Page, PageRequest};
use shipping_contracts::ReturnLabelCreated;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::application::ports::{
    CancelOutcome, CreateOutcome, RecordError, Shipment, ShipmentRepository, TrackingEvent,
};
use crate::domain::{CarrierEvent, ShipmentStatus};

pub(crate) struct SqlShipments {
    pub(crate) db: Database,
}

const COLUMNS: &str = "shipment_id, order_id, customer_id, carrier, tracking_number, status, shipping_address, lines, created_at, updated_at, weight_grams, charge_amount, charge_currency";

fn from_row(row: &AnyRow) -> anyhow::Result<Shipment> {
    let id: String = row.try_get("shipment_id")?;
    let order: String = row.try_get("order_id")?;
    let customer: String = row.try_get("customer_id")?;
    let status: String = row.try_get("status")?;
    let address: String = row.try_get("shipping_address")?;
    let lines: String = row.try_get("lines")?;
    Ok(Shipment {
        id: ShipmentId::parse(&id)?,
        order_id: OrderId::parse(&order)?,
        customer_id: UserId::parse(&customer)?,
        carrier: row.try_get("carrier")?,
        tracking_number: row.try_get("tracking_number")?,
        status: ShipmentStatus::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("unknown status {status}"))?,
        address: serde_json::from_str(&address)?,
        lines: serde_json::from_str(&lines)?,
        weight_grams: u64::try_from(row.try_get::<i64, _>("weight_grams")?)?,
        charge: match (
            row.try_get::<Option<i64>, _>("charge_amount")?,
            row.try_get::<Option<String>, _>("charge_currency")?,
        ) {
            (Some(amount), Some(currency)) => Some(kernel::Money::new(
                amount,
                kernel::Currency::parse(&currency)?,
            )?),
            _ => None,
        },
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
        updated_at: Timestamp::from_micros(row.try_get("updated_at")?),
        events: vec![],
    })
}

async fn load_events(conn: &mut AnyConnection, shipment: &mut Shipment) -> anyhow::Result<()> {
    let rows = sqlx::query(
        "select event_type, location, occurred_at from tracking_event where shipment_id = $1 order by occurred_at, recorded_at",
    )
    .bind(shipment.id.to_string())
    .fetch_all(conn)
    .await?;
    shipment.events = rows
        .iter()
        .map(|r| {
            Ok(TrackingEvent {
                event_type: r.try_get("event_type")?,
                location: r.try_get("location")?,
                occurred_at: Timestamp::from_micros(r.try_get("occurred_at")?),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(())
}

async fn add_event(
    conn: &mut AnyConnection,
    id: ShipmentId,
    kind: &str,
    location: Option<&str>,
    at: Timestamp,
) -> anyhow::Result<()> {
    sqlx::query(
        "insert into tracking_event (tracking_event_id, shipment_id, event_type, location, occurred_at, recorded_at) values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(id.to_string())
    .bind(kind)
    .bind(location)
    .bind(at.as_micros())
    .bind(Timestamp::now().as_micros())
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the order's gate row lock for the rest of the transaction (an upsert always locks
/// the row it touches): shipment creation and order cancellation for one order serialise.
async fn lock_order(conn: &mut AnyConnection, order: OrderId) -> anyhow::Result<()> {
    sqlx::query(
        "insert into order_gate (order_id) values ($1) \
         on conflict (order_id) do update set order_id = excluded.order_id",
    )
    .bind(order.to_string())
    .execute(conn)
    .await
    .context("cannot lock the order")?;
    Ok(())
}

impl SqlShipments {
    async fn one(
        &self,
        conn: &mut AnyConnection,
        filter: &str,
        value: String,
    ) -> anyhow::Result<Option<Shipment>> {
        let row = sqlx::query(&format!(
            "select {COLUMNS} from shipment where {filter} = $1"
        ))
        .bind(value)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut shipment = from_row(&row)?;
        load_events(conn, &mut shipment).await?;
        Ok(Some(shipment))
    }
}

#[async_trait::async_trait]
impl ShipmentRepository for SqlShipments {
    async fn create_return_label(
        &self,
        work: &mut UnitOfWork,
        label: &ReturnLabelCreated,
    ) -> anyhow::Result<bool> {
        let inserted = sqlx::query(
            "insert into return_label (return_id, order_id, customer_id, carrier, tracking_number, created_at) \
             values ($1, $2, $3, $4, $5, $6) on conflict (return_id) do nothing",
        )
        .bind(&label.return_id)
        .bind(label.order_id.to_string())
        .bind(label.customer_id.to_string())
        .bind(&label.carrier)
        .bind(&label.tracking_number)
        .bind(label.created_at.as_micros())
        .execute(work.conn()?)
        .await;
        match inserted {
            Ok(done) => Ok(done.rows_affected() == 1),
            // A tracking-number collision: fail, and the retry draws anew.
            Err(e) if is_unique_violation(&e) => anyhow::bail!("tracking number collision"),
            Err(e) => Err(e).context("cannot create a return label"),
        }
    }

    async fn create(&self, work: &mut UnitOfWork, s: &Shipment) -> anyhow::Result<CreateOutcome> {
        let tx = work.conn()?;
        lock_order(&mut *tx, s.order_id).await?;
        // Not for an order cancelled first; whether that is why nothing was inserted is asked
        // only then.
        let inserted = sqlx::query(&format!(
            "insert into shipment ({COLUMNS}) select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 \
             where not exists (select 1 from cancelled_order where order_id = $2) on conflict (order_id) do nothing"
        ))
        .bind(s.id.to_string())
        .bind(s.order_id.to_string())
        .bind(s.customer_id.to_string())
        .bind(&s.carrier)
        .bind(&s.tracking_number)
        .bind(s.status.as_str())
        .bind(serde_json::to_string(&s.address)?)
        .bind(serde_json::to_string(&s.lines)?)
        .bind(s.created_at.as_micros())
        .bind(s.updated_at.as_micros())
        .bind(i64::try_from(s.weight_grams)?)
        .bind(s.charge.map(|m| m.amount()))
        .bind(s.charge.map(|m| m.currency().as_str().to_owned()))
        .execute(&mut *tx)
        .await;
        let inserted = match inserted {
            Ok(done) => done.rows_affected() == 1,
            // A tracking-number collision (one in ten billion): fail, and the retry draws anew.
            Err(e) if is_unique_violation(&e) => anyhow::bail!("tracking number collision"),
            Err(e) => return Err(e).context("cannot create shipment"),
        };
        if inserted {
            return Ok(CreateOutcome::Created(Box::new(s.clone())));
        }
        let cancelled: Option<i64> =
            sqlx::query_scalar("select 1 from cancelled_order where order_id = $1")
                .bind(s.order_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        Ok(if cancelled.is_some() {
            CreateOutcome::OrderCancelled
        } else {
            CreateOutcome::Exists
        })
    }

    async fn cancel_for_order(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        now: Timestamp,
    ) -> anyhow::Result<CancelOutcome> {
        let tx = work.conn()?;
        lock_order(&mut *tx, order).await?;
        sqlx::query("insert into cancelled_order (order_id, cancelled_at) values ($1, $2) on conflict (order_id) do nothing")
            .bind(order.to_string())
            .bind(now.as_micros())
            .execute(&mut *tx)
            .await?;
        let outcome = match self.one(&mut *tx, "order_id", order.to_string()).await? {
            None => CancelOutcome::NoShipment,
            Some(s) if s.status == ShipmentStatus::Cancelled => CancelOutcome::NoShipment,
            Some(s) => match s.status.cancel() {
                None => CancelOutcome::AlreadyDispatched(Box::new(s)),
                Some(next) => {
                    let moved = sqlx::query("update shipment set status = $1, updated_at = $2 where shipment_id = $3 and status = $4")
                        .bind(next.as_str())
                        .bind(now.as_micros())
                        .bind(s.id.to_string())
                        .bind(s.status.as_str())
                        .execute(&mut *tx)
                        .await?;
                    let current = self
                        .one(&mut *tx, "order_id", order.to_string())
                        .await?
                        .unwrap_or(s);
                    if moved.rows_affected() == 1 {
                        add_event(&mut *tx, current.id, "cancelled", None, now).await?;
                        CancelOutcome::Cancelled(Box::new(current))
                    } else {
                        CancelOutcome::AlreadyDispatched(Box::new(current))
                    }
                }
            },
        };
        Ok(outcome)
    }

    async fn record(
        &self,
        work: &mut UnitOfWork,
        id: ShipmentId,
        event: CarrierEvent,
        location: Option<&str>,
        occurred_at: Timestamp,
    ) -> Result<Shipment, RecordError> {
        let tx = work.conn()?;
        let current = self
            .one(&mut *tx, "shipment_id", id.to_string())
            .await?
            .ok_or(RecordError::NotFound)?;
        let next = current.status.apply(event)?;
        let moved = sqlx::query("update shipment set status = $1, updated_at = $2 where shipment_id = $3 and status = $4")
            .bind(next.as_str())
            .bind(occurred_at.as_micros())
            .bind(id.to_string())
            .bind(current.status.as_str())
            .execute(&mut *tx)
            .await
            .context("cannot move shipment")?;
        if moved.rows_affected() != 1 {
            // Someone else moved it in between (PostgreSQL); report it as the refusal it is.
            return Err(RecordError::Transition(
                crate::domain::TransitionError::Invalid {
                    status: "changed",
                    event: event.as_str(),
                },
            ));
        }
        add_event(&mut *tx, id, event.as_str(), location, occurred_at).await?;
        let updated = self
            .one(&mut *tx, "shipment_id", id.to_string())
            .await?
            .ok_or(RecordError::NotFound)?;
        Ok(updated)
    }

    async fn get(&self, id: ShipmentId) -> anyhow::Result<Option<Shipment>> {
        let mut conn = self.db.pool().acquire().await?;
        self.one(&mut conn, "shipment_id", id.to_string()).await
    }

    async fn by_tracking_number(&self, tracking_number: &str) -> anyhow::Result<Option<Shipment>> {
        let mut conn = self.db.pool().acquire().await?;
        self.one(&mut conn, "tracking_number", tracking_number.to_owned())
            .await
    }

    async fn list(
        &self,
        customer: Option<UserId>,
        order: Option<OrderId>,
        page: &PageRequest,
    ) -> anyhow::Result<Page<Shipment>> {
        let mut sql = format!("select {COLUMNS} from shipment where 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        if let Some(c) = customer {
            binds.push(c.to_string());
            sql.push_str(&format!(" and customer_id = ${}", binds.len()));
        }
        if let Some(o) = order {
            binds.push(o.to_string());
            sql.push_str(&format!(" and order_id = ${}", binds.len()));
        }
        if let Some(cursor) = &page.after {
            binds.push(cursor.parts()[0].clone());
            sql.push_str(&format!(" and shipment_id < ${}", binds.len()));
        }
        sql.push_str(&format!(
            " order by shipment_id desc limit ${}",
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
            .context("cannot list shipments")?;
        let mut conn = self.db.pool().acquire().await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut s = from_row(row)?;
            load_events(&mut conn, &mut s).await?;
            items.push(s);
        }
        Ok(page.finish(items, |s| vec![s.id.to_string()]))
    }
}

use anyhow::Context as _;
use bus::UnitOfWork;
use kernel::id::{OrderId, UserId};
use kernel::{Currency, Money, Timestamp};
use platform::db::{is_unique_violation, Database};
use platform::pagination::{Page, PageRequest};
use sqlx::{AnyConnection, Row};

use crate::application::ports::PromotionBook;
use crate::domain::cart::CodeUse;
use crate::domain::promotion::{Benefit, Promotion, PromotionCode};

pub(crate) struct SqlPromotions {
    pub(crate) db: Database,
}

const COLUMNS: &str = "code, percent_bps, starts_at, ends_at, max_uses, max_uses_per_customer, uses, active, created_at";

async fn amounts(conn: &mut AnyConnection, code: &str) -> anyhow::Result<(Vec<Money>, Vec<Money>)> {
    let rows = sqlx::query(
        "select kind, currency, amount from promotion_amount where code = $1 order by kind, currency",
    )
    .bind(code)
    .fetch_all(&mut *conn)
    .await
    .context("cannot read promotion amounts")?;
    let (mut fixed, mut minimum) = (Vec::new(), Vec::new());
    for row in &rows {
        let kind: String = row.try_get("kind")?;
        let currency: String = row.try_get("currency")?;
        let money = Money::new(row.try_get("amount")?, Currency::parse(&currency)?)?;
        if kind == "fixed" {
            fixed.push(money);
        } else {
            minimum.push(money);
        }
    }
    Ok((fixed, minimum))
}

async fn from_row(conn: &mut AnyConnection, row: &sqlx::any::AnyRow) -> anyhow::Result<Promotion> {
    let code: String = row.try_get("code")?;
    let (fixed, minimum) = amounts(conn, &code).await?;
    let percent: Option<i64> = row.try_get("percent_bps")?;
    let at = |column: &str| -> anyhow::Result<Option<Timestamp>> {
        Ok(row
            .try_get::<Option<i64>, _>(column)?
            .map(Timestamp::from_micros))
    };
    Ok(Promotion {
        code: PromotionCode::parse(&code).map_err(anyhow::Error::msg)?,
        benefit: match percent {
            Some(bps) => Benefit::Percent(u32::try_from(bps)?),
            None => Benefit::Fixed(fixed),
        },
        min_subtotal: minimum,
        starts_at: at("starts_at")?,
        ends_at: at("ends_at")?,
        max_uses: row.try_get("max_uses")?,
        max_uses_per_customer: row.try_get("max_uses_per_customer")?,
        uses: row.try_get("uses")?,
        active: row.try_get::<i64, _>("active")? == 1,
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
    })
}

/// The promotion as `conn` sees it.
async fn load(conn: &mut AnyConnection, code: &PromotionCode) -> anyhow::Result<Option<Promotion>> {
    let row = sqlx::query(&format!("select {COLUMNS} from promotion where code = $1"))
        .bind(code.as_str())
        .fetch_optional(&mut *conn)
        .await
        .context("cannot read promotion")?;
    match row {
        Some(row) => Ok(Some(from_row(conn, &row).await?)),
        None => Ok(None),
    }
}

async fn customer_uses(
    conn: &mut AnyConnection,
    code: &PromotionCode,
    customer: UserId,
) -> anyhow::Result<i64> {
    sqlx::query_scalar("select count(*) from promotion_use where code = $1 and customer_id = $2")
        .bind(code.as_str())
        .bind(customer.to_string())
        .fetch_one(&mut *conn)
        .await
        .context("cannot count promotion uses")
}

async fn on_cart(
    conn: &mut AnyConnection,
    customer: UserId,
) -> anyhow::Result<Option<PromotionCode>> {
    let code: Option<String> =
        sqlx::query_scalar("select code from cart_promotion where customer_id = $1")
            .bind(customer.to_string())
            .fetch_optional(&mut *conn)
            .await
            .context("cannot read the cart's code")?;
    cart_code(code)
}

/// The cart's code as stored.
pub(crate) fn cart_code(stored: Option<String>) -> anyhow::Result<Option<PromotionCode>> {
    stored
        .map(|c| PromotionCode::parse(&c).map_err(anyhow::Error::msg))
        .transpose()
}

/// Takes one use of the code for `order`, unless it is withdrawn or used up (`false`): the
/// limit holds however many checkouts race for the last use, as the row's update is atomic.
/// The cart's code is used up with it.
async fn take_use(
    conn: &mut AnyConnection,
    code: &PromotionCode,
    order: OrderId,
    customer: UserId,
    now: Timestamp,
) -> anyhow::Result<bool> {
    let taken = sqlx::query(
        "update promotion set uses = uses + 1, updated_at = $2 \
         where code = $1 and active = 1 and (max_uses is null or uses < max_uses)",
    )
    .bind(code.as_str())
    .bind(now.as_micros())
    .execute(&mut *conn)
    .await
    .context("cannot take a promotion use")?;
    if taken.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "insert into promotion_use (order_id, code, customer_id, used_at) values ($1, $2, $3, $4)",
    )
    .bind(order.to_string())
    .bind(code.as_str())
    .bind(customer.to_string())
    .bind(now.as_micros())
    .execute(&mut *conn)
    .await
    .context("cannot record the promotion use")?;
    sqlx::query("delete from cart_promotion where customer_id = $1")
        .bind(customer.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// Gives back the use a cancelled order took, if it took one.
pub(crate) async fn give_back(
    conn: &mut AnyConnection,
    order: OrderId,
    now: Timestamp,
) -> anyhow::Result<()> {
    let code: Option<String> =
        sqlx::query_scalar("delete from promotion_use where order_id = $1 returning code")
            .bind(order.to_string())
            .fetch_optional(&mut *conn)
            .await
            .context("cannot release the promotion use")?;
    if let Some(code) = code {
        sqlx::query(
            "update promotion set uses = uses - 1, updated_at = $2 where code = $1 and uses > 0",
        )
        .bind(code)
        .bind(now.as_micros())
        .execute(&mut *conn)
        .await
        .context("cannot give the promotion use back")?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl PromotionBook for SqlPromotions {
    async fn create(&self, p: &Promotion) -> anyhow::Result<bool> {
        let mut tx = self.db.pool().begin().await?;
        let percent = match &p.benefit {
            Benefit::Percent(bps) => Some(i64::from(*bps)),
            Benefit::Fixed(_) => None,
        };
        let inserted = sqlx::query(&format!(
            "insert into promotion ({COLUMNS}, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)"
        ))
        .bind(p.code.as_str())
        .bind(percent)
        .bind(p.starts_at.map(|t| t.as_micros()))
        .bind(p.ends_at.map(|t| t.as_micros()))
        .bind(p.max_uses)
        .bind(p.max_uses_per_customer)
        .bind(p.uses)
        .bind(i64::from(p.active))
        .bind(p.created_at.as_micros())
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Ok(false),
            other => {
                other.context("cannot store promotion")?;
            }
        }
        let fixed = match &p.benefit {
            Benefit::Fixed(amounts) => amounts.as_slice(),
            Benefit::Percent(_) => &[],
        };
        let rows = fixed
            .iter()
            .map(|m| ("fixed", m))
            .chain(p.min_subtotal.iter().map(|m| ("minimum", m)));
        for (kind, money) in rows {
            sqlx::query(
                "insert into promotion_amount (code, kind, currency, amount) values ($1, $2, $3, $4)",
            )
            .bind(p.code.as_str())
            .bind(kind)
            .bind(money.currency().as_str())
            .bind(money.amount())
            .execute(&mut *tx)
            .await
            .context("cannot store promotion amounts")?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn get(&self, code: &PromotionCode) -> anyhow::Result<Option<Promotion>> {
        let mut conn = self.db.pool().acquire().await?;
        load(&mut conn, code).await
    }

    async fn list(&self, page: &PageRequest) -> anyhow::Result<Page<Promotion>> {
        let after = page
            .after
            .as_ref()
            .map(|c| c.parts()[0].clone())
            .unwrap_or_default();
        let mut conn = self.db.pool().acquire().await?;
        let rows = sqlx::query(&format!(
            "select {COLUMNS} from promotion where code > $1 order by code limit $2"
        ))
        .bind(after)
        .bind(page.fetch_limit())
        .fetch_all(&mut *conn)
        .await
        .context("cannot list promotions")?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push(from_row(&mut conn, row).await?);
        }
        Ok(page.finish(items, |p| vec![p.code.as_str().to_owned()]))
    }

    async fn withdraw(&self, code: &PromotionCode, now: Timestamp) -> anyhow::Result<bool> {
        let done = sqlx::query("update promotion set active = 0, updated_at = $2 where code = $1")
            .bind(code.as_str())
            .bind(now.as_micros())
            .execute(self.db.pool())
            .await
            .context("cannot withdraw promotion")?;
        Ok(done.rows_affected() == 1)
    }

    async fn customer_uses(&self, code: &PromotionCode, customer: UserId) -> anyhow::Result<i64> {
        let mut conn = self.db.pool().acquire().await?;
        customer_uses(&mut conn, code, customer).await
    }

    async fn put_on_cart(
        &self,
        customer: UserId,
        code: &PromotionCode,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "insert into cart_promotion (customer_id, code, applied_at) values ($1, $2, $3) \
             on conflict (customer_id) do update set code = excluded.code, applied_at = excluded.applied_at",
        )
        .bind(customer.to_string())
        .bind(code.as_str())
        .bind(now.as_micros())
        .execute(self.db.pool())
        .await
        .context("cannot put the code on the cart")?;
        Ok(())
    }

    async fn on_cart(&self, customer: UserId) -> anyhow::Result<Option<PromotionCode>> {
        let mut conn = self.db.pool().acquire().await?;
        on_cart(&mut conn, customer).await
    }

    async fn code_use(
        &self,
        work: &mut UnitOfWork,
        code: &PromotionCode,
        customer: UserId,
    ) -> anyhow::Result<CodeUse> {
        let conn = work.conn()?;
        let promotion = load(&mut *conn, code).await?;
        let customer_uses = match &promotion {
            Some(_) => customer_uses(&mut *conn, code, customer).await?,
            None => 0,
        };
        Ok(CodeUse {
            promotion,
            customer_uses,
        })
    }

    async fn take_use(
        &self,
        work: &mut UnitOfWork,
        code: &PromotionCode,
        order: OrderId,
        customer: UserId,
        now: Timestamp,
    ) -> anyhow::Result<bool> {
        take_use(work.conn()?, code, order, customer, now).await
    }

    async fn take_off_cart(&self, customer: UserId) -> anyhow::Result<bool> {
        let done = sqlx::query("delete from cart_promotion where customer_id = $1")
            .bind(customer.to_string())
            .execute(self.db.pool())
            .await
            .context("cannot take the code off the cart")?;
        Ok(done.rows_affected() == 1)
    }
}

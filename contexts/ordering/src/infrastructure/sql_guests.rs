use anyhow::Context as _;
use bus::UnitOfWork;
use kernel::id::{OrderId, UserId};
use kernel::Timestamp;
use platform::db::Database;
use sqlx::Row;

use crate::application::ports::GuestBook;

pub(crate) struct SqlGuests {
    pub(crate) db: Database,
}

#[async_trait::async_trait]
impl GuestBook for SqlGuests {
    async fn open(
        &self,
        token_hash: &str,
        guest: UserId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "insert into guest_cart (token_hash, guest_id, created_at, expires_at) values ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(guest.to_string())
        .bind(now.as_micros())
        .bind(expires_at.as_micros())
        .execute(self.db.pool())
        .await
        .context("cannot open a guest cart")?;
        Ok(())
    }

    async fn guest(&self, token_hash: &str, now: Timestamp) -> anyhow::Result<Option<UserId>> {
        let found: Option<String> = sqlx::query_scalar(
            "select guest_id from guest_cart where token_hash = $1 and expires_at > $2",
        )
        .bind(token_hash)
        .bind(now.as_micros())
        .fetch_optional(self.db.pool())
        .await
        .context("cannot read a guest cart")?;
        Ok(found.map(|id| UserId::parse(&id)).transpose()?)
    }

    async fn record_order_in(
        &self,
        work: &mut UnitOfWork,
        order: OrderId,
        guest: UserId,
        email: &str,
        token_hash: &str,
        at: Timestamp,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "insert into guest_order (order_id, guest_id, email, token_hash, placed_at) values ($1, $2, $3, $4, $5)",
        )
        .bind(order.to_string())
        .bind(guest.to_string())
        .bind(email)
        .bind(token_hash)
        .bind(at.as_micros())
        .execute(work.conn()?)
        .await
        .context("cannot record a guest order")?;
        Ok(())
    }

    async fn order(&self, order: OrderId) -> anyhow::Result<Option<(UserId, String)>> {
        let row = sqlx::query("select guest_id, token_hash from guest_order where order_id = $1")
            .bind(order.to_string())
            .fetch_optional(self.db.pool())
            .await
            .context("cannot read a guest order")?;
        let Some(row) = row else { return Ok(None) };
        let guest: String = row.try_get("guest_id")?;
        Ok(Some((UserId::parse(&guest)?, row.try_get("token_hash")?)))
    }

    /// One transaction: the lines, currency and code of the expired carts, then the carts.
    /// Each statement picks the same carts (the oldest expired by `now`); a cart another
    /// replica swept meanwhile is simply gone.
    async fn sweep(&self, now: Timestamp, limit: i64) -> anyhow::Result<u64> {
        let expired = "select guest_id from guest_cart where expires_at <= $1 \
                       order by expires_at, token_hash limit $2";
        let mut tx = self.db.begin().await?;
        for table in ["cart_item", "cart_currency", "cart_promotion"] {
            sqlx::query(&format!(
                "delete from {table} where customer_id in ({expired})"
            ))
            .bind(now.as_micros())
            .bind(limit)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("cannot sweep guest carts' {table}"))?;
        }
        let swept = sqlx::query(&format!(
            "delete from guest_cart where guest_id in ({expired})"
        ))
        .bind(now.as_micros())
        .bind(limit)
        .execute(&mut *tx)
        .await
        .context("cannot sweep guest carts")?
        .rows_affected();
        tx.commit().await.context("cannot commit the guest sweep")?;
        Ok(swept)
    }
}

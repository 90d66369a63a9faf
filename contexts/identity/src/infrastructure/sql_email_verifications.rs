use anyhow::Context as _;
use bus::UnitOfWork;
use kernel::id::UserId;
use kernel::{EmailAddress, Timestamp};
use platform::db::Database;
use sqlx::Row;

use crate::application::ports::EmailVerificationRepository;

pub(crate) struct SqlEmailVerifications {
    pub(crate) db: Database,
}

#[async_trait::async_trait]
impl EmailVerificationRepository for SqlEmailVerifications {
    async fn issue(
        &self,
        work: &mut UnitOfWork,
        token_hash: &str,
        user: UserId,
        email: &EmailAddress,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> anyhow::Result<()> {
        let tx = work.conn()?;
        sqlx::query("delete from email_verification where user_id = $1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .context("cannot remove earlier verification tokens")?;
        sqlx::query(
            "insert into email_verification (token_hash, user_id, email, expires_at, created_at) \
             values ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user.to_string())
        .bind(email.as_ref())
        .bind(expires_at.as_micros())
        .bind(now.as_micros())
        .execute(&mut *tx)
        .await
        .context("cannot store verification token")?;
        Ok(())
    }

    async fn owner(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> anyhow::Result<Option<(UserId, EmailAddress)>> {
        let row = sqlx::query(
            "select user_id, email from email_verification where token_hash = $1 and expires_at > $2",
        )
        .bind(token_hash)
        .bind(now.as_micros())
        .fetch_optional(self.db.pool())
        .await
        .context("cannot read verification token")?;
        row.map(|r| {
            let id: String = r.try_get("user_id")?;
            let email: String = r.try_get("email")?;
            Ok((UserId::parse(&id)?, EmailAddress::parse(&email)?))
        })
        .transpose()
    }

    async fn pending(&self, user: UserId, now: Timestamp) -> anyhow::Result<Option<EmailAddress>> {
        let email: Option<String> = sqlx::query_scalar(
            "select email from email_verification where user_id = $1 and expires_at > $2 \
             order by created_at desc limit 1",
        )
        .bind(user.to_string())
        .bind(now.as_micros())
        .fetch_optional(self.db.pool())
        .await
        .context("cannot read pending verification")?;
        Ok(email.map(|e| EmailAddress::parse(&e)).transpose()?)
    }

    async fn spend(
        &self,
        work: &mut UnitOfWork,
        token_hash: &str,
        user: UserId,
        now: Timestamp,
    ) -> anyhow::Result<bool> {
        let spent = sqlx::query(
            "delete from email_verification where token_hash = $1 and user_id = $2 and expires_at > $3",
        )
        .bind(token_hash)
        .bind(user.to_string())
        .bind(now.as_micros())
        .execute(work.conn()?)
        .await
        .context("cannot spend verification token")?
        .rows_affected();
        Ok(spent == 1)
    }
}

use anyhow::Context as _;
use bus::UnitOfWork;
use kernel::id::UserId;
use kernel::Timestamp;
use platform::db::Database;
use sqlx::Row;

use crate::application::ports::PasswordResetRepository;

pub(crate) struct SqlPasswordResets {
    pub(crate) db: Database,
}

#[async_trait::async_trait]
impl PasswordResetRepository for SqlPasswordResets {
    async fn issue(
        &self,
        work: &mut UnitOfWork,
        token_hash: &str,
        user: UserId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> anyhow::Result<()> {
        let tx = work.conn()?;
        sqlx::query("delete from password_reset where user_id = $1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .context("cannot remove earlier reset tokens")?;
        sqlx::query(
            "insert into password_reset (token_hash, user_id, expires_at, created_at) values ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user.to_string())
        .bind(expires_at.as_micros())
        .bind(now.as_micros())
        .execute(&mut *tx)
        .await
        .context("cannot store reset token")?;
        Ok(())
    }

    async fn owner(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> anyhow::Result<Option<(UserId, Timestamp)>> {
        let row = sqlx::query(
            "select user_id, expires_at from password_reset where token_hash = $1 and expires_at > $2",
        )
        .bind(token_hash)
        .bind(now.as_micros())
        .fetch_optional(self.db.pool())
        .await
        .context("cannot read reset token")?;
        row.map(|r| {
            let id: String = r.try_get("user_id")?;
            let expires_at: i64 = r.try_get("expires_at")?;
            Ok((UserId::parse(&id)?, Timestamp::from_micros(expires_at)))
        })
        .transpose()
    }

    async fn spend(&self, token_hash: &str, user: UserId, now: Timestamp) -> anyhow::Result<bool> {
        // Guards the race: of concurrent confirmations of one token, one deletes the row.
        let spent = sqlx::query(
            "delete from password_reset where token_hash = $1 and user_id = $2 and expires_at > $3",
        )
        .bind(token_hash)
        .bind(user.to_string())
        .bind(now.as_micros())
        .execute(self.db.pool())
        .await
        .context("cannot spend reset token")?
        .rows_affected();
        Ok(spent == 1)
    }

    async fn restore(
        &self,
        token_hash: &str,
        user: UserId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> anyhow::Result<()> {
        // Not if a newer request has issued another token meanwhile.
        sqlx::query(
            "insert into password_reset (token_hash, user_id, expires_at, created_at) \
             select $1, $2, $3, $4 where not exists (select 1 from password_reset where user_id = $2)",
        )
        .bind(token_hash)
        .bind(user.to_string())
        .bind(expires_at.as_micros())
        .bind(now.as_micros())
        .execute(self.db.pool())
        .await
        .context("cannot restore reset token")?;
        Ok(())
    }

    async fn set_password(
        &self,
        user: UserId,
        password_hash: &str,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await.context("cannot begin")?;
        sqlx::query(
            "update user_account set password_hash = $1, updated_at = $2 where user_id = $3",
        )
        .bind(password_hash)
        .bind(now.as_micros())
        .bind(user.to_string())
        .execute(&mut *tx)
        .await
        .context("cannot set password")?;
        // Whoever held a session (the owner, or whoever knew the old password) holds none.
        sqlx::query(
            "update refresh_token set revoked_at = $1 where user_id = $2 and revoked_at is null",
        )
        .bind(now.as_micros())
        .bind(user.to_string())
        .execute(&mut *tx)
        .await
        .context("cannot revoke sessions")?;
        tx.commit().await.context("cannot commit")?;
        Ok(())
    }
}

use anyhow::Context as _;
use kernel::id::UserId;
use kernel::Timestamp;
use platform::db::Database;
use sqlx::Row;

use crate::application::ports::{Rotation, SessionRepository, StoredRefreshToken};

pub(crate) struct SqlSessionRepository {
    pub(crate) db: Database,
}

#[async_trait::async_trait]
impl SessionRepository for SqlSessionRepository {
    async fn start(
        &self,
        token_hash: &str,
        family_id: &str,
        user_id: UserId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "insert into refresh_token (token_hash, family_id, user_id, issued_at, expires_at) values ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(family_id)
        .bind(user_id.to_string())
        .bind(now.as_micros())
        .bind(expires_at.as_micros())
        .execute(self.db.pool())
        .await
        .context("cannot store refresh token")?;
        Ok(())
    }

    async fn find(&self, token_hash: &str) -> anyhow::Result<Option<StoredRefreshToken>> {
        let row = sqlx::query(
            "select family_id, user_id, expires_at, used_at, revoked_at from refresh_token where token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.db.pool())
        .await
        .context("cannot read refresh token")?;
        let Some(row) = row else { return Ok(None) };
        let user_id: String = row.try_get("user_id")?;
        let used: Option<i64> = row.try_get("used_at")?;
        let revoked: Option<i64> = row.try_get("revoked_at")?;
        Ok(Some(StoredRefreshToken {
            family_id: row.try_get("family_id")?,
            user_id: UserId::parse(&user_id)?,
            expires_at: Timestamp::from_micros(row.try_get("expires_at")?),
            spent: used.is_some() || revoked.is_some(),
        }))
    }

    async fn rotate(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> anyhow::Result<Rotation> {
        let mut tx = self.db.begin().await?;
        let row = sqlx::query("select family_id, user_id from refresh_token where token_hash = $1")
            .bind(old_hash)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(Rotation::Unknown);
        };
        let family: String = row.try_get("family_id")?;
        let user_id: String = row.try_get("user_id")?;
        // Spend by statement: of two concurrent refreshes with one token, one wins; the other
        // is a reuse and revokes the family.
        let spent = sqlx::query(
            "update refresh_token set used_at = $1 where token_hash = $2 and used_at is null and revoked_at is null",
        )
        .bind(now.as_micros())
        .bind(old_hash)
        .execute(&mut *tx)
        .await?;
        if spent.rows_affected() != 1 {
            sqlx::query("update refresh_token set revoked_at = $1 where family_id = $2 and revoked_at is null")
                .bind(now.as_micros())
                .bind(&family)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Rotation::Reused);
        }
        sqlx::query(
            "insert into refresh_token (token_hash, family_id, user_id, issued_at, expires_at) values ($1, $2, $3, $4, $5)",
        )
        .bind(new_hash)
        .bind(&family)
        .bind(user_id)
        .bind(now.as_micros())
        .bind(expires_at.as_micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await.context("cannot commit rotation")?;
        Ok(Rotation::Rotated)
    }

    async fn revoke_family(&self, family_id: &str, now: Timestamp) -> anyhow::Result<()> {
        sqlx::query(
            "update refresh_token set revoked_at = $1 where family_id = $2 and revoked_at is null",
        )
        .bind(now.as_micros())
        .bind(family_id)
        .execute(self.db.pool())
        .await
        .context("cannot revoke session")?;
        Ok(())
    }

    async fn revoke_all_in(
        &self,
        work: &mut bus::UnitOfWork,
        user: UserId,
        now: Timestamp,
    ) -> anyhow::Result<u64> {
        let ended = sqlx::query(
            "update refresh_token set revoked_at = $1 where user_id = $2 and revoked_at is null",
        )
        .bind(now.as_micros())
        .bind(user.to_string())
        .execute(work.conn()?)
        .await
        .context("cannot end the account's sessions")?
        .rows_affected();
        Ok(ended)
    }
}

use anyhow::Context as _;
use bus::UnitOfWork;
use kernel::address::PostalAddress;
use kernel::id::UserId;
use kernel::{EmailAddress, Timestamp};
use platform::auth::Role;
use platform::db::{is_unique_violation, Database};
use platform::pagination::{Page, PageRequest};
use sqlx::Row;

use crate::application::ports::{RoleChange, SaveUserError, UserRepository};
use crate::domain::{Roles, User, UserName};

pub(crate) struct SqlUserRepository {
    pub(crate) db: Database,
}

const COLUMNS: &str =
    "user_id, email, name, password_hash, roles, default_shipping_address, email_verified_at, created_at";

fn from_row(row: &sqlx::any::AnyRow) -> anyhow::Result<User> {
    let id: String = row.try_get("user_id")?;
    let email: String = row.try_get("email")?;
    let name: String = row.try_get("name")?;
    let roles: String = row.try_get("roles")?;
    let address: Option<String> = row.try_get("default_shipping_address")?;
    Ok(User {
        id: UserId::parse(&id)?,
        email: EmailAddress::parse(&email)?,
        name: UserName::parse(&name)?,
        password_hash: row.try_get("password_hash")?,
        roles: Roles::decode(&roles),
        default_shipping_address: address
            .map(|a| serde_json::from_str::<PostalAddress>(&a))
            .transpose()?,
        email_verified_at: row
            .try_get::<Option<i64>, _>("email_verified_at")?
            .map(Timestamp::from_micros),
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
    })
}

#[async_trait::async_trait]
impl UserRepository for SqlUserRepository {
    async fn create(&self, work: &mut UnitOfWork, user: &User) -> Result<(), SaveUserError> {
        let tx = work.conn()?;
        let inserted = sqlx::query(
            "insert into user_account (user_id, email, name, password_hash, roles, created_at, updated_at) \
             values ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(user.id.to_string())
        .bind(user.email.as_ref())
        .bind(user.name.as_ref())
        .bind(&user.password_hash)
        .bind(user.roles.encode())
        .bind(user.created_at.as_micros())
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(SaveUserError::EmailTaken),
            other => {
                other.context("cannot insert user")?;
            }
        }
        Ok(())
    }

    async fn by_email(&self, email: &EmailAddress) -> anyhow::Result<Option<User>> {
        let row = sqlx::query(&format!(
            "select {COLUMNS} from user_account where email = $1"
        ))
        .bind(email.as_ref())
        .fetch_optional(self.db.pool())
        .await
        .context("cannot read user")?;
        row.as_ref().map(from_row).transpose()
    }

    async fn by_id(&self, id: UserId) -> anyhow::Result<Option<User>> {
        let row = sqlx::query(&format!(
            "select {COLUMNS} from user_account where user_id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.db.pool())
        .await
        .context("cannot read user")?;
        row.as_ref().map(from_row).transpose()
    }

    async fn update_profile(
        &self,
        work: &mut UnitOfWork,
        id: UserId,
        name: Option<&UserName>,
        address: Option<Option<&PostalAddress>>,
        now: Timestamp,
    ) -> anyhow::Result<bool> {
        let tx = work.conn()?;
        let found = sqlx::query("update user_account set updated_at = $1 where user_id = $2")
            .bind(now.as_micros())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if let Some(name) = name {
            sqlx::query("update user_account set name = $1 where user_id = $2")
                .bind(name.as_ref())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(address) = address {
            let encoded = address.map(serde_json::to_string).transpose()?;
            sqlx::query("update user_account set default_shipping_address = $1 where user_id = $2")
                .bind(encoded)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        Ok(found)
    }

    async fn set_roles(
        &self,
        id: UserId,
        roles: &Roles,
        now: Timestamp,
    ) -> anyhow::Result<RoleChange> {
        const IS_ADMIN: &str = "(',' || roles || ',') like '%,admin,%'";
        let mut tx = self.db.begin().await?;
        // Touching every admin row locks them (PostgreSQL; SQLite holds the write lock
        // already), so two concurrent demotions cannot each see the other still admin.
        sqlx::query(&format!(
            "update user_account set updated_at = updated_at where {IS_ADMIN}"
        ))
        .execute(&mut *tx)
        .await
        .context("cannot lock admins")?;
        if !roles.as_slice().contains(&Role::Admin) {
            let other_admins: i64 = sqlx::query_scalar(&format!(
                "select count(*) from user_account where user_id <> $1 and {IS_ADMIN}"
            ))
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await
            .context("cannot count admins")?;
            let is_admin: Option<i64> = sqlx::query_scalar(&format!(
                "select 1 from user_account where user_id = $1 and {IS_ADMIN}"
            ))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .context("cannot read roles")?;
            if other_admins == 0 && is_admin.is_some() {
                return Ok(RoleChange::LastAdmin);
            }
        }
        let done =
            sqlx::query("update user_account set roles = $1, updated_at = $2 where user_id = $3")
                .bind(roles.encode())
                .bind(now.as_micros())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .context("cannot set roles")?;
        tx.commit().await.context("cannot commit roles")?;
        Ok(if done.rows_affected() == 1 {
            RoleChange::Done
        } else {
            RoleChange::NotFound
        })
    }

    async fn set_verified_email(
        &self,
        work: &mut UnitOfWork,
        id: UserId,
        email: &EmailAddress,
        now: Timestamp,
    ) -> Result<bool, SaveUserError> {
        let updated = sqlx::query(
            "update user_account set email = $1, email_verified_at = $2, updated_at = $2 where user_id = $3",
        )
        .bind(email.as_ref())
        .bind(now.as_micros())
        .bind(id.to_string())
        .execute(work.conn()?)
        .await;
        match updated {
            Err(e) if is_unique_violation(&e) => Err(SaveUserError::EmailTaken),
            Err(e) => Err(anyhow::Error::new(e).context("cannot verify email").into()),
            Ok(done) => Ok(done.rows_affected() == 1),
        }
    }

    async fn list(&self, page: &PageRequest) -> anyhow::Result<Page<User>> {
        let rows = match &page.after {
            None => {
                sqlx::query(&format!(
                    "select {COLUMNS} from user_account order by user_id limit $1"
                ))
                .bind(page.fetch_limit())
                .fetch_all(self.db.pool())
                .await
            }
            Some(cursor) => {
                sqlx::query(&format!(
                "select {COLUMNS} from user_account where user_id > $1 order by user_id limit $2"
            ))
                .bind(&cursor.parts()[0])
                .bind(page.fetch_limit())
                .fetch_all(self.db.pool())
                .await
            }
        }
        .context("cannot list users")?;
        let users = rows
            .iter()
            .map(from_row)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(page.finish(users, |u| vec![u.id.to_string()]))
    }
}

use anyhow::Context as _;
use bus::UnitOfWork;
use kernel::address::PostalAddress;
use kernel::id::UserId;
use kernel::Timestamp;
use platform::db::Database;
use sqlx::Row;

use crate::application::ports::AddressBookRepository;
use crate::domain::address_book::{AddressBook, AddressEntry};

pub(crate) struct SqlAddressBook {
    pub(crate) db: Database,
}

const SELECT: &str = "select address_id, address, is_default, created_at from saved_address \
     where user_id = $1 order by created_at, address_id";

fn from_rows(rows: &[sqlx::any::AnyRow]) -> anyhow::Result<AddressBook> {
    let entries = rows
        .iter()
        .map(|r| {
            let id: String = r.try_get("address_id")?;
            let address: String = r.try_get("address")?;
            let is_default: i64 = r.try_get("is_default")?;
            Ok(AddressEntry {
                id: uuid::Uuid::parse_str(&id)?,
                address: serde_json::from_str::<PostalAddress>(&address)?,
                is_default: is_default != 0,
                created_at: Timestamp::from_micros(r.try_get("created_at")?),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(AddressBook::new(entries))
}

#[async_trait::async_trait]
impl AddressBookRepository for SqlAddressBook {
    async fn next_revision_in(
        &self,
        work: &mut UnitOfWork,
        user: UserId,
    ) -> anyhow::Result<Option<u64>> {
        let tx = work.conn()?;
        // The update takes the account's row lock: changes of one book are serialised.
        let found = sqlx::query(
            "update user_account set address_book_revision = address_book_revision + 1 where user_id = $1",
        )
        .bind(user.to_string())
        .execute(&mut *tx)
        .await
        .context("cannot count an address book change")?
        .rows_affected()
            == 1;
        if !found {
            return Ok(None);
        }
        let revision: i64 =
            sqlx::query_scalar("select address_book_revision from user_account where user_id = $1")
                .bind(user.to_string())
                .fetch_one(&mut *tx)
                .await
                .context("cannot read the address book revision")?;
        Ok(Some(u64::try_from(revision)?))
    }

    async fn book_in(&self, work: &mut UnitOfWork, user: UserId) -> anyhow::Result<AddressBook> {
        let rows = sqlx::query(SELECT)
            .bind(user.to_string())
            .fetch_all(work.conn()?)
            .await
            .context("cannot read the address book")?;
        from_rows(&rows)
    }

    async fn save_in(
        &self,
        work: &mut UnitOfWork,
        user: UserId,
        book: &AddressBook,
    ) -> anyhow::Result<()> {
        let tx = work.conn()?;
        sqlx::query("delete from saved_address where user_id = $1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .context("cannot replace the address book")?;
        for e in book.entries() {
            sqlx::query(
                "insert into saved_address (address_id, user_id, address, is_default, created_at) \
                 values ($1, $2, $3, $4, $5)",
            )
            .bind(e.id.to_string())
            .bind(user.to_string())
            .bind(serde_json::to_string(&e.address)?)
            .bind(i64::from(e.is_default))
            .bind(e.created_at.as_micros())
            .execute(&mut *tx)
            .await
            .context("cannot store an address")?;
        }
        Ok(())
    }

    async fn book(&self, user: UserId) -> anyhow::Result<AddressBook> {
        let rows = sqlx::query(SELECT)
            .bind(user.to_string())
            .fetch_all(self.db.pool())
            .await
            .context("cannot read the address book")?;
        from_rows(&rows)
    }
}

use anyhow::Context as _;
use bus::UnitOfWork;
use kernel::address::PostalAddress;
use kernel::id::UserId;
use kernel::Timestamp;

use crate::application::ports::CustomerBook;

pub(crate) struct SqlCustomers;

/// Makes sure the customer has a row, so the guarded updates below have one to guard.
async fn known(work: &mut UnitOfWork, customer: UserId, at: Timestamp) -> anyhow::Result<()> {
    sqlx::query(
        "insert into customer (customer_id, updated_at) values ($1, $2) on conflict (customer_id) do nothing",
    )
    .bind(customer.to_string())
    .bind(at.as_micros())
    .execute(work.conn()?)
    .await
    .context("cannot record a customer")?;
    Ok(())
}

#[async_trait::async_trait]
impl CustomerBook for SqlCustomers {
    async fn record_verified(
        &self,
        work: &mut UnitOfWork,
        customer: UserId,
        email: &str,
        at: Timestamp,
    ) -> anyhow::Result<()> {
        known(work, customer, at).await?;
        sqlx::query(
            "update customer set email = $1, email_verified_at = $2, updated_at = $2 \
             where customer_id = $3 and (email_verified_at is null or email_verified_at <= $2)",
        )
        .bind(email)
        .bind(at.as_micros())
        .bind(customer.to_string())
        .execute(work.conn()?)
        .await
        .context("cannot record a verified customer")?;
        Ok(())
    }

    async fn verified_in(&self, work: &mut UnitOfWork, customer: UserId) -> anyhow::Result<bool> {
        let verified: Option<Option<i64>> =
            sqlx::query_scalar("select email_verified_at from customer where customer_id = $1")
                .bind(customer.to_string())
                .fetch_optional(work.conn()?)
                .await
                .context("cannot read the customer")?;
        Ok(verified.flatten().is_some())
    }

    async fn replace_addresses(
        &self,
        work: &mut UnitOfWork,
        customer: UserId,
        revision: u64,
        addresses: &[(String, PostalAddress, bool)],
        at: Timestamp,
    ) -> anyhow::Result<()> {
        known(work, customer, at).await?;
        let revision = i64::try_from(revision)?;
        let newer = sqlx::query(
            "update customer set address_revision = $1, updated_at = $2 \
             where customer_id = $3 and address_revision < $1",
        )
        .bind(revision)
        .bind(at.as_micros())
        .bind(customer.to_string())
        .execute(work.conn()?)
        .await
        .context("cannot record an address book")?
        .rows_affected()
            == 1;
        if !newer {
            return Ok(());
        }
        sqlx::query("delete from customer_address where customer_id = $1")
            .bind(customer.to_string())
            .execute(work.conn()?)
            .await
            .context("cannot replace an address book")?;
        for (id, address, is_default) in addresses {
            sqlx::query(
                "insert into customer_address (customer_id, address_id, address, is_default) \
                 values ($1, $2, $3, $4)",
            )
            .bind(customer.to_string())
            .bind(id)
            .bind(serde_json::to_string(address)?)
            .bind(i64::from(*is_default))
            .execute(work.conn()?)
            .await
            .context("cannot store an address")?;
        }
        Ok(())
    }

    async fn address_in(
        &self,
        work: &mut UnitOfWork,
        customer: UserId,
        address_id: &str,
    ) -> anyhow::Result<Option<PostalAddress>> {
        let address: Option<String> = sqlx::query_scalar(
            "select address from customer_address where customer_id = $1 and address_id = $2",
        )
        .bind(customer.to_string())
        .bind(address_id)
        .fetch_optional(work.conn()?)
        .await
        .context("cannot read a saved address")?;
        Ok(address
            .map(|a| serde_json::from_str::<PostalAddress>(&a))
            .transpose()?)
    }
}

use anyhow::Context as _;
use bus::UnitOfWork;
use kernel::Timestamp;

use crate::application::ports::ProviderEventBook;
use crate::domain::ProviderEvent;

pub(crate) struct SqlProviderEvents;

#[async_trait::async_trait]
impl ProviderEventBook for SqlProviderEvents {
    async fn record_in(
        &self,
        work: &mut UnitOfWork,
        provider: &str,
        event: &ProviderEvent,
        at: Timestamp,
    ) -> anyhow::Result<bool> {
        let inserted = sqlx::query(
            "insert into provider_event (event_id, provider, event_type, payment_reference, received_at) \
             values ($1, $2, $3, $4, $5) on conflict (event_id) do nothing",
        )
        .bind(&event.id)
        .bind(provider)
        .bind(&event.kind)
        .bind(event.payment_reference.as_deref())
        .bind(at.as_micros())
        .execute(work.conn()?)
        .await
        .context("cannot record a provider event")?
        .rows_affected();
        Ok(inserted == 1)
    }

    async fn set_provider_status_in(
        &self,
        work: &mut UnitOfWork,
        reference: &str,
        status: &str,
    ) -> anyhow::Result<u64> {
        let charges = sqlx::query(
            "update payment set provider_status = $1 where kind = 'charge' and gateway_reference = $2",
        )
        .bind(status)
        .bind(reference)
        .execute(work.conn()?)
        .await
        .context("cannot record the provider's state of a payment")?
        .rows_affected();
        // A new version of the order: kept views of it are stale now (a saga step racing this
        // one finds the version moved and is retried, as with any concurrent change).
        if charges > 0 {
            sqlx::query(
                "update customer_order set version = version + 1 where order_id in \
                 (select order_id from payment where kind = 'charge' and gateway_reference = $1)",
            )
            .bind(reference)
            .execute(work.conn()?)
            .await
            .context("cannot move the order's version")?;
        }
        Ok(charges)
    }
}

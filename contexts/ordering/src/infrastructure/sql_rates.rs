use anyhow::Context as _;
use bus::UnitOfWork;
use kernel::{Currency, Timestamp};
use platform::db::Database;
use sqlx::AnyConnection;
use sqlx::Row;

use crate::application::ports::{DestinationRates, RateBook, Shipping, TaxRates};
use crate::domain::pricing::{ShippingRate, TaxRate};

pub(crate) struct SqlRates {
    pub(crate) db: Database,
}

fn tax_rate(bps: i64) -> anyhow::Result<TaxRate> {
    TaxRate::from_bps(bps).map_err(anyhow::Error::msg)
}

fn shipping_rate(row: &sqlx::any::AnyRow) -> anyhow::Result<ShippingRate> {
    Ok(ShippingRate {
        flat: row.try_get("flat_amount")?,
        per_kg: row.try_get("per_kg_amount")?,
        included_grams: u32::try_from(row.try_get::<i64, _>("included_grams")?)?,
    })
}

/// The rates for an order to `country` in `currency`, read on `conn`.
async fn destination(
    conn: &mut AnyConnection,
    country: &str,
    currency: Currency,
) -> anyhow::Result<DestinationRates> {
    // One statement: the destination's tax rates (or none) on every row, beside the
    // destination's own shipping rate or, when it has none, whether the currency has any.
    let rows = sqlx::query(
        "select t.standard_bps, t.reduced_bps, s.country, s.flat_amount, s.per_kg_amount, s.included_grams \
         from (select 1 as one) destination \
         left join tax_rate t on t.country = $2 \
         left join shipping_rate s on s.currency = $1 \
           and (s.country = $2 or s.country = (select min(country) from shipping_rate where currency = $1))",
    )
    .bind(currency.as_str())
    .bind(country)
    .fetch_all(&mut *conn)
    .await
    .context("cannot read the destination's rates")?;
    let mut tax = TaxRates::default();
    let mut shipping = Shipping::Free;
    for row in &rows {
        if let (Some(standard), Some(reduced)) = (
            row.try_get::<Option<i64>, _>("standard_bps")?,
            row.try_get::<Option<i64>, _>("reduced_bps")?,
        ) {
            tax = TaxRates {
                standard: tax_rate(standard)?,
                reduced: tax_rate(reduced)?,
            };
        }
        let Some(at) = row.try_get::<Option<String>, _>("country")? else {
            continue;
        };
        if at == country {
            shipping = Shipping::Rate(shipping_rate(row)?);
        } else if !matches!(shipping, Shipping::Rate(_)) {
            shipping = Shipping::NotShipped;
        }
    }
    Ok(DestinationRates { tax, shipping })
}

#[async_trait::async_trait]
impl RateBook for SqlRates {
    async fn tax_rates(&self) -> anyhow::Result<Vec<(String, TaxRates, Timestamp)>> {
        let rows = sqlx::query(
            "select country, standard_bps, reduced_bps, updated_at from tax_rate order by country",
        )
        .fetch_all(self.db.pool())
        .await
        .context("cannot list tax rates")?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("country")?,
                    TaxRates {
                        standard: tax_rate(row.try_get("standard_bps")?)?,
                        reduced: tax_rate(row.try_get("reduced_bps")?)?,
                    },
                    Timestamp::from_micros(row.try_get("updated_at")?),
                ))
            })
            .collect()
    }

    async fn put_tax_rates(
        &self,
        country: &str,
        rates: TaxRates,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "insert into tax_rate (country, standard_bps, reduced_bps, updated_at) values ($1, $2, $3, $4) \
             on conflict (country) do update set standard_bps = excluded.standard_bps, \
             reduced_bps = excluded.reduced_bps, updated_at = excluded.updated_at",
        )
        .bind(country)
        .bind(i64::from(rates.standard.bps()))
        .bind(i64::from(rates.reduced.bps()))
        .bind(now.as_micros())
        .execute(self.db.pool())
        .await
        .context("cannot store tax rates")?;
        Ok(())
    }

    async fn delete_tax_rates(&self, country: &str) -> anyhow::Result<bool> {
        let done = sqlx::query("delete from tax_rate where country = $1")
            .bind(country)
            .execute(self.db.pool())
            .await
            .context("cannot delete tax rates")?;
        Ok(done.rows_affected() > 0)
    }

    async fn shipping_rates(
        &self,
    ) -> anyhow::Result<Vec<(String, Currency, ShippingRate, Timestamp)>> {
        let rows = sqlx::query(
            "select country, currency, flat_amount, per_kg_amount, included_grams, updated_at \
             from shipping_rate order by country, currency",
        )
        .fetch_all(self.db.pool())
        .await
        .context("cannot list shipping rates")?;
        rows.iter()
            .map(|row| {
                let currency: String = row.try_get("currency")?;
                Ok((
                    row.try_get("country")?,
                    Currency::parse(&currency)?,
                    shipping_rate(row)?,
                    Timestamp::from_micros(row.try_get("updated_at")?),
                ))
            })
            .collect()
    }

    async fn put_shipping_rate(
        &self,
        country: &str,
        currency: Currency,
        rate: ShippingRate,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "insert into shipping_rate (country, currency, flat_amount, per_kg_amount, included_grams, updated_at) \
             values ($1, $2, $3, $4, $5, $6) \
             on conflict (country, currency) do update set flat_amount = excluded.flat_amount, \
             per_kg_amount = excluded.per_kg_amount, included_grams = excluded.included_grams, \
             updated_at = excluded.updated_at",
        )
        .bind(country)
        .bind(currency.as_str())
        .bind(rate.flat)
        .bind(rate.per_kg)
        .bind(i64::from(rate.included_grams))
        .bind(now.as_micros())
        .execute(self.db.pool())
        .await
        .context("cannot store shipping rate")?;
        Ok(())
    }

    async fn delete_shipping_rate(
        &self,
        country: &str,
        currency: Currency,
    ) -> anyhow::Result<bool> {
        let done = sqlx::query("delete from shipping_rate where country = $1 and currency = $2")
            .bind(country)
            .bind(currency.as_str())
            .execute(self.db.pool())
            .await
            .context("cannot delete shipping rate")?;
        Ok(done.rows_affected() > 0)
    }

    async fn destination(
        &self,
        country: &str,
        currency: Currency,
    ) -> anyhow::Result<DestinationRates> {
        let mut conn = self.db.pool().acquire().await?;
        destination(&mut conn, country, currency).await
    }

    async fn destination_in(
        &self,
        work: &mut UnitOfWork,
        country: &str,
        currency: Currency,
    ) -> anyhow::Result<DestinationRates> {
        destination(work.conn()?, country, currency).await
    }
}

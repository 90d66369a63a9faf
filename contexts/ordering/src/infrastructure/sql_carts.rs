use anyhow::Context as _;
use bus::UnitOfWork;
use kernel::id::{ProductId, UserId};
use kernel::{Currency, Money, Timestamp};
use platform::db::Database;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::application::ports::{
    CartLine, CartRefusal, CartRepository, KnownProduct, ProductProjection, TaxClass,
};
use crate::domain::cart::Cart;

use super::sql_promotions::cart_code;

/// Lines a cart may hold: an order's events carry its lines, and a broker limits an event's
/// size (SNS: 256 KiB); 100 lines stay far below it.
const MAX_CART_LINES: i64 = 100;

pub(crate) struct SqlCarts {
    pub(crate) db: Database,
}

fn product_from_row(row: &AnyRow) -> anyhow::Result<KnownProduct> {
    let id: String = row.try_get("product_id")?;
    let currency: String = row.try_get("currency")?;
    let status: String = row.try_get("status")?;
    let tax_class: String = row.try_get("tax_class")?;
    let variant_of: Option<String> = row.try_get("variant_of")?;
    Ok(KnownProduct {
        id: ProductId::parse(&id)?,
        variant_of: variant_of.map(|p| ProductId::parse(&p)).transpose()?,
        sku: row.try_get("sku")?,
        name: row.try_get("name")?,
        price: Money::new(row.try_get("price_amount")?, Currency::parse(&currency)?)?,
        active: status == "active",
        revision: row.try_get("revision")?,
        weight_grams: u32::try_from(row.try_get::<i64, _>("weight_grams")?)?,
        tax_class: TaxClass::parse(&tax_class)
            .ok_or_else(|| anyhow::anyhow!("unknown tax class {tax_class}"))?,
        other_prices: serde_json::from_str(&row.try_get::<String, _>("other_prices")?)?,
    })
}

#[async_trait::async_trait]
impl ProductProjection for SqlCarts {
    async fn upsert(&self, work: &mut UnitOfWork, p: &KnownProduct) -> anyhow::Result<()> {
        let tx = work.conn()?;
        // Newest revision wins, whatever order the events arrive in.
        sqlx::query(
            "insert into product (product_id, sku, name, price_amount, currency, status, revision, updated_at, weight_grams, tax_class, other_prices, variant_of) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             on conflict (product_id) do update set sku = excluded.sku, name = excluded.name, \
             price_amount = excluded.price_amount, currency = excluded.currency, status = excluded.status, \
             revision = excluded.revision, updated_at = excluded.updated_at, \
             weight_grams = excluded.weight_grams, tax_class = excluded.tax_class, other_prices = excluded.other_prices, \
             variant_of = excluded.variant_of \
             where product.revision < excluded.revision",
        )
        .bind(p.id.to_string())
        .bind(&p.sku)
        .bind(&p.name)
        .bind(p.price.amount())
        .bind(p.price.currency().as_str())
        .bind(if p.active { "active" } else { "archived" })
        .bind(p.revision)
        .bind(Timestamp::now().as_micros())
        .bind(i64::from(p.weight_grams))
        .bind(p.tax_class.as_str())
        .bind(serde_json::to_string(&p.other_prices)?)
        .bind(p.variant_of.map(|v| v.to_string()))
        .execute(&mut *tx)
        .await
        .context("cannot store product")?;
        Ok(())
    }

    async fn get(&self, id: ProductId) -> anyhow::Result<Option<KnownProduct>> {
        let row = sqlx::query(
            "select product_id, sku, name, price_amount, currency, status, revision, weight_grams, tax_class, other_prices, variant_of \
             from product where product_id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(product_from_row).transpose()
    }

    async fn variants_of(&self, product: ProductId) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "select count(*) from product where variant_of = $1 and status = 'active'",
        )
        .bind(product.to_string())
        .fetch_one(self.db.pool())
        .await?)
    }
}

#[async_trait::async_trait]
impl CartRepository for SqlCarts {
    async fn lines(&self, customer: UserId) -> anyhow::Result<Vec<CartLine>> {
        let rows = sqlx::query(
            "select c.product_id as cart_product, c.quantity, c.added_price_amount, c.added_price_currency, p.product_id, p.sku, p.name, p.price_amount, p.currency, p.status, p.revision, \
             p.weight_grams, p.tax_class, p.other_prices, p.variant_of \
             from cart_item c left join product p on p.product_id = c.product_id \
             where c.customer_id = $1 order by c.added_at, c.product_id",
        )
        .bind(customer.to_string())
        .fetch_all(self.db.pool())
        .await
        .context("cannot read cart")?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("cart_product")?;
                let quantity: i64 = row.try_get("quantity")?;
                let known: Option<String> = row.try_get("product_id")?;
                let added = match (
                    row.try_get::<Option<i64>, _>("added_price_amount")?,
                    row.try_get::<Option<String>, _>("added_price_currency")?,
                ) {
                    (Some(amount), Some(currency)) => {
                        Some(Money::new(amount, Currency::parse(&currency)?)?)
                    }
                    _ => None,
                };
                Ok(CartLine {
                    price_when_added: added,
                    product: known.map(|_| product_from_row(row)).transpose()?,
                    product_id: ProductId::parse(&id)?,
                    quantity: u32::try_from(quantity)?,
                })
            })
            .collect()
    }

    async fn claim(&self, work: &mut UnitOfWork, customer: UserId) -> anyhow::Result<Cart> {
        let tx = work.conn()?;
        // Claiming the cart by deleting it: a concurrent checkout of the same cart waits on
        // these rows, then finds it empty. Each line comes back with the cart's currency and
        // code, read in the same statement.
        let claimed: Vec<(String, i64, Option<String>, Option<String>)> = sqlx::query_as(
            "delete from cart_item where customer_id = $1 returning product_id, quantity, \
             (select currency from cart_currency where customer_id = $1), \
             (select code from cart_promotion where customer_id = $1)",
        )
        .bind(customer.to_string())
        .fetch_all(&mut *tx)
        .await
        .context("cannot claim cart")?;
        let (currency, code) = claimed
            .first()
            .map(|(_, _, currency, code)| (currency.clone(), code.clone()))
            .unwrap_or_default();
        let mut lines = Vec::with_capacity(claimed.len());
        for (product_id, quantity, _, _) in &claimed {
            let row = sqlx::query(
                "select product_id, sku, name, price_amount, currency, status, revision, weight_grams, tax_class, other_prices, variant_of \
                 from product where product_id = $1",
            )
            .bind(product_id)
            .fetch_optional(&mut *tx)
            .await?;
            lines.push(CartLine {
                product: row.as_ref().map(product_from_row).transpose()?,
                product_id: ProductId::parse(product_id)?,
                quantity: u32::try_from(*quantity)?,
                price_when_added: None,
            });
        }
        Ok(Cart {
            lines,
            currency: currency.map(|c| Currency::parse(&c)).transpose()?,
            code: cart_code(code)?,
        })
    }

    async fn add(
        &self,
        customer: UserId,
        product: ProductId,
        quantity: u32,
        price: Money,
        now: Timestamp,
    ) -> anyhow::Result<Result<(), CartRefusal>> {
        // One statement: insert (while the cart has fewer than MAX_CART_LINES lines), or add
        // to what is there unless that passes 99.
        let done = sqlx::query(
            "insert into cart_item (customer_id, product_id, quantity, added_at, updated_at, added_price_amount, added_price_currency) \
             select $1, $2, $3, $4, $4, $6, $7 where (select count(*) from cart_item where customer_id = $1) < $5 \
             or exists (select 1 from cart_item where customer_id = $1 and product_id = $2) \
             on conflict (customer_id, product_id) do update set quantity = cart_item.quantity + excluded.quantity, \
             updated_at = excluded.updated_at where cart_item.quantity + excluded.quantity <= 99",
        )
        .bind(customer.to_string())
        .bind(product.to_string())
        .bind(i64::from(quantity))
        .bind(now.as_micros())
        .bind(MAX_CART_LINES)
        .bind(price.amount())
        .bind(price.currency().as_str())
        .execute(self.db.pool())
        .await
        .context("cannot add to cart")?;
        if done.rows_affected() != 1 {
            let held: Option<i64> = sqlx::query_scalar(
                "select quantity from cart_item where customer_id = $1 and product_id = $2",
            )
            .bind(customer.to_string())
            .bind(product.to_string())
            .fetch_optional(self.db.pool())
            .await
            .context("cannot read cart")?;
            return Ok(Err(if held.is_some() {
                CartRefusal::TooMany
            } else {
                CartRefusal::Full {
                    lines: MAX_CART_LINES,
                }
            }));
        }
        Ok(Ok(()))
    }

    async fn set(
        &self,
        customer: UserId,
        product: ProductId,
        quantity: u32,
        now: Timestamp,
    ) -> anyhow::Result<bool> {
        let done = sqlx::query("update cart_item set quantity = $1, updated_at = $2 where customer_id = $3 and product_id = $4")
            .bind(i64::from(quantity))
            .bind(now.as_micros())
            .bind(customer.to_string())
            .bind(product.to_string())
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove(&self, customer: UserId, product: ProductId) -> anyhow::Result<bool> {
        let done = sqlx::query("delete from cart_item where customer_id = $1 and product_id = $2")
            .bind(customer.to_string())
            .bind(product.to_string())
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn currency(&self, customer: UserId) -> anyhow::Result<Option<Currency>> {
        let code: Option<String> = sqlx::query_scalar(
            "select currency from cart_currency where customer_id = $1 \
             and exists (select 1 from cart_item where customer_id = $1)",
        )
        .bind(customer.to_string())
        .fetch_optional(self.db.pool())
        .await
        .context("cannot read the cart's currency")?;
        Ok(code.map(|c| Currency::parse(&c)).transpose()?)
    }

    async fn set_currency(
        &self,
        customer: UserId,
        currency: Currency,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "insert into cart_currency (customer_id, currency, updated_at) values ($1, $2, $3) \
             on conflict (customer_id) do update set currency = excluded.currency, updated_at = excluded.updated_at",
        )
        .bind(customer.to_string())
        .bind(currency.as_str())
        .bind(now.as_micros())
        .execute(self.db.pool())
        .await
        .context("cannot keep the cart's currency")?;
        Ok(())
    }
}

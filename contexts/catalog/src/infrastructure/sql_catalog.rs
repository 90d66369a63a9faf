use std::collections::HashMap;

use anyhow::Context as _;
use bus::UnitOfWork;
use catalog_contracts::TaxClass;
use kernel::id::{CategoryId, ProductId};
use kernel::{Currency, Money, Timestamp};
use platform::db::{is_unique_violation, Database};
use platform::pagination::{Page, PageRequest};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::application::ports::{CatalogRepository, Category, ProductQuery, SaveError, Sort};
use crate::domain::{
    key, CategoryName, Description, Product, ProductName, ProductStatus, Sku, Slug, Variant,
};

pub(crate) struct SqlCatalog {
    pub(crate) db: Database,
}

const PRODUCT_COLUMNS: &str = "product_id, sku, name, description, price_amount, currency, category_id, status, revision, created_at, updated_at, weight_grams, tax_class, other_prices, options";

const VARIANT_COLUMNS: &str =
    "variant_id, product_id, sku, options, price_amount, currency, other_prices, weight_grams";

fn product_from_row(row: &AnyRow) -> anyhow::Result<Product> {
    let id: String = row.try_get("product_id")?;
    let sku: String = row.try_get("sku")?;
    let name: String = row.try_get("name")?;
    let description: Option<String> = row.try_get("description")?;
    let currency: String = row.try_get("currency")?;
    let category: Option<String> = row.try_get("category_id")?;
    let status: String = row.try_get("status")?;
    let tax_class: String = row.try_get("tax_class")?;
    let others: String = row.try_get("other_prices")?;
    let options: String = row.try_get("options")?;
    Ok(Product {
        other_prices: serde_json::from_str(&others)?,
        options: serde_json::from_str(&options)?,
        variants: Vec::new(),
        id: ProductId::parse(&id)?,
        sku: Sku::parse(&sku).map_err(anyhow::Error::msg)?,
        name: ProductName::parse(&name).map_err(anyhow::Error::msg)?,
        description: description
            .map(|d| Description::parse(&d))
            .transpose()
            .map_err(anyhow::Error::msg)?,
        price: Money::new(row.try_get("price_amount")?, Currency::parse(&currency)?)?,
        category_id: category.map(|c| CategoryId::parse(&c)).transpose()?,
        weight_grams: u32::try_from(row.try_get::<i64, _>("weight_grams")?)?,
        tax_class: TaxClass::parse(&tax_class)
            .ok_or_else(|| anyhow::anyhow!("unknown tax class {tax_class}"))?,
        status: ProductStatus::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("unknown status {status}"))?,
        revision: row.try_get("revision")?,
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
        updated_at: Timestamp::from_micros(row.try_get("updated_at")?),
    })
}

fn variant_from_row(row: &AnyRow) -> anyhow::Result<(ProductId, Variant)> {
    let id: String = row.try_get("variant_id")?;
    let product: String = row.try_get("product_id")?;
    let sku: String = row.try_get("sku")?;
    let currency: String = row.try_get("currency")?;
    let options: String = row.try_get("options")?;
    let others: String = row.try_get("other_prices")?;
    Ok((
        ProductId::parse(&product)?,
        Variant {
            id: ProductId::parse(&id)?,
            sku: Sku::parse(&sku).map_err(anyhow::Error::msg)?,
            options: serde_json::from_str(&options)?,
            price: Money::new(row.try_get("price_amount")?, Currency::parse(&currency)?)?,
            other_prices: serde_json::from_str(&others)?,
            weight_grams: u32::try_from(row.try_get::<i64, _>("weight_grams")?)?,
        },
    ))
}

/// Fills in the variants of those products that have options (one query for all of them).
async fn with_variants(db: &Database, products: &mut [Product]) -> anyhow::Result<()> {
    let ids: Vec<String> = products
        .iter()
        .filter(|p| !p.options.is_empty())
        .map(|p| p.id.to_string())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "select {VARIANT_COLUMNS} from variant where product_id in ({}) order by product_id, position",
        marks.join(", ")
    );
    let mut q = sqlx::query(&sql);
    for id in &ids {
        q = q.bind(id.clone());
    }
    let rows = q
        .fetch_all(db.pool())
        .await
        .context("cannot read variants")?;
    let mut by_product: HashMap<ProductId, Vec<Variant>> = HashMap::new();
    for row in &rows {
        let (product, variant) = variant_from_row(row)?;
        by_product.entry(product).or_default().push(variant);
    }
    for p in products.iter_mut() {
        if let Some(variants) = by_product.remove(&p.id) {
            p.variants = variants;
        }
    }
    Ok(())
}

/// Stores a product's variants (new ones get their stock row), their option values for
/// browsing, and claims every SKU it uses in the `sku` table, where a SKU is unique whether a
/// product or a variant has it.
async fn save_variants(
    tx: &mut sqlx::AnyConnection,
    p: &Product,
    now: Timestamp,
) -> Result<(), SaveError> {
    sqlx::query("delete from sku where product_id = $1")
        .bind(p.id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(anyhow::Error::new)?;
    let mut skus = vec![p.sku.as_ref()];
    if p.has_variants() {
        skus.extend(p.variants.iter().map(|v| v.sku.as_ref()));
    }
    for sku in skus {
        sqlx::query("insert into sku (sku, product_id) values ($1, $2)")
            .bind(sku)
            .bind(p.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| map_unique(e, "sku"))?;
    }
    for (position, v) in p.sold().iter().enumerate() {
        if p.has_variants() {
            sqlx::query(&format!(
                "insert into variant ({VARIANT_COLUMNS}, position) values ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 on conflict (variant_id) do update set sku = excluded.sku, options = excluded.options, \
                 price_amount = excluded.price_amount, currency = excluded.currency, \
                 other_prices = excluded.other_prices, weight_grams = excluded.weight_grams"
            ))
            .bind(v.id.to_string())
            .bind(p.id.to_string())
            .bind(v.sku.as_ref())
            .bind(serde_json::to_string(&v.options).map_err(anyhow::Error::new)?)
            .bind(v.price.amount())
            .bind(v.price.currency().as_str())
            .bind(serde_json::to_string(&v.other_prices).map_err(anyhow::Error::new)?)
            .bind(i64::from(v.weight_grams))
            .bind(i64::try_from(position).map_err(anyhow::Error::new)?)
            .execute(&mut *tx)
            .await
            .map_err(|e| map_unique(e, "sku"))?;
            sqlx::query("delete from variant_option where variant_id = $1")
                .bind(v.id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(anyhow::Error::new)?;
            for o in &v.options {
                sqlx::query("insert into variant_option (variant_id, product_id, name_key, value_key) values ($1, $2, $3, $4)")
                    .bind(v.id.to_string())
                    .bind(p.id.to_string())
                    .bind(key(&o.name))
                    .bind(key(&o.value))
                    .execute(&mut *tx)
                    .await
                    .map_err(anyhow::Error::new)?;
            }
        }
        sqlx::query(
            "insert into stock (product_id, on_hand, reserved, updated_at) values ($1, 0, 0, $2) \
             on conflict (product_id) do nothing",
        )
        .bind(v.id.to_string())
        .bind(now.as_micros())
        .execute(&mut *tx)
        .await
        .context("cannot create stock row")?;
    }
    Ok(())
}

fn category_from_row(row: &AnyRow) -> anyhow::Result<Category> {
    let id: String = row.try_get("category_id")?;
    let name: String = row.try_get("name")?;
    let slug: String = row.try_get("slug")?;
    let parent: Option<String> = row.try_get("parent_id")?;
    Ok(Category {
        id: CategoryId::parse(&id)?,
        name: CategoryName::parse(&name).map_err(anyhow::Error::msg)?,
        slug: Slug::parse(&slug).map_err(anyhow::Error::msg)?,
        parent_id: parent.map(|p| CategoryId::parse(&p)).transpose()?,
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
    })
}

/// Escapes `%`, `_` and `\` for a LIKE pattern.
fn like_escape(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('%');
    for c in word.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

fn map_unique(e: sqlx::Error, what: &'static str) -> SaveError {
    if is_unique_violation(&e) {
        SaveError::Duplicate(what)
    } else {
        SaveError::Unexpected(anyhow::Error::new(e))
    }
}

#[async_trait::async_trait]
impl CatalogRepository for SqlCatalog {
    async fn create_category(&self, c: &Category) -> Result<(), SaveError> {
        sqlx::query("insert into category (category_id, name, slug, parent_id, created_at) values ($1, $2, $3, $4, $5)")
            .bind(c.id.to_string())
            .bind(c.name.as_ref())
            .bind(c.slug.as_ref())
            .bind(c.parent_id.map(|p| p.to_string()))
            .bind(c.created_at.as_micros())
            .execute(self.db.pool())
            .await
            .map_err(|e| map_unique(e, "slug"))?;
        Ok(())
    }

    async fn category(&self, id: CategoryId) -> anyhow::Result<Option<Category>> {
        let row = sqlx::query("select category_id, name, slug, parent_id, created_at from category where category_id = $1")
            .bind(id.to_string())
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(category_from_row).transpose()
    }

    async fn category_by_slug(&self, slug: &Slug) -> anyhow::Result<Option<Category>> {
        let row = sqlx::query(
            "select category_id, name, slug, parent_id, created_at from category where slug = $1",
        )
        .bind(slug.as_ref())
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(category_from_row).transpose()
    }

    async fn categories(&self, page: &PageRequest) -> anyhow::Result<Page<Category>> {
        let after = page
            .after
            .as_ref()
            .map(|c| c.parts()[0].clone())
            .unwrap_or_default();
        let rows = sqlx::query(
            "select category_id, name, slug, parent_id, created_at from category where slug > $1 order by slug limit $2",
        )
        .bind(after)
        .bind(page.fetch_limit())
        .fetch_all(self.db.pool())
        .await?;
        let items = rows
            .iter()
            .map(category_from_row)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(page.finish(items, |c| vec![c.slug.as_ref().to_owned()]))
    }

    async fn create_product(&self, work: &mut UnitOfWork, p: &Product) -> Result<(), SaveError> {
        let tx = work.conn()?;
        sqlx::query(&format!(
            "insert into product ({PRODUCT_COLUMNS}, search_text) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(p.id.to_string())
        .bind(p.sku.as_ref())
        .bind(p.name.as_ref())
        .bind(p.description.as_ref().map(|d| d.as_ref().to_owned()))
        .bind(p.price.amount())
        .bind(p.price.currency().as_str())
        .bind(p.category_id.map(|c| c.to_string()))
        .bind(p.status.as_str())
        .bind(p.revision)
        .bind(p.created_at.as_micros())
        .bind(p.updated_at.as_micros())
        .bind(i64::from(p.weight_grams))
        .bind(p.tax_class.as_str())
        .bind(serde_json::to_string(&p.other_prices).map_err(anyhow::Error::new)?)
        .bind(serde_json::to_string(&p.options).map_err(anyhow::Error::new)?)
        .bind(p.search_text())
        .execute(&mut *tx)
        .await
        .map_err(|e| map_unique(e, "sku"))?;
        save_variants(tx, p, p.created_at).await
    }

    async fn update_product(
        &self,
        work: &mut UnitOfWork,
        p: &Product,
        expected_revision: i64,
    ) -> Result<(), SaveError> {
        let tx = work.conn()?;
        let done = sqlx::query(
            "update product set sku = $1, name = $2, description = $3, price_amount = $4, currency = $5, category_id = $6, \
             status = $7, revision = $8, updated_at = $9, search_text = $10, weight_grams = $11, tax_class = $12, \
             other_prices = $13, options = $14 where product_id = $15 and revision = $16",
        )
        .bind(p.sku.as_ref())
        .bind(p.name.as_ref())
        .bind(p.description.as_ref().map(|d| d.as_ref().to_owned()))
        .bind(p.price.amount())
        .bind(p.price.currency().as_str())
        .bind(p.category_id.map(|c| c.to_string()))
        .bind(p.status.as_str())
        .bind(p.revision)
        .bind(p.updated_at.as_micros())
        .bind(p.search_text())
        .bind(i64::from(p.weight_grams))
        .bind(p.tax_class.as_str())
        .bind(serde_json::to_string(&p.other_prices).map_err(anyhow::Error::new)?)
        .bind(serde_json::to_string(&p.options).map_err(anyhow::Error::new)?)
        .bind(p.id.to_string())
        .bind(expected_revision)
        .execute(&mut *tx)
        .await
        .map_err(|e| map_unique(e, "sku"))?;
        if done.rows_affected() != 1 {
            return Err(SaveError::Stale);
        }
        save_variants(tx, p, p.updated_at).await
    }

    async fn product(&self, id: ProductId) -> anyhow::Result<Option<Product>> {
        let row = sqlx::query(&format!(
            "select {PRODUCT_COLUMNS} from product where product_id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.db.pool())
        .await
        .context("cannot read product")?;
        let Some(mut product) = row.as_ref().map(product_from_row).transpose()? else {
            return Ok(None);
        };
        with_variants(&self.db, std::slice::from_mut(&mut product)).await?;
        Ok(Some(product))
    }

    async fn products(&self, query: &ProductQuery) -> anyhow::Result<Page<Product>> {
        let mut sql = String::new();
        let mut binds: Vec<Bind> = Vec::new();
        let mut n = 0;
        let mut next = |binds: &mut Vec<Bind>, b: Bind| {
            binds.push(b);
            n += 1;
            format!("${n}")
        };
        if let Some(category) = query.category {
            let p = next(&mut binds, Bind::Text(category.to_string()));
            sql.push_str(&format!(
                "with recursive sub (category_id) as (select category_id from category where category_id = {p} \
                 union all select c.category_id from category c join sub on c.parent_id = sub.category_id) "
            ));
        }
        sql.push_str(&format!(
            "select {PRODUCT_COLUMNS} from product where status = 'active'"
        ));
        if query.category.is_some() {
            sql.push_str(" and category_id in (select category_id from sub)");
        }
        if !query.options.is_empty() {
            // Some one variant has every value asked for (a variant has one value per name).
            let mut pairs = Vec::new();
            for (name, value) in &query.options {
                let n = next(&mut binds, Bind::Text(name.clone()));
                let v = next(&mut binds, Bind::Text(value.clone()));
                pairs.push(format!("(name_key = {n} and value_key = {v})"));
            }
            let count = next(&mut binds, Bind::Int(i64::try_from(pairs.len())?));
            sql.push_str(&format!(
                " and product_id in (select product_id from variant_option where {} \
                 group by variant_id, product_id having count(*) = {count})",
                pairs.join(" or ")
            ));
        }
        for word in &query.words {
            let p = next(&mut binds, Bind::Text(like_escape(word)));
            sql.push_str(&format!(" and search_text like {p} escape '\\'"));
        }
        let (column, descending) = match query.sort {
            Sort::Newest => ("created_at", true),
            Sort::PriceAsc => ("price_amount", false),
            Sort::PriceDesc => ("price_amount", true),
            Sort::Name => ("name", false),
        };
        if let Some(cursor) = &query.page.after {
            let parts = cursor.parts();
            let key = match query.sort {
                Sort::Name => Bind::Text(parts[0].clone()),
                _ => Bind::Int(
                    parts[0]
                        .parse()
                        .map_err(|_| anyhow::anyhow!("bad cursor"))?,
                ),
            };
            let k = next(&mut binds, key);
            let id = next(&mut binds, Bind::Text(parts[1].clone()));
            let op = if descending { "<" } else { ">" };
            sql.push_str(&format!(
                " and ({column} {op} {k} or ({column} = {k} and product_id {op} {id}))"
            ));
        }
        let dir = if descending { "desc" } else { "asc" };
        let limit = next(&mut binds, Bind::Int(query.page.fetch_limit()));
        sql.push_str(&format!(
            " order by {column} {dir}, product_id {dir} limit {limit}"
        ));
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                Bind::Text(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            };
        }
        let rows = q
            .fetch_all(self.db.pool())
            .await
            .context("cannot list products")?;
        let mut items = rows
            .iter()
            .map(product_from_row)
            .collect::<anyhow::Result<Vec<_>>>()?;
        with_variants(&self.db, &mut items).await?;
        let sort = query.sort;
        Ok(query.page.finish(items, |p| {
            let key = match sort {
                Sort::Newest => p.created_at.as_micros().to_string(),
                Sort::PriceAsc | Sort::PriceDesc => p.price.amount().to_string(),
                Sort::Name => p.name.as_ref().to_owned(),
            };
            vec![key, p.id.to_string()]
        }))
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

#[cfg(test)]
mod tests {
    use super::like_escape;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_escape("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}

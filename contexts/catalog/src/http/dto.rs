//! Request and response bodies.

use kernel::{Money, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, SchemaFormat, Type};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use std::collections::BTreeMap;

use crate::application::ports::Category;
use crate::domain::{Product, StockLevel, Variant, VariantDraft, MAX_PRICE};
use catalog_contracts::{ProductOption, TaxClass};

const SKU: &str = "[A-Za-z0-9._-]+";
const SLUG: &str = "[a-z0-9]+(?:-[a-z0-9]+)*";

fn sku_schema() -> Object {
    kernel::schema::code(SKU, 64, false)
}

fn sku_or_null_schema() -> Object {
    kernel::schema::code(SKU, 64, true)
}

fn slug_schema() -> Object {
    kernel::schema::code(SLUG, 64, false)
}

/// A product price: what `Money` takes, at most `MAX_PRICE` minor units.
fn price_builder() -> ObjectBuilder {
    ObjectBuilder::new()
        .property(
            "amount",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(0))
                .maximum(Some(MAX_PRICE)),
        )
        .required("amount")
        .property("currency", kernel::money::currency_schema())
        .required("currency")
}

fn price_schema() -> Object {
    price_builder().schema_type(Type::Object).build()
}

kernel::named_schema!(
    /// A price as requests state it, the named schema `PriceInput`: `Money` with at most
    /// `MAX_PRICE` minor units (responses use `Money`).
    pub(crate) PriceInput,
    "PriceInput",
    price_schema
);

fn description_length(d: &str) -> Result<(), validator::ValidationError> {
    if d.chars().count() > 5000 {
        let mut e = validator::ValidationError::new("length");
        e.message = Some("must be at most 5000 characters".into());
        return Err(e);
    }
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Garden tools", "slug": "garden-tools"}))]
pub(crate) struct CreateCategoryRequest {
    #[validate(length(max = 100))]
    #[schema(schema_with = kernel::schema::text_100)]
    pub(crate) name: String,
    /// Lower-case letters or digits in words joined by hyphens.
    #[validate(length(max = 64))]
    #[schema(schema_with = slug_schema)]
    pub(crate) slug: String,
    pub(crate) parent_id: Option<uuid::Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CategoryResponse {
    pub(crate) id: uuid::Uuid,
    pub(crate) name: String,
    pub(crate) slug: String,
    pub(crate) parent_id: Option<uuid::Uuid>,
}

impl From<Category> for CategoryResponse {
    fn from(c: Category) -> Self {
        Self {
            id: c.id.as_uuid(),
            name: c.name.as_ref().to_owned(),
            slug: c.slug.as_ref().to_owned(),
            parent_id: c.parent_id.map(|p| p.as_uuid()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"sku": "MUG-01", "name": "Enamel mug", "description": "Blue, 350 ml", "price": {"amount": 1299, "currency": "EUR"}}))]
pub(crate) struct CreateProductRequest {
    /// Letters, digits, `-`, `_` or `.` (stored upper case).
    #[validate(length(max = 64))]
    #[schema(schema_with = sku_schema)]
    pub(crate) sku: String,
    #[validate(length(max = 200))]
    #[schema(schema_with = kernel::schema::text_200)]
    pub(crate) name: String,
    #[validate(length(max = 5000))]
    #[schema(max_length = 5000)]
    pub(crate) description: Option<String>,
    #[schema(value_type = PriceInput)]
    pub(crate) price: Money,
    /// Prices in other currencies, at most one per currency (a cart in a currency sells only
    /// products with a price in it).
    #[serde(default)]
    #[validate(length(max = 20))]
    #[schema(max_items = 20, value_type = Vec<PriceInput>)]
    pub(crate) other_prices: Vec<Money>,
    pub(crate) category_id: Option<uuid::Uuid>,
    /// Shipping weight of one unit in grams (default 0).
    #[validate(range(max = 1_000_000))]
    #[schema(maximum = 1_000_000)]
    pub(crate) weight_grams: Option<u32>,
    /// `standard` (default), `reduced` or `zero`.
    pub(crate) tax_class: Option<TaxClass>,
    /// The options the product comes in (at most 3). With options, it is sold as its
    /// `variants`; without, as itself.
    #[serde(default)]
    #[validate(length(max = 3))]
    #[schema(max_items = 3)]
    pub(crate) options: Vec<OptionRequest>,
    /// One per combination sold (at most 100); each variant's price, other prices and weight
    /// default to the product's.
    #[serde(default)]
    #[validate(length(max = 100))]
    #[schema(max_items = 100)]
    pub(crate) variants: Vec<VariantRequest>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Size", "values": ["S", "M", "L"]}))]
pub(crate) struct OptionRequest {
    #[schema(min_length = 1, max_length = 40)]
    pub(crate) name: String,
    /// 1 to 50 distinct values.
    #[schema(min_items = 1, max_items = 50)]
    pub(crate) values: Vec<String>,
}

/// A variant: a value for each of the product's options (names and values match ignoring
/// case), and what it sets differently from the product.
#[derive(Debug, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"sku": "TEE-M-BLUE", "options": {"Size": "M", "Colour": "Blue"}, "price": {"amount": 1900, "currency": "EUR"}}))]
pub(crate) struct VariantRequest {
    #[validate(length(max = 64))]
    #[schema(schema_with = sku_schema)]
    pub(crate) sku: String,
    /// Option name to value, one for each of the product's options.
    pub(crate) options: BTreeMap<String, String>,
    /// In the product's currency; the product's price when absent.
    #[schema(value_type = Option<PriceInput>)]
    pub(crate) price: Option<Money>,
    #[validate(length(max = 20))]
    #[schema(max_items = 20, value_type = Option<Vec<PriceInput>>)]
    pub(crate) other_prices: Option<Vec<Money>>,
    #[validate(range(max = 1_000_000))]
    #[schema(maximum = 1_000_000)]
    pub(crate) weight_grams: Option<u32>,
}

impl From<VariantRequest> for VariantDraft {
    fn from(v: VariantRequest) -> Self {
        Self {
            sku: v.sku,
            options: v.options,
            price: v.price,
            other_prices: v.other_prices,
            weight_grams: v.weight_grams,
        }
    }
}

/// Changes to one variant.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"price": {"amount": 2100, "currency": "EUR"}}))]
pub(crate) struct UpdateVariantRequest {
    #[validate(length(max = 64))]
    #[schema(schema_with = sku_or_null_schema)]
    pub(crate) sku: Option<String>,
    #[schema(value_type = Option<PriceInput>)]
    pub(crate) price: Option<Money>,
    /// Replaces the variant's prices in other currencies.
    #[validate(length(max = 20))]
    #[schema(max_items = 20, value_type = Option<Vec<PriceInput>>)]
    pub(crate) other_prices: Option<Vec<Money>>,
    #[validate(range(max = 1_000_000))]
    #[schema(maximum = 1_000_000)]
    pub(crate) weight_grams: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"price": {"amount": 999, "currency": "EUR"}}))]
pub(crate) struct UpdateProductRequest {
    #[validate(length(max = 64))]
    #[schema(schema_with = sku_or_null_schema)]
    pub(crate) sku: Option<String>,
    #[validate(length(max = 200))]
    #[schema(schema_with = kernel::schema::text_200_or_null)]
    pub(crate) name: Option<String>,
    /// Text, or `null` to remove.
    #[serde(default, deserialize_with = "platform::http::present")]
    #[schema(value_type = Option<String>, max_length = 5000)]
    #[validate(custom(function = "description_length"))]
    pub(crate) description: Option<Option<String>>,
    #[schema(value_type = Option<PriceInput>)]
    pub(crate) price: Option<Money>,
    /// Replaces the prices in other currencies.
    #[validate(length(max = 20))]
    #[schema(max_items = 20, value_type = Option<Vec<PriceInput>>)]
    pub(crate) other_prices: Option<Vec<Money>>,
    /// A category, or `null` to remove.
    #[serde(default, deserialize_with = "platform::http::present")]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub(crate) category_id: Option<Option<uuid::Uuid>>,
    #[validate(range(max = 1_000_000))]
    #[schema(maximum = 1_000_000)]
    pub(crate) weight_grams: Option<u32>,
    pub(crate) tax_class: Option<TaxClass>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProductResponse {
    pub(crate) id: uuid::Uuid,
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) price: Money,
    /// Prices in other currencies.
    pub(crate) other_prices: Vec<Money>,
    pub(crate) category_id: Option<uuid::Uuid>,
    /// Shipping weight of one unit in grams.
    pub(crate) weight_grams: u32,
    pub(crate) tax_class: TaxClass,
    /// The options it comes in (empty: sold as itself, its one variant).
    pub(crate) options: Vec<ProductOption>,
    /// What is sold: each variant with its id (a product without options has one, whose id
    /// is the product's).
    pub(crate) variants: Vec<VariantResponse>,
    /// The lowest and highest variant price, in `price`'s currency.
    pub(crate) price_range: PriceRange,
    /// `active` or `archived`.
    pub(crate) status: &'static str,
    /// Increases on every change; the `ETag`.
    pub(crate) revision: i64,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

impl From<&Product> for ProductResponse {
    fn from(p: &Product) -> Self {
        Self {
            id: p.id.as_uuid(),
            sku: p.sku.as_ref().to_owned(),
            name: p.name.as_ref().to_owned(),
            description: p.description.as_ref().map(|d| d.as_ref().to_owned()),
            price: p.price,
            other_prices: p.other_prices.clone(),
            category_id: p.category_id.map(|c| c.as_uuid()),
            weight_grams: p.weight_grams,
            tax_class: p.tax_class,
            options: p.options.clone(),
            variants: p.sold().into_iter().map(VariantResponse::from).collect(),
            price_range: {
                let (min, max) = p.price_range();
                PriceRange { min, max }
            },
            status: p.status.as_str(),
            revision: p.revision,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PriceRange {
    pub(crate) min: Money,
    pub(crate) max: Money,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VariantResponse {
    /// What carts, stock and orders name.
    pub(crate) id: uuid::Uuid,
    pub(crate) sku: String,
    /// Option name to value.
    pub(crate) options: BTreeMap<String, String>,
    /// The values for people, e.g. `M / Blue` (empty without options).
    pub(crate) title: String,
    pub(crate) price: Money,
    pub(crate) other_prices: Vec<Money>,
    pub(crate) weight_grams: u32,
}

impl From<Variant> for VariantResponse {
    fn from(v: Variant) -> Self {
        Self {
            id: v.id.as_uuid(),
            sku: v.sku.as_ref().to_owned(),
            title: v.title(),
            options: v.options.into_iter().map(|o| (o.name, o.value)).collect(),
            price: v.price,
            other_prices: v.other_prices,
            weight_grams: v.weight_grams,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SortParam {
    Newest,
    Price,
    PriceDesc,
    Name,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ProductListQuery {
    /// Category id or slug; sub-categories are included.
    pub(crate) category: Option<String>,
    /// Words to find in the name or description.
    pub(crate) q: Option<String>,
    /// Option values a variant must have, `name:value` pairs joined by commas (ignoring
    /// case), e.g. `size:m,colour:blue`; at most 3.
    pub(crate) option: Option<String>,
    /// `newest` (default), `price`, `price_desc` or `name`.
    #[param(inline)]
    pub(crate) sort: Option<SortParam>,
    /// Items per page, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<i64>,
    pub(crate) cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"on_hand": 25}))]
pub(crate) struct SetStockRequest {
    #[validate(range(min = 0, max = 1_000_000_000))]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    #[serde(deserialize_with = "kernel::schema::whole_number")]
    pub(crate) on_hand: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StockResponse {
    pub(crate) product_id: uuid::Uuid,
    pub(crate) on_hand: i64,
    pub(crate) reserved: i64,
    pub(crate) available: i64,
}

impl StockResponse {
    pub(crate) fn new(product_id: uuid::Uuid, s: StockLevel) -> Self {
        Self {
            product_id,
            on_hand: s.on_hand,
            reserved: s.reserved,
            available: s.available(),
        }
    }
}

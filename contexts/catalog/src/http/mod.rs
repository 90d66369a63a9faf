//! Catalog's HTTP surface under `/api/v1/catalog`.

mod dto;

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bus::Causation;
use kernel::id::{CategoryId, ProductId};
use platform::auth::AdminUser;
use platform::error::{ApiError, ProblemBody};
use platform::http::{RequestContext, ValidJson};
use platform::pagination::{Page, PageQuery, PageRequest, Part};

use crate::application::cache::{Cached, ReadCache};
use crate::application::catalog::{Catalog, NewCategory, NewProduct, ProductChange, VariantChange};
use crate::application::inventory::Inventory;
use crate::application::ports::{ProductQuery, Sort};
use crate::application::CatalogError;
use crate::domain::{key, Product, VariantDraft};
use catalog_contracts::ProductOption;
pub(crate) use dto::*;

pub(crate) struct State {
    pub(crate) catalog: Catalog,
    pub(crate) inventory: Arc<Inventory>,
    pub(crate) cache: Arc<ReadCache>,
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Invalid(errors) => ApiError::validation(errors),
            CatalogError::Duplicate(what) => ApiError::conflict(
                format!("catalog.duplicate_{what}"),
                format!("a record with this {what} already exists"),
            ),
            CatalogError::ProductNotFound => {
                ApiError::not_found("catalog.product_not_found", "no such product")
            }
            CatalogError::VariantNotFound => ApiError::not_found(
                "catalog.variant_not_found",
                "no such variant of this product",
            ),
            CatalogError::CategoryNotFound => {
                ApiError::not_found("catalog.category_not_found", "no such category")
            }
            CatalogError::Stale => ApiError::precondition_failed(
                "catalog.stale_write",
                "the product changed since you read it; fetch it again and retry with its ETag",
            ),
            CatalogError::BelowReserved { reserved } => ApiError::conflict(
                "catalog.below_reserved",
                format!("on_hand cannot go below the {reserved} units reserved"),
            ),
            CatalogError::Unexpected(e) => ApiError::internal(e),
        }
    }
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/catalog")
            .service(
                web::resource("/categories")
                    .route(web::get().to(list_categories))
                    .route(web::post().to(create_category)),
            )
            .service(
                web::resource("/products")
                    .route(web::get().to(list_products))
                    .route(web::post().to(create_product)),
            )
            .service(
                web::resource("/products/{id}")
                    .route(web::get().to(get_product))
                    .route(web::patch().to(update_product))
                    .route(web::delete().to(archive_product)),
            )
            .service(
                web::resource("/products/{id}/stock")
                    .route(web::get().to(get_stock))
                    .route(web::put().to(set_stock)),
            )
            .service(web::resource("/products/{id}/variants").route(web::post().to(add_variant)))
            .service(
                web::resource("/products/{id}/variants/{variant_id}")
                    .route(web::patch().to(update_variant)),
            )
            .service(
                web::resource("/products/{id}/variants/{variant_id}/stock")
                    .route(web::get().to(get_variant_stock))
                    .route(web::put().to(set_variant_stock)),
            ),
    );
}

const NO_REVISION: i64 = -1;

/// The revision an `If-Match` header names (`"7"`, `W/"7"` or `*`); `Some(None)` for `*`.
fn if_match(req: &HttpRequest) -> Result<Option<Option<i64>>, ApiError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let raw = value.to_str().unwrap_or_default().trim();
    if raw == "*" {
        return Ok(Some(None));
    }
    let unquoted = raw.trim_start_matches("W/").trim_matches('"');
    match unquoted.parse::<i64>() {
        Ok(rev) => Ok(Some(Some(rev))),
        // An ETag we never issued cannot match the current one: a revision no product has
        // (they start at 1), so the change is still validated first (422), then refused (412).
        Err(_) => Ok(Some(Some(NO_REVISION))),
    }
}

fn with_etag(status: StatusCode, product: &Product) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, product.etag()))
        .json(ProductResponse::from(product))
}

fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag || t.trim() == "*")
        })
}

/// The public catalog reads may be kept by any cache for a few seconds, and served a while
/// longer while one revalidates in the background (the `ETag` makes that a 304); a price
/// change shows everywhere within `max-age`. Checkout never prices from these copies.
pub(crate) const PUBLIC_READ: &str = "public, max-age=10, stale-while-revalidate=60";

fn cached_response(req: &HttpRequest, cached: &Cached) -> HttpResponse {
    let etag = HeaderValue::from_str(&cached.etag).unwrap_or(HeaderValue::from_static("\"0\""));
    if not_modified(req, &cached.etag) {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, PUBLIC_READ))
            .finish();
    }
    let mut res = HttpResponse::Ok();
    res.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, PUBLIC_READ));
    if let Some(cursor) = &cached.next_cursor {
        if let Ok(link) = HeaderValue::from_str(&platform::pagination::next_link(req, cursor)) {
            res.insert_header((header::LINK, link));
        }
    }
    res.content_type("application/json")
        .body(cached.body.clone())
}

/// The category tree, as a flat list ordered by slug (`parent_id` links the tree).
#[utoipa::path(
    get, path = "/api/v1/catalog/categories", tag = "catalog", operation_id = "list_categories",
    params(PageQuery),
    responses(
        (status = 200, description = "Categories", body = Page<CategoryResponse>),
        (status = 400, description = "Bad cursor", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn list_categories(
    state: web::Data<State>,
    query: web::Query<PageQuery>,
) -> Result<Page<CategoryResponse>, ApiError> {
    let page = PageRequest::from_query(query.limit, query.cursor.as_deref(), &[Part::Text])?;
    Ok(state
        .catalog
        .categories(&page)
        .await?
        .map(CategoryResponse::from))
}

/// Create a category (admin).
#[utoipa::path(
    post, path = "/api/v1/catalog/categories", tag = "catalog", operation_id = "create_category",
    security(("bearer" = [])),
    request_body = CreateCategoryRequest,
    responses(
        (status = 201, description = "Created", body = CategoryResponse),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "Slug taken", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn create_category(
    state: web::Data<State>,
    _admin: AdminUser,
    body: ValidJson<CreateCategoryRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let category = state
        .catalog
        .create_category(NewCategory {
            name: body.name,
            slug: body.slug,
            parent_id: body.parent_id.map(CategoryId::from_uuid),
        })
        .await?;
    Ok(HttpResponse::Created().json(CategoryResponse::from(category)))
}

/// Browse active products: filter by category (with sub-categories) and words, sort, page.
#[utoipa::path(
    get, path = "/api/v1/catalog/products", tag = "catalog", operation_id = "list_products",
    params(ProductListQuery),
    responses(
        (status = 200, description = "A page of products", body = Page<ProductResponse>),
        (status = 400, description = "Bad cursor or parameter", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit, query or category", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn list_products(
    state: web::Data<State>,
    req: HttpRequest,
    query: web::Query<ProductListQuery>,
) -> Result<HttpResponse, ApiError> {
    let sort = match query.sort.unwrap_or(SortParam::Newest) {
        SortParam::Newest => Sort::Newest,
        SortParam::Price => Sort::PriceAsc,
        SortParam::PriceDesc => Sort::PriceDesc,
        SortParam::Name => Sort::Name,
    };
    let key_part = if sort == Sort::Name {
        Part::Text
    } else {
        Part::Int
    };
    let page =
        PageRequest::from_query(query.limit, query.cursor.as_deref(), &[key_part, Part::Id])?;
    let category = match query
        .category
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        Some(raw) => Some(
            state
                .catalog
                .resolve_category(raw)
                .await
                .map_err(|e| match e {
                    CatalogError::VariantNotFound => ApiError::not_found(
                        "catalog.variant_not_found",
                        "no such variant of this product",
                    ),
                    CatalogError::CategoryNotFound => {
                        ApiError::field("category", "no such category")
                    }
                    other => other.into(),
                })?,
        ),
        None => None,
    };
    let q = query.q.as_deref().unwrap_or_default();
    if q.chars().count() > 100 {
        return Err(ApiError::field("q", "must be at most 100 characters"));
    }
    let words: Vec<String> = q
        .split_whitespace()
        .take(8)
        .map(str::to_lowercase)
        .collect();
    let options = option_filter(query.option.as_deref().unwrap_or_default())?;
    let key = format!(
        "{}|{}|{:?}|{:?}|{}|{}",
        category.map(|c| c.to_string()).unwrap_or_default(),
        words.join(" "),
        options,
        sort,
        page.limit,
        query.cursor.as_deref().unwrap_or_default()
    );
    if let Some(cached) = state.cache.list(&key).await {
        return Ok(cached_response(&req, &cached));
    }
    let generation = state.cache.generation();
    let products = state
        .catalog
        .products(&ProductQuery {
            category,
            words,
            options,
            sort,
            page,
        })
        .await?;
    let body: Page<ProductResponse> = products.map(|p| ProductResponse::from(&p));
    let bytes = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    let cached = Cached {
        etag: format!("\"l{:016x}\"", fnv(&bytes)).into(),
        body: bytes.into(),
        next_cursor: body.next_cursor.as_deref().map(Into::into),
    };
    state.cache.put_list(generation, key, cached.clone()).await;
    Ok(cached_response(&req, &cached))
}

/// `size:m,colour:blue` as lower-cased (name, value) pairs.
fn option_filter(raw: &str) -> Result<Vec<(String, String)>, ApiError> {
    const BAD: &str = "name:value pairs joined by commas, at most 3, each part 1 to 40 characters";
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let pairs: Vec<(String, String)> = raw
        .split(',')
        .map(|pair| {
            let (name, value) = pair.split_once(':')?;
            let (name, value) = (key(name), key(value));
            let fits = |s: &str| (1..=40).contains(&s.chars().count());
            (fits(&name) && fits(&value)).then_some((name, value))
        })
        .collect::<Option<_>>()
        .ok_or_else(|| ApiError::field("option", BAD))?;
    if pairs.len() > 3 {
        return Err(ApiError::field("option", BAD));
    }
    Ok(pairs)
}

/// A small, stable hash for list ETags.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Create a product (admin). Its stock starts at zero.
#[utoipa::path(
    post, path = "/api/v1/catalog/products", tag = "catalog", operation_id = "create_product",
    security(("bearer" = [])),
    request_body = CreateProductRequest,
    responses(
        (status = 201, description = "Created", body = ProductResponse, headers(("ETag" = String, description = "Revision"), ("Location" = String, description = "The new product")), links(
            ("GetProduct" = (operation_id = "get_product", parameters(("id" = "$response.body#/id")))),
            ("UpdateProduct" = (operation_id = "update_product", parameters(("id" = "$response.body#/id")))),
            ("GetStock" = (operation_id = "get_stock", parameters(("id" = "$response.body#/id")))),
            ("SetStock" = (operation_id = "set_stock", parameters(("id" = "$response.body#/id")))),
            ("ArchiveProduct" = (operation_id = "archive_product", parameters(("id" = "$response.body#/id"))))
        )),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "SKU taken", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn create_product(
    state: web::Data<State>,
    _admin: AdminUser,
    ctx: RequestContext,
    body: ValidJson<CreateProductRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let product = state
        .catalog
        .create_product(
            NewProduct {
                sku: body.sku,
                name: body.name,
                description: body.description,
                price: body.price,
                other_prices: body.other_prices,
                category_id: body.category_id.map(CategoryId::from_uuid),
                weight_grams: body.weight_grams,
                tax_class: body.tax_class,
                options: body
                    .options
                    .into_iter()
                    .map(|o| ProductOption {
                        name: o.name,
                        values: o.values,
                    })
                    .collect(),
                variants: body.variants.into_iter().map(VariantDraft::from).collect(),
            },
            &Causation::from(&ctx),
        )
        .await?;
    let mut res = with_etag(StatusCode::CREATED, &product);
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/catalog/products/{}", product.id))
    {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// A product, archived ones included. Served from cache; `If-None-Match` gives 304.
#[utoipa::path(
    get, path = "/api/v1/catalog/products/{id}", tag = "catalog", operation_id = "get_product",
    params(("id" = uuid::Uuid, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product", body = ProductResponse, headers(("ETag" = String, description = "Revision")), links(
            // No `requestBody` here: openapi-generator's parser takes only a string there.
            ("AddToCart" = (operation_id = "add_cart_item")),
            ("GetStock" = (operation_id = "get_stock", parameters(("id" = "$response.body#/id"))))
        )),
        (status = 304, description = "Not modified"),
        (status = 400, description = "Malformed id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn get_product(
    state: web::Data<State>,
    req: HttpRequest,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = ProductId::from_uuid(id.into_inner());
    if let Some(cached) = state.cache.product(id).await {
        return Ok(cached_response(&req, &cached));
    }
    let generation = state.cache.generation();
    let product = state.catalog.product(id).await?;
    let bytes = serde_json::to_vec(&ProductResponse::from(&product)).map_err(ApiError::internal)?;
    let cached = Cached {
        body: bytes.into(),
        etag: product.etag().into(),
        next_cursor: None,
    };
    state
        .cache
        .put_product(generation, id, cached.clone())
        .await;
    Ok(cached_response(&req, &cached))
}

/// Change some fields (admin). Send the `ETag` you read as `If-Match`: a stale write is a 412.
#[utoipa::path(
    patch, path = "/api/v1/catalog/products/{id}", tag = "catalog", operation_id = "update_product",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "Product id"),
        ("If-Match" = Option<String>, Header, description = "ETag of the revision being changed")
    ),
    request_body = UpdateProductRequest,
    responses(
        (status = 200, description = "Updated", body = ProductResponse, headers(("ETag" = String, description = "Revision"))),
        (status = 400, description = "Malformed JSON or id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "SKU taken", body = ProblemBody, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn update_product(
    state: web::Data<State>,
    _admin: AdminUser,
    req: HttpRequest,
    ctx: RequestContext,
    id: web::Path<uuid::Uuid>,
    body: ValidJson<UpdateProductRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = ProductId::from_uuid(id.into_inner());
    let expected = if_match(&req)?.flatten();
    let body = body.into_inner();
    let product = state
        .catalog
        .update_product(
            id,
            ProductChange {
                sku: body.sku,
                name: body.name,
                description: body.description,
                price: body.price,
                other_prices: body.other_prices,
                category_id: body.category_id.map(|c| c.map(CategoryId::from_uuid)),
                weight_grams: body.weight_grams,
                tax_class: body.tax_class,
            },
            expected,
            &Causation::from(&ctx),
        )
        .await?;
    Ok(with_etag(StatusCode::OK, &product))
}

/// Archive a product (admin): hidden from browsing, kept for existing orders.
#[utoipa::path(
    delete, path = "/api/v1/catalog/products/{id}", tag = "catalog", operation_id = "archive_product",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "Product id"),
        ("If-Match" = Option<String>, Header, description = "ETag of the revision being archived")
    ),
    responses(
        (status = 200, description = "Archived", body = ProductResponse),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 400, description = "Malformed id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = ProblemBody, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn archive_product(
    state: web::Data<State>,
    _admin: AdminUser,
    req: HttpRequest,
    ctx: RequestContext,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = ProductId::from_uuid(id.into_inner());
    let expected = if_match(&req)?.flatten();
    let product = state
        .catalog
        .archive(id, expected, &Causation::from(&ctx))
        .await?;
    Ok(with_etag(StatusCode::OK, &product))
}

/// Stock: on hand, reserved by open orders, available.
#[utoipa::path(
    get, path = "/api/v1/catalog/products/{id}/stock", tag = "catalog", operation_id = "get_stock",
    params(("id" = uuid::Uuid, Path, description = "Product id")),
    responses(
        (status = 200, description = "Stock", body = StockResponse),
        (status = 400, description = "Malformed id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "Stocked per variant", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn get_stock(
    state: web::Data<State>,
    id: web::Path<uuid::Uuid>,
) -> Result<web::Json<StockResponse>, ApiError> {
    let id = ProductId::from_uuid(id.into_inner());
    let product = state.catalog.product(id).await?;
    let level = state.inventory.stock(sold_as_itself(&product)?).await?;
    Ok(web::Json(StockResponse::new(id.as_uuid(), level)))
}

/// A product without options is stocked as itself; one with options, per variant.
fn sold_as_itself(product: &Product) -> Result<ProductId, ApiError> {
    if product.has_variants() {
        return Err(ApiError::conflict(
            "catalog.has_variants",
            "this product is stocked per variant: use /products/{id}/variants/{variant_id}/stock",
        ));
    }
    Ok(product.id)
}

/// The variant `variant_id` of product `id` (a product without options: itself).
async fn variant_of(
    state: &State,
    id: uuid::Uuid,
    variant_id: uuid::Uuid,
) -> Result<ProductId, ApiError> {
    let product = state.catalog.product(ProductId::from_uuid(id)).await?;
    let variant = ProductId::from_uuid(variant_id);
    if product.sold().iter().any(|v| v.id == variant) {
        Ok(variant)
    } else {
        Err(CatalogError::VariantNotFound.into())
    }
}

/// Set units on hand (admin); never below what is reserved.
#[utoipa::path(
    put, path = "/api/v1/catalog/products/{id}/stock", tag = "catalog", operation_id = "set_stock",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Product id")),
    request_body = SetStockRequest,
    responses(
        (status = 200, description = "Stock", body = StockResponse),
        (status = 400, description = "Malformed JSON or id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "Below what is reserved, or stocked per variant", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn set_stock(
    state: web::Data<State>,
    _admin: AdminUser,
    id: web::Path<uuid::Uuid>,
    body: ValidJson<SetStockRequest>,
) -> Result<web::Json<StockResponse>, ApiError> {
    let id = ProductId::from_uuid(id.into_inner());
    let product = state.catalog.product(id).await?;
    let level = state
        .inventory
        .set_on_hand(sold_as_itself(&product)?, body.on_hand)
        .await?;
    Ok(web::Json(StockResponse::new(id.as_uuid(), level)))
}

/// Add a variant to a product with options (admin); a value an option lacks is added to it.
#[utoipa::path(
    post, path = "/api/v1/catalog/products/{id}/variants", tag = "catalog", operation_id = "add_variant",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "Product id"),
        ("If-Match" = Option<String>, Header, description = "ETag of the revision being changed")
    ),
    request_body = VariantRequest,
    responses(
        (status = 201, description = "Added; the product with its new variant", body = ProductResponse, headers(("ETag" = String, description = "Revision"), ("Location" = String, description = "The product"))),
        (status = 400, description = "Malformed JSON or id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "SKU taken", body = ProblemBody, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or a product without options", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn add_variant(
    state: web::Data<State>,
    _admin: AdminUser,
    req: HttpRequest,
    ctx: RequestContext,
    id: web::Path<uuid::Uuid>,
    body: ValidJson<VariantRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = ProductId::from_uuid(id.into_inner());
    let expected = if_match(&req)?.flatten();
    let (product, variant) = state
        .catalog
        .add_variant(
            id,
            VariantDraft::from(body.into_inner()),
            expected,
            &Causation::from(&ctx),
        )
        .await?;
    let mut res = with_etag(StatusCode::CREATED, &product);
    if let Ok(location) = HeaderValue::from_str(&format!(
        "/api/v1/catalog/products/{id}/variants/{variant}/stock"
    )) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// Change a variant's SKU, price, other prices or weight (admin). `If-Match` takes the
/// product's `ETag`; a product without options has one variant whose id is the product's.
#[utoipa::path(
    patch, path = "/api/v1/catalog/products/{id}/variants/{variant_id}", tag = "catalog", operation_id = "update_variant",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "Product id"),
        ("variant_id" = uuid::Uuid, Path, description = "Variant id"),
        ("If-Match" = Option<String>, Header, description = "ETag of the product revision being changed")
    ),
    request_body = UpdateVariantRequest,
    responses(
        (status = 200, description = "Updated; the product", body = ProductResponse, headers(("ETag" = String, description = "Revision"))),
        (status = 400, description = "Malformed JSON or id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such product or variant", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "SKU taken", body = ProblemBody, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn update_variant(
    state: web::Data<State>,
    _admin: AdminUser,
    req: HttpRequest,
    ctx: RequestContext,
    path: web::Path<(uuid::Uuid, uuid::Uuid)>,
    body: ValidJson<UpdateVariantRequest>,
) -> Result<HttpResponse, ApiError> {
    let (id, variant) = path.into_inner();
    let expected = if_match(&req)?.flatten();
    let body = body.into_inner();
    let product = state
        .catalog
        .update_variant(
            ProductId::from_uuid(id),
            ProductId::from_uuid(variant),
            VariantChange {
                sku: body.sku,
                price: body.price,
                other_prices: body.other_prices,
                weight_grams: body.weight_grams,
            },
            expected,
            &Causation::from(&ctx),
        )
        .await?;
    Ok(with_etag(StatusCode::OK, &product))
}

/// A variant's stock: on hand, reserved by open orders, available.
#[utoipa::path(
    get, path = "/api/v1/catalog/products/{id}/variants/{variant_id}/stock", tag = "catalog", operation_id = "get_variant_stock",
    params(
        ("id" = uuid::Uuid, Path, description = "Product id"),
        ("variant_id" = uuid::Uuid, Path, description = "Variant id")
    ),
    responses(
        (status = 200, description = "Stock", body = StockResponse),
        (status = 400, description = "Malformed id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such product or variant", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn get_variant_stock(
    state: web::Data<State>,
    path: web::Path<(uuid::Uuid, uuid::Uuid)>,
) -> Result<web::Json<StockResponse>, ApiError> {
    let (id, variant) = path.into_inner();
    let variant = variant_of(&state, id, variant).await?;
    let level = state.inventory.stock(variant).await?;
    Ok(web::Json(StockResponse::new(variant.as_uuid(), level)))
}

/// Set a variant's units on hand (admin); never below what is reserved.
#[utoipa::path(
    put, path = "/api/v1/catalog/products/{id}/variants/{variant_id}/stock", tag = "catalog", operation_id = "set_variant_stock",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "Product id"),
        ("variant_id" = uuid::Uuid, Path, description = "Variant id")
    ),
    request_body = SetStockRequest,
    responses(
        (status = 200, description = "Stock", body = StockResponse),
        (status = 400, description = "Malformed JSON or id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such product or variant", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "Below what is reserved", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn set_variant_stock(
    state: web::Data<State>,
    _admin: AdminUser,
    path: web::Path<(uuid::Uuid, uuid::Uuid)>,
    body: ValidJson<SetStockRequest>,
) -> Result<web::Json<StockResponse>, ApiError> {
    let (id, variant) = path.into_inner();
    let variant = variant_of(&state, id, variant).await?;
    let level = state.inventory.set_on_hand(variant, body.on_hand).await?;
    Ok(web::Json(StockResponse::new(variant.as_uuid(), level)))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_categories, create_category, list_products, create_product, get_product, update_product, archive_product, get_stock, set_stock, add_variant, update_variant, get_variant_stock, set_variant_stock),
    components(schemas(dto::PriceInput)),
    tags((name = "catalog", description = "Categories, products, prices and stock"))
)]
pub(crate) struct ApiDoc;

//! Ordering's HTTP surface under `/api/v1/ordering`.

mod dto;
mod refunds;
mod returns;
mod shopper;

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use bus::Causation;
use kernel::id::{OrderId, ProductId};
use platform::auth::{AdminUser, AuthUser, ServiceAudience, ServiceCaller};
use platform::error::{ApiError, ProblemBody};
use platform::http::{RequestContext, ValidJson};
use platform::pagination::{Page, PageQuery, PageRequest, Part};

use crate::application::cart::Carts;
use crate::application::checkout::{
    check_idempotency_key, Checkout, Destination, GuestContact, PlaceOrder,
};
use crate::application::guests::{order_token, Guests};
use crate::application::payment_events::{PaymentEvents, Taken};
use crate::application::promotions::Promotions;
use crate::application::rates::Rates;
use crate::application::OrderingError;
use crate::infrastructure::stripe_webhook::{self, Refused};
pub(crate) use dto::*;
use refunds::refund_problem;
use shopper::{OrderReader, Shopper};

pub(crate) struct State {
    pub(crate) guests: Arc<Guests>,
    pub(crate) payment_events: PaymentEvents,
    /// Stripe's webhook signing secrets (`EMPORIUM_STRIPE_WEBHOOK_SECRETS`); none: the
    /// endpoint is not served.
    pub(crate) stripe_webhook_secrets: Vec<String>,
    pub(crate) promotions: Promotions,
    pub(crate) rates: Rates,
    pub(crate) carts: Carts,
    pub(crate) checkout: Arc<Checkout>,
}

impl From<OrderingError> for ApiError {
    fn from(e: OrderingError) -> Self {
        match e {
            OrderingError::Invalid(errors) => ApiError::validation(errors),
            OrderingError::CartEmpty => {
                ApiError::unprocessable("ordering.cart_empty", "the cart is empty")
            }
            OrderingError::EmailUnverified => ApiError::new(
                actix_web::http::StatusCode::FORBIDDEN,
                "ordering.email_unverified",
                "verify your email address before placing an order (see the mail we sent, or ask for a new link)",
            ),
            OrderingError::ProductUnavailable(why) => {
                ApiError::unprocessable("ordering.product_unavailable", why)
            }
            OrderingError::NotInCart => {
                ApiError::not_found("ordering.not_in_cart", "this product is not in the cart")
            }
            OrderingError::OrderNotFound => {
                ApiError::not_found("ordering.order_not_found", "no such order")
            }
            OrderingError::IdempotencyMismatch => ApiError::unprocessable(
                "ordering.idempotency_key_reused",
                "this Idempotency-Key was already used with a different request body",
            ),
            OrderingError::CannotCancel(why) => ApiError::conflict("ordering.cannot_cancel", why),
            OrderingError::NotShipped(why) => {
                ApiError::unprocessable("ordering.no_shipping_rate", why)
            }
            OrderingError::PromotionNotApplicable(why) => {
                ApiError::unprocessable("ordering.promotion_not_applicable", why)
            }
            OrderingError::PromotionNotFound => {
                ApiError::not_found("ordering.promotion_not_found", "no such promotion")
            }
            OrderingError::DuplicatePromotion => ApiError::conflict(
                "ordering.duplicate_promotion",
                "a promotion with this code exists",
            ),
            OrderingError::RateNotFound => {
                ApiError::not_found("ordering.rate_not_found", "no such rate")
            }
            OrderingError::Refund(e) => refund_problem(e),
            OrderingError::Return(e) => returns::return_problem(e),
            OrderingError::Unexpected(e) => ApiError::internal(e),
        }
    }
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/ordering")
            .service(web::resource("/carts").route(web::post().to(create_cart)))
            .service(web::resource("/webhooks/stripe").route(web::post().to(stripe_webhook)))
            .service(web::resource("/cart").route(web::get().to(get_cart)))
            .service(web::resource("/cart/quote").route(web::get().to(quote_cart)))
            .service(
                web::resource("/cart/promotion")
                    .route(web::post().to(apply_promotion))
                    .route(web::delete().to(remove_promotion)),
            )
            .service(
                web::resource("/promotions")
                    .route(web::post().to(create_promotion))
                    .route(web::get().to(list_promotions)),
            )
            .service(
                web::resource("/promotions/{code}")
                    .route(web::get().to(get_promotion))
                    .route(web::delete().to(withdraw_promotion)),
            )
            .service(web::resource("/tax-rates").route(web::get().to(list_tax_rates)))
            .service(
                web::resource("/tax-rates/{country}")
                    .route(web::put().to(put_tax_rates))
                    .route(web::delete().to(delete_tax_rates)),
            )
            .service(web::resource("/shipping-rates").route(web::get().to(list_shipping_rates)))
            .service(
                web::resource("/shipping-rates/{country}/{currency}")
                    .route(web::put().to(put_shipping_rate))
                    .route(web::delete().to(delete_shipping_rate)),
            )
            .service(web::resource("/cart/items").route(web::post().to(add_item)))
            .service(
                web::resource("/cart/items/{product_id}")
                    .route(web::patch().to(set_quantity))
                    .route(web::delete().to(remove_item)),
            )
            .service(
                web::resource("/orders")
                    .route(web::post().to(place_order))
                    .route(web::get().to(list_orders)),
            )
            .service(web::resource("/orders/{id}").route(web::get().to(get_order)))
            .service(web::resource("/orders/{id}/cancel").route(web::post().to(cancel_order)))
            .service(
                web::resource("/orders/{id}/refunds").route(web::post().to(refunds::refund_order)),
            )
            .service(
                web::resource("/orders/{id}/returns")
                    .route(web::post().to(returns::request_return)),
            )
            .service(
                web::resource("/orders/{id}/returns/{return_id}/approve")
                    .route(web::post().to(returns::approve_return)),
            )
            .service(
                web::resource("/orders/{id}/returns/{return_id}/reject")
                    .route(web::post().to(returns::reject_return)),
            )
            .service(
                web::resource("/orders/{id}/returns/{return_id}/receive")
                    .route(web::post().to(returns::receive_return)),
            )
            .service(web::resource("/admin/orders").route(web::get().to(admin_list_orders)))
            .service(web::resource("/admin/summary").route(web::get().to(admin_order_summary))),
    )
    // For services only (a client-credentials token for `ordering`); the gateway does not
    // route `/internal/`, so it is not reachable from the edge.
    .service(web::scope("/internal/v1/ordering").service(
        web::resource("/customers/{customer_id}/order-counts").route(web::get().to(order_counts)),
    ));
}

/// The audience of service tokens for this context.
pub(crate) struct Audience;

impl ServiceAudience for Audience {
    const NAME: &'static str = crate::NAME;
}

#[derive(Debug, serde::Serialize)]
pub(crate) struct OrderCountsResponse {
    customer_id: uuid::Uuid,
    total: i64,
    by_status: std::collections::BTreeMap<String, i64>,
}

/// How many orders a customer has in each status. Services only (not in the public API).
pub(crate) async fn order_counts(
    state: web::Data<State>,
    caller: ServiceCaller<Audience>,
    path: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let customer = kernel::id::UserId::from_uuid(path.into_inner());
    let counts = state.checkout.counts(customer).await?;
    tracing::debug!(service = %caller.service, "order counts");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(OrderCountsResponse {
            customer_id: customer.as_uuid(),
            total: counts.iter().map(|(_, n)| n).sum(),
            by_status: counts.into_iter().collect(),
        }))
}

/// Stripe's webhook: events about the shop's payments, signed (`Stripe-Signature`, checked
/// against `EMPORIUM_STRIPE_WEBHOOK_SECRETS` before the body is read, 300 s tolerance). Each
/// event is taken once by its id; a refund or dispute made in Stripe shows as the charge's
/// `provider_status`.
#[utoipa::path(
    post, path = "/api/v1/ordering/webhooks/stripe", tag = "ordering", operation_id = "stripe_webhook",
    security(()),
    params(("Stripe-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">`", pattern = "^t=[0-9]+(,[a-z0-9]+=[0-9a-f]+)+$")),
    request_body(content = serde_json::Value, description = "A Stripe event", content_type = "application/json"),
    responses(
        (status = 200, description = "Taken (or taken before: `duplicate`)", body = WebhookReceived),
        (status = 400, description = "`ordering.webhook_signature_invalid`: no valid signature under a configured secret, or one outside the tolerance; `malformed_json`: signed, but not an event", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`ordering.webhooks_not_configured`: no webhook secret is set (a request with a well-formed signature)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable: Stripe retries", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn stripe_webhook(
    state: web::Data<State>,
    req: HttpRequest,
    ctx: RequestContext,
    body: web::Bytes,
) -> Result<web::Json<WebhookReceived>, ApiError> {
    let header = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let now = state.checkout.clock.now();
    let invalid = |why: &str| ApiError::bad_request("ordering.webhook_signature_invalid", why);
    match stripe_webhook::verify(&state.stripe_webhook_secrets, header, &body, now) {
        Ok(()) => {}
        // A request that is not even shaped like a signed one is refused as such first.
        Err(Refused::Malformed) => {
            return Err(invalid(
                "Stripe-Signature is missing or not `t=<unix seconds>,v1=<hex>`",
            ))
        }
        Err(_) if state.stripe_webhook_secrets.is_empty() => {
            return Err(ApiError::not_found(
                "ordering.webhooks_not_configured",
                "this shop takes no Stripe webhooks (EMPORIUM_STRIPE_WEBHOOK_SECRETS is not set)",
            ))
        }
        Err(Refused::Stale) => {
            return Err(invalid(
                "the signature's time is more than 300 s from now (a replay, or a clock off)",
            ))
        }
        Err(_) => {
            return Err(invalid(
                "no Stripe-Signature v1 matches a configured webhook secret",
            ))
        }
    }
    let event = stripe_webhook::event(&body).map_err(|_| {
        ApiError::bad_request("malformed_json", "the signed body is not a Stripe event")
    })?;
    let taken = state
        .payment_events
        .take(&event, &Causation::from(&ctx))
        .await?;
    Ok(web::Json(WebhookReceived {
        received: true,
        duplicate: taken == Taken::Duplicate,
    }))
}

/// Open a guest cart: shop without an account. The answer's `cart_token` (a secret, shown
/// once) is sent as `X-Cart-Token` to the cart endpoints and to checkout, until the cart
/// expires (`EMPORIUM_GUEST_CART_TTL_SECS`, 7 days by default).
#[utoipa::path(
    post, path = "/api/v1/ordering/carts", tag = "ordering", operation_id = "create_cart",
    security(()),
    responses(
        (status = 201, description = "The guest cart is open", body = GuestCartResponse, headers(("Location" = String, description = "The cart (with the token)"))),
        (status = 429, description = "Too many requests from this client address", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn create_cart(state: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let opened = state.guests.open().await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, "/api/v1/ordering/cart"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(GuestCartResponse {
            cart_token: opened.cart_token,
            expires_at: opened.expires_at,
        }))
}

/// Your cart with current prices.
#[utoipa::path(
    get, path = "/api/v1/ordering/cart", tag = "ordering", operation_id = "get_cart",
    security(("bearer" = []), ("cart_token" = [])),
    responses(
        (status = 200, description = "The cart", body = CartResponse, links(
            ("SetQuantity" = (operation_id = "set_cart_item_quantity", parameters(("product_id" = "$response.body#/items/0/product_id")))),
            ("RemoveItem" = (operation_id = "remove_cart_item", parameters(("product_id" = "$response.body#/items/0/product_id"))))
        )),
        (status = 400, description = "`ambiguous_request`: `X-Cart-Token` sent twice", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Neither signed in nor a guest cart's token (`ordering.cart_token_invalid`: unknown or expired)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn get_cart(
    state: web::Data<State>,
    shopper: Shopper,
) -> Result<web::Json<CartResponse>, ApiError> {
    Ok(web::Json(state.carts.cart(shopper.id()).await?.into()))
}

/// Add a product to the cart (quantities add up, to at most 99).
#[utoipa::path(
    post, path = "/api/v1/ordering/cart/items", tag = "ordering", operation_id = "add_cart_item",
    security(("bearer" = []), ("cart_token" = [])),
    request_body = AddCartItemRequest,
    responses(
        (status = 200, description = "The cart", body = CartResponse, links(
            ("QuoteCart" = (operation_id = "quote_cart")),
            ("PlaceOrder" = (operation_id = "place_order")),
            ("SetQuantity" = (operation_id = "set_cart_item_quantity", parameters(("product_id" = "$response.body#/items/0/product_id"))))
        )),
        (status = 400, description = "Malformed JSON; or `ambiguous_request` (`X-Cart-Token` sent twice)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Neither signed in nor a guest cart's token (`ordering.cart_token_invalid`: unknown or expired)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad quantity; unknown or archived product; no variant chosen of a product with options", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn add_item(
    state: web::Data<State>,
    shopper: Shopper,
    body: ValidJson<AddCartItemRequest>,
) -> Result<web::Json<CartResponse>, ApiError> {
    let cart = state
        .carts
        .add(
            shopper.id(),
            ProductId::from_uuid(body.product_id),
            body.variant_id.map(ProductId::from_uuid),
            body.quantity,
            body.currency.as_deref(),
        )
        .await?;
    Ok(web::Json(cart.into()))
}

/// Change a cart line's quantity.
#[utoipa::path(
    patch, path = "/api/v1/ordering/cart/items/{product_id}", tag = "ordering", operation_id = "set_cart_item_quantity",
    security(("bearer" = []), ("cart_token" = [])),
    params(("product_id" = uuid::Uuid, Path, description = "The cart item's `variant_id` (for a product without options, the product's id)")),
    request_body = SetQuantityRequest,
    responses(
        (status = 200, description = "The cart", body = CartResponse),
        (status = 400, description = "Malformed JSON or id; or `ambiguous_request` (`X-Cart-Token` sent twice)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Neither signed in nor a guest cart's token (`ordering.cart_token_invalid`: unknown or expired)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "Not in the cart", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad quantity", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn set_quantity(
    state: web::Data<State>,
    shopper: Shopper,
    product: web::Path<uuid::Uuid>,
    body: ValidJson<SetQuantityRequest>,
) -> Result<web::Json<CartResponse>, ApiError> {
    let cart = state
        .carts
        .set(
            shopper.id(),
            ProductId::from_uuid(product.into_inner()),
            body.quantity,
        )
        .await?;
    Ok(web::Json(cart.into()))
}

/// Remove a product from the cart.
#[utoipa::path(
    delete, path = "/api/v1/ordering/cart/items/{product_id}", tag = "ordering", operation_id = "remove_cart_item",
    security(("bearer" = []), ("cart_token" = [])),
    params(("product_id" = uuid::Uuid, Path, description = "The cart item's `variant_id` (for a product without options, the product's id)")),
    responses(
        (status = 200, description = "The cart", body = CartResponse),
        (status = 400, description = "Malformed id; or `ambiguous_request` (`X-Cart-Token` sent twice)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Neither signed in nor a guest cart's token (`ordering.cart_token_invalid`: unknown or expired)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "Not in the cart", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn remove_item(
    state: web::Data<State>,
    shopper: Shopper,
    product: web::Path<uuid::Uuid>,
) -> Result<web::Json<CartResponse>, ApiError> {
    let cart = state
        .carts
        .remove(shopper.id(), ProductId::from_uuid(product.into_inner()))
        .await?;
    Ok(web::Json(cart.into()))
}

/// Check out the cart. The order starts `pending`; follow it with `GET /orders/{id}`.
/// Send an `Idempotency-Key`: retrying with the same key and body returns the same order.
/// A guest (a cart token) gives `email`; the answer carries the order's `order_token`, which
/// reads it (`X-Order-Token`) and which the confirmation mail links to.
#[utoipa::path(
    post, path = "/api/v1/ordering/orders", tag = "ordering", operation_id = "place_order",
    security(("bearer" = []), ("cart_token" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: same key and body, same order; 1 to 200 visible ASCII characters", min_length = 1, max_length = 200, pattern = "^[!-~]+$")),
    request_body = CheckoutRequest,
    responses(
        (status = 202, description = "Order accepted (pending)", body = OrderResponse, headers(("Location" = String, description = "The order")), links(
            ("GetOrder" = (operation_id = "get_order", parameters(("id" = "$response.body#/id")))),
            ("CancelOrder" = (operation_id = "cancel_order", parameters(("id" = "$response.body#/id"))))
        )),
        (status = 400, description = "Malformed JSON; or `ambiguous_request` (`X-Cart-Token` sent twice)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Neither signed in nor a guest cart's token (`ordering.cart_token_invalid`: unknown or expired)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`ordering.email_unverified`: the shop requires a verified email address (`EMPORIUM_REQUIRE_VERIFIED_EMAIL`)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (a guest without `email`, a customer with one), empty cart, unavailable product, or a reused Idempotency-Key", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn place_order(
    state: web::Data<State>,
    shopper: Shopper,
    req: HttpRequest,
    ctx: RequestContext,
    body: ValidJson<CheckoutRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = Vec::new();
    let destination = match (&body.shipping_address, body.shipping_address_id) {
        (Some(address), None) => address
            .parse("shipping_address")
            .map(Destination::Given)
            .map_err(|e| errors.push(e))
            .ok(),
        (None, Some(id)) => Some(Destination::Saved(id.to_string())),
        (Some(_), Some(_)) => {
            errors.push(kernel::FieldError::new(
                "shipping_address_id",
                "give either shipping_address or shipping_address_id, not both",
            ));
            None
        }
        (None, None) => {
            errors.push(kernel::FieldError::new(
                "shipping_address",
                "is required (or give shipping_address_id)",
            ));
            None
        }
    };
    let guest = match (&shopper, &body.email) {
        (Shopper::Guest { cart_token, .. }, Some(email)) => {
            match kernel::EmailAddress::parse(email) {
                Ok(email) => Some(GuestContact {
                    email,
                    cart_token: cart_token.clone(),
                }),
                Err(e) => {
                    errors.push(kernel::FieldError::new("email", e.to_string()));
                    None
                }
            }
        }
        (Shopper::Guest { .. }, None) => {
            errors.push(kernel::FieldError::new(
                "email",
                "is required to check out as a guest (the confirmation is mailed there)",
            ));
            None
        }
        (Shopper::Customer(_), Some(_)) => {
            errors.push(kernel::FieldError::new(
                "email",
                "is for guests; a signed-in customer's order goes to the account's address",
            ));
            None
        }
        (Shopper::Customer(_), None) => None,
    };
    let key = idempotency_key(&req, &mut errors);
    let Some(destination) = destination.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let fingerprint = serde_json::to_string(&body).map_err(ApiError::internal)?;
    let (order, new) = state
        .checkout
        .place(
            PlaceOrder {
                customer: shopper.id(),
                guest,
                destination,
                payment_token: body.payment_token,
                idempotency_key: key,
                request_fingerprint: fingerprint,
            },
            &Causation::from(&ctx),
        )
        .await?;
    let mut res = HttpResponse::Accepted();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/ordering/orders/{}", order.id)) {
        res.insert_header((header::LOCATION, location));
    }
    if !new {
        res.insert_header(("idempotent-replayed", "true"));
    }
    let id = order.id;
    let mut answer = OrderResponse::from(order);
    if let Shopper::Guest { cart_token, .. } = &shopper {
        // The token is a secret: the answer is not to be stored by caches.
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        answer.order_token = Some(order_token(cart_token, id));
    }
    Ok(res.json(answer))
}

/// Your orders, newest first.
#[utoipa::path(
    get, path = "/api/v1/ordering/orders", tag = "ordering", operation_id = "list_orders",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "Orders", body = Page<OrderResponse>),
        (status = 400, description = "Bad cursor", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn list_orders(
    state: web::Data<State>,
    user: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<Page<OrderResponse>, ApiError> {
    let page = PageRequest::from_query(query.limit, query.cursor.as_deref(), &[Part::Id])?;
    Ok(state
        .checkout
        .list(user.user_id, &page)
        .await?
        .map(OrderResponse::from))
}

/// Every customer's orders, newest first, filtered by status, customer and when they were
/// placed (admins).
#[utoipa::path(
    get, path = "/api/v1/ordering/admin/orders", tag = "ordering", operation_id = "admin_list_orders",
    security(("bearer" = [])),
    params(AdminOrderQuery),
    responses(
        (status = 200, description = "Orders", body = Page<OrderResponse>, links(
            ("GetOrder" = (operation_id = "get_order", parameters(("id" = "$response.body#/items/0/id"))))
        )),
        (status = 400, description = "Bad cursor, status, customer id or time", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit, or `placed_from` after `placed_to`", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn admin_list_orders(
    state: web::Data<State>,
    _admin: AdminUser,
    query: web::Query<AdminOrderQuery>,
) -> Result<Page<OrderResponse>, ApiError> {
    let page = PageRequest::from_query(query.limit, query.cursor.as_deref(), &[Part::Id])?;
    let filter = query.filter()?;
    Ok(state
        .checkout
        .search(&filter, &page)
        .await?
        .map(OrderResponse::from))
}

/// Orders placed since a moment (default: midnight UTC today): how many are in each status
/// now, how many reached each step of the checkout, and the time from placed to confirmed
/// (admins).
#[utoipa::path(
    get, path = "/api/v1/ordering/admin/summary", tag = "ordering", operation_id = "admin_order_summary",
    security(("bearer" = [])),
    params(SummaryQuery),
    responses(
        (status = 200, description = "The summary", body = OrderSummaryResponse),
        (status = 400, description = "Bad time", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn admin_order_summary(
    state: web::Data<State>,
    _admin: AdminUser,
    query: web::Query<SummaryQuery>,
) -> Result<web::Json<OrderSummaryResponse>, ApiError> {
    let since = query.since.unwrap_or_else(|| {
        let now = state.checkout.clock.now().as_micros();
        kernel::Timestamp::from_micros(now - now.rem_euclid(86_400_000_000))
    });
    let summary = state.checkout.summary(since).await?;
    Ok(web::Json(OrderSummaryResponse::new(since, summary)))
}

/// A reason or note a person writes (a refund's, a return's): 1 to 500 characters, not blank,
/// without control characters.
pub(super) fn free_text(text: &str) -> Result<(), validator::ValidationError> {
    let refuse = |message: &'static str| {
        let mut error = validator::ValidationError::new("text");
        error.message = Some(message.into());
        Err(error)
    };
    if text.trim().is_empty() || text.chars().count() > crate::domain::MAX_REASON_CHARS {
        return refuse("must be 1 to 500 characters, not blank");
    }
    if text.chars().any(char::is_control) {
        return refuse("must not hold control characters");
    }
    Ok(())
}

/// The request's `Idempotency-Key`, if it sent one; a malformed one is added to `errors`.
pub(super) fn idempotency_key(
    req: &HttpRequest,
    errors: &mut Vec<kernel::FieldError>,
) -> Option<String> {
    let value = req.headers().get("idempotency-key")?;
    match value.to_str() {
        Ok(k) => {
            if let Err(e) = check_idempotency_key(k) {
                errors.push(e);
            }
            Some(k.to_owned())
        }
        Err(_) => {
            errors.push(kernel::FieldError::new(
                "Idempotency-Key",
                "must be visible ASCII",
            ));
            None
        }
    }
}

/// An order: status, lines, total, payments and refunds, returns, shipment and status
/// history.
#[utoipa::path(
    get, path = "/api/v1/ordering/orders/{id}", tag = "ordering", operation_id = "get_order",
    security(("bearer" = []), ("order_token" = [])),
    params(("id" = uuid::Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = OrderResponse, links(
            ("ListShipments" = (operation_id = "list_shipments", parameters(("order_id" = "$response.body#/id")))),
            ("CancelOrder" = (operation_id = "cancel_order", parameters(("id" = "$response.body#/id"))))
        )),
        (status = 400, description = "Malformed id; or `ambiguous_request` (`X-Order-Token` sent twice)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such order (or not yours, or a wrong order token)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn get_order(
    state: web::Data<State>,
    reader: OrderReader,
    id: web::Path<uuid::Uuid>,
) -> Result<web::Json<OrderResponse>, ApiError> {
    let id = OrderId::from_uuid(id.into_inner());
    let (caller, admin) = reader.of(&state, id).await?;
    let order = state.checkout.get(caller, admin, id).await?;
    Ok(web::Json(order.into()))
}

/// Cancel an order that has not been dispatched: stock is released, a payment refunded and
/// the shipment cancelled. After dispatch: 409.
#[utoipa::path(
    post, path = "/api/v1/ordering/orders/{id}/cancel", tag = "ordering", operation_id = "cancel_order",
    security(("bearer" = []), ("order_token" = [])),
    params(("id" = uuid::Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The cancelled order", body = OrderResponse),
        (status = 400, description = "Malformed id; or `ambiguous_request` (`X-Order-Token` sent twice)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such order (or not yours, or a wrong order token)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "Already shipped, delivered or cancelled", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn cancel_order(
    state: web::Data<State>,
    reader: OrderReader,
    ctx: RequestContext,
    id: web::Path<uuid::Uuid>,
) -> Result<web::Json<OrderResponse>, ApiError> {
    let id = OrderId::from_uuid(id.into_inner());
    let (caller, admin) = reader.of(&state, id).await?;
    let order = state
        .checkout
        .cancel(caller, admin, id, &Causation::from(&ctx))
        .await?;
    Ok(web::Json(order.into()))
}

/// Your cart priced for a destination: subtotal, shipping, tax and total, as checking out
/// would charge them now.
#[utoipa::path(
    get, path = "/api/v1/ordering/cart/quote", tag = "ordering", operation_id = "quote_cart",
    security(("bearer" = []), ("cart_token" = [])),
    params(QuoteQuery),
    responses(
        (status = 200, description = "The priced cart", body = QuoteResponse),
        (status = 400, description = "Missing country; or `ambiguous_request` (`X-Cart-Token` sent twice)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Neither signed in nor a guest cart's token (`ordering.cart_token_invalid`: unknown or expired)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad country, empty cart, unavailable product, or no shipping to the destination", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn quote_cart(
    state: web::Data<State>,
    shopper: Shopper,
    query: web::Query<QuoteQuery>,
) -> Result<web::Json<QuoteResponse>, ApiError> {
    let quote = state.rates.quote(shopper.id(), &query.country).await?;
    Ok(web::Json(QuoteResponse::new(
        quote,
        state.rates.prices_include_tax,
    )))
}

/// Put a promotion code on your cart. It must apply to the cart as it is (422 with the reason
/// otherwise); the quote shows its discount, and checkout takes one use of it.
#[utoipa::path(
    post, path = "/api/v1/ordering/cart/promotion", tag = "ordering", operation_id = "apply_promotion",
    security(("bearer" = []), ("cart_token" = [])),
    request_body = ApplyPromotionRequest,
    responses(
        (status = 200, description = "The code is on the cart", body = AppliedPromotionResponse),
        (status = 400, description = "Malformed JSON; or `ambiguous_request` (`X-Cart-Token` sent twice)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Neither signed in nor a guest cart's token (`ordering.cart_token_invalid`: unknown or expired)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "The code does not apply (the reason says why), or the cart is empty", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn apply_promotion(
    state: web::Data<State>,
    shopper: Shopper,
    body: ValidJson<ApplyPromotionRequest>,
) -> Result<web::Json<AppliedPromotionResponse>, ApiError> {
    let code = state.rates.apply_code(shopper.id(), &body.code).await?;
    Ok(web::Json(AppliedPromotionResponse {
        code: code.as_str().to_owned(),
    }))
}

/// Take the promotion code off your cart.
#[utoipa::path(
    delete, path = "/api/v1/ordering/cart/promotion", tag = "ordering", operation_id = "remove_promotion",
    security(("bearer" = []), ("cart_token" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "`ambiguous_request`: `X-Cart-Token` sent twice", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Neither signed in nor a guest cart's token (`ordering.cart_token_invalid`: unknown or expired)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "The cart has no code", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn remove_promotion(
    state: web::Data<State>,
    shopper: Shopper,
) -> Result<HttpResponse, ApiError> {
    state.rates.remove_code(shopper.id()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Create a promotion code (admin): a percentage, or a fixed amount per currency.
#[utoipa::path(
    post, path = "/api/v1/ordering/promotions", tag = "ordering", operation_id = "create_promotion",
    security(("bearer" = [])),
    request_body = CreatePromotionRequest,
    responses(
        (status = 201, description = "Created", body = PromotionResponse, headers(("Location" = String, description = "The new code"))),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The code exists", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn create_promotion(
    state: web::Data<State>,
    _admin: AdminUser,
    body: ValidJson<CreatePromotionRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let terms = body.terms()?;
    let promotion = state.promotions.create(&body.code, terms).await?;
    let mut res = HttpResponse::Created();
    if let Ok(location) = HeaderValue::from_str(&format!(
        "/api/v1/ordering/promotions/{}",
        promotion.code.as_str()
    )) {
        res.insert_header((header::LOCATION, location));
    }
    Ok(res.json(PromotionResponse::from(&promotion)))
}

/// Promotion codes by code (admin).
#[utoipa::path(
    get, path = "/api/v1/ordering/promotions", tag = "ordering", operation_id = "list_promotions",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "Promotions", body = Page<PromotionResponse>),
        (status = 400, description = "Bad cursor", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn list_promotions(
    state: web::Data<State>,
    _admin: AdminUser,
    query: web::Query<PageQuery>,
) -> Result<Page<PromotionResponse>, ApiError> {
    let page = PageRequest::from_query(query.limit, query.cursor.as_deref(), &[Part::Text])?;
    let promotions = state.promotions.list(&page).await?;
    Ok(promotions.map(|p| PromotionResponse::from(&p)))
}

/// A promotion code with its uses (admin).
#[utoipa::path(
    get, path = "/api/v1/ordering/promotions/{code}", tag = "ordering", operation_id = "get_promotion",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "The code (any case)", max_length = 32)),
    responses(
        (status = 200, description = "The promotion", body = PromotionResponse),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such code", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn get_promotion(
    state: web::Data<State>,
    _admin: AdminUser,
    code: web::Path<String>,
) -> Result<web::Json<PromotionResponse>, ApiError> {
    let promotion = state.promotions.get(&code).await?;
    Ok(web::Json(PromotionResponse::from(&promotion)))
}

/// Withdraw a promotion code (admin): it no longer applies to new orders; orders it
/// discounted keep their discount.
#[utoipa::path(
    delete, path = "/api/v1/ordering/promotions/{code}", tag = "ordering", operation_id = "withdraw_promotion",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "The code (any case)", max_length = 32)),
    responses(
        (status = 200, description = "The withdrawn promotion", body = PromotionResponse),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such code", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn withdraw_promotion(
    state: web::Data<State>,
    _admin: AdminUser,
    code: web::Path<String>,
) -> Result<web::Json<PromotionResponse>, ApiError> {
    let promotion = state.promotions.withdraw(&code).await?;
    Ok(web::Json(PromotionResponse::from(&promotion)))
}

/// Tax rates per destination country (admin).
#[utoipa::path(
    get, path = "/api/v1/ordering/tax-rates", tag = "ordering", operation_id = "list_tax_rates",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every country's rates", body = TaxRatesList),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn list_tax_rates(
    state: web::Data<State>,
    _admin: AdminUser,
) -> Result<web::Json<TaxRatesList>, ApiError> {
    let items = state.rates.tax_rates().await?;
    Ok(web::Json(TaxRatesList {
        items: items.into_iter().map(TaxRatesResponse::new).collect(),
        next_cursor: None,
    }))
}

/// Set a destination's tax rates (admin). A country without rates is not taxed.
#[utoipa::path(
    put, path = "/api/v1/ordering/tax-rates/{country}", tag = "ordering", operation_id = "put_tax_rates",
    security(("bearer" = [])),
    params(CountryPath),
    request_body = TaxRatesRequest,
    responses(
        (status = 200, description = "The rates", body = TaxRatesResponse),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad country or rate", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn put_tax_rates(
    state: web::Data<State>,
    _admin: AdminUser,
    path: web::Path<CountryPath>,
    body: ValidJson<TaxRatesRequest>,
) -> Result<web::Json<TaxRatesResponse>, ApiError> {
    let saved = state
        .rates
        .put_tax_rates(&path.country, body.standard_bps, body.reduced_bps)
        .await?;
    Ok(web::Json(TaxRatesResponse::new(saved)))
}

/// Remove a destination's tax rates (admin).
#[utoipa::path(
    delete, path = "/api/v1/ordering/tax-rates/{country}", tag = "ordering", operation_id = "delete_tax_rates",
    security(("bearer" = [])),
    params(CountryPath),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "The country has no rates", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad country", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn delete_tax_rates(
    state: web::Data<State>,
    _admin: AdminUser,
    path: web::Path<CountryPath>,
) -> Result<HttpResponse, ApiError> {
    state.rates.delete_tax_rates(&path.country).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Shipping rates per destination country and currency (admin).
#[utoipa::path(
    get, path = "/api/v1/ordering/shipping-rates", tag = "ordering", operation_id = "list_shipping_rates",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every rate", body = ShippingRatesList),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn list_shipping_rates(
    state: web::Data<State>,
    _admin: AdminUser,
) -> Result<web::Json<ShippingRatesList>, ApiError> {
    let items = state.rates.shipping_rates().await?;
    Ok(web::Json(ShippingRatesList {
        items: items.into_iter().map(ShippingRateResponse::new).collect(),
        next_cursor: None,
    }))
}

/// Set the shipping rate to a country in a currency (admin). Once a currency has a rate,
/// orders in it ship only where it has one; a currency without any ships free.
#[utoipa::path(
    put, path = "/api/v1/ordering/shipping-rates/{country}/{currency}", tag = "ordering", operation_id = "put_shipping_rate",
    security(("bearer" = [])),
    params(RatePath),
    request_body = ShippingRateRequest,
    responses(
        (status = 200, description = "The rate", body = ShippingRateResponse),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad country, currency or amount", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn put_shipping_rate(
    state: web::Data<State>,
    _admin: AdminUser,
    path: web::Path<RatePath>,
    body: ValidJson<ShippingRateRequest>,
) -> Result<web::Json<ShippingRateResponse>, ApiError> {
    let RatePath { country, currency } = path.into_inner();
    let saved = state
        .rates
        .put_shipping_rate(
            &country,
            &currency,
            body.flat,
            body.per_kg,
            body.included_grams,
        )
        .await?;
    Ok(web::Json(ShippingRateResponse::new(saved)))
}

/// Remove the shipping rate to a country in a currency (admin).
#[utoipa::path(
    delete, path = "/api/v1/ordering/shipping-rates/{country}/{currency}", tag = "ordering", operation_id = "delete_shipping_rate",
    security(("bearer" = [])),
    params(RatePath),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such rate", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad country or currency", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn delete_shipping_rate(
    state: web::Data<State>,
    _admin: AdminUser,
    path: web::Path<RatePath>,
) -> Result<HttpResponse, ApiError> {
    let RatePath { country, currency } = path.into_inner();
    state
        .rates
        .delete_shipping_rate(&country, &currency)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create_cart, stripe_webhook, get_cart, add_item, set_quantity, remove_item, place_order, list_orders, get_order, cancel_order, refunds::refund_order,
          returns::request_return, returns::approve_return, returns::reject_return, returns::receive_return, admin_list_orders, admin_order_summary,
          quote_cart, apply_promotion, remove_promotion, create_promotion, list_promotions, get_promotion, withdraw_promotion,
          list_tax_rates, put_tax_rates, delete_tax_rates, list_shipping_rates, put_shipping_rate, delete_shipping_rate),
    tags((name = "ordering", description = "Cart, checkout, orders and payments"))
)]
pub(crate) struct ApiDoc;

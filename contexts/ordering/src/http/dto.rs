//! Request and response bodies.

use kernel::address::AddressBody;
use kernel::id::UserId;
use kernel::{Currency, FieldError, Money, Timestamp};
use platform::error::ApiError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::free_text;
use crate::application::cart::PricedCart;
use crate::application::ports::{KnownProduct, OrderFilter, OrderSummary, TaxRates};
use crate::domain::cart::Quote;
use crate::domain::pricing::ShippingRate;
use crate::domain::promotion::{Benefit, Promotion, PromotionTerms};
use crate::domain::{Order, OrderStatus, Payment};

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"product_id": "01a20899-843f-734e-9500-914ec2e156c2", "quantity": 2}))]
pub(crate) struct AddCartItemRequest {
    pub(crate) product_id: uuid::Uuid,
    /// The variant, for a product with options (required then); a product without options is
    /// sold as itself.
    pub(crate) variant_id: Option<uuid::Uuid>,
    /// 1..=99 (added to what the cart holds).
    #[schema(minimum = 1, maximum = 99)]
    #[serde(deserialize_with = "kernel::schema::whole_number")]
    pub(crate) quantity: i64,
    /// The cart's currency, chosen with its first line (default: the product's default
    /// price's); a later line must name the same or none.
    #[schema(schema_with = kernel::money::currency_schema)]
    pub(crate) currency: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"quantity": 3}))]
pub(crate) struct SetQuantityRequest {
    /// 1..=99.
    #[schema(minimum = 1, maximum = 99)]
    #[serde(deserialize_with = "kernel::schema::whole_number")]
    pub(crate) quantity: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CartItemResponse {
    pub(crate) product_id: uuid::Uuid,
    /// What is in the cart (for a product without options, the product's id); the path of
    /// `/cart/items/{product_id}` takes it.
    pub(crate) variant_id: uuid::Uuid,
    pub(crate) quantity: u32,
    pub(crate) sku: Option<String>,
    pub(crate) name: Option<String>,
    /// The current price in the cart's currency (none: the product has no price in it):
    /// what checkout charges.
    pub(crate) unit_price: Option<Money>,
    /// The price when the product was put in the cart.
    pub(crate) price_when_added: Option<Money>,
    /// The price is not what it was when the product was put in the cart.
    pub(crate) price_changed: bool,
    pub(crate) line_total: Option<Money>,
    /// False when the product is archived or unknown: remove it before checking out.
    pub(crate) available: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CartResponse {
    /// The currency the cart is priced in (none while it is empty).
    #[schema(value_type = Option<String>)]
    pub(crate) currency: Option<Currency>,
    pub(crate) items: Vec<CartItemResponse>,
    /// Absent when an item is unavailable or currencies are mixed.
    pub(crate) total: Option<Money>,
}

impl From<PricedCart> for CartResponse {
    fn from(cart: PricedCart) -> Self {
        Self {
            currency: cart.currency,
            items: cart
                .lines
                .into_iter()
                .map(|l| {
                    let p = l.product.as_ref();
                    CartItemResponse {
                        product_id: p.map_or(l.product_id, KnownProduct::product_id).as_uuid(),
                        variant_id: l.product_id.as_uuid(),
                        quantity: l.quantity,
                        sku: p.map(|p| p.sku.clone()),
                        name: p.map(|p| p.name.clone()),
                        unit_price: p.map(|p| p.price),
                        price_when_added: l.price_when_added,
                        price_changed: matches!(
                            (p.map(|p| p.price), l.price_when_added),
                            (Some(now), Some(then)) if now != then
                        ),
                        line_total: p.and_then(|p| p.price.checked_mul(l.quantity).ok()),
                        available: p.is_some_and(|p| p.active),
                    }
                })
                .collect(),
            total: cart.total,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"shipping_address": {"name": "Ada Lovelace", "line1": "12 Market Street", "city": "Berlin", "postal_code": "10115", "country": "DE"}, "payment_token": "tok_visa"}))]
pub(crate) struct CheckoutRequest {
    /// Where to ship; or give `shipping_address_id` instead (exactly one of the two).
    #[validate(nested)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) shipping_address: Option<AddressBody>,
    /// An address of the customer's address book (`GET /api/v1/identity/me/addresses`); the
    /// order keeps its own copy of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) shipping_address_id: Option<uuid::Uuid>,
    /// A payment token or method; with the simulated gateway `tok_visa`, `tok_declined` or
    /// `tok_unavailable`; with Stripe a PaymentMethod id (`pm_…`) or a card token (`tok_…`).
    #[validate(custom(function = "payment_token"))]
    #[schema(min_length = 5, max_length = 200, pattern = "^(tok|pm)_[A-Za-z0-9_]+$")]
    pub(crate) payment_token: String,
    /// A guest's email address (required with a cart token, refused with a bearer token): the
    /// confirmation and every later message about the order go there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = "email", max_length = 254)]
    pub(crate) email: Option<String>,
}

/// A refund an admin grants: an amount in the order's currency, at most what is still
/// refundable, and why.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": {"amount": 500, "currency": "EUR"}, "reason": "mug arrived chipped"}))]
pub(crate) struct RefundOrderRequest {
    /// More than zero, in the currency the order was charged in.
    pub(crate) amount: Money,
    /// Shown to the customer and kept on the refund: 1 to 500 characters, not blank.
    #[validate(custom(function = "free_text"))]
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub(crate) reason: String,
}

/// A refund granted, and where the order's money stands.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RefundResponse {
    pub(crate) order_id: uuid::Uuid,
    pub(crate) refund: PaymentResponse,
    /// What the gateway has given back so far, all refunds of the order.
    pub(crate) refunded: Money,
    /// What may still be refunded.
    pub(crate) refundable: Money,
}

impl RefundResponse {
    pub(crate) fn of(order: &Order, refund: uuid::Uuid) -> Option<Self> {
        let payment = order.refunds().find(|p| p.id == refund)?;
        Some(Self {
            order_id: order.id.as_uuid(),
            refund: payment.into(),
            refunded: order.refunded(),
            refundable: order.refundable(),
        })
    }
}

/// A provider's webhook taken.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookReceived {
    pub(crate) received: bool,
    /// The event was taken before (by its id): nothing was done again.
    pub(crate) duplicate: bool,
}

/// A guest cart just opened.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GuestCartResponse {
    /// The cart's secret: send it as `X-Cart-Token`. Shown once; keep it like a password.
    pub(crate) cart_token: String,
    pub(crate) expires_at: Timestamp,
}

fn payment_token(token: &str) -> Result<(), validator::ValidationError> {
    crate::application::checkout::check_payment_token(token).map_err(|e| {
        let mut error = validator::ValidationError::new("payment_token");
        error.message = Some(e.message.into());
        error
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrderLineResponse {
    pub(crate) product_id: uuid::Uuid,
    /// What was sold (for a product without options, the product's id).
    pub(crate) variant_id: uuid::Uuid,
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) quantity: u32,
    /// The price when the order was placed, as listed.
    pub(crate) unit_price: Money,
    /// `unit_price × quantity`.
    pub(crate) line_total: Option<Money>,
    /// The line's share of the order's discount (without tax when prices include it).
    pub(crate) discount: Money,
    /// The tax on the line after its discount.
    pub(crate) tax: Money,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PaymentResponse {
    pub(crate) id: uuid::Uuid,
    /// `charge` or `refund`.
    pub(crate) kind: &'static str,
    /// pending, authorized, declined, failed or refunded.
    pub(crate) status: &'static str,
    pub(crate) amount: Money,
    pub(crate) gateway_reference: Option<String>,
    pub(crate) attempts: i64,
    pub(crate) last_error: Option<String>,
    /// A charge's state as the payment provider's webhooks last told it: succeeded, failed,
    /// canceled, refunded, partially_refunded or disputed (a refund or dispute made in the
    /// provider's dashboard shows here).
    pub(crate) provider_status: Option<String>,
    /// Why a refund was made (refunds only).
    pub(crate) reason: Option<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

impl From<&Payment> for PaymentResponse {
    fn from(p: &Payment) -> Self {
        Self {
            id: p.id,
            kind: p.kind.as_str(),
            status: p.status.as_str(),
            amount: p.amount,
            gateway_reference: p.gateway_reference.clone(),
            attempts: p.attempts,
            last_error: p.last_error.clone(),
            provider_status: p.provider_status.clone(),
            reason: p.reason.clone(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ShipmentRef {
    pub(crate) id: uuid::Uuid,
    pub(crate) tracking_number: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusEntryResponse {
    pub(crate) status: OrderStatus,
    pub(crate) reason: Option<&'static str>,
    pub(crate) note: Option<String>,
    pub(crate) at: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrderResponse {
    pub(crate) id: uuid::Uuid,
    /// Who placed it.
    pub(crate) customer_id: uuid::Uuid,
    pub(crate) status: OrderStatus,
    /// out_of_stock, payment_declined, payment_unavailable, customer_cancelled or reservation_expired.
    pub(crate) cancellation_reason: Option<&'static str>,
    pub(crate) lines: Vec<OrderLineResponse>,
    /// The code that discounted the order.
    pub(crate) promotion_code: Option<String>,
    /// The lines without tax.
    pub(crate) subtotal: Money,
    pub(crate) discount: Money,
    /// Shipping without tax.
    pub(crate) shipping: Money,
    /// The lines' tax and shipping's.
    pub(crate) tax: Money,
    /// `subtotal - discount + shipping + tax`: what is charged.
    pub(crate) total: Money,
    /// The parcel's weight.
    pub(crate) weight_grams: u64,
    pub(crate) shipping_address: AddressBody,
    pub(crate) payments: Vec<PaymentResponse>,
    /// What the payment gateway has given back: every confirmed refund.
    pub(crate) refunded: Money,
    /// What may still be refunded: the charge less every refund granted.
    pub(crate) refundable: Money,
    /// Its returns, oldest first.
    pub(crate) returns: Vec<super::returns::ReturnResponse>,
    pub(crate) shipment: Option<ShipmentRef>,
    pub(crate) status_history: Vec<StatusEntryResponse>,
    pub(crate) placed_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    /// A guest's checkout only: the secret that reads this order (`X-Order-Token`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) order_token: Option<String>,
}

impl From<Order> for OrderResponse {
    fn from(o: Order) -> Self {
        Self {
            id: o.id.as_uuid(),
            customer_id: o.customer_id.as_uuid(),
            status: o.status,
            cancellation_reason: o.cancellation_reason.map(|r| r.as_str()),
            lines: o
                .lines
                .iter()
                .map(|l| OrderLineResponse {
                    product_id: l.variant_of.unwrap_or(l.product_id).as_uuid(),
                    variant_id: l.product_id.as_uuid(),
                    sku: l.sku.clone(),
                    name: l.name.clone(),
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                    line_total: l.unit_price.checked_mul(l.quantity).ok(),
                    discount: l.discount,
                    tax: l.tax,
                })
                .collect(),
            promotion_code: o.promotion_code.clone(),
            subtotal: o.amounts.subtotal,
            discount: o.amounts.discount,
            shipping: o.amounts.shipping,
            tax: o.amounts.tax,
            total: o.total,
            weight_grams: o.amounts.weight_grams,
            shipping_address: o.shipping_address.clone().into(),
            payments: o.payments.iter().map(PaymentResponse::from).collect(),
            refunded: o.refunded(),
            refundable: o.refundable(),
            returns: o
                .returns
                .iter()
                .map(|r| super::returns::ReturnResponse::of(&o, r))
                .collect(),
            shipment: o.shipment_id.map(|id| ShipmentRef {
                id: id.as_uuid(),
                tracking_number: o.tracking_number.clone(),
            }),
            status_history: o
                .history
                .iter()
                .map(|h| StatusEntryResponse {
                    status: h.status,
                    reason: h.reason.map(|r| r.as_str()),
                    note: h.note.clone(),
                    at: h.at,
                })
                .collect(),
            placed_at: o.placed_at,
            updated_at: o.updated_at,
            order_token: None,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct QuoteQuery {
    /// The destination: an ISO 3166-1 alpha-2 country code.
    #[param(value_type = kernel::address::CountryCode)]
    pub(crate) country: String,
}

/// A destination country in a path.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct CountryPath {
    /// ISO 3166-1 alpha-2 country code.
    #[param(value_type = kernel::address::CountryCode)]
    pub(crate) country: String,
}

/// A destination country and a currency in a path.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct RatePath {
    /// ISO 3166-1 alpha-2 country code.
    #[param(value_type = kernel::address::CountryCode)]
    pub(crate) country: String,
    /// ISO 4217 currency code.
    #[param(value_type = kernel::money::CurrencyCode)]
    pub(crate) currency: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QuoteLineResponse {
    pub(crate) product_id: uuid::Uuid,
    /// What is priced (for a product without options, the product's id).
    pub(crate) variant_id: uuid::Uuid,
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) quantity: u32,
    /// As listed now.
    pub(crate) unit_price: Money,
    /// Without tax.
    pub(crate) subtotal: Money,
    pub(crate) discount: Money,
    pub(crate) tax: Money,
    /// `subtotal - discount + tax`.
    pub(crate) total: Money,
}

/// The cart priced for a destination, as checking out would price it now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QuoteResponse {
    pub(crate) country: String,
    /// The code on the cart, whose discount is included.
    pub(crate) promotion_code: Option<String>,
    pub(crate) lines: Vec<QuoteLineResponse>,
    pub(crate) subtotal: Money,
    pub(crate) discount: Money,
    pub(crate) shipping: Money,
    pub(crate) tax: Money,
    /// `subtotal - discount + shipping + tax`.
    pub(crate) total: Money,
    pub(crate) weight_grams: u64,
    /// Listed prices include tax (the amounts above are shown without it).
    pub(crate) prices_include_tax: bool,
}

impl QuoteResponse {
    pub(crate) fn new(q: Quote, prices_include_tax: bool) -> Self {
        let b = q.breakdown;
        Self {
            country: q.country,
            promotion_code: q.promotion.map(|c| c.as_str().to_owned()),
            lines: q
                .lines
                .iter()
                .zip(&b.lines)
                .map(|((p, quantity), a)| QuoteLineResponse {
                    product_id: p.product_id().as_uuid(),
                    variant_id: p.id.as_uuid(),
                    sku: p.sku.clone(),
                    name: p.name.clone(),
                    quantity: *quantity,
                    unit_price: p.price,
                    subtotal: a.subtotal,
                    discount: a.discount,
                    tax: a.tax,
                    total: a.total,
                })
                .collect(),
            subtotal: b.subtotal,
            discount: b.discount,
            shipping: b.shipping,
            tax: b.tax,
            total: b.total,
            weight_grams: b.grams,
            prices_include_tax,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"standard_bps": 1900, "reduced_bps": 700}))]
pub(crate) struct TaxRatesRequest {
    /// The standard rate in basis points (1900 = 19 %), 0 to 10000.
    #[schema(minimum = 0, maximum = 10000)]
    #[serde(deserialize_with = "kernel::schema::whole_number")]
    pub(crate) standard_bps: i64,
    /// The reduced rate in basis points, 0 to 10000. The zero class is always 0.
    #[schema(minimum = 0, maximum = 10000)]
    #[serde(deserialize_with = "kernel::schema::whole_number")]
    pub(crate) reduced_bps: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaxRatesResponse {
    pub(crate) country: String,
    pub(crate) standard_bps: u32,
    pub(crate) reduced_bps: u32,
    pub(crate) updated_at: Timestamp,
}

impl TaxRatesResponse {
    pub(crate) fn new((country, rates, updated_at): (String, TaxRates, Timestamp)) -> Self {
        Self {
            country,
            standard_bps: rates.standard.bps(),
            reduced_bps: rates.reduced.bps(),
            updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaxRatesList {
    /// One entry per country, by country code.
    pub(crate) items: Vec<TaxRatesResponse>,
    /// Always null: every country's rates fit one page.
    pub(crate) next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"flat": 495, "per_kg": 150, "included_grams": 1000}))]
pub(crate) struct ShippingRateRequest {
    /// Minor units of the path's currency, 0 to 10000000000.
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    #[serde(deserialize_with = "kernel::schema::whole_number")]
    pub(crate) flat: i64,
    /// Charged per started kilogram over `included_grams` (default 0).
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    #[serde(default, deserialize_with = "kernel::schema::whole_number")]
    pub(crate) per_kg: i64,
    /// Weight the flat charge covers (default 0).
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    #[serde(default, deserialize_with = "kernel::schema::whole_number")]
    pub(crate) included_grams: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ShippingRateResponse {
    pub(crate) country: String,
    pub(crate) flat: Money,
    pub(crate) per_kg: Money,
    pub(crate) included_grams: u32,
    pub(crate) updated_at: Timestamp,
}

impl ShippingRateResponse {
    pub(crate) fn new(
        (country, currency, rate, updated_at): (String, Currency, ShippingRate, Timestamp),
    ) -> Self {
        let money = |a: i64| Money::new(a, currency).unwrap_or_else(|_| Money::zero(currency));
        Self {
            country,
            flat: money(rate.flat),
            per_kg: money(rate.per_kg),
            included_grams: rate.included_grams,
            updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ShippingRatesList {
    /// One entry per country and currency, by country code.
    pub(crate) items: Vec<ShippingRateResponse>,
    /// Always null: the rates are few (at most one per country and currency) and fit one page.
    pub(crate) next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "SUMMER-10"}))]
pub(crate) struct ApplyPromotionRequest {
    /// 3 to 32 letters, digits, `-` or `_` (any case).
    #[validate(length(max = 64))]
    #[schema(max_length = 64)]
    pub(crate) code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AppliedPromotionResponse {
    /// The code on the cart, upper case.
    pub(crate) code: String,
}

/// A promotion code: exactly one of `percent_bps` and `amounts`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "SUMMER-10", "percent_bps": 1000, "min_subtotal": [{"amount": 2000, "currency": "EUR"}], "max_uses": 100, "max_uses_per_customer": 1}))]
pub(crate) struct CreatePromotionRequest {
    /// 3 to 32 letters, digits, `-` or `_` (stored upper case).
    #[validate(length(max = 64))]
    #[schema(max_length = 64)]
    pub(crate) code: String,
    /// A percentage of the subtotal in basis points (1000 = 10 %), 1 to 10000.
    #[schema(minimum = 1, maximum = 10000)]
    pub(crate) percent_bps: Option<i64>,
    /// A fixed amount per currency; the code applies only in these currencies.
    #[validate(length(max = 50))]
    #[schema(max_items = 50)]
    pub(crate) amounts: Option<Vec<Money>>,
    /// The smallest subtotal (as listed) per currency.
    #[validate(length(max = 50))]
    #[schema(max_items = 50)]
    #[serde(default)]
    pub(crate) min_subtotal: Vec<Money>,
    pub(crate) starts_at: Option<Timestamp>,
    /// The first moment the code no longer applies.
    pub(crate) ends_at: Option<Timestamp>,
    /// Orders the code may discount in all (a cancelled order gives its use back).
    #[schema(minimum = 1, maximum = 1000000000)]
    pub(crate) max_uses: Option<i64>,
    #[schema(minimum = 1, maximum = 1000000000)]
    pub(crate) max_uses_per_customer: Option<i64>,
}

impl CreatePromotionRequest {
    pub(crate) fn terms(&self) -> Result<PromotionTerms, platform::error::ApiError> {
        let benefit = match (self.percent_bps, &self.amounts) {
            (Some(bps), None) => Benefit::Percent(u32::try_from(bps).unwrap_or(0)),
            (None, Some(amounts)) => Benefit::Fixed(amounts.clone()),
            _ => {
                return Err(platform::error::ApiError::validation(vec![
                    kernel::FieldError::new("percent_bps", "give either percent_bps or amounts"),
                ]))
            }
        };
        Ok(PromotionTerms {
            benefit,
            min_subtotal: self.min_subtotal.clone(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            max_uses: self.max_uses,
            max_uses_per_customer: self.max_uses_per_customer,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PromotionResponse {
    pub(crate) code: String,
    pub(crate) percent_bps: Option<u32>,
    /// Fixed amounts per currency (empty for a percentage).
    pub(crate) amounts: Vec<Money>,
    pub(crate) min_subtotal: Vec<Money>,
    pub(crate) starts_at: Option<Timestamp>,
    pub(crate) ends_at: Option<Timestamp>,
    pub(crate) max_uses: Option<i64>,
    pub(crate) max_uses_per_customer: Option<i64>,
    /// Orders the code discounts now (cancelled orders gave theirs back).
    pub(crate) uses: i64,
    /// `false` once withdrawn.
    pub(crate) active: bool,
    pub(crate) created_at: Timestamp,
}

impl From<&Promotion> for PromotionResponse {
    fn from(p: &Promotion) -> Self {
        let (percent_bps, amounts) = match &p.benefit {
            Benefit::Percent(bps) => (Some(*bps), vec![]),
            Benefit::Fixed(amounts) => (None, amounts.clone()),
        };
        Self {
            code: p.code.as_str().to_owned(),
            percent_bps,
            amounts,
            min_subtotal: p.min_subtotal.clone(),
            starts_at: p.starts_at,
            ends_at: p.ends_at,
            max_uses: p.max_uses,
            max_uses_per_customer: p.max_uses_per_customer,
            uses: p.uses,
            active: p.active,
            created_at: p.created_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AdminOrderQuery {
    /// Only orders in this status.
    pub(crate) status: Option<OrderStatus>,
    /// Only this customer's orders.
    pub(crate) customer_id: Option<uuid::Uuid>,
    /// Placed at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub(crate) placed_from: Option<Timestamp>,
    /// Placed before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub(crate) placed_to: Option<Timestamp>,
    /// Items per page, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<i64>,
    /// The `next_cursor` of the previous page (with the same filters).
    pub(crate) cursor: Option<String>,
}

impl AdminOrderQuery {
    pub(crate) fn filter(&self) -> Result<OrderFilter, ApiError> {
        if let (Some(from), Some(to)) = (self.placed_from, self.placed_to) {
            if from.as_micros() > to.as_micros() {
                return Err(ApiError::validation(vec![FieldError::new(
                    "placed_from",
                    "must not be after placed_to",
                )]));
            }
        }
        Ok(OrderFilter {
            status: self.status,
            customer: self.customer_id.map(UserId::from_uuid),
            placed_from: self.placed_from,
            placed_to: self.placed_to,
        })
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SummaryQuery {
    /// Orders placed at or after this time (RFC 3339; default: midnight UTC today).
    #[param(value_type = Option<String>, format = DateTime)]
    pub(crate) since: Option<Timestamp>,
}

/// Orders per status.
#[derive(Debug, Default, Serialize, ToSchema)]
pub(crate) struct StatusCounts {
    pub(crate) pending: i64,
    pub(crate) stock_reserved: i64,
    pub(crate) paid: i64,
    pub(crate) confirmed: i64,
    pub(crate) shipped: i64,
    pub(crate) delivered: i64,
    pub(crate) cancelled: i64,
}

impl StatusCounts {
    fn of(rows: &[(OrderStatus, i64)]) -> Self {
        let mut counts = Self::default();
        for (status, n) in rows {
            let slot = match status {
                OrderStatus::Pending => &mut counts.pending,
                OrderStatus::StockReserved => &mut counts.stock_reserved,
                OrderStatus::Paid => &mut counts.paid,
                OrderStatus::Confirmed => &mut counts.confirmed,
                OrderStatus::Shipped => &mut counts.shipped,
                OrderStatus::Delivered => &mut counts.delivered,
                OrderStatus::Cancelled => &mut counts.cancelled,
            };
            *slot += n;
        }
        counts
    }
}

/// Time from placed to confirmed, in milliseconds.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LatencyResponse {
    /// Confirmed orders measured (the latest 10,000 at most).
    pub(crate) count: usize,
    pub(crate) p50_ms: Option<f64>,
    pub(crate) p95_ms: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrderSummaryResponse {
    /// Orders placed at or after this time are counted.
    pub(crate) since: Timestamp,
    /// Orders placed.
    pub(crate) placed: i64,
    /// Where those orders are now.
    pub(crate) by_status: StatusCounts,
    /// How many of them reached each status: the checkout funnel.
    pub(crate) reached: StatusCounts,
    pub(crate) placed_to_confirmed: LatencyResponse,
}

impl OrderSummaryResponse {
    pub(crate) fn new(since: Timestamp, summary: OrderSummary) -> Self {
        let sorted = &summary.placed_to_confirmed;
        // Nearest rank: the smallest value with at least p% of the sample at or below it.
        let rank = |p: usize| -> Option<f64> {
            let n = sorted.len();
            let i = (n * p).div_ceil(100).max(1) - 1;
            sorted.get(i).map(|micros| *micros as f64 / 1000.0)
        };
        Self {
            since,
            placed: summary.by_status.iter().map(|(_, n)| n).sum(),
            by_status: StatusCounts::of(&summary.by_status),
            reached: StatusCounts::of(&summary.reached),
            placed_to_confirmed: LatencyResponse {
                count: sorted.len(),
                p50_ms: rank(50),
                p95_ms: rank(95),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_are_nearest_rank_in_milliseconds() {
        let summary = |micros: Vec<i64>| OrderSummary {
            placed_to_confirmed: micros,
            ..OrderSummary::default()
        };
        let hundred = OrderSummaryResponse::new(
            Timestamp::from_micros(0),
            summary((1..=100).map(|ms| ms * 1000).collect()),
        );
        let l = &hundred.placed_to_confirmed;
        assert_eq!((l.count, l.p50_ms, l.p95_ms), (100, Some(50.0), Some(95.0)));
        let one = OrderSummaryResponse::new(Timestamp::from_micros(0), summary(vec![2500]));
        let l = &one.placed_to_confirmed;
        assert_eq!((l.p50_ms, l.p95_ms), (Some(2.5), Some(2.5)));
        let none = OrderSummaryResponse::new(Timestamp::from_micros(0), summary(vec![]));
        let l = &none.placed_to_confirmed;
        assert_eq!((l.count, l.p50_ms, l.p95_ms), (0, None, None));
    }

    #[test]
    fn every_status_is_counted_in_its_own_field() {
        let rows: Vec<(OrderStatus, i64)> = OrderStatus::ALL
            .iter()
            .zip(1..)
            .map(|(s, n)| (*s, n))
            .collect();
        let counts =
            serde_json::to_value(StatusCounts::of(&rows)).unwrap_or_else(|e| panic!("{e}"));
        for (status, n) in rows {
            assert_eq!(counts[status.as_str()], n, "{counts}");
        }
    }
}

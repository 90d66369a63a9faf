//! Tax and shipping rates (admin-managed), and pricing a cart for a destination: the quote a
//! customer sees before checking out, computed as the checkout will.

use std::sync::Arc;

use kernel::address::country_code;
use kernel::id::UserId;
use kernel::{Clock, Currency, FieldError, Timestamp};

use super::ports::{CartRepository, PromotionBook, RateBook, TaxRates};
use super::OrderingError;
use crate::domain::cart::{Cart, CodeUse, Quote, Terms};
use crate::domain::pricing::{ShippingRate, TaxRate};
use crate::domain::promotion::PromotionCode;

/// The largest shipping amount accepted (as for product prices).
pub(crate) const MAX_SHIPPING_AMOUNT: i64 = 10_000_000_000;

pub(crate) struct Rates {
    pub(crate) book: Arc<dyn RateBook>,
    pub(crate) carts: Arc<dyn CartRepository>,
    pub(crate) promotions: Arc<dyn PromotionBook>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) prices_include_tax: bool,
}

fn country(raw: &str) -> Result<String, OrderingError> {
    country_code(raw).ok_or_else(|| {
        OrderingError::Invalid(vec![FieldError::new(
            "country",
            "must be an ISO 3166-1 alpha-2 country code such as DE",
        )])
    })
}

fn bps(field: &'static str, raw: i64, errors: &mut Vec<FieldError>) -> TaxRate {
    TaxRate::from_bps(raw).unwrap_or_else(|m| {
        errors.push(FieldError::new(field, m));
        TaxRate::default()
    })
}

fn amount(field: &'static str, raw: i64, errors: &mut Vec<FieldError>) -> i64 {
    if !(0..=MAX_SHIPPING_AMOUNT).contains(&raw) {
        errors.push(FieldError::new(
            field,
            format!("must be 0 to {MAX_SHIPPING_AMOUNT} minor units"),
        ));
    }
    raw
}

/// The demo rates `emporium seed` sets: (country, standard, reduced basis points, EUR shipping
/// flat and per kg over 2 kg).
const DEMO_RATES: [(&str, i64, i64, i64, i64); 5] = [
    ("DE", 1900, 700, 495, 100),
    ("AT", 2000, 1000, 795, 150),
    ("FR", 2000, 550, 895, 150),
    ("NL", 2100, 900, 695, 150),
    ("BE", 2100, 600, 695, 150),
];

impl Rates {
    /// Sets the demo tax and shipping rates where a shop has none yet; how many were set.
    pub(crate) async fn seed_demo(&self) -> Result<usize, OrderingError> {
        let mut set = 0;
        if self.book.tax_rates().await?.is_empty() {
            for (country, standard, reduced, _, _) in DEMO_RATES {
                self.put_tax_rates(country, standard, reduced).await?;
                set += 1;
            }
        }
        if self.book.shipping_rates().await?.is_empty() {
            for (country, _, _, flat, per_kg) in DEMO_RATES {
                self.put_shipping_rate(country, "EUR", flat, per_kg, 2000)
                    .await?;
                set += 1;
            }
        }
        Ok(set)
    }

    pub(crate) async fn tax_rates(
        &self,
    ) -> Result<Vec<(String, TaxRates, Timestamp)>, OrderingError> {
        Ok(self.book.tax_rates().await?)
    }

    pub(crate) async fn put_tax_rates(
        &self,
        raw_country: &str,
        standard_bps: i64,
        reduced_bps: i64,
    ) -> Result<(String, TaxRates, Timestamp), OrderingError> {
        let country = country(raw_country)?;
        let mut errors = Vec::new();
        let rates = TaxRates {
            standard: bps("standard_bps", standard_bps, &mut errors),
            reduced: bps("reduced_bps", reduced_bps, &mut errors),
        };
        if !errors.is_empty() {
            return Err(OrderingError::Invalid(errors));
        }
        let now = self.clock.now();
        self.book.put_tax_rates(&country, rates, now).await?;
        Ok((country, rates, now))
    }

    pub(crate) async fn delete_tax_rates(&self, raw_country: &str) -> Result<(), OrderingError> {
        let country = country(raw_country)?;
        if self.book.delete_tax_rates(&country).await? {
            Ok(())
        } else {
            Err(OrderingError::RateNotFound)
        }
    }

    pub(crate) async fn shipping_rates(
        &self,
    ) -> Result<Vec<(String, Currency, ShippingRate, Timestamp)>, OrderingError> {
        Ok(self.book.shipping_rates().await?)
    }

    pub(crate) async fn put_shipping_rate(
        &self,
        raw_country: &str,
        raw_currency: &str,
        flat: i64,
        per_kg: i64,
        included_grams: i64,
    ) -> Result<(String, Currency, ShippingRate, Timestamp), OrderingError> {
        let country = country(raw_country)?;
        let currency = Currency::parse(raw_currency).map_err(|e| {
            OrderingError::Invalid(vec![FieldError::new("currency", e.to_string())])
        })?;
        let mut errors = Vec::new();
        let rate = ShippingRate {
            flat: amount("flat", flat, &mut errors),
            per_kg: amount("per_kg", per_kg, &mut errors),
            included_grams: u32::try_from(included_grams)
                .ok()
                .filter(|g| *g <= 1_000_000_000)
                .unwrap_or_else(|| {
                    errors.push(FieldError::new("included_grams", "must be 0 to 1000000000"));
                    0
                }),
        };
        if !errors.is_empty() {
            return Err(OrderingError::Invalid(errors));
        }
        let now = self.clock.now();
        self.book
            .put_shipping_rate(&country, currency, rate, now)
            .await?;
        Ok((country, currency, rate, now))
    }

    pub(crate) async fn delete_shipping_rate(
        &self,
        raw_country: &str,
        raw_currency: &str,
    ) -> Result<(), OrderingError> {
        let country = country(raw_country)?;
        let currency = Currency::parse(raw_currency).map_err(|e| {
            OrderingError::Invalid(vec![FieldError::new("currency", e.to_string())])
        })?;
        if self.book.delete_shipping_rate(&country, currency).await? {
            Ok(())
        } else {
            Err(OrderingError::RateNotFound)
        }
    }

    /// The customer's cart as it stands, with its currency and code.
    async fn cart(&self, customer: UserId) -> Result<Cart, OrderingError> {
        Ok(Cart {
            lines: self.carts.lines(customer).await?,
            currency: self.carts.currency(customer).await?,
            code: self.promotions.on_cart(customer).await?,
        })
    }

    /// The code's standing for the customer now.
    async fn code_use(
        &self,
        code: &PromotionCode,
        customer: UserId,
    ) -> Result<CodeUse, OrderingError> {
        let promotion = self.promotions.get(code).await?;
        let customer_uses = match &promotion {
            Some(_) => self.promotions.customer_uses(code, customer).await?,
            None => 0,
        };
        Ok(CodeUse {
            promotion,
            customer_uses,
        })
    }

    /// The customer's cart priced for `country`, as checking out would price it now.
    pub(crate) async fn quote(
        &self,
        customer: UserId,
        raw_country: &str,
    ) -> Result<Quote, OrderingError> {
        let country = country(raw_country)?;
        let cart = self.cart(customer).await?.sellable()?;
        let rates = self.book.destination(&country, cart.currency()).await?;
        let code = match cart.code() {
            Some(code) => Some(self.code_use(code, customer).await?),
            None => None,
        };
        Ok(cart.quote(Terms {
            country,
            rates,
            code,
            now: self.clock.now(),
            prices_include_tax: self.prices_include_tax,
        })?)
    }

    /// Puts a code on the customer's cart if it applies to the cart as it is (422 with the
    /// reason otherwise). It is checked again when the quote is shown and at checkout.
    pub(crate) async fn apply_code(
        &self,
        customer: UserId,
        raw_code: &str,
    ) -> Result<PromotionCode, OrderingError> {
        let code = PromotionCode::parse(raw_code)
            .map_err(|m| OrderingError::Invalid(vec![FieldError::new("code", m)]))?;
        let cart = self.cart(customer).await?.sold_lines()?;
        let found = self.code_use(&code, customer).await?;
        cart.discount(&code, &found, self.clock.now())?;
        self.promotions
            .put_on_cart(customer, &code, self.clock.now())
            .await?;
        Ok(code)
    }

    pub(crate) async fn remove_code(&self, customer: UserId) -> Result<(), OrderingError> {
        if self.promotions.take_off_cart(customer).await? {
            Ok(())
        } else {
            Err(OrderingError::PromotionNotFound)
        }
    }
}

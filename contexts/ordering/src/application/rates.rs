//! Tax and shipping rates (admin-managed), and pricing a cart for a destination: the quote a
//! customer sees before checking out, computed as the checkout will.

use std::sync::Arc;

use kernel::address::country_code;
use kernel::id::UserId;
use kernel::{Clock, Currency, FieldError, Money, Timestamp};

use super::ports::{
    CartRepository, DestinationRates, KnownProduct, PromotionBook, RateBook, Shipping, TaxRates,
};
use super::OrderingError;
use crate::domain::pricing::{
    self, Breakdown, Discount, PriceLine, Pricing, PricingError, ShippingRate, TaxRate,
};
use crate::domain::promotion::{NotApplicable, PromotionCode};

/// The largest shipping amount accepted (as for product prices).
pub(crate) const MAX_SHIPPING_AMOUNT: i64 = 10_000_000_000;

/// Why lines cannot be priced for a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unpriced {
    NotShipped { country: String, currency: Currency },
    MixedCurrencies,
    TooLarge,
}

impl From<NotApplicable> for OrderingError {
    fn from(why: NotApplicable) -> Self {
        OrderingError::PromotionNotApplicable(why.to_string())
    }
}

impl From<Unpriced> for OrderingError {
    fn from(u: Unpriced) -> Self {
        match u {
            Unpriced::NotShipped { country, currency } => {
                OrderingError::NotShipped(format!("no shipping to {country} in {currency}"))
            }
            Unpriced::MixedCurrencies => OrderingError::ProductUnavailable(
                "the cart mixes currencies; order them separately".to_owned(),
            ),
            Unpriced::TooLarge => {
                OrderingError::ProductUnavailable("the order's amounts are too large".to_owned())
            }
        }
    }
}

/// Prices `lines` (products with quantities, in the order given) for a destination.
/// The lines priced in `currency`; the first product without a price in it is named.
pub(crate) fn in_currency(
    lines: Vec<(KnownProduct, u32)>,
    currency: Currency,
) -> Result<Vec<(KnownProduct, u32)>, String> {
    lines
        .into_iter()
        .map(|(p, q)| match p.priced_in(currency) {
            Some(priced) => Ok((priced, q)),
            None => Err(format!(
                "{} has no price in {currency}; remove it from the cart",
                p.name
            )),
        })
        .collect()
}

/// What the lines cost as listed (before discount, shipping and tax added on top): what a
/// code's minimum is compared with.
pub(crate) fn listed_subtotal(lines: &[(&KnownProduct, u32)]) -> Result<Money, Unpriced> {
    let currency = lines
        .first()
        .map(|(p, _)| p.price.currency())
        .ok_or(Unpriced::TooLarge)?;
    lines.iter().try_fold(Money::zero(currency), |acc, (p, q)| {
        p.price
            .checked_mul(*q)
            .and_then(|line| acc.checked_add(line))
            .map_err(|e| match e {
                kernel::MoneyError::CurrencyMismatch => Unpriced::MixedCurrencies,
                _ => Unpriced::TooLarge,
            })
    })
}

pub(crate) fn price_lines(
    lines: &[(&KnownProduct, u32)],
    country: &str,
    rates: &DestinationRates,
    discount: Option<Discount>,
    prices_include_tax: bool,
) -> Result<Breakdown, Unpriced> {
    let currency = lines
        .first()
        .map(|(p, _)| p.price.currency())
        .ok_or(Unpriced::TooLarge)?;
    if lines.iter().any(|(p, _)| p.price.currency() != currency) {
        return Err(Unpriced::MixedCurrencies);
    }
    let shipping = match rates.shipping {
        Shipping::Free => None,
        Shipping::Rate(rate) => Some(rate),
        Shipping::NotShipped => {
            return Err(Unpriced::NotShipped {
                country: country.to_owned(),
                currency,
            })
        }
    };
    let priced: Vec<PriceLine> = lines
        .iter()
        .map(|(p, quantity)| PriceLine {
            unit_price: p.price.amount(),
            quantity: *quantity,
            tax: rates.tax.of(p.tax_class),
            unit_grams: p.weight_grams,
        })
        .collect();
    let how = Pricing {
        currency,
        discount,
        shipping,
        shipping_tax: rates.tax.standard,
        prices_include_tax,
    };
    pricing::price(&priced, &how).map_err(|e| match e {
        PricingError::Empty | PricingError::TooLarge | PricingError::BadDiscount => {
            Unpriced::TooLarge
        }
    })
}

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

/// What a customer's cart costs, shipped to one country.
pub(crate) struct Quote {
    pub(crate) country: String,
    pub(crate) lines: Vec<(KnownProduct, u32)>,
    pub(crate) promotion: Option<PromotionCode>,
    pub(crate) breakdown: Breakdown,
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

    /// The customer's cart priced for `country`, as checking out would price it now.
    pub(crate) async fn quote(
        &self,
        customer: UserId,
        raw_country: &str,
    ) -> Result<Quote, OrderingError> {
        let country = country(raw_country)?;
        let mut lines = Vec::new();
        for line in self.carts.lines(customer).await? {
            match line.product {
                Some(p) if p.active => lines.push((p, line.quantity)),
                Some(p) => {
                    return Err(OrderingError::ProductUnavailable(format!(
                        "{} is no longer sold; remove it from the cart",
                        p.name
                    )))
                }
                None => {
                    return Err(OrderingError::ProductUnavailable(format!(
                        "product {} is unknown; remove it from the cart",
                        line.product_id
                    )))
                }
            }
        }
        // In the order the checkout prices them, in the cart's currency.
        lines.sort_by_key(|(p, _)| p.id.to_string());
        let lines = self.in_cart_currency(customer, lines).await?;
        let Some((first, _)) = lines.first() else {
            return Err(OrderingError::CartEmpty);
        };
        let rates = self
            .book
            .destination(&country, first.price.currency())
            .await?;
        let refs: Vec<(&KnownProduct, u32)> = lines.iter().map(|(p, q)| (p, *q)).collect();
        let promotion = self.promotions.on_cart(customer).await?;
        let discount = match &promotion {
            Some(code) => {
                let subtotal = listed_subtotal(&refs)?;
                Some(self.discount(code, customer, subtotal).await?)
            }
            None => None,
        };
        let breakdown = price_lines(&refs, &country, &rates, discount, self.prices_include_tax)?;
        Ok(Quote {
            country,
            lines,
            promotion,
            breakdown,
        })
    }

    /// The lines priced in the cart's currency; a product without a price in it is refused by
    /// name.
    async fn in_cart_currency(
        &self,
        customer: UserId,
        lines: Vec<(KnownProduct, u32)>,
    ) -> Result<Vec<(KnownProduct, u32)>, OrderingError> {
        let Some((first, _)) = lines.first() else {
            return Ok(lines);
        };
        let fallback = first.price.currency();
        let currency = self.carts.currency(customer).await?.unwrap_or(fallback);
        in_currency(lines, currency).map_err(OrderingError::ProductUnavailable)
    }

    /// What `code` takes off a cart of the customer's with this listed subtotal, now.
    pub(crate) async fn discount(
        &self,
        code: &PromotionCode,
        customer: UserId,
        subtotal: Money,
    ) -> Result<Discount, OrderingError> {
        let promotion = self
            .promotions
            .get(code)
            .await?
            .ok_or_else(|| NotApplicable::Unknown(code.as_str().to_owned()))?;
        let uses = self.promotions.customer_uses(code, customer).await?;
        Ok(promotion.discount_for(subtotal, self.clock.now(), uses)?)
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
        let mut lines = Vec::new();
        for line in self.carts.lines(customer).await? {
            if let Some(p) = line.product.filter(|p| p.active) {
                lines.push((p, line.quantity));
            }
        }
        if lines.is_empty() {
            return Err(OrderingError::CartEmpty);
        }
        let lines = self.in_cart_currency(customer, lines).await?;
        let refs: Vec<(&KnownProduct, u32)> = lines.iter().map(|(p, q)| (p, *q)).collect();
        let subtotal = listed_subtotal(&refs)?;
        self.discount(&code, customer, subtotal).await?;
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

//! The cart as the quote and the checkout see it, and the one way a cart is priced for a
//! destination: the quote a customer is shown and the order the checkout places both come
//! from [`SellableCart::quote`].

use catalog_contracts::TaxClass;
use kernel::id::ProductId;
use kernel::{Currency, Money, MoneyError, Timestamp};

use super::pricing::{
    self, Breakdown, DestinationRates, Discount, PriceLine, Pricing, PricingError, Shipping,
};
use super::promotion::{NotApplicable, Promotion, PromotionCode};

/// What is sold as ordering knows it (from catalog events): a variant, or a product without
/// options (its own one variant).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KnownProduct {
    /// The variant's id (for a product without options, the product's).
    pub(crate) id: ProductId,
    /// The product the variant belongs to, for a product with options.
    pub(crate) variant_of: Option<ProductId>,
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) price: Money,
    pub(crate) active: bool,
    pub(crate) revision: i64,
    pub(crate) weight_grams: u32,
    pub(crate) tax_class: TaxClass,
    /// Prices in other currencies than `price`'s.
    pub(crate) other_prices: Vec<Money>,
}

impl KnownProduct {
    /// The product this is (or is a variant of).
    pub(crate) fn product_id(&self) -> ProductId {
        self.variant_of.unwrap_or(self.id)
    }

    pub(crate) fn price_in(&self, currency: Currency) -> Option<Money> {
        std::iter::once(&self.price)
            .chain(&self.other_prices)
            .find(|m| m.currency() == currency)
            .copied()
    }

    /// The product priced in `currency` (`price` is then that price), if it has one.
    pub(crate) fn priced_in(&self, currency: Currency) -> Option<KnownProduct> {
        let price = self.price_in(currency)?;
        Some(KnownProduct {
            price,
            ..self.clone()
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CartLine {
    pub(crate) product: Option<KnownProduct>,
    pub(crate) product_id: ProductId,
    pub(crate) quantity: u32,
    /// The price when the product was put in the cart (none for lines from before it was kept).
    pub(crate) price_when_added: Option<Money>,
}

/// A customer's cart: its lines (each with its product as ordering knows it), the currency
/// it is priced in (`None`: a cart from before currencies were kept), and its code.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Cart {
    pub(crate) lines: Vec<CartLine>,
    pub(crate) currency: Option<Currency>,
    pub(crate) code: Option<PromotionCode>,
}

/// Why lines cannot be priced for a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unpriced {
    NotShipped { country: String, currency: Currency },
    MixedCurrencies,
    TooLarge,
}

/// Why a cart cannot be quoted or checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    Empty,
    /// A product is no longer sold, unknown, or has no price in the cart's currency: the
    /// message names it.
    Unavailable(String),
    Unpriced(Unpriced),
    /// The cart's code does not apply (any more).
    Promotion(NotApplicable),
}

impl From<Unpriced> for Refusal {
    fn from(u: Unpriced) -> Self {
        Self::Unpriced(u)
    }
}

impl From<NotApplicable> for Refusal {
    fn from(n: NotApplicable) -> Self {
        Self::Promotion(n)
    }
}

/// The cart's code as the checkout found it: the promotion (`None`: no such code) and how
/// many of the customer's orders it discounts already.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CodeUse {
    pub(crate) promotion: Option<Promotion>,
    pub(crate) customer_uses: i64,
}

/// What pricing a cart needs besides the cart: the destination and its rates (in the
/// cart's currency), the code's standing, the time, and how prices are listed.
#[derive(Debug, Clone)]
pub(crate) struct Terms {
    pub(crate) country: String,
    pub(crate) rates: DestinationRates,
    /// `Some` exactly when the cart has a code.
    pub(crate) code: Option<CodeUse>,
    pub(crate) now: Timestamp,
    pub(crate) prices_include_tax: bool,
}

/// What a cart costs, shipped to one country.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Quote {
    pub(crate) country: String,
    /// In product order, priced in the cart's currency.
    pub(crate) lines: Vec<(KnownProduct, u32)>,
    pub(crate) promotion: Option<PromotionCode>,
    pub(crate) breakdown: Breakdown,
}

/// A cart whose every line can be sold: each product known and sold, priced in the cart's
/// currency, in product order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SellableCart {
    lines: Vec<(KnownProduct, u32)>,
    currency: Currency,
    code: Option<PromotionCode>,
}

impl Cart {
    /// The cart as it can be sold; the first line that cannot be is refused by name.
    pub(crate) fn sellable(self) -> Result<SellableCart, Refusal> {
        self.into_sellable(false)
    }

    /// The lines still sold, the others left out: what a code is checked against when it
    /// is put on the cart (the quote and the checkout refuse the others by name).
    pub(crate) fn sold_lines(self) -> Result<SellableCart, Refusal> {
        self.into_sellable(true)
    }

    fn into_sellable(self, leave_out_unsold: bool) -> Result<SellableCart, Refusal> {
        let mut lines = Vec::with_capacity(self.lines.len());
        for line in self.lines {
            match line.product {
                Some(p) if p.active => lines.push((p, line.quantity)),
                _ if leave_out_unsold => {}
                Some(p) => {
                    return Err(Refusal::Unavailable(format!(
                        "{} is no longer sold; remove it from the cart",
                        p.name
                    )))
                }
                None => {
                    return Err(Refusal::Unavailable(format!(
                        "product {} is unknown; remove it from the cart",
                        line.product_id
                    )))
                }
            }
        }
        lines.sort_by_key(|(p, _)| p.id.to_string());
        let Some((first, _)) = lines.first() else {
            return Err(Refusal::Empty);
        };
        // The cart's currency; a cart from before currencies were kept: its first product's.
        let currency = self.currency.unwrap_or(first.price.currency());
        let lines = lines
            .into_iter()
            .map(|(p, q)| match p.priced_in(currency) {
                Some(priced) => Ok((priced, q)),
                None => Err(Refusal::Unavailable(format!(
                    "{} has no price in {currency}; remove it from the cart",
                    p.name
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SellableCart {
            lines,
            currency,
            code: self.code,
        })
    }
}

impl SellableCart {
    pub(crate) fn currency(&self) -> Currency {
        self.currency
    }

    pub(crate) fn code(&self) -> Option<&PromotionCode> {
        self.code.as_ref()
    }

    /// What the lines cost as listed (before discount, shipping and tax added on top): what
    /// a code's minimum is compared with.
    pub(crate) fn listed_subtotal(&self) -> Result<Money, Unpriced> {
        self.lines
            .iter()
            .try_fold(Money::zero(self.currency), |acc, (p, q)| {
                p.price
                    .checked_mul(*q)
                    .and_then(|line| acc.checked_add(line))
                    .map_err(|e| match e {
                        MoneyError::CurrencyMismatch => Unpriced::MixedCurrencies,
                        _ => Unpriced::TooLarge,
                    })
            })
    }

    /// What `code` takes off this cart at `now`, as it stands (`found`).
    pub(crate) fn discount(
        &self,
        code: &PromotionCode,
        found: &CodeUse,
        now: Timestamp,
    ) -> Result<Discount, Refusal> {
        let promotion = found
            .promotion
            .as_ref()
            .ok_or_else(|| NotApplicable::Unknown(code.as_str().to_owned()))?;
        let subtotal = self.listed_subtotal()?;
        Ok(promotion.discount_for(subtotal, now, found.customer_uses)?)
    }

    /// The cart priced for a destination: the quote shown, and what an order placed from
    /// the cart charges.
    pub(crate) fn quote(self, terms: Terms) -> Result<Quote, Refusal> {
        let discount = match (&self.code, &terms.code) {
            (Some(code), Some(found)) => Some(self.discount(code, found, terms.now)?),
            (Some(code), None) => {
                return Err(NotApplicable::Unknown(code.as_str().to_owned()).into())
            }
            (None, _) => None,
        };
        let shipping = match terms.rates.shipping {
            Shipping::Free => None,
            Shipping::Rate(rate) => Some(rate),
            Shipping::NotShipped => {
                return Err(Unpriced::NotShipped {
                    country: terms.country,
                    currency: self.currency,
                }
                .into())
            }
        };
        let priced: Vec<PriceLine> = self
            .lines
            .iter()
            .map(|(p, quantity)| PriceLine {
                unit_price: p.price.amount(),
                quantity: *quantity,
                tax: terms.rates.tax.of(p.tax_class),
                unit_grams: p.weight_grams,
            })
            .collect();
        let how = Pricing {
            currency: self.currency,
            discount,
            shipping,
            shipping_tax: terms.rates.tax.standard,
            prices_include_tax: terms.prices_include_tax,
        };
        let breakdown = pricing::price(&priced, &how).map_err(|e| match e {
            PricingError::Empty | PricingError::TooLarge | PricingError::BadDiscount => {
                Unpriced::TooLarge
            }
        })?;
        Ok(Quote {
            country: terms.country,
            lines: self.lines,
            promotion: discount.and(self.code),
            breakdown,
        })
    }
}

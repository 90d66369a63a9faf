//! Pricing: what an order charges, from its lines, a discount, shipping and taxes.
//!
//! Everything is in the currency's minor units (cents, yen, fils), so every rounding below is
//! to the minor unit, half to even, whatever the currency's number of decimals. The steps:
//!
//! 1. A line's subtotal is `unit price × quantity` (exact).
//! 2. The discount is a percentage of the subtotal (rounded) or a fixed amount (at most the
//!    subtotal). It is shared out over the lines in proportion to their subtotals by largest
//!    remainder, so the shares add up to the discount exactly and none exceeds its line.
//! 3. Each line's tax is its rate applied to its discounted subtotal, rounded per line.
//! 4. Shipping is `flat + per_kg × every started kilogram over the included weight`; it is
//!    taxed at the destination's standard rate, rounded once.
//! 5. `total = subtotal − discount + shipping + tax`.
//!
//! When prices include tax (`EMPORIUM_PRICES_INCLUDE_TAX=true`) the listed prices, the fixed
//! discount and the shipping rate are gross. The customer pays what was shown (the discounted
//! gross lines plus the gross shipping), and the tax in each gross amount is
//! `gross × rate / (1 + rate)`, rounded. The breakdown then reports the amounts without tax,
//! so that the same identity holds: a line's net subtotal is its gross subtotal less the tax
//! it contains, and its net discount is what the discount took off its net amount.

use catalog_contracts::TaxClass;
use kernel::{Currency, Money, MoneyError};

/// A tax rate in basis points: 1900 is 19 %. At most 100 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TaxRate(u32);

pub(crate) const MAX_TAX_BPS: u32 = 10_000;

impl TaxRate {
    pub(crate) fn from_bps(bps: i64) -> Result<Self, &'static str> {
        u32::try_from(bps)
            .ok()
            .filter(|b| *b <= MAX_TAX_BPS)
            .map(Self)
            .ok_or("must be 0 to 10000 basis points (0 % to 100 %)")
    }

    pub(crate) fn bps(&self) -> u32 {
        self.0
    }
}

/// A destination's tax rates per class (the zero class is always 0 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TaxRates {
    pub(crate) standard: TaxRate,
    pub(crate) reduced: TaxRate,
}

impl TaxRates {
    pub(crate) fn of(&self, class: TaxClass) -> TaxRate {
        match class {
            TaxClass::Standard => self.standard,
            TaxClass::Reduced => self.reduced,
            TaxClass::Zero => TaxRate::default(),
        }
    }
}

/// How an order to one destination, in one currency, is shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shipping {
    /// No shipping rate is set for the currency at all: shipping is free.
    Free,
    Rate(ShippingRate),
    /// Rates are set for the currency, but none for this destination.
    NotShipped,
}

/// What pricing needs to know of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DestinationRates {
    pub(crate) tax: TaxRates,
    pub(crate) shipping: Shipping,
}

/// A shipping rate for one destination and currency: a flat charge, plus `per_kg` for every
/// started kilogram beyond `included_grams`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShippingRate {
    pub(crate) flat: i64,
    pub(crate) per_kg: i64,
    pub(crate) included_grams: u32,
}

impl ShippingRate {
    /// The charge for a parcel of `grams`.
    pub(crate) fn charge(&self, grams: u64) -> Option<i64> {
        let over = grams.saturating_sub(u64::from(self.included_grams));
        let kilograms = i64::try_from(over.div_ceil(1000)).ok()?;
        self.per_kg.checked_mul(kilograms)?.checked_add(self.flat)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Discount {
    /// Basis points of the subtotal (1000 is 10 %).
    Percent(u32),
    /// Minor units, at most the subtotal.
    Fixed(i64),
}

/// One line as priced: the listed unit price, the quantity, its tax rate and its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PriceLine {
    pub(crate) unit_price: i64,
    pub(crate) quantity: u32,
    pub(crate) tax: TaxRate,
    pub(crate) unit_grams: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pricing {
    pub(crate) currency: Currency,
    pub(crate) discount: Option<Discount>,
    /// `None`: no charge for shipping.
    pub(crate) shipping: Option<ShippingRate>,
    /// The destination's standard rate, which shipping is taxed at.
    pub(crate) shipping_tax: TaxRate,
    pub(crate) prices_include_tax: bool,
}

/// One line's share of the breakdown (amounts without tax; see the module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineAmounts {
    pub(crate) subtotal: Money,
    pub(crate) discount: Money,
    pub(crate) tax: Money,
    /// `subtotal − discount + tax`: what the line costs the customer.
    pub(crate) total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Breakdown {
    pub(crate) lines: Vec<LineAmounts>,
    pub(crate) subtotal: Money,
    pub(crate) discount: Money,
    pub(crate) shipping: Money,
    /// Lines' tax plus shipping's.
    pub(crate) tax: Money,
    pub(crate) total: Money,
    pub(crate) grams: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PricingError {
    #[error("the order has no lines")]
    Empty,
    #[error("the order's amounts are too large")]
    TooLarge,
    #[error("a discount percentage must be at most 100 %")]
    BadDiscount,
}

impl From<MoneyError> for PricingError {
    fn from(_: MoneyError) -> Self {
        Self::TooLarge
    }
}

/// `n / d` rounded half to even; `n >= 0`, `d > 0`.
pub(crate) fn div_half_even(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    match (2 * r).cmp(&d) {
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
        std::cmp::Ordering::Less => q,
    }
}

/// The tax in an amount: on top of it (`inclusive == false`) or contained in it.
fn tax_of(amount: i128, rate: TaxRate, inclusive: bool) -> i128 {
    let bps = i128::from(rate.bps());
    if inclusive {
        div_half_even(amount * bps, 10_000 + bps)
    } else {
        div_half_even(amount * bps, 10_000)
    }
}

/// Shares `amount` out over `weights` in proportion, by largest remainder (ties: the earlier
/// line). `amount <= Σ weights`; the shares add up to `amount` and none exceeds its weight.
pub(crate) fn allocate(amount: i128, weights: &[i128]) -> Vec<i128> {
    let whole: i128 = weights.iter().sum();
    if whole == 0 || amount == 0 {
        return vec![0; weights.len()];
    }
    let mut shares: Vec<i128> = weights.iter().map(|w| amount * w / whole).collect();
    let mut left = amount - shares.iter().sum::<i128>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(amount * weights[i] % whole), i));
    for i in order {
        if left == 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    shares
}

fn money(amount: i128, currency: Currency) -> Result<Money, PricingError> {
    let amount = i64::try_from(amount).map_err(|_| PricingError::TooLarge)?;
    Ok(Money::new(amount, currency)?)
}

/// The breakdown of an order of `lines` (see the module for the rules).
pub(crate) fn price(lines: &[PriceLine], how: &Pricing) -> Result<Breakdown, PricingError> {
    if lines.is_empty() {
        return Err(PricingError::Empty);
    }
    let inclusive = how.prices_include_tax;
    // Listed amounts: net, or gross when prices include tax.
    let listed: Vec<i128> = lines
        .iter()
        .map(|l| i128::from(l.unit_price) * i128::from(l.quantity))
        .collect();
    let listed_subtotal: i128 = listed.iter().sum();
    let discount = match how.discount {
        None => 0,
        Some(Discount::Percent(bps)) if bps <= MAX_TAX_BPS => {
            div_half_even(listed_subtotal * i128::from(bps), 10_000)
        }
        Some(Discount::Percent(_)) => return Err(PricingError::BadDiscount),
        Some(Discount::Fixed(amount)) => i128::from(amount.max(0)).min(listed_subtotal),
    };
    let shares = allocate(discount, &listed);
    let grams: u64 = lines
        .iter()
        .map(|l| u64::from(l.unit_grams) * u64::from(l.quantity))
        .sum();
    let shipping_listed = match &how.shipping {
        Some(rate) => i128::from(rate.charge(grams).ok_or(PricingError::TooLarge)?),
        None => 0,
    };
    let shipping_tax = tax_of(shipping_listed, how.shipping_tax, inclusive);
    let c = how.currency;
    let mut out = Vec::with_capacity(lines.len());
    let (mut subtotal, mut discounted, mut tax, mut total) = (0i128, 0i128, 0i128, 0i128);
    for ((line, listed), share) in lines.iter().zip(&listed).zip(&shares) {
        let after = listed - share;
        let line_tax = tax_of(after, line.tax, inclusive);
        let (line_subtotal, line_discount) = if inclusive {
            let net = listed - tax_of(*listed, line.tax, true);
            (net, net - (after - line_tax))
        } else {
            (*listed, *share)
        };
        let line_total = line_subtotal - line_discount + line_tax;
        subtotal += line_subtotal;
        discounted += line_discount;
        tax += line_tax;
        total += line_total;
        out.push(LineAmounts {
            subtotal: money(line_subtotal, c)?,
            discount: money(line_discount, c)?,
            tax: money(line_tax, c)?,
            total: money(line_total, c)?,
        });
    }
    let shipping = if inclusive {
        shipping_listed - shipping_tax
    } else {
        shipping_listed
    };
    Ok(Breakdown {
        lines: out,
        subtotal: money(subtotal, c)?,
        discount: money(discounted, c)?,
        shipping: money(shipping, c)?,
        tax: money(tax + shipping_tax, c)?,
        total: money(total + shipping + shipping_tax, c)?,
        grams,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn currency(code: &str) -> Currency {
        Currency::parse(code).unwrap_or_else(|_| unreachable!())
    }

    fn line(unit_price: i64, quantity: u32, bps: u32, unit_grams: u32) -> PriceLine {
        PriceLine {
            unit_price,
            quantity,
            tax: TaxRate(bps),
            unit_grams,
        }
    }

    fn eur(discount: Option<Discount>, shipping: Option<ShippingRate>) -> Pricing {
        Pricing {
            currency: currency("EUR"),
            discount,
            shipping,
            shipping_tax: TaxRate(1900),
            prices_include_tax: false,
        }
    }

    fn amounts(b: &Breakdown) -> [i64; 5] {
        [
            b.subtotal.amount(),
            b.discount.amount(),
            b.shipping.amount(),
            b.tax.amount(),
            b.total.amount(),
        ]
    }

    #[test]
    fn halves_round_to_the_even_neighbour() {
        assert_eq!(div_half_even(5, 2), 2);
        assert_eq!(div_half_even(7, 2), 4);
        assert_eq!(div_half_even(6, 4), 2);
        assert_eq!(div_half_even(10, 4), 2);
        assert_eq!(div_half_even(11, 4), 3);
        assert_eq!(div_half_even(9, 4), 2);
        assert_eq!(div_half_even(0, 3), 0);
    }

    #[test]
    fn a_worked_example_with_a_code_shipping_and_two_tax_rates() {
        // 2 × 19.99 at 19 % (400 g each), 1 × 10.00 at 7 % (1.5 kg); 10 % off;
        // shipping 4.95 plus 1.50 per started kg over 1 kg (2.3 kg: 2 kg over).
        let lines = [line(1999, 2, 1900, 400), line(1000, 1, 700, 1500)];
        let rate = ShippingRate {
            flat: 495,
            per_kg: 150,
            included_grams: 1000,
        };
        let b = price(&lines, &eur(Some(Discount::Percent(1000)), Some(rate)));
        let b = b.unwrap_or_else(|e| panic!("{e}"));
        // Subtotal 49.98; 10 % = 4.998 → 5.00, shared 39.98 : 10.00 → 4.00 and 1.00.
        assert_eq!(b.lines[0].discount.amount(), 400);
        assert_eq!(b.lines[1].discount.amount(), 100);
        // Line taxes: 35.98 × 19 % = 6.8362 → 6.84; 9.00 × 7 % = 0.63. Shipping 7.95 × 19 %
        // = 1.5105 → 1.51.
        assert_eq!(b.lines[0].tax.amount(), 684);
        assert_eq!(b.lines[1].tax.amount(), 63);
        assert_eq!(b.grams, 2300);
        assert_eq!(
            amounts(&b),
            [4998, 500, 795, 684 + 63 + 151, 4998 - 500 + 795 + 898]
        );
    }

    #[test]
    fn with_prices_including_tax_the_customer_pays_what_was_listed() {
        // 119.00 gross at 19 % contains 19.00 of tax; shipping 5.95 gross contains 0.95.
        let lines = [line(11900, 1, 1900, 0)];
        let rate = ShippingRate {
            flat: 595,
            per_kg: 0,
            included_grams: 0,
        };
        let mut how = eur(None, Some(rate));
        how.prices_include_tax = true;
        let b = price(&lines, &how).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(amounts(&b), [10000, 0, 500, 1995, 12495]);
        // A fixed 11.90 off the gross leaves 107.10 gross: 90.00 net and 17.10 tax.
        how.discount = Some(Discount::Fixed(1190));
        let b = price(&lines, &how).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(amounts(&b), [10000, 1000, 500, 1710 + 95, 10710 + 595]);
    }

    #[test]
    fn a_fixed_discount_never_exceeds_the_subtotal_and_bad_input_is_refused() {
        let lines = [line(500, 1, 0, 0)];
        let b = price(&lines, &eur(Some(Discount::Fixed(9_999)), None));
        assert_eq!(b.map(|b| amounts(&b)), Ok([500, 500, 0, 0, 0]));
        assert_eq!(price(&[], &eur(None, None)), Err(PricingError::Empty));
        assert_eq!(
            price(&lines, &eur(Some(Discount::Percent(10_001)), None)),
            Err(PricingError::BadDiscount)
        );
        let huge = [line(i64::MAX / 2, 99, 10_000, 0)];
        assert_eq!(price(&huge, &eur(None, None)), Err(PricingError::TooLarge));
    }

    #[test]
    fn shipping_counts_every_started_kilogram_over_the_included_weight() {
        let rate = ShippingRate {
            flat: 100,
            per_kg: 10,
            included_grams: 1000,
        };
        assert_eq!(rate.charge(0), Some(100));
        assert_eq!(rate.charge(1000), Some(100));
        assert_eq!(rate.charge(1001), Some(110));
        assert_eq!(rate.charge(3000), Some(120));
        assert_eq!(rate.charge(3001), Some(130));
    }

    fn arb_line() -> impl Strategy<Value = PriceLine> {
        (
            0i64..=10_000_000_000,
            1u32..=99,
            prop_oneof![Just(0u32), Just(700), Just(1900), Just(2100), 0u32..=10_000],
            0u32..=50_000,
        )
            .prop_map(|(p, q, t, g)| line(p, q, t, g))
    }

    fn arb_pricing() -> impl Strategy<Value = Pricing> {
        (
            prop_oneof![Just("JPY"), Just("EUR"), Just("KWD")],
            prop_oneof![
                Just(None),
                (0u32..=10_000).prop_map(|b| Some(Discount::Percent(b))),
                (0i64..=100_000_000_000).prop_map(|a| Some(Discount::Fixed(a))),
            ],
            proptest::option::of((0i64..=1_000_000, 0i64..=100_000, 0u32..=20_000)),
            0u32..=10_000,
            any::<bool>(),
        )
            .prop_map(|(code, discount, rate, bps, inclusive)| Pricing {
                currency: currency(code),
                discount,
                shipping: rate.map(|(flat, per_kg, included_grams)| ShippingRate {
                    flat,
                    per_kg,
                    included_grams,
                }),
                shipping_tax: TaxRate(bps),
                prices_include_tax: inclusive,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_identity_and_the_line_sums_always_hold(
            lines in proptest::collection::vec(arb_line(), 1..8),
            how in arb_pricing(),
        ) {
            let b = price(&lines, &how).unwrap_or_else(|e| panic!("{e}"));
            let sum = |f: fn(&LineAmounts) -> i64| b.lines.iter().map(f).sum::<i64>();
            prop_assert_eq!(
                b.total.amount(),
                b.subtotal.amount() - b.discount.amount() + b.shipping.amount() + b.tax.amount()
            );
            prop_assert_eq!(sum(|l| l.subtotal.amount()), b.subtotal.amount());
            prop_assert_eq!(sum(|l| l.discount.amount()), b.discount.amount());
            prop_assert!(sum(|l| l.tax.amount()) <= b.tax.amount());
            for l in &b.lines {
                prop_assert!(l.discount.amount() <= l.subtotal.amount());
                prop_assert_eq!(
                    l.total.amount(),
                    l.subtotal.amount() - l.discount.amount() + l.tax.amount()
                );
                prop_assert_eq!(l.total.currency(), how.currency);
            }
            let listed: i64 = lines.iter().map(|l| l.unit_price * i64::from(l.quantity)).sum();
            let shipping = how
                .shipping
                .and_then(|r| r.charge(b.grams))
                .unwrap_or(0);
            let expected_discount = match how.discount {
                None => 0,
                Some(Discount::Percent(bps)) => {
                    div_half_even(i128::from(listed) * i128::from(bps), 10_000) as i64
                }
                Some(Discount::Fixed(a)) => a.min(listed),
            };
            if how.prices_include_tax {
                // The customer pays the listed amounts less the discount, not a cent more.
                prop_assert_eq!(listed - sum(|l| l.total.amount()), expected_discount);
                prop_assert_eq!(b.total.amount(), listed - expected_discount + shipping);
            } else {
                prop_assert_eq!(b.subtotal.amount(), listed);
                prop_assert_eq!(b.discount.amount(), expected_discount);
                prop_assert_eq!(b.shipping.amount(), shipping);
            }
        }

        #[test]
        fn shares_add_up_and_follow_their_weights(
            weights in proptest::collection::vec(0i128..1_000_000, 1..10),
            fraction in 0.0f64..=1.0,
        ) {
            let whole: i128 = weights.iter().sum();
            let amount = (whole as f64 * fraction) as i128;
            let shares = allocate(amount.min(whole), &weights);
            prop_assert_eq!(shares.iter().sum::<i128>(), amount.min(whole));
            for (s, w) in shares.iter().zip(&weights) {
                prop_assert!(*s >= 0 && s <= w);
                if whole > 0 {
                    // Within one unit of the exact proportion.
                    let exact = amount.min(whole) * w;
                    prop_assert!((s * whole - exact).abs() < whole);
                }
            }
        }
    }
}

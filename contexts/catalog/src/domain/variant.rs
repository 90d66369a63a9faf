//! Options (a size, a colour) and variants: what is sold and stocked, one per combination of
//! option values, each with its own SKU, prices and weight. A product without options has one
//! variant, the product itself (same id, SKU, prices and weight), so everything stocked or
//! ordered before variants existed still names a variant.

use std::collections::{BTreeMap, BTreeSet};

use catalog_contracts::{OptionValue, ProductOption};
use kernel::error::FieldError;
use kernel::id::ProductId;
use kernel::Money;

use super::sellable::{other_prices, Sku, MAX_PRICE, MAX_WEIGHT_GRAMS};

pub(crate) const MAX_OPTIONS: usize = 3;
pub(crate) const MAX_VALUES: usize = 50;
pub(crate) const MAX_VARIANTS: usize = 100;
const MAX_LABEL: usize = 40;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Variant {
    pub(crate) id: ProductId,
    pub(crate) sku: Sku,
    /// One value per product option, in the product's option order.
    pub(crate) options: Vec<OptionValue>,
    pub(crate) price: Money,
    /// Prices in other currencies than `price`'s, one per currency, by currency code.
    pub(crate) other_prices: Vec<Money>,
    pub(crate) weight_grams: u32,
}

impl Variant {
    /// Its option values for people: `M / Blue`.
    pub(crate) fn title(&self) -> String {
        self.options
            .iter()
            .map(|o| o.value.as_str())
            .collect::<Vec<_>>()
            .join(" / ")
    }
}

/// A variant as asked for: a value per option name, and what it sets differently from the
/// product (its price, other prices and weight default to the product's).
#[derive(Debug, Clone, Default)]
pub(crate) struct VariantDraft {
    pub(crate) sku: String,
    pub(crate) options: BTreeMap<String, String>,
    pub(crate) price: Option<Money>,
    pub(crate) other_prices: Option<Vec<Money>>,
    pub(crate) weight_grams: Option<u32>,
}

/// What a variant draft falls back on.
pub(crate) struct Defaults<'a> {
    pub(crate) price: &'a Money,
    pub(crate) other_prices: &'a [Money],
    pub(crate) weight_grams: u32,
}

/// An option name or value: 1 to 40 characters without control characters, trimmed.
fn label(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if s.is_empty() || s.chars().count() > MAX_LABEL || s.chars().any(char::is_control) {
        return Err(format!(
            "must be 1 to {MAX_LABEL} characters without control characters"
        ));
    }
    Ok(s.to_owned())
}

/// Option names and values are matched ignoring case.
pub(crate) fn key(label: &str) -> String {
    label.trim().to_lowercase()
}

/// Checks the options a product comes in: at most 3, names distinct (ignoring case), each with
/// 1 to 50 distinct values.
pub(crate) fn check_options(
    raw: Vec<ProductOption>,
    errors: &mut Vec<FieldError>,
) -> Vec<ProductOption> {
    if raw.len() > MAX_OPTIONS {
        errors.push(FieldError::new(
            "options",
            format!("at most {MAX_OPTIONS} options"),
        ));
        return Vec::new();
    }
    let mut names = BTreeSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, option) in raw.into_iter().enumerate() {
        let name = match label(&option.name) {
            Ok(name) if names.insert(key(&name)) => name,
            Ok(_) => {
                errors.push(FieldError::new(
                    format!("options[{i}].name"),
                    "each option needs its own name",
                ));
                continue;
            }
            Err(m) => {
                errors.push(FieldError::new(format!("options[{i}].name"), m));
                continue;
            }
        };
        if option.values.is_empty() || option.values.len() > MAX_VALUES {
            errors.push(FieldError::new(
                format!("options[{i}].values"),
                format!("1 to {MAX_VALUES} values"),
            ));
            continue;
        }
        let mut seen = BTreeSet::new();
        let mut values = Vec::with_capacity(option.values.len());
        for (j, raw_value) in option.values.iter().enumerate() {
            match label(raw_value) {
                Ok(v) if seen.insert(key(&v)) => values.push(v),
                Ok(_) => errors.push(FieldError::new(
                    format!("options[{i}].values[{j}]"),
                    "each value once",
                )),
                Err(m) => errors.push(FieldError::new(format!("options[{i}].values[{j}]"), m)),
            }
        }
        out.push(ProductOption { name, values });
    }
    out
}

/// Checks a draft against the options (one declared value per option, matched ignoring case
/// and kept as declared) and completes it from the product's defaults.
pub(crate) fn check_variant(
    id: ProductId,
    draft: VariantDraft,
    options: &[ProductOption],
    defaults: &Defaults<'_>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Variant> {
    let before = errors.len();
    let sku = Sku::parse(&draft.sku)
        .map_err(|m| errors.push(FieldError::new(format!("{field}.sku"), m)))
        .ok();
    let given: BTreeMap<String, &String> = draft.options.iter().map(|(n, v)| (key(n), v)).collect();
    let mut values = Vec::with_capacity(options.len());
    for option in options {
        match given.get(&key(&option.name)) {
            Some(v) => match option.values.iter().find(|d| key(d) == key(v)) {
                Some(declared) => values.push(OptionValue {
                    name: option.name.clone(),
                    value: declared.clone(),
                }),
                None => errors.push(FieldError::new(
                    format!("{field}.options.{}", option.name),
                    format!("must be one of: {}", option.values.join(", ")),
                )),
            },
            None => errors.push(FieldError::new(
                format!("{field}.options.{}", option.name),
                "a value is required for every option",
            )),
        }
    }
    if given.len() != options.len() || given.len() != draft.options.len() {
        errors.push(FieldError::new(
            format!("{field}.options"),
            "exactly one value for each of the product's options",
        ));
    }
    let price = draft.price.unwrap_or(*defaults.price);
    if price.currency() != defaults.price.currency() {
        errors.push(FieldError::new(
            format!("{field}.price.currency"),
            format!(
                "must be the product's currency, {}; other currencies go in other_prices",
                defaults.price.currency()
            ),
        ));
    }
    if price.amount() > MAX_PRICE {
        errors.push(FieldError::new(
            format!("{field}.price.amount"),
            format!("must be at most {MAX_PRICE}"),
        ));
    }
    let others = other_prices(
        &price,
        draft
            .other_prices
            .unwrap_or_else(|| defaults.other_prices.to_vec()),
    )
    .map_err(|m| errors.push(FieldError::new(format!("{field}.other_prices"), m)))
    .unwrap_or_default();
    let weight_grams = draft.weight_grams.unwrap_or(defaults.weight_grams);
    if weight_grams > MAX_WEIGHT_GRAMS {
        errors.push(FieldError::new(
            format!("{field}.weight_grams"),
            format!("must be at most {MAX_WEIGHT_GRAMS}"),
        ));
    }
    if errors.len() != before {
        return None;
    }
    Some(Variant {
        id,
        sku: sku?,
        options: values,
        price,
        other_prices: others,
        weight_grams,
    })
}

/// Checks a product's variants together: 1 to 100, SKUs distinct (and not the product's own),
/// one variant per combination of values.
pub(crate) fn check_set(variants: &[Variant], product_sku: &Sku, errors: &mut Vec<FieldError>) {
    if variants.is_empty() || variants.len() > MAX_VARIANTS {
        errors.push(FieldError::new(
            "variants",
            format!("a product with options sells 1 to {MAX_VARIANTS} variants"),
        ));
    }
    let mut skus = BTreeSet::from([product_sku.as_ref().to_owned()]);
    let mut combinations = BTreeSet::new();
    for (i, v) in variants.iter().enumerate() {
        if !skus.insert(v.sku.as_ref().to_owned()) {
            errors.push(FieldError::new(
                format!("variants[{i}].sku"),
                "each variant needs its own SKU, other than the product's",
            ));
        }
        let combination: Vec<String> = v.options.iter().map(|o| key(&o.value)).collect();
        if !combinations.insert(combination) {
            errors.push(FieldError::new(
                format!("variants[{i}].options"),
                "another variant has these values",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::Currency;

    fn eur(amount: i64) -> Money {
        Money::new(
            amount,
            Currency::parse("EUR").unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn sizes() -> Vec<ProductOption> {
        let mut errors = Vec::new();
        let options = check_options(
            vec![
                ProductOption {
                    name: "Size".into(),
                    values: vec!["S".into(), "M".into()],
                },
                ProductOption {
                    name: "Colour".into(),
                    values: vec!["Blue".into()],
                },
            ],
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        options
    }

    fn draft(sku: &str, size: &str, colour: &str) -> VariantDraft {
        VariantDraft {
            sku: sku.into(),
            options: BTreeMap::from([
                ("size".to_owned(), size.to_owned()),
                ("COLOUR".to_owned(), colour.to_owned()),
            ]),
            ..VariantDraft::default()
        }
    }

    fn check(d: VariantDraft, errors: &mut Vec<FieldError>) -> Option<Variant> {
        let price = eur(1500);
        let defaults = Defaults {
            price: &price,
            other_prices: &[],
            weight_grams: 200,
        };
        check_variant(
            ProductId::new(),
            d,
            &sizes(),
            &defaults,
            "variants[0]",
            errors,
        )
    }

    #[test]
    fn values_are_matched_ignoring_case_and_kept_as_declared() {
        let mut errors = Vec::new();
        let v = check(draft("tee-m", "m", "blue"), &mut errors).unwrap_or_else(|| panic!("valid"));
        assert_eq!(v.title(), "M / Blue");
        assert_eq!(v.price, eur(1500));
        assert_eq!(v.weight_grams, 200);
        assert_eq!(v.sku.as_ref(), "TEE-M");
    }

    #[test]
    fn undeclared_or_missing_values_are_refused_by_field() {
        let mut errors = Vec::new();
        assert!(check(draft("tee-x", "XL", "Blue"), &mut errors).is_none());
        assert_eq!(errors[0].field, "variants[0].options.Size");
        let mut errors = Vec::new();
        let mut d = draft("tee-x", "S", "Blue");
        d.options.remove("COLOUR");
        assert!(check(d, &mut errors).is_none());
        assert!(errors
            .iter()
            .any(|e| e.field == "variants[0].options.Colour"));
    }

    #[test]
    fn a_variant_price_is_in_the_product_currency() {
        let mut errors = Vec::new();
        let mut d = draft("tee-s", "S", "Blue");
        d.price = Some(
            Money::new(
                1500,
                Currency::parse("USD").unwrap_or_else(|e| panic!("{e}")),
            )
            .unwrap_or_else(|e| panic!("{e}")),
        );
        assert!(check(d, &mut errors).is_none());
        assert_eq!(errors[0].field, "variants[0].price.currency");
    }

    #[test]
    fn duplicate_combinations_and_skus_are_refused() {
        let mut errors = Vec::new();
        let a = check(draft("tee-s", "S", "Blue"), &mut errors).unwrap_or_else(|| panic!("a"));
        let b = check(draft("tee-s2", "s", "BLUE"), &mut errors).unwrap_or_else(|| panic!("b"));
        let c = check(draft("TEE-S", "M", "Blue"), &mut errors).unwrap_or_else(|| panic!("c"));
        let base = Sku::parse("TEE").unwrap_or_else(|e| panic!("{e}"));
        check_set(&[a, b, c], &base, &mut errors);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["variants[1].options", "variants[2].sku"]);
    }

    #[test]
    fn option_names_are_distinct_and_bounded() {
        let mut errors = Vec::new();
        check_options(
            vec![
                ProductOption {
                    name: "Size".into(),
                    values: vec!["S".into()],
                },
                ProductOption {
                    name: " size ".into(),
                    values: vec!["M".into()],
                },
            ],
            &mut errors,
        );
        assert_eq!(errors[0].field, "options[1].name");
        let mut errors = Vec::new();
        let many = (0..4)
            .map(|i| ProductOption {
                name: format!("o{i}"),
                values: vec!["v".into()],
            })
            .collect();
        assert!(check_options(many, &mut errors).is_empty());
        assert_eq!(errors[0].field, "options");
    }
}

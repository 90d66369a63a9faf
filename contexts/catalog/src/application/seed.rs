//! The demo catalog loaded by `emporium seed`.

use bus::Causation;
use std::collections::BTreeMap;

use catalog_contracts::{ProductOption, TaxClass};
use kernel::{Currency, Money};

use super::catalog::{Catalog, NewCategory, NewProduct};
use super::inventory::Inventory;
use super::CatalogError;
use crate::domain::VariantDraft;

/// A unit's shipping weight and its tax class (books and seeds are taxed at the reduced rate).
fn weight_and_tax_class(sku: &str) -> (u32, TaxClass) {
    match sku {
        "BOOK-RUST" | "BOOK-DDD" => (900, TaxClass::Reduced),
        "GAR-SEEDS-BASIL" => (20, TaxClass::Reduced),
        "KIT-KNIFE-CHEF" => (350, TaxClass::Standard),
        "GAR-SHEARS" => (600, TaxClass::Standard),
        "GAR-TROWEL" => (250, TaxClass::Standard),
        _ => (400, TaxClass::Standard),
    }
}

const CATEGORIES: [(&str, &str, Option<&str>); 6] = [
    ("Clothing", "clothing", None),
    ("Kitchen", "kitchen", None),
    ("Mugs and cups", "mugs", Some("kitchen")),
    ("Garden", "garden", None),
    ("Garden tools", "garden-tools", Some("garden")),
    ("Books", "books", None),
];

const PRODUCTS: [(&str, &str, &str, i64, &str, i64); 8] = [
    (
        "MUG-ENAMEL-BLUE",
        "Enamel mug, blue",
        "350 ml enamel mug for camp and kitchen",
        1299,
        "mugs",
        40,
    ),
    (
        "MUG-STONE-GREY",
        "Stoneware mug, grey",
        "Hand-glazed stoneware, 300 ml",
        1899,
        "mugs",
        25,
    ),
    (
        "KIT-KNIFE-CHEF",
        "Chef's knife",
        "20 cm carbon steel chef's knife",
        8900,
        "kitchen",
        10,
    ),
    (
        "GAR-TROWEL",
        "Hand trowel",
        "Stainless steel trowel with ash handle",
        1450,
        "garden-tools",
        60,
    ),
    (
        "GAR-SHEARS",
        "Pruning shears",
        "Bypass shears for branches up to 2 cm",
        2990,
        "garden-tools",
        30,
    ),
    (
        "GAR-SEEDS-BASIL",
        "Basil seeds",
        "Genovese basil, 200 seeds",
        350,
        "garden",
        200,
    ),
    (
        "BOOK-RUST",
        "Systems programming",
        "A practical guide to building reliable services",
        3900,
        "books",
        15,
    ),
    (
        "BOOK-DDD",
        "Domain modelling",
        "Bounded contexts, aggregates and events in practice",
        4500,
        "books",
        12,
    ),
];

/// Returns how many products were created.
pub(crate) async fn run(
    catalog: &Catalog,
    inventory: &Inventory,
    cause: &Causation,
) -> anyhow::Result<usize> {
    let eur = Currency::parse("EUR")?;
    for (name, slug, parent) in CATEGORIES {
        let parent_id = match parent {
            Some(p) => Some(
                catalog
                    .resolve_category(p)
                    .await
                    .map_err(anyhow::Error::new)?,
            ),
            None => None,
        };
        match catalog
            .create_category(NewCategory {
                name: name.to_owned(),
                slug: slug.to_owned(),
                parent_id,
            })
            .await
        {
            Ok(_) | Err(CatalogError::Duplicate(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let usd = Currency::parse("USD")?;
    let mut created = 0;
    for (sku, name, description, amount, category, stock) in PRODUCTS {
        let (grams, class) = weight_and_tax_class(sku);
        let category_id = catalog
            .resolve_category(category)
            .await
            .map_err(anyhow::Error::new)?;
        match catalog
            .create_product(
                NewProduct {
                    sku: sku.to_owned(),
                    name: name.to_owned(),
                    description: Some(description.to_owned()),
                    price: Money::new(amount, eur)?,
                    // The demo sells in dollars too, at about the euro amount × 1.1.
                    other_prices: vec![Money::new(amount * 11 / 10, usd)?],
                    category_id: Some(category_id),
                    weight_grams: Some(grams),
                    tax_class: Some(class),
                    options: Vec::new(),
                    variants: Vec::new(),
                },
                cause,
            )
            .await
        {
            Ok(product) => {
                inventory
                    .set_on_hand(product.id, stock)
                    .await
                    .map_err(anyhow::Error::new)?;
                created += 1;
            }
            Err(CatalogError::Duplicate(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    created += tee(catalog, inventory, cause).await?;
    Ok(created)
}

/// A T-shirt in three sizes and two colours, sold as five variants (no large in green), the
/// large ones dearer; returns 1 when it was created.
async fn tee(catalog: &Catalog, inventory: &Inventory, cause: &Causation) -> anyhow::Result<usize> {
    let eur = Currency::parse("EUR")?;
    let usd = Currency::parse("USD")?;
    let category_id = catalog
        .resolve_category("clothing")
        .await
        .map_err(anyhow::Error::new)?;
    let combinations = [
        ("S", "Navy", 1900, 12),
        ("M", "Navy", 1900, 20),
        ("L", "Navy", 2100, 8),
        ("S", "Green", 1900, 6),
        ("M", "Green", 1900, 3),
    ];
    let mut variants = Vec::new();
    for (size, colour, amount, _) in combinations {
        variants.push(VariantDraft {
            sku: format!("TEE-ORGANIC-{size}-{}", colour.to_uppercase()),
            options: BTreeMap::from([
                ("Size".to_owned(), size.to_owned()),
                ("Colour".to_owned(), colour.to_owned()),
            ]),
            price: Some(Money::new(amount, eur)?),
            other_prices: Some(vec![Money::new(amount * 11 / 10, usd)?]),
            weight_grams: None,
        });
    }
    let created = catalog
        .create_product(
            NewProduct {
                sku: "TEE-ORGANIC".to_owned(),
                name: "Organic cotton tee".to_owned(),
                description: Some("Heavyweight organic cotton, regular fit".to_owned()),
                price: Money::new(1900, eur)?,
                other_prices: vec![Money::new(2090, usd)?],
                category_id: Some(category_id),
                weight_grams: Some(220),
                tax_class: Some(TaxClass::Standard),
                options: vec![
                    ProductOption {
                        name: "Size".to_owned(),
                        values: vec!["S".to_owned(), "M".to_owned(), "L".to_owned()],
                    },
                    ProductOption {
                        name: "Colour".to_owned(),
                        values: vec!["Navy".to_owned(), "Green".to_owned()],
                    },
                ],
                variants,
            },
            cause,
        )
        .await;
    let product = match created {
        Ok(product) => product,
        Err(CatalogError::Duplicate(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    for (variant, (_, _, _, stock)) in product.variants.iter().zip(combinations) {
        inventory
            .set_on_hand(variant.id, stock)
            .await
            .map_err(anyhow::Error::new)?;
    }
    Ok(1)
}

//! The catalog bounded context: categories, products and prices, inventory with race-free
//! reservations, and cached reads. Its public face is [`module`], [`openapi`], [`seed`] and
//! [`MIGRATOR`].

mod application;
mod domain;
mod http;
mod infrastructure;

use std::sync::Arc;
use std::time::Duration;

use bus::{Causation, SharedBus};
use kernel::{Clock, SystemClock};
use platform::db::Database;
use platform::module::ContextModule;
use sqlx::migrate::Migrator;

use application::cache::ReadCache;
use application::catalog::{self as catalog_app, CacheInvalidation, Catalog};
use application::inventory::{self, Inventory};
use infrastructure::sql_catalog::SqlCatalog;
use infrastructure::sql_inventory::SqlInventory;

pub const NAME: &str = "catalog";

/// The catalog schema, applied into its own database or schema.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/catalog");

pub struct Settings {
    /// How long an unpaid order's reservation holds stock.
    pub reservation_ttl: Duration,
}

pub struct Deps {
    pub db: Database,
    pub bus: SharedBus,
    pub settings: Settings,
}

fn parts(deps: &Deps, store: bus::Store, cache: Arc<ReadCache>) -> (Catalog, Arc<Inventory>) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let catalog = Catalog {
        repo: Arc::new(SqlCatalog {
            db: deps.db.clone(),
        }),
        cache,
        clock: clock.clone(),
        store: store.clone(),
    };
    let inventory = Arc::new(Inventory {
        repo: Arc::new(SqlInventory {
            db: deps.db.clone(),
        }),
        clock,
        store,
        reservation_ttl: deps.settings.reservation_ttl,
    });
    (catalog, inventory)
}

/// Builds the context: subscriptions, routes, the relay and the reservation-expiry sweep.
pub async fn module(deps: Deps) -> anyhow::Result<ContextModule> {
    let (store, relay) = bus::messaging(NAME, deps.db.clone(), deps.bus.clone());
    let cache = Arc::new(ReadCache::new());
    let (catalog, inventory) = parts(&deps, store.clone(), cache.clone());
    deps.bus
        .subscribe(inventory::consumer().bind(inventory.clone(), &store))
        .await?;
    deps.bus
        .subscribe(catalog_app::cache_consumer().bind(
            Arc::new(CacheInvalidation {
                cache: cache.clone(),
            }),
            &store,
        ))
        .await?;

    let sweep_every = (deps.settings.reservation_ttl / 4)
        .clamp(Duration::from_millis(200), Duration::from_secs(30));
    let sweeper = inventory.clone();
    let expiry: platform::module::BackgroundTask = Box::new(move |mut shutdown| {
        Box::pin(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(sweep_every) => {}
                    _ = shutdown.changed() => break,
                }
                if let Err(e) = sweeper.expire_due().await {
                    tracing::warn!(error = %format!("{e:#}"), "reservation expiry failed");
                }
            }
        })
    });
    let state = actix_web::web::Data::new(http::State {
        catalog,
        inventory,
        cache,
    });
    Ok(ContextModule::new(NAME, move |cfg| {
        cfg.app_data(state.clone());
        http::configure(cfg);
    })
    .with_task(relay)
    .with_task(expiry))
}

/// Loads a small demo catalog (idempotent: existing SKUs and slugs are left alone).
pub async fn seed(db: Database, bus: SharedBus) -> anyhow::Result<usize> {
    let deps = Deps {
        db,
        bus,
        settings: Settings {
            reservation_ttl: Duration::from_secs(900),
        },
    };
    let store = bus::Store::new(deps.db.clone(), bus::Outbox::new());
    let (catalog, inventory) = parts(&deps, store, Arc::new(ReadCache::new()));
    application::seed::run(&catalog, &inventory, &Causation::system()).await
}

/// The consumer groups this context runs, with the contract types each handles.
pub fn consumers() -> Vec<bus::Declaration> {
    vec![
        inventory::consumer().declaration(),
        catalog_app::cache_consumer().declaration(),
    ]
}

/// The context's OpenAPI fragment.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <http::ApiDoc as utoipa::OpenApi>::openapi()
}

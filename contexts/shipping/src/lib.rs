//! The shipping bounded context: one shipment per paid order, carrier updates through a
//! checked state machine, tracking numbers with a check digit, and public tracking. Its
//! public face is [`module`], [`openapi`] and [`MIGRATOR`].

mod application;
mod domain;
mod http;
mod infrastructure;

use std::sync::Arc;

use bus::SharedBus;
use kernel::SystemClock;
use platform::db::Database;
use platform::module::ContextModule;
use sqlx::migrate::Migrator;

use application::shipments::{self, Shipments};
use infrastructure::sql_shipments::SqlShipments;

pub const NAME: &str = "shipping";

/// The shipping schema, applied into its own database or schema.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/shipping");

pub struct Settings {
    /// Carrier codes shipments are assigned to (by order id).
    pub carriers: Vec<String>,
}

pub struct Deps {
    pub db: Database,
    pub bus: SharedBus,
    pub settings: Settings,
}

/// Builds the context: subscriptions, routes and the relay.
pub async fn module(deps: Deps) -> anyhow::Result<ContextModule> {
    let (store, relay) = bus::messaging(NAME, deps.db.clone(), deps.bus.clone());
    let shipments = Arc::new(Shipments {
        repo: Arc::new(SqlShipments {
            db: deps.db.clone(),
        }),
        clock: Arc::new(SystemClock),
        store: store.clone(),
        carriers: deps.settings.carriers,
    });
    deps.bus
        .subscribe(shipments::consumer().bind(shipments.clone(), &store))
        .await?;
    let state = actix_web::web::Data::new(http::State { shipments });
    Ok(ContextModule::new(NAME, move |cfg| {
        cfg.app_data(state.clone());
        http::configure(cfg);
    })
    .with_task(relay))
}

/// The consumer groups this context runs, with the contract types each handles.
pub fn consumers() -> Vec<bus::Declaration> {
    vec![shipments::consumer().declaration()]
}

/// The context's OpenAPI fragment.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <http::ApiDoc as utoipa::OpenApi>::openapi()
}

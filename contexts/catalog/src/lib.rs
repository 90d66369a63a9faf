//! The catalog bounded context. Its only public face is [`module`], [`openapi`] and
//! [`MIGRATOR`]; everything else stays inside.

use bus::SharedBus;
use kernel::db::Database;
use kernel::module::ContextModule;
use sqlx::migrate::Migrator;

pub const NAME: &str = "catalog";

/// The catalog schema, applied into its own database or schema.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/catalog");

pub struct Deps {
    pub db: Database,
    pub bus: SharedBus,
}

/// Builds the context: subscriptions registered on the bus, routes and background tasks.
pub async fn module(deps: Deps) -> anyhow::Result<ContextModule> {
    let (_outbox, relay) = bus::messaging(NAME, deps.db.clone(), deps.bus.clone());
    Ok(ContextModule::new(NAME, |_cfg| {}).with_task(relay))
}

#[derive(utoipa::OpenApi)]
#[openapi(tags((name = "catalog", description = "Catalog")))]
struct ApiDoc;

/// The context's OpenAPI fragment (paths under `/api/v1/catalog`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}

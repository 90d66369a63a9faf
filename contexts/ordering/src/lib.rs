//! The ordering bounded context: carts priced from a product projection, checkout with
//! `Idempotency-Key`, payments behind a gateway port, and the checkout saga with its
//! compensations. Its public face is [`module`], [`openapi`] and [`MIGRATOR`].

mod application;
mod domain;
mod http;
mod infrastructure;

use std::sync::Arc;
use std::time::Duration;

use bus::{RetryPolicy, SharedBus};
use kernel::{Clock, SystemClock};
use platform::db::Database;
use platform::module::ContextModule;
use sqlx::migrate::Migrator;

use application::cart::Carts;
use application::checkout::Checkout;
use application::customers::{self, CustomerFeed};
use application::guests::Guests;
use application::payment_events::PaymentEvents;
use application::projection::{self, ProductFeed};
use application::promotions::Promotions;
use application::rates::Rates;
use application::saga::{self, Saga, Timeouts};
use infrastructure::simulated_gateway::SimulatedPaymentGateway;
use infrastructure::sql_carts::SqlCarts;
use infrastructure::sql_customers::SqlCustomers;
use infrastructure::sql_guests::SqlGuests;
use infrastructure::sql_orders::SqlOrders;
use infrastructure::sql_promotions::SqlPromotions;
use infrastructure::sql_provider_events::SqlProviderEvents;
use infrastructure::sql_rates::SqlRates;
use infrastructure::stripe_gateway::StripeGateway;

pub const NAME: &str = "ordering";

/// The ordering schema, applied into its own database or schema.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/ordering");

/// Who takes the payments.
#[derive(Clone, PartialEq, Eq)]
pub enum Payments {
    /// The built-in simulator (`tok_visa`, `tok_declined`, `tok_unavailable`).
    Simulated,
    /// Stripe's API at `api_base` with a secret key (`sk_…`).
    Stripe {
        api_base: String,
        secret_key: String,
    },
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Payments::Simulated => f.write_str("Simulated"),
            Payments::Stripe { api_base, .. } => f
                .debug_struct("Stripe")
                .field("api_base", api_base)
                .field("secret_key", &"<set>")
                .finish(),
        }
    }
}

pub struct Settings {
    /// Who takes the payments.
    pub payments: Payments,
    /// How long catalog holds stock for an unpaid order; a pending order that never got an
    /// answer is given up after this (plus a minute).
    pub reservation_ttl: Duration,
    /// How long a charge the gateway could not answer is retried before the order is
    /// cancelled `payment_unavailable` (keep it below `reservation_ttl`).
    pub payment_retry: Duration,
    /// How long after delivery a customer may ask for a return.
    pub return_window: Duration,
    /// Share of simulated-gateway calls failing as if it were unreachable (fault injection).
    pub payment_fault_rate: f64,
    /// Listed prices include tax (see `domain::pricing`).
    pub prices_include_tax: bool,
    /// Checkout requires an email address identity has verified.
    pub require_verified_email: bool,
    /// How often the saga looks for timed-out waiting states.
    pub sweep_every: Duration,
    /// How long a guest's cart lives after it is opened.
    pub guest_cart_ttl: Duration,
    /// Stripe's webhook signing secrets (`whsec_…`; two while one rotates); none: Stripe's
    /// webhooks are not taken.
    pub stripe_webhook_secrets: Vec<String>,
}

pub struct Deps {
    pub db: Database,
    pub bus: SharedBus,
    pub settings: Settings,
}

/// Builds the context: subscriptions, routes, the relay and the saga's timeout sweeper.
pub async fn module(deps: Deps) -> anyhow::Result<ContextModule> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (store, relay) = bus::messaging(NAME, deps.db.clone(), deps.bus.clone());
    let carts_repo = Arc::new(SqlCarts {
        db: deps.db.clone(),
    });
    let orders = Arc::new(SqlOrders::new(deps.db.clone()));
    let gateway: Arc<dyn application::ports::PaymentGateway> = match &deps.settings.payments {
        Payments::Simulated => Arc::new(SimulatedPaymentGateway {
            db: deps.db.clone(),
            fault_rate: deps.settings.payment_fault_rate,
        }),
        Payments::Stripe {
            api_base,
            secret_key,
        } => Arc::new(StripeGateway::new(api_base, secret_key)?),
    };
    let saga = Arc::new(Saga {
        orders: orders.clone(),
        gateway,
        clock: clock.clone(),
        units: Arc::new(store.clone()),
        timeouts: Timeouts {
            stock: Duration::from_secs(30),
            stock_give_up: deps.settings.reservation_ttl + Duration::from_secs(60),
            payment: Duration::from_secs(15),
            payment_give_up: deps.settings.payment_retry,
            shipment: Duration::from_secs(60),
        },
        gateway_retry: RetryPolicy {
            max_attempts: 3,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            ..RetryPolicy::default()
        },
    });
    deps.bus
        .subscribe(projection::consumer().bind(
            Arc::new(ProductFeed {
                products: carts_repo.clone(),
            }),
            &store,
        ))
        .await?;
    deps.bus
        .subscribe(saga::consumer().bind(saga.clone(), &store))
        .await?;
    let customers = Arc::new(SqlCustomers);
    deps.bus
        .subscribe(customers::consumer().bind(
            Arc::new(CustomerFeed {
                customers: customers.clone(),
            }),
            &store,
        ))
        .await?;

    let sweeper = saga.clone();
    let every = deps.settings.sweep_every;
    let sweep: platform::module::BackgroundTask = Box::new(move |mut shutdown| {
        Box::pin(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.changed() => break,
                }
                if let Err(e) = sweeper.sweep().await {
                    tracing::warn!(error = %format!("{e:#}"), "saga sweep failed");
                }
            }
        })
    });
    let guest_book = Arc::new(SqlGuests {
        db: deps.db.clone(),
    });
    let guests = Arc::new(Guests {
        book: guest_book.clone(),
        clock: clock.clone(),
        cart_ttl: deps.settings.guest_cart_ttl,
    });
    let guest_sweeper = guests.clone();
    // Every minute, or twice per lifetime of a cart that lives less than two.
    let guest_sweep_every = (deps.settings.guest_cart_ttl / 2).min(Duration::from_secs(60));
    let guest_sweep: platform::module::BackgroundTask = Box::new(move |mut shutdown| {
        Box::pin(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(guest_sweep_every) => {}
                    _ = shutdown.changed() => break,
                }
                match guest_sweeper.sweep().await {
                    Ok(0) => {}
                    Ok(swept) => tracing::info!(swept, "expired guest carts swept"),
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "guest cart sweep failed"),
                }
            }
        })
    });
    let promotions = Arc::new(SqlPromotions {
        db: deps.db.clone(),
    });
    let rate_book = Arc::new(SqlRates {
        db: deps.db.clone(),
    });
    let payment_events = PaymentEvents {
        units: Arc::new(store.clone()),
        book: Arc::new(SqlProviderEvents),
        clock: clock.clone(),
    };
    let state = actix_web::web::Data::new(http::State {
        payment_events,
        stripe_webhook_secrets: deps.settings.stripe_webhook_secrets.clone(),
        promotions: Promotions {
            book: promotions.clone(),
            clock: clock.clone(),
        },
        rates: Rates {
            book: rate_book.clone(),
            carts: carts_repo.clone(),
            promotions: promotions.clone(),
            clock: clock.clone(),
            prices_include_tax: deps.settings.prices_include_tax,
        },
        carts: Carts {
            carts: carts_repo.clone(),
            products: carts_repo.clone(),
            clock: clock.clone(),
        },
        guests,
        checkout: Arc::new(Checkout {
            units: Arc::new(store.clone()),
            orders,
            carts: carts_repo,
            rates: rate_book,
            promotions,
            customers,
            guests: guest_book,
            saga,
            clock,
            stock_timeout: Duration::from_secs(30),
            prices_include_tax: deps.settings.prices_include_tax,
            require_verified_email: deps.settings.require_verified_email,
            return_window: deps.settings.return_window,
        }),
    });
    Ok(ContextModule::new(NAME, move |cfg| {
        cfg.app_data(state.clone());
        http::configure(cfg);
    })
    .with_task(relay)
    .with_task(sweep)
    .with_task(guest_sweep))
}

/// Sets demo tax and shipping rates and a demo code (`emporium seed`) where a shop has none;
/// how many were set.
pub async fn seed(db: Database) -> anyhow::Result<usize> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let promotions = Arc::new(SqlPromotions { db: db.clone() });
    let rates = Rates {
        book: Arc::new(SqlRates { db: db.clone() }),
        carts: Arc::new(SqlCarts { db }),
        promotions: promotions.clone(),
        clock: clock.clone(),
        prices_include_tax: false,
    };
    let set = rates.seed_demo().await.map_err(anyhow::Error::new)?;
    let codes = Promotions {
        book: promotions,
        clock,
    };
    let welcome = codes.seed_demo().await.map_err(anyhow::Error::new)?;
    Ok(set + welcome)
}

/// The consumer groups this context runs, with the contract types each handles.
pub fn consumers() -> Vec<bus::Declaration> {
    vec![
        projection::consumer().declaration(),
        saga::consumer().declaration(),
        customers::consumer().declaration(),
    ]
}

/// The context's OpenAPI fragment.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <http::ApiDoc as utoipa::OpenApi>::openapi()
}

//! The identity bounded context: accounts, argon2id passwords, Ed25519 access tokens with a
//! published JWKS, rotating refresh tokens, roles, and the customer's order history (a
//! projection of ordering and shipping events). Its public face is [`module`], [`openapi`]
//! and [`MIGRATOR`].

mod application;
mod domain;
mod http;
mod infrastructure;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bus::SharedBus;
use kernel::{Clock, SystemClock};
use platform::auth::LocalKeys;
use platform::db::Database;
use platform::module::ContextModule;
use sqlx::migrate::Migrator;

use application::accounts::Accounts;
use application::address_book::AddressBooks;
use application::email_verifications::{EmailVerifications, LinkIssuer};
use application::order_history::{self, OrderHistoryProjection};
use application::ports::LoginThrottle;
pub use application::service_clients::ServiceClient;
use application::service_clients::ServiceTokens;
use application::sessions::Sessions;
use infrastructure::argon::Argon2idHasher;
use infrastructure::keys::TokenSigner;
use infrastructure::sql_address_book::SqlAddressBook;
use infrastructure::sql_email_verifications::SqlEmailVerifications;
use infrastructure::sql_order_history::SqlOrderHistory;
use infrastructure::sql_sessions::SqlSessionRepository;
use infrastructure::sql_users::SqlUserRepository;
use infrastructure::throttle::{Limits, MemoryThrottle, SharedThrottle};

pub const NAME: &str = "identity";

/// The identity schema, applied into its own database or schema.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/identity");

pub struct Settings {
    pub data_dir: PathBuf,
    /// Ed25519 PKCS#8 PEM; unset = generated once into `data_dir`.
    pub private_key_pem: Option<String>,
    pub access_token_ttl: Duration,
    /// Email and password of an account that must exist with the admin role.
    pub bootstrap_admin: Option<(String, String)>,
    /// Failed log-ins allowed per (account, client address) and per client address in 15
    /// minutes.
    pub login_failures_per_account: u32,
    pub login_failures_per_ip: u32,
    /// Accounts one client address may create in 15 minutes (`None`: unlimited).
    pub sign_ups_per_client: Option<u32>,
    /// Password reset requests per address and per client address in 15 minutes.
    pub resets_per_address: Option<u32>,
    pub resets_per_client: Option<u32>,
    /// How long a reset token works.
    pub password_reset_ttl: Duration,
    /// How long an email verification link works.
    pub email_verification_ttl: Duration,
    /// Password hashes computed at once, and how many more may wait.
    pub hash_threads: usize,
    pub hash_queue: usize,
    /// Services that may ask for client-credentials tokens.
    pub service_clients: Vec<ServiceClient>,
}

pub struct Deps {
    pub db: Database,
    pub bus: SharedBus,
    /// Filled with identity's public keys, for in-process token verification.
    pub keys: Arc<LocalKeys>,
    /// Redis, when every instance must see the same log-in and sign-up counts.
    pub shared: Option<Arc<platform::shared::SharedState>>,
    pub settings: Settings,
}

/// Builds the context: keys published, admin ensured, projection subscribed, routes, tasks.
pub async fn module(deps: Deps) -> anyhow::Result<ContextModule> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (store, relay) = bus::messaging(NAME, deps.db.clone(), deps.bus.clone());
    let signer = Arc::new(TokenSigner::load(
        deps.settings.private_key_pem.as_deref(),
        &deps.settings.data_dir,
        deps.settings.access_token_ttl,
        clock.clone(),
    )?);
    signer.publish(&deps.db).await?;
    deps.keys.set(&signer.jwks(&deps.db).await?);
    tracing::info!(kid = signer.kid(), "access tokens signed with Ed25519");

    let users = Arc::new(SqlUserRepository {
        db: deps.db.clone(),
    });
    let hasher = Arc::new(Argon2idHasher::new(
        deps.settings.hash_threads,
        deps.settings.hash_queue,
    )?);
    let limits = Limits {
        window: Duration::from_secs(15 * 60),
        per_account_and_client: deps.settings.login_failures_per_account,
        per_client: deps.settings.login_failures_per_ip,
        sign_ups_per_client: deps.settings.sign_ups_per_client,
        resets_per_address: deps.settings.resets_per_address,
        resets_per_client: deps.settings.resets_per_client,
    };
    let throttle: Arc<dyn LoginThrottle> = match deps.shared {
        Some(state) => Arc::new(SharedThrottle { limits, state }),
        None => Arc::new(MemoryThrottle::new(limits)),
    };
    let resets = application::password_resets::PasswordResets {
        users: users.clone(),
        resets: Arc::new(infrastructure::sql_password_resets::SqlPasswordResets {
            db: deps.db.clone(),
        }),
        hasher: hasher.clone(),
        throttle: throttle.clone(),
        clock: clock.clone(),
        store: store.clone(),
        ttl: deps.settings.password_reset_ttl,
    };
    let links = LinkIssuer {
        verifications: Arc::new(SqlEmailVerifications {
            db: deps.db.clone(),
        }),
        ttl: deps.settings.email_verification_ttl,
    };
    let profiles = moka::future::Cache::builder()
        .max_capacity(100_000)
        .time_to_live(Duration::from_secs(5))
        .build();
    let history_repo = Arc::new(SqlOrderHistory {
        db: deps.db.clone(),
    });
    let session_repo = Arc::new(SqlSessionRepository {
        db: deps.db.clone(),
    });
    let verifications = EmailVerifications {
        history: history_repo.clone(),
        sessions: session_repo.clone(),
        links: links.clone(),
        users: users.clone(),
        hasher: hasher.clone(),
        throttle: throttle.clone(),
        clock: clock.clone(),
        store: store.clone(),
        profiles: profiles.clone(),
    };
    let accounts = Accounts {
        profiles,
        users: users.clone(),
        hasher: hasher.clone(),
        throttle: throttle.clone(),
        clock: clock.clone(),
        store: store.clone(),
        links,
    };
    if let Some((email, password)) = &deps.settings.bootstrap_admin {
        accounts.ensure_admin(email, password).await?;
    }
    let sessions = Sessions {
        users,
        sessions: session_repo,
        hasher,
        issuer: signer.clone(),
        throttle,
        clock: clock.clone(),
    };
    deps.bus
        .subscribe(order_history::consumer().bind(
            Arc::new(OrderHistoryProjection {
                repository: history_repo.clone(),
            }),
            &store,
        ))
        .await?;

    let state = actix_web::web::Data::new(http::State {
        accounts,
        sessions,
        resets,
        verifications,
        addresses: AddressBooks {
            books: Arc::new(SqlAddressBook {
                db: deps.db.clone(),
            }),
            clock: clock.clone(),
            store: store.clone(),
        },
        history: OrderHistoryProjection {
            repository: history_repo,
        },
        signer: signer.clone(),
        db: deps.db.clone(),
        service_tokens: ServiceTokens {
            clients: deps.settings.service_clients,
            issuer: signer.clone(),
        },
    });
    // Retired keys leave the in-process key set once their tokens have expired.
    let (keys, db) = (deps.keys.clone(), deps.db.clone());
    let key_refresh: platform::module::BackgroundTask = Box::new(move |mut shutdown| {
        Box::pin(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                    _ = shutdown.changed() => break,
                }
                match signer.jwks(&db).await {
                    Ok(set) => keys.set(&set),
                    Err(e) => tracing::warn!(error = %e, "cannot refresh key set"),
                }
            }
        })
    });
    Ok(ContextModule::new(NAME, move |cfg| {
        cfg.app_data(state.clone());
        http::configure(cfg);
    })
    .with_task(relay)
    .with_task(key_refresh))
}

/// The consumer groups this context runs, with the contract types each handles.
pub fn consumers() -> Vec<bus::Declaration> {
    vec![order_history::consumer().declaration()]
}

/// The context's OpenAPI fragment.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <http::ApiDoc as utoipa::OpenApi>::openapi()
}

//! Wiring: each enabled context gets its own database (connected and migrated), the bus and
//! the token verifier, and returns its module.

use std::sync::Arc;

use anyhow::Context as _;
use bus::SharedBus;
use platform::auth::{KeySource, LocalKeys, RemoteJwks, TokenVerifier};
use platform::db::{Database, DatabaseTarget};
use platform::module::ContextModule;
use sqlx::migrate::Migrator;

use crate::config::{Config, ContextName};

pub struct Wired {
    pub modules: Vec<ContextModule>,
    pub databases: Vec<(ContextName, Database)>,
    pub verifier: TokenVerifier,
}

pub fn migrator(ctx: ContextName) -> &'static Migrator {
    match ctx {
        ContextName::Identity => &identity::MIGRATOR,
        ContextName::Catalog => &catalog::MIGRATOR,
        ContextName::Ordering => &ordering::MIGRATOR,
        ContextName::Shipping => &shipping::MIGRATOR,
        ContextName::Notifications => &notifications::MIGRATOR,
    }
}

pub fn target(config: &Config, ctx: ContextName) -> DatabaseTarget {
    DatabaseTarget::resolve(ctx.as_str(), &config.data_dir, config.database_url_for(ctx))
}

/// Connects and migrates one context's database.
pub async fn open_database(config: &Config, ctx: ContextName) -> anyhow::Result<Database> {
    let target = target(config, ctx);
    let db = Database::connect(&target)
        .await
        .with_context(|| format!("{} database ({})", ctx.as_str(), target.describe()))?;
    db.migrate(migrator(ctx))
        .await
        .with_context(|| format!("{} migrations", ctx.as_str()))?;
    tracing::info!(context = ctx.as_str(), database = %target.describe(), "database ready");
    Ok(db)
}

/// What notifications needs from the configuration.
pub fn notification_settings(config: &Config) -> notifications::Settings {
    notifications::Settings {
        smtp_url: config.smtp_url.clone(),
        mail_drop: config.data_dir.join("mail"),
        mail_from: config.mail_from.clone(),
        templates_dir: config.templates_dir.clone(),
        public_url: config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.listen)),
        retry_max_delay: config.mail_retry_max,
        webhook_retry: config.webhook_retry,
        webhook_allow_private: config.webhook_allow_private,
    }
}

pub async fn wire(
    config: &Config,
    bus: SharedBus,
    shared: Option<Arc<platform::shared::SharedState>>,
) -> anyhow::Result<Wired> {
    let local_keys = Arc::new(LocalKeys::new());
    let keys: Arc<dyn KeySource> = if config.runs(ContextName::Identity) {
        local_keys.clone()
    } else if let Some(url) = &config.jwks_url {
        Arc::new(RemoteJwks::new(url.clone()))
    } else {
        anyhow::bail!("EMPORIUM_JWKS_URL: must be set when identity does not run in this process");
    };
    let verifier = TokenVerifier::new(keys);
    let mut modules = Vec::new();
    let mut databases = Vec::new();
    for &ctx in &config.contexts {
        let db = open_database(config, ctx).await?;
        let module = match ctx {
            ContextName::Identity => {
                identity::module(identity::Deps {
                    db: db.clone(),
                    bus: bus.clone(),
                    keys: local_keys.clone(),
                    shared: shared.clone(),
                    settings: identity::Settings {
                        data_dir: config.data_dir.clone(),
                        private_key_pem: config.jwt_private_key.clone(),
                        access_token_ttl: config.access_token_ttl,
                        bootstrap_admin: config.bootstrap_admin.clone(),
                        login_failures_per_account: 5,
                        login_failures_per_ip: 50,
                        sign_ups_per_client: config
                            .rate_limit
                            .then_some(config.sign_ups_per_client),
                        // Reset requests per address and per client address in 15 minutes.
                        resets_per_address: config.rate_limit.then_some(5),
                        resets_per_client: config.rate_limit.then_some(30),
                        password_reset_ttl: config.password_reset_ttl,
                        email_verification_ttl: config.email_verification_ttl,
                        hash_threads: config.password_hash_threads,
                        hash_queue: config.password_hash_queue,
                        service_clients: config.service_clients.clone(),
                    },
                })
                .await?
            }
            ContextName::Catalog => {
                catalog::module(catalog::Deps {
                    db: db.clone(),
                    bus: bus.clone(),
                    settings: catalog::Settings {
                        reservation_ttl: config.reservation_ttl,
                    },
                })
                .await?
            }
            ContextName::Ordering => {
                ordering::module(ordering::Deps {
                    db: db.clone(),
                    bus: bus.clone(),
                    settings: ordering::Settings {
                        payments: config.payments.clone(),
                        reservation_ttl: config.reservation_ttl,
                        payment_retry: config.payment_retry,
                        return_window: config.return_window,
                        payment_fault_rate: config.payment_fault_rate,
                        prices_include_tax: config.prices_include_tax,
                        require_verified_email: config.require_verified_email,
                        sweep_every: std::time::Duration::from_secs(1),
                        guest_cart_ttl: config.guest_cart_ttl,
                        stripe_webhook_secrets: config.stripe_webhook_secrets.clone(),
                    },
                })
                .await?
            }
            ContextName::Shipping => {
                shipping::module(shipping::Deps {
                    db: db.clone(),
                    bus: bus.clone(),
                    settings: shipping::Settings {
                        carriers: config.carriers.clone(),
                    },
                })
                .await?
            }
            ContextName::Notifications => {
                notifications::module(notifications::Deps {
                    db: db.clone(),
                    bus: bus.clone(),
                    settings: notification_settings(config),
                })
                .await?
            }
        };
        modules.push(module);
        databases.push((ctx, db));
    }
    Ok(Wired {
        modules,
        databases,
        verifier,
    })
}

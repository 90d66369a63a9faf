//! The notifications bounded context: tells customers what happened (welcome, order
//! confirmed or cancelled, shipment dispatched or delivered) by email. It joins by
//! subscription alone: a projection of identity's, ordering's and shipping's events fills a
//! delivery queue, which a sender drains through SMTP or a mail-drop directory, with retries.
//! Its public face is [`module`], [`openapi`] and [`MIGRATOR`].

mod application;
mod domain;
mod http;
mod infrastructure;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bus::SharedBus;
use kernel::{Clock, SystemClock};
use platform::db::Database;
use platform::module::ContextModule;
use sqlx::migrate::Migrator;
use tokio::sync::Notify;

use application::messages::Messages;
use application::outbound::Outbound;
use application::ports::Sender;
use application::projection::{self, Projection};
use application::webhook_dispatch::{self, Dispatcher, Fanout};
use application::webhooks::Webhooks;
use infrastructure::mail::{parse_from, MailDrop, SmtpSender};
use infrastructure::sql::SqlNotifications;
use infrastructure::templates::Templates;
use infrastructure::webhook_http::HttpWebhooks;
use infrastructure::webhook_sql::SqlWebhooks;

pub const NAME: &str = "notifications";

/// The notifications schema, applied into its own database or schema.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/notifications");

pub struct Settings {
    /// `smtp://host:port` or `smtps://user:pass@host`; `None` writes `.eml` files to
    /// `mail_drop` instead.
    pub smtp_url: Option<String>,
    /// The mail drop directory (used when no SMTP URL is set).
    pub mail_drop: PathBuf,
    /// The From mailbox, e.g. `Shop <shop@example.com>`.
    pub mail_from: String,
    /// A directory whose template files replace the built-in ones of the same name.
    pub templates_dir: Option<PathBuf>,
    /// The shop's public base URL, for links in messages (tracking).
    pub public_url: String,
    /// The longest wait between two attempts of one message.
    pub retry_max_delay: Duration,
    /// How long a webhook delivery is retried (and an endpoint may fail before it is off).
    pub webhook_retry: Duration,
    /// Webhooks may target loopback, private and link-local addresses.
    pub webhook_allow_private: bool,
}

pub struct Deps {
    pub db: Database,
    pub bus: SharedBus,
    pub settings: Settings,
}

/// Checks a From mailbox (`EMPORIUM_MAIL_FROM`) as the server will use it.
pub fn check_mail_from(raw: &str) -> Result<(), String> {
    parse_from(raw).map(|_| ()).map_err(|e| e.to_string())
}

/// Builds the context: the projection subscribed, the sender task, routes, the relay.
pub async fn module(deps: Deps) -> anyhow::Result<ContextModule> {
    let settings = deps.settings;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (store, relay) = bus::messaging(NAME, deps.db.clone(), deps.bus.clone());
    let sql = Arc::new(SqlNotifications {
        db: deps.db.clone(),
    });
    let from =
        parse_from(&settings.mail_from).map_err(|e| anyhow::anyhow!("EMPORIUM_MAIL_FROM: {e}"))?;
    let sender: Arc<dyn Sender> = match &settings.smtp_url {
        Some(url) => {
            let smtp = SmtpSender::new(url, from, Duration::from_secs(20))?;
            tracing::info!("notifications: sending through SMTP");
            Arc::new(smtp)
        }
        None => {
            tracing::info!(dir = %settings.mail_drop.display(), "notifications: no EMPORIUM_SMTP_URL; writing messages to the mail drop");
            Arc::new(MailDrop::new(settings.mail_drop.clone(), from)?)
        }
    };
    let templates = Arc::new(
        Templates::load(settings.templates_dir.as_deref())
            .map_err(|e| anyhow::anyhow!("EMPORIUM_TEMPLATES_DIR: {e:#}"))?,
    );
    let wake = Arc::new(Notify::new());
    deps.bus
        .subscribe(projection::consumer().bind(
            Arc::new(Projection {
                projections: sql.clone(),
                deliveries: sql.clone(),
                clock: clock.clone(),
                wake: wake.clone(),
                public_url: settings.public_url.clone(),
            }),
            &store,
        ))
        .await?;
    let outbound = Arc::new(Outbound {
        deliveries: sql.clone(),
        renderer: templates,
        sender,
        clock: clock.clone(),
        store: store.clone(),
        schedule: domain::RetrySchedule {
            max_delay: settings.retry_max_delay,
            ..domain::RetrySchedule::default()
        },
        wake: wake.clone(),
        poll: Duration::from_secs(1),
        lease: Duration::from_secs(120),
    });
    // Outbound webhooks: every event an endpoint hears becomes a delivery; the dispatcher
    // signs and sends them.
    let hooks = Arc::new(SqlWebhooks {
        db: deps.db.clone(),
    });
    let transport = Arc::new(HttpWebhooks::new(settings.webhook_allow_private)?);
    let hook_wake = Arc::new(Notify::new());
    deps.bus
        .subscribe(webhook_dispatch::consumer().bind(
            Arc::new(Fanout {
                store: hooks.clone(),
                clock: clock.clone(),
                wake: hook_wake.clone(),
            }),
            &store,
        ))
        .await?;
    let dispatcher = Arc::new(Dispatcher {
        store: hooks.clone(),
        transport: transport.clone(),
        clock: clock.clone(),
        units: store.clone(),
        mail: sql.clone(),
        mail_wake: wake.clone(),
        schedule: domain::webhook::WebhookSchedule::with_window(settings.webhook_retry),
        wake: hook_wake.clone(),
        poll: Duration::from_secs(1),
        lease: Duration::from_secs(60),
        busy: std::sync::Mutex::new(std::collections::HashSet::new()),
        slots: Dispatcher::slots(),
    });
    let webhooks = Arc::new(Webhooks {
        store: hooks,
        transport,
        clock: clock.clone(),
        catalogue: webhook_dispatch::catalogue(),
        allow_private: settings.webhook_allow_private,
        wake: hook_wake,
    });
    if settings.webhook_allow_private {
        tracing::warn!("EMPORIUM_WEBHOOK_ALLOW_PRIVATE=true: webhooks may reach loopback, private and link-local addresses");
    }
    let messages = Arc::new(Messages {
        deliveries: sql.clone(),
        projections: sql,
        clock,
        wake,
    });
    let state = actix_web::web::Data::new(http::State { messages });
    let hook_state = actix_web::web::Data::new(http::webhooks::WebhookState { webhooks });
    Ok(ContextModule::new(NAME, move |cfg| {
        cfg.app_data(state.clone());
        cfg.app_data(hook_state.clone());
        http::configure(cfg);
        http::webhooks::configure(cfg);
    })
    .with_task(relay)
    .with_task(Box::new(move |stop| Box::pin(outbound.run(stop))))
    .with_task(Box::new(move |stop| Box::pin(dispatcher.run(stop)))))
}

/// The consumer groups this context runs, with the contract types each handles.
pub fn consumers() -> Vec<bus::Declaration> {
    vec![
        projection::consumer().declaration(),
        webhook_dispatch::consumer().declaration(),
    ]
}

/// The event types a webhook endpoint can hear, in the catalogue's order.
pub fn webhook_event_types() -> Vec<&'static str> {
    webhook_dispatch::catalogue()
}

/// The context's OpenAPI fragment.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = <http::ApiDoc as utoipa::OpenApi>::openapi();
    doc.merge(<http::webhooks::WebhookDoc as utoipa::OpenApi>::openapi());
    doc
}

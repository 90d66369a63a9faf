//! Configuration from `EMPORIUM_*` variables, validated at start-up. Every problem is
//! reported as one line naming the variable and what is wrong with it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContextName {
    Identity,
    Catalog,
    Ordering,
    Shipping,
    Notifications,
}

impl ContextName {
    pub const ALL: [ContextName; 5] = [
        ContextName::Identity,
        ContextName::Catalog,
        ContextName::Ordering,
        ContextName::Shipping,
        ContextName::Notifications,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            ContextName::Identity => "identity",
            ContextName::Catalog => "catalog",
            ContextName::Ordering => "ordering",
            ContextName::Shipping => "shipping",
            ContextName::Notifications => "notifications",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw.trim())
    }

    /// The context that serves `/api/v1/<prefix>/`: its own name, or `webhooks`, which
    /// notifications serves.
    pub fn serving(prefix: &str) -> Option<Self> {
        match prefix {
            "webhooks" => Some(ContextName::Notifications),
            other => Self::parse(other),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusKind {
    Memory,
    Rabbitmq,
    Sqs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Shared database URL (unset: SQLite files in the data dir).
    pub database_url: Option<String>,
    /// Per-context overrides.
    pub context_database_urls: BTreeMap<ContextName, String>,
    pub bus: BusKind,
    pub amqp_url: Option<String>,
    /// Prefix of the exchanges and queues of this deployment.
    pub amqp_namespace: String,
    /// Idle queues and exchanges are deleted after this long (short-lived deployments only).
    pub amqp_queue_expires: Option<Duration>,
    /// SNS/SQS endpoint override (an emulator); unset: AWS.
    pub sqs_endpoint: Option<String>,
    /// Unset: the AWS SDK's own (`AWS_REGION`, profile).
    pub sqs_region: Option<String>,
    /// Prefix of the topic and queues of this deployment.
    pub sqs_namespace: String,
    pub contexts: Vec<ContextName>,
    pub jwks_url: Option<String>,
    /// Each context's instances (`catalog=http://a:8080|http://b:8080`).
    pub gateway_upstreams: BTreeMap<ContextName, Vec<String>>,
    pub jwt_private_key: Option<String>,
    pub access_token_ttl: Duration,
    pub log_format: LogFormat,
    pub rate_limit: bool,
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    pub cors_origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` names the client (the gateway, a load balancer).
    pub trusted_proxies: platform::client_ip::TrustedProxies,
    pub body_limit: usize,
    pub otlp_endpoint: Option<String>,
    pub bootstrap_admin: Option<(String, String)>,
    pub reservation_ttl: Duration,
    /// How long a charge the payment gateway could not answer is retried (with backoff)
    /// before the order is cancelled `payment_unavailable`; below the reservation TTL.
    pub payment_retry: Duration,
    /// How long after delivery (or dispatch, while on its way) a customer may ask to return an
    /// order (`EMPORIUM_RETURN_WINDOW_DAYS`, default 30; admins may open a return any time).
    pub return_window: Duration,
    /// Share of simulated-gateway calls that fail as if the gateway were unreachable (half of
    /// them after the gateway acted: a lost answer). Fault injection; 0 in production.
    pub payment_fault_rate: f64,
    /// Who takes payments (`EMPORIUM_PAYMENTS`: `simulated`, the default, or `stripe` with
    /// `EMPORIUM_STRIPE_SECRET_KEY` and optionally `EMPORIUM_STRIPE_API_BASE`).
    pub payments: ordering::Payments,
    /// Stripe's webhook signing secrets (`EMPORIUM_STRIPE_WEBHOOK_SECRETS`, comma-separated
    /// `whsec_…`, or `_FILE`); empty: `POST /api/v1/ordering/webhooks/stripe` answers 404.
    pub stripe_webhook_secrets: Vec<String>,
    /// Listed prices, fixed discounts and shipping rates include tax
    /// (`EMPORIUM_PRICES_INCLUDE_TAX=true`); by default they do not, and tax is added.
    pub prices_include_tax: bool,
    /// Customers must have verified their email address before they may check out
    /// (`EMPORIUM_REQUIRE_VERIFIED_EMAIL=true`; off by default).
    pub require_verified_email: bool,
    pub carriers: Vec<String>,
    pub shutdown_timeout: Duration,
    /// Accounts one client address may create per 15 minutes (with the rate limit on).
    pub sign_ups_per_client: u32,
    /// How long a password reset link works (`EMPORIUM_PASSWORD_RESET_TTL_SECS`, 30 minutes).
    pub password_reset_ttl: Duration,
    /// How long an email verification link works (`EMPORIUM_EMAIL_VERIFICATION_TTL_SECS`,
    /// 24 hours).
    pub email_verification_ttl: Duration,
    /// How long a guest's cart (a cart token) lives (`EMPORIUM_GUEST_CART_TTL_SECS`, 7 days).
    pub guest_cart_ttl: Duration,
    /// Password hashes computed at once (default: the number of cores) and how many more
    /// may wait before log-ins and sign-ups are refused with 503.
    pub password_hash_threads: usize,
    pub password_hash_queue: usize,
    /// How long an event handler failing transiently is retried before dead-lettering.
    pub transient_retry: Duration,
    /// Connection limits of every listener: time to receive a request's headers, time to
    /// receive its body, idle keep-alive, open connections per process.
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub keep_alive: Duration,
    pub max_connections: usize,
    /// The gateway's time limit for an upstream's answer (then 504).
    pub upstream_timeout: Duration,
    /// Per-context limits that replace `upstream_timeout` for that context's upstreams
    /// (`EMPORIUM_GATEWAY_TIMEOUTS=catalog=2,ordering=20`, seconds).
    pub upstream_timeouts: BTreeMap<ContextName, Duration>,
    /// How often the gateway resolves upstream host names into instances again.
    pub gateway_resolve_every: Duration,
    /// A second listener for `/metrics` and the health checks only.
    pub ops_listen: Option<SocketAddr>,
    /// A bearer token that reads `/metrics` on the public listener.
    pub metrics_token: Option<String>,
    /// Notifications send through this SMTP server; unset: `.eml` files in `<data dir>/mail`.
    pub smtp_url: Option<String>,
    /// The From mailbox of every message.
    pub mail_from: String,
    /// Template files that replace the built-in ones of the same name.
    pub templates_dir: Option<PathBuf>,
    /// The shop's public base URL, for links in messages (default: `http://<listen>`).
    pub public_url: Option<String>,
    /// The longest wait between two attempts of one message.
    pub mail_retry_max: Duration,
    /// How long a webhook delivery is retried, and how long an endpoint may fail before it is
    /// turned off (`EMPORIUM_WEBHOOK_RETRY_HOURS`, fractions allowed; default 24).
    pub webhook_retry: Duration,
    /// Webhooks may target loopback, private and link-local addresses
    /// (`EMPORIUM_WEBHOOK_ALLOW_PRIVATE=true`; for tests and closed networks only).
    pub webhook_allow_private: bool,
    /// Redis for state every instance shares (rate limits, log-in throttles); unset: each
    /// process keeps its own.
    pub redis_url: Option<String>,
    /// Prefix of this deployment's Redis keys.
    pub redis_namespace: String,
    /// Services identity issues client-credentials tokens to (`EMPORIUM_SERVICE_CLIENTS`).
    pub service_clients: Vec<identity::ServiceClient>,
    /// This process's own client id and secret, when it calls contexts as a service (the
    /// gateway's dashboard).
    pub service_credentials: Option<(String, String)>,
    /// How long the dashboard waits for the contexts before it answers with what arrived.
    pub dashboard_budget: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database", &self.database_url.as_ref().map(|_| "<set>"))
            .field("bus", &self.bus)
            .field("contexts", &self.contexts)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults for tests and tools: everything local, data in `data_dir`.
    pub fn local(data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir,
            database_url: None,
            context_database_urls: BTreeMap::new(),
            bus: BusKind::Memory,
            amqp_url: None,
            amqp_namespace: "emporium".to_owned(),
            amqp_queue_expires: None,
            sqs_endpoint: None,
            sqs_region: None,
            sqs_namespace: "emporium".to_owned(),
            contexts: ContextName::ALL.to_vec(),
            jwks_url: None,
            gateway_upstreams: BTreeMap::new(),
            jwt_private_key: None,
            access_token_ttl: Duration::from_secs(15 * 60),
            log_format: LogFormat::Text,
            rate_limit: true,
            rate_limit_per_second: 50,
            rate_limit_burst: 100,
            cors_origins: Vec::new(),
            trusted_proxies: platform::client_ip::TrustedProxies::default(),
            body_limit: platform::http::DEFAULT_BODY_LIMIT,
            otlp_endpoint: None,
            bootstrap_admin: None,
            reservation_ttl: Duration::from_secs(15 * 60),
            payment_retry: Duration::from_secs(5 * 60),
            return_window: Duration::from_secs(30 * 86_400),
            payment_fault_rate: 0.0,
            payments: ordering::Payments::Simulated,
            stripe_webhook_secrets: Vec::new(),
            prices_include_tax: false,
            require_verified_email: false,
            carriers: vec!["EMP".to_owned()],
            shutdown_timeout: Duration::from_secs(30),
            sign_ups_per_client: 10,
            password_reset_ttl: Duration::from_secs(1800),
            email_verification_ttl: Duration::from_secs(24 * 3600),
            guest_cart_ttl: Duration::from_secs(7 * 86_400),
            password_hash_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            password_hash_queue: 64,
            transient_retry: Duration::from_secs(15 * 60),
            header_timeout: Duration::from_secs(5),
            body_timeout: platform::http::DEFAULT_BODY_TIMEOUT,
            keep_alive: Duration::from_secs(15),
            max_connections: 10_000,
            upstream_timeout: Duration::from_secs(30),
            upstream_timeouts: BTreeMap::new(),
            gateway_resolve_every: Duration::from_secs(10),
            ops_listen: None,
            metrics_token: None,
            smtp_url: None,
            mail_from: "Emporium <shop@localhost>".to_owned(),
            templates_dir: None,
            public_url: None,
            mail_retry_max: Duration::from_secs(300),
            webhook_retry: Duration::from_secs(24 * 3600),
            webhook_allow_private: false,
            redis_url: None,
            redis_namespace: "emporium".to_owned(),
            service_clients: Vec::new(),
            service_credentials: None,
            dashboard_budget: Duration::from_millis(300),
        }
    }

    pub fn from_env() -> Result<Self, Vec<String>> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        // Secrets may come from a file named by `<VAR>_FILE`.
        let secret = |name: &str, errors: &mut Vec<String>| -> Option<String> {
            if let Some(v) = get(name) {
                return Some(v);
            }
            let file_var = format!("{name}_FILE");
            let path = get(&file_var)?;
            match std::fs::read_to_string(&path) {
                Ok(v) => Some(v.trim_end_matches(['\n', '\r']).to_owned()),
                Err(e) => {
                    errors.push(format!("{file_var}: cannot read {path}: {e}"));
                    None
                }
            }
        };
        let mut c = Self::local(PathBuf::from("./data"));

        if let Some(v) = get("EMPORIUM_LISTEN") {
            match v.parse() {
                Ok(addr) => c.listen = addr,
                Err(_) => errors.push(format!(
                    "EMPORIUM_LISTEN: {v:?} is not an address like 127.0.0.1:8080"
                )),
            }
        }
        if let Some(v) = get("EMPORIUM_DATA_DIR") {
            c.data_dir = PathBuf::from(v);
        }
        let check_url = |var: &str, url: &str, errors: &mut Vec<String>| {
            let ok = url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:");
            if !ok {
                errors.push(format!(
                    "{var}: must start with postgres://, postgresql:// or sqlite:"
                ));
            }
            ok
        };
        if let Some(v) = secret("EMPORIUM_DATABASE_URL", &mut errors) {
            if check_url("EMPORIUM_DATABASE_URL", &v, &mut errors) {
                c.database_url = Some(v);
            }
        }
        for ctx in ContextName::ALL {
            let var = format!("EMPORIUM_{}_DATABASE_URL", ctx.as_str().to_uppercase());
            if let Some(v) = secret(&var, &mut errors) {
                if check_url(&var, &v, &mut errors) {
                    c.context_database_urls.insert(ctx, v);
                }
            }
        }
        if let Some(v) = get("EMPORIUM_BUS") {
            match v.as_str() {
                "memory" => c.bus = BusKind::Memory,
                "rabbitmq" => c.bus = BusKind::Rabbitmq,
                "sqs" => c.bus = BusKind::Sqs,
                other => errors.push(format!(
                    "EMPORIUM_BUS: {other:?} is not one of memory, rabbitmq, sqs"
                )),
            }
        }
        c.amqp_url = secret("EMPORIUM_AMQP_URL", &mut errors);
        if c.bus == BusKind::Rabbitmq && c.amqp_url.is_none() {
            c.amqp_url = Some("amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
        }
        for (var, field) in [
            ("EMPORIUM_AMQP_NAMESPACE", &mut c.amqp_namespace),
            ("EMPORIUM_SQS_NAMESPACE", &mut c.sqs_namespace),
        ] {
            if let Some(v) = get(var) {
                if !v.is_empty()
                    && v.len() <= 64
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    *field = v;
                } else {
                    errors.push(format!("{var}: up to 64 letters, digits, '-' or '_'"));
                }
            }
        }
        c.sqs_endpoint = get("EMPORIUM_SQS_ENDPOINT");
        if let Some(v) = &c.sqs_endpoint {
            if !(v.starts_with("http://") || v.starts_with("https://")) {
                errors.push("EMPORIUM_SQS_ENDPOINT: must be an http(s) URL".to_owned());
            }
        }
        c.sqs_region = get("EMPORIUM_SQS_REGION");
        if let Some(v) = get("EMPORIUM_AMQP_QUEUE_EXPIRES_SECS") {
            match v.parse::<u64>() {
                Ok(secs) if (10..=604_800).contains(&secs) => {
                    c.amqp_queue_expires = Some(Duration::from_secs(secs));
                }
                _ => errors.push(format!(
                    "EMPORIUM_AMQP_QUEUE_EXPIRES_SECS: {v:?} must be a number of seconds from 10 to 604800"
                )),
            }
        }
        if let Some(v) = get("EMPORIUM_CONTEXTS") {
            match parse_contexts(&v) {
                Ok(list) => c.contexts = list,
                Err(e) => errors.push(format!("EMPORIUM_CONTEXTS: {e}")),
            }
        }
        c.jwks_url = get("EMPORIUM_JWKS_URL");
        if let Some(url) = &c.jwks_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                errors.push("EMPORIUM_JWKS_URL: must be an http(s) URL".to_owned());
            }
        }
        if let Some(v) = get("EMPORIUM_GATEWAY_UPSTREAMS") {
            match parse_upstreams(&v) {
                Ok(map) => c.gateway_upstreams = map,
                Err(e) => errors.push(format!("EMPORIUM_GATEWAY_UPSTREAMS: {e}")),
            }
        }
        if let Some(v) = get("EMPORIUM_GATEWAY_TIMEOUTS") {
            match parse_timeouts(&v) {
                Ok(map) => c.upstream_timeouts = map,
                Err(e) => errors.push(format!("EMPORIUM_GATEWAY_TIMEOUTS: {e}")),
            }
        }
        c.jwt_private_key = secret("EMPORIUM_JWT_PRIVATE_KEY", &mut errors);
        if let Some(v) = get("EMPORIUM_ACCESS_TOKEN_TTL_SECS") {
            match v.parse::<u64>() {
                Ok(n) if (30..=86_400).contains(&n) => c.access_token_ttl = Duration::from_secs(n),
                _ => errors.push(format!(
                    "EMPORIUM_ACCESS_TOKEN_TTL_SECS: {v:?} must be a number of seconds from 30 to 86400"
                )),
            }
        }
        if let Some(v) = get("EMPORIUM_LOG_FORMAT") {
            match v.as_str() {
                "text" => c.log_format = LogFormat::Text,
                "json" => c.log_format = LogFormat::Json,
                other => errors.push(format!(
                    "EMPORIUM_LOG_FORMAT: {other:?} is not text or json"
                )),
            }
        }
        if let Some(v) = get("EMPORIUM_RATE_LIMIT") {
            match v.as_str() {
                "on" => c.rate_limit = true,
                "off" => c.rate_limit = false,
                other => errors.push(format!("EMPORIUM_RATE_LIMIT: {other:?} is not on or off")),
            }
        }
        if let Some(v) = get("EMPORIUM_RATE_LIMIT_PER_SECOND") {
            match v.parse::<u32>() {
                Ok(n) if n >= 1 => c.rate_limit_per_second = n,
                _ => errors.push(format!(
                    "EMPORIUM_RATE_LIMIT_PER_SECOND: {v:?} must be a whole number of at least 1"
                )),
            }
        }
        if let Some(v) = get("EMPORIUM_RATE_LIMIT_BURST") {
            match v.parse::<u32>() {
                Ok(n) if n >= 1 => c.rate_limit_burst = n,
                _ => errors.push(format!(
                    "EMPORIUM_RATE_LIMIT_BURST: {v:?} must be a whole number of at least 1"
                )),
            }
        }
        if let Some(v) = get("EMPORIUM_CORS_ORIGINS") {
            c.cors_origins = v
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            for origin in &c.cors_origins {
                if origin != "*"
                    && !(origin.starts_with("http://") || origin.starts_with("https://"))
                {
                    errors.push(format!(
                        "EMPORIUM_CORS_ORIGINS: {origin:?} is not * or an http(s) origin"
                    ));
                }
            }
        }
        if let Some(v) = get("EMPORIUM_TRUSTED_PROXIES") {
            match platform::client_ip::TrustedProxies::parse(&v) {
                Ok(t) => c.trusted_proxies = t,
                Err(e) => errors.push(format!("EMPORIUM_TRUSTED_PROXIES: {e}")),
            }
        }
        if let Some(v) = get("EMPORIUM_BODY_LIMIT_BYTES") {
            match v.parse::<usize>() {
                Ok(n) if (1024..=64 * 1024 * 1024).contains(&n) => c.body_limit = n,
                _ => errors.push(format!(
                    "EMPORIUM_BODY_LIMIT_BYTES: {v:?} must be a number of bytes from 1024 to 67108864"
                )),
            }
        }
        c.otlp_endpoint = get("EMPORIUM_OTLP_ENDPOINT");
        if let Some(v) = &c.otlp_endpoint {
            if !(v.starts_with("http://") || v.starts_with("https://")) {
                errors.push(
                    "EMPORIUM_OTLP_ENDPOINT: an OTLP/HTTP collector URL, e.g. http://collector:4318"
                        .to_owned(),
                );
            }
        }
        let admin_email = get("EMPORIUM_BOOTSTRAP_ADMIN_EMAIL");
        let admin_password = secret("EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD", &mut errors);
        match (admin_email, admin_password) {
            (Some(e), Some(p)) => c.bootstrap_admin = Some((e, p)),
            (None, None) => {}
            _ => errors.push(
                "EMPORIUM_BOOTSTRAP_ADMIN_EMAIL: set both it and EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD, or neither"
                    .to_owned(),
            ),
        }
        if let Some(v) = get("EMPORIUM_RESERVATION_TTL_SECS") {
            match v.parse::<u64>() {
                Ok(n) if n >= 1 => c.reservation_ttl = Duration::from_secs(n),
                _ => errors.push(format!(
                    "EMPORIUM_RESERVATION_TTL_SECS: {v:?} must be a whole number of seconds"
                )),
            }
        }
        if let Some(v) = get("EMPORIUM_CARRIERS") {
            let list: Vec<String> = v
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            if list.is_empty()
                || list
                    .iter()
                    .any(|s| s.len() > 16 || !s.chars().all(|c| c.is_ascii_uppercase()))
            {
                errors.push("EMPORIUM_CARRIERS: a comma-separated list of carrier codes in capitals (e.g. EMP,DHL)".to_owned());
            } else {
                c.carriers = list;
            }
        }
        if let Some(v) = get("EMPORIUM_SHUTDOWN_TIMEOUT_SECS") {
            match v.parse::<u64>() {
                Ok(n) if n <= 600 => c.shutdown_timeout = Duration::from_secs(n),
                _ => errors.push(format!(
                    "EMPORIUM_SHUTDOWN_TIMEOUT_SECS: {v:?} must be a number of seconds up to 600"
                )),
            }
        }
        let mut number = |var: &str, range: std::ops::RangeInclusive<u64>, unit: &str| {
            let v = get(var)?;
            match v.parse::<u64>() {
                Ok(n) if range.contains(&n) => Some(n),
                _ => {
                    errors.push(format!(
                        "{var}: {v:?} must be a whole number of {unit} from {} to {}",
                        range.start(),
                        range.end()
                    ));
                    None
                }
            }
        };
        let secs = Duration::from_secs;
        if let Some(n) = number("EMPORIUM_SIGNUPS_PER_CLIENT", 1..=100_000, "sign-ups") {
            c.sign_ups_per_client = n as u32;
        }
        if let Some(n) = number("EMPORIUM_PASSWORD_RESET_TTL_SECS", 1..=86_400, "seconds") {
            c.password_reset_ttl = secs(n);
        }
        if let Some(n) = number(
            "EMPORIUM_EMAIL_VERIFICATION_TTL_SECS",
            60..=30 * 86_400,
            "seconds",
        ) {
            c.email_verification_ttl = secs(n);
        }
        if let Some(n) = number("EMPORIUM_GUEST_CART_TTL_SECS", 60..=90 * 86_400, "seconds") {
            c.guest_cart_ttl = secs(n);
        }
        if let Some(n) = number("EMPORIUM_PASSWORD_HASH_THREADS", 1..=256, "threads") {
            c.password_hash_threads = n as usize;
        }
        if let Some(n) = number(
            "EMPORIUM_PASSWORD_HASH_QUEUE",
            0..=100_000,
            "waiting hashes",
        ) {
            c.password_hash_queue = n as usize;
        }
        if let Some(n) = number("EMPORIUM_TRANSIENT_RETRY_SECS", 1..=86_400, "seconds") {
            c.transient_retry = secs(n);
        }
        if let Some(n) = number("EMPORIUM_PAYMENT_RETRY_SECS", 1..=86_400, "seconds") {
            c.payment_retry = secs(n);
        }
        if let Some(n) = number("EMPORIUM_RETURN_WINDOW_DAYS", 0..=3_650, "days") {
            c.return_window = secs(n * 86_400);
        }
        if let Some(n) = number("EMPORIUM_HEADER_TIMEOUT_SECS", 1..=600, "seconds") {
            c.header_timeout = secs(n);
        }
        if let Some(n) = number("EMPORIUM_BODY_TIMEOUT_SECS", 1..=3_600, "seconds") {
            c.body_timeout = secs(n);
        }
        if let Some(n) = number("EMPORIUM_KEEP_ALIVE_SECS", 1..=3_600, "seconds") {
            c.keep_alive = secs(n);
        }
        if let Some(n) = number("EMPORIUM_MAX_CONNECTIONS", 16..=1_000_000, "connections") {
            c.max_connections = n as usize;
        }
        if let Some(n) = number("EMPORIUM_GATEWAY_RESOLVE_SECS", 1..=3600, "seconds") {
            c.gateway_resolve_every = secs(n);
        }
        if let Some(n) = number("EMPORIUM_UPSTREAM_TIMEOUT_SECS", 1..=600, "seconds") {
            c.upstream_timeout = secs(n);
        }
        if let Some(n) = number("EMPORIUM_MAIL_RETRY_MAX_SECS", 1..=86_400, "seconds") {
            c.mail_retry_max = secs(n);
        }
        if get("EMPORIUM_PAYMENT_RETRY_SECS").is_none() {
            // The default adapts to a short reservation TTL: half of it.
            c.payment_retry = c.payment_retry.min(c.reservation_ttl / 2);
        } else if c.payment_retry >= c.reservation_ttl {
            errors.push(format!(
                "EMPORIUM_PAYMENT_RETRY_SECS: {} must be below the reservation TTL ({} s), or a paid order could find its stock released",
                c.payment_retry.as_secs(),
                c.reservation_ttl.as_secs()
            ));
        }
        if let Some(v) = get("EMPORIUM_PAYMENT_FAULT_RATE") {
            match v.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => c.payment_fault_rate = r,
                _ => errors.push(format!(
                    "EMPORIUM_PAYMENT_FAULT_RATE: {v:?} must be a number from 0 to 1"
                )),
            }
        }
        match get("EMPORIUM_PAYMENTS").as_deref() {
            None | Some("simulated") => {}
            Some("stripe") => {
                let secret_key = secret("EMPORIUM_STRIPE_SECRET_KEY", &mut errors);
                let api_base = get("EMPORIUM_STRIPE_API_BASE")
                    .unwrap_or_else(|| "https://api.stripe.com".to_owned());
                let base_ok = reqwest::Url::parse(&api_base)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
                if !base_ok {
                    errors.push(format!(
                        "EMPORIUM_STRIPE_API_BASE: {api_base:?} must be an http(s) URL"
                    ));
                }
                match secret_key {
                    Some(key) if key.starts_with("sk_") || key.starts_with("rk_") => {
                        c.payments = ordering::Payments::Stripe {
                            api_base,
                            secret_key: key,
                        };
                    }
                    Some(_) => errors.push(
                        "EMPORIUM_STRIPE_SECRET_KEY: must be a Stripe secret or restricted key (sk_… or rk_…)"
                            .to_owned(),
                    ),
                    None => errors.push(
                        "EMPORIUM_PAYMENTS=stripe needs EMPORIUM_STRIPE_SECRET_KEY (or _FILE)"
                            .to_owned(),
                    ),
                }
            }
            Some(other) => errors.push(format!(
                "EMPORIUM_PAYMENTS: {other:?} is not simulated or stripe"
            )),
        }
        if let Some(raw) = secret("EMPORIUM_STRIPE_WEBHOOK_SECRETS", &mut errors) {
            let secrets: Vec<String> = raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if secrets.is_empty() || secrets.iter().any(|s| !s.starts_with("whsec_")) {
                errors.push(
                    "EMPORIUM_STRIPE_WEBHOOK_SECRETS: must be Stripe webhook secrets (whsec_…), comma-separated"
                        .to_owned(),
                );
            } else {
                c.stripe_webhook_secrets = secrets;
            }
        }
        let mut flag = |name: &str, into: &mut bool| {
            if let Some(v) = get(name) {
                match v.as_str() {
                    "true" => *into = true,
                    "false" => *into = false,
                    other => errors.push(format!("{name}: {other:?} is not true or false")),
                }
            }
        };
        flag("EMPORIUM_PRICES_INCLUDE_TAX", &mut c.prices_include_tax);
        flag(
            "EMPORIUM_WEBHOOK_ALLOW_PRIVATE",
            &mut c.webhook_allow_private,
        );
        flag(
            "EMPORIUM_REQUIRE_VERIFIED_EMAIL",
            &mut c.require_verified_email,
        );
        if let Some(v) = get("EMPORIUM_WEBHOOK_RETRY_HOURS") {
            match v.trim().parse::<f64>() {
                Ok(h) if h.is_finite() && (0.001..=720.0).contains(&h) => {
                    c.webhook_retry = Duration::from_secs_f64(h * 3600.0);
                }
                _ => errors.push(format!(
                    "EMPORIUM_WEBHOOK_RETRY_HOURS: {v:?} is not a number of hours from 0.001 to 720"
                )),
            }
        }
        if let Some(v) = get("EMPORIUM_OPS_LISTEN") {
            match v.parse() {
                Ok(addr) => c.ops_listen = Some(addr),
                Err(_) => errors.push(format!(
                    "EMPORIUM_OPS_LISTEN: {v:?} is not an address like 127.0.0.1:9090"
                )),
            }
        }
        c.redis_url = secret("EMPORIUM_REDIS_URL", &mut errors);
        if let Some(url) = &c.redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                errors.push(
                    "EMPORIUM_REDIS_URL: must be redis://host:6379 or rediss://:password@host:6379"
                        .to_owned(),
                );
            }
        }
        if let Some(v) = get("EMPORIUM_REDIS_NAMESPACE") {
            if v.len() <= 64
                && v.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            {
                c.redis_namespace = v;
            } else {
                errors.push(format!(
                    "EMPORIUM_REDIS_NAMESPACE: {v:?} must be up to 64 letters, digits, - or _"
                ));
            }
        }
        if let Some(v) = secret("EMPORIUM_SERVICE_CLIENTS", &mut errors) {
            match parse_service_clients(&v) {
                Ok(list) => c.service_clients = list,
                Err(e) => errors.push(format!("EMPORIUM_SERVICE_CLIENTS: {e}")),
            }
        }
        match (
            get("EMPORIUM_SERVICE_CLIENT_ID"),
            secret("EMPORIUM_SERVICE_CLIENT_SECRET", &mut errors),
        ) {
            (Some(id), Some(secret)) => c.service_credentials = Some((id, secret)),
            (None, None) => {}
            _ => errors.push(
                "EMPORIUM_SERVICE_CLIENT_ID and EMPORIUM_SERVICE_CLIENT_SECRET: set both or neither"
                    .to_owned(),
            ),
        }
        if let Some(v) = get("EMPORIUM_DASHBOARD_BUDGET_MS") {
            match v.parse::<u64>() {
                Ok(ms) if (10..=10_000).contains(&ms) => {
                    c.dashboard_budget = Duration::from_millis(ms);
                }
                _ => errors.push(format!(
                    "EMPORIUM_DASHBOARD_BUDGET_MS: {v:?} must be a number of milliseconds from 10 to 10000"
                )),
            }
        }
        c.smtp_url = secret("EMPORIUM_SMTP_URL", &mut errors);
        if let Some(url) = &c.smtp_url {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                errors.push(
                    "EMPORIUM_SMTP_URL: must be smtp://host:port or smtps://user:password@host"
                        .to_owned(),
                );
            }
        }
        if let Some(v) = get("EMPORIUM_MAIL_FROM") {
            match notifications::check_mail_from(&v) {
                Ok(()) => c.mail_from = v,
                Err(e) => errors.push(format!("EMPORIUM_MAIL_FROM: {e}")),
            }
        }
        c.templates_dir = get("EMPORIUM_TEMPLATES_DIR").map(PathBuf::from);
        if let Some(dir) = &c.templates_dir {
            if !dir.is_dir() {
                errors.push(format!(
                    "EMPORIUM_TEMPLATES_DIR: {} is not a directory",
                    dir.display()
                ));
            }
        }
        if let Some(v) = get("EMPORIUM_PUBLIC_URL") {
            if v.starts_with("http://") || v.starts_with("https://") {
                c.public_url = Some(v.trim_end_matches('/').to_owned());
            } else {
                errors.push(format!(
                    "EMPORIUM_PUBLIC_URL: {v:?} must be an http(s) URL like https://shop.example.com"
                ));
            }
        }
        c.metrics_token = secret("EMPORIUM_METRICS_TOKEN", &mut errors);
        if c.metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            errors.push("EMPORIUM_METRICS_TOKEN: use at least 16 characters".to_owned());
        }
        if errors.is_empty() {
            Ok(c)
        } else {
            Err(errors)
        }
    }

    /// The database URL a context uses (its own override, else the shared one).
    pub fn database_url_for(&self, ctx: ContextName) -> Option<&str> {
        self.context_database_urls
            .get(&ctx)
            .or(self.database_url.as_ref())
            .map(String::as_str)
    }

    pub fn runs(&self, ctx: ContextName) -> bool {
        self.contexts.contains(&ctx)
    }
}

pub fn parse_contexts(raw: &str) -> Result<Vec<ContextName>, String> {
    let mut out = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let ctx = ContextName::parse(part).ok_or_else(|| {
            format!("{part:?} is not one of identity, catalog, ordering, shipping, notifications")
        })?;
        if !out.contains(&ctx) {
            out.push(ctx);
        }
    }
    if out.is_empty() {
        return Err("name at least one context".to_owned());
    }
    out.sort();
    Ok(out)
}

/// `id:sha256-hex:context|context,...`: each client, the SHA-256 of its secret (hex), and
/// the contexts it may ask tokens for.
fn parse_service_clients(raw: &str) -> Result<Vec<identity::ServiceClient>, String> {
    let mut out: Vec<identity::ServiceClient> = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let mut fields = part.splitn(3, ':');
        let (Some(id), Some(hash), Some(audiences)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(format!(
                "{:?} is not id:sha256-of-secret:context|context",
                part.split(':').next().unwrap_or_default()
            ));
        };
        if id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            return Err(format!(
                "{id:?}: a client id is up to 64 letters, digits, - or _"
            ));
        }
        let digest = hex::decode(hash)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| format!("{id}: the secret's SHA-256 must be 64 hex digits"))?;
        let mut list = Vec::new();
        for audience in audiences
            .split('|')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            let ctx = ContextName::parse(audience)
                .ok_or_else(|| format!("{id}: {audience:?} is not a context"))?;
            list.push(ctx.as_str().to_owned());
        }
        if list.is_empty() {
            return Err(format!("{id}: name at least one context it may call"));
        }
        if out.iter().any(|c| c.id == id) {
            return Err(format!("{id}: named twice"));
        }
        out.push(identity::ServiceClient {
            id: id.to_owned(),
            secret_sha256: digest,
            audiences: list,
        });
    }
    Ok(out)
}

/// `catalog=2,ordering=20`: seconds per context, 1 to 600.
fn parse_timeouts(raw: &str) -> Result<BTreeMap<ContextName, Duration>, String> {
    let mut map = BTreeMap::new();
    for part in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, secs) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not context=seconds"))?;
        let ctx =
            ContextName::parse(name.trim()).ok_or_else(|| format!("{name:?} is not a context"))?;
        match secs.trim().parse::<u64>() {
            Ok(n) if (1..=600).contains(&n) => map.insert(ctx, Duration::from_secs(n)),
            _ => {
                return Err(format!(
                    "{secs:?} must be a number of seconds from 1 to 600"
                ))
            }
        };
    }
    Ok(map)
}

fn parse_upstreams(raw: &str) -> Result<BTreeMap<ContextName, Vec<String>>, String> {
    let mut map = BTreeMap::new();
    for part in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, urls) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not context=url"))?;
        let ctx = ContextName::parse(name).ok_or_else(|| format!("{name:?} is not a context"))?;
        let mut instances = Vec::new();
        for url in urls.split('|').map(str::trim).filter(|u| !u.is_empty()) {
            let url = url.trim_end_matches('/');
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("{url:?} is not an http(s) URL"));
            }
            instances.push(url.to_owned());
        }
        if instances.is_empty() {
            return Err(format!("{name}: name at least one instance"));
        }
        map.insert(ctx, instances);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, Vec<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_nothing() {
        let c = from(&[]).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.bus, BusKind::Memory);
        assert_eq!(c.contexts.len(), 5);
        assert!(c.database_url.is_none());
        assert!(c.smtp_url.is_none(), "no SMTP: the mail drop");
    }

    #[test]
    fn a_context_may_have_its_own_upstream_timeout() {
        let c = from(&[("EMPORIUM_GATEWAY_TIMEOUTS", "catalog=2, ordering=20")])
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            c.upstream_timeouts.get(&ContextName::Catalog),
            Some(&Duration::from_secs(2))
        );
        assert_eq!(c.upstream_timeouts.len(), 2);
        for bad in [
            "catalog",
            "catalog=0",
            "catalog=601",
            "catalog=fast",
            "billing=2",
        ] {
            let errors = from(&[("EMPORIUM_GATEWAY_TIMEOUTS", bad)])
                .err()
                .unwrap_or_default();
            assert!(
                errors
                    .iter()
                    .any(|e| e.starts_with("EMPORIUM_GATEWAY_TIMEOUTS")),
                "{bad}: {errors:?}"
            );
        }
    }

    #[test]
    fn a_context_may_have_several_gateway_upstreams() {
        let c = from(&[(
            "EMPORIUM_GATEWAY_UPSTREAMS",
            "catalog=http://a:8080/|http://b:8080,identity=http://i:8080",
        )])
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            c.gateway_upstreams.get(&ContextName::Catalog),
            Some(&vec![
                "http://a:8080".to_owned(),
                "http://b:8080".to_owned()
            ])
        );
        assert_eq!(c.gateway_upstreams[&ContextName::Identity].len(), 1);
        for bad in ["catalog=", "catalog=http://a|ftp://b", "billing=http://a"] {
            let errors = from(&[("EMPORIUM_GATEWAY_UPSTREAMS", bad)])
                .err()
                .unwrap_or_default();
            assert!(
                errors
                    .iter()
                    .any(|e| e.starts_with("EMPORIUM_GATEWAY_UPSTREAMS")),
                "{bad}: {errors:?}"
            );
        }
    }

    #[test]
    fn webhook_settings_are_checked() {
        let c = from(&[
            ("EMPORIUM_WEBHOOK_RETRY_HOURS", "0.01"),
            ("EMPORIUM_WEBHOOK_ALLOW_PRIVATE", "true"),
        ])
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c.webhook_retry, Duration::from_secs(36));
        assert!(c.webhook_allow_private);
        let defaults = from(&[]).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(defaults.webhook_retry, Duration::from_secs(24 * 3600));
        assert!(!defaults.webhook_allow_private);
        for bad in ["0", "-1", "721", "soon", "NaN"] {
            let errors = from(&[("EMPORIUM_WEBHOOK_RETRY_HOURS", bad)])
                .err()
                .unwrap_or_default();
            assert!(
                errors
                    .iter()
                    .any(|e| e.starts_with("EMPORIUM_WEBHOOK_RETRY_HOURS")),
                "{bad}: {errors:?}"
            );
        }
    }

    #[test]
    fn mail_settings_are_checked() {
        let c = from(&[
            ("EMPORIUM_SMTP_URL", "smtps://shop:secret@mail.example.com"),
            ("EMPORIUM_MAIL_FROM", "Shop <shop@example.com>"),
            ("EMPORIUM_PUBLIC_URL", "https://shop.example.com/"),
            ("EMPORIUM_MAIL_RETRY_MAX_SECS", "60"),
        ])
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c.public_url.as_deref(), Some("https://shop.example.com"));
        assert_eq!(c.mail_retry_max, Duration::from_secs(60));
        let errors = from(&[
            ("EMPORIUM_SMTP_URL", "http://mail.example.com"),
            ("EMPORIUM_PUBLIC_URL", "shop.example.com"),
            ("EMPORIUM_TEMPLATES_DIR", "/no/such/directory"),
            ("EMPORIUM_MAIL_RETRY_MAX_SECS", "0"),
            ("EMPORIUM_MAIL_FROM", "not a mailbox"),
            ("EMPORIUM_REDIS_URL", "http://cache:6379"),
            ("EMPORIUM_REDIS_NAMESPACE", "a b"),
            ("EMPORIUM_SERVICE_CLIENTS", "gateway:abcd:ordering"),
            ("EMPORIUM_SERVICE_CLIENT_ID", "gateway"),
            ("EMPORIUM_DASHBOARD_BUDGET_MS", "0"),
        ])
        .err()
        .unwrap_or_default();
        for var in [
            "EMPORIUM_SMTP_URL",
            "EMPORIUM_PUBLIC_URL",
            "EMPORIUM_TEMPLATES_DIR",
            "EMPORIUM_MAIL_RETRY_MAX_SECS",
            "EMPORIUM_MAIL_FROM",
            "EMPORIUM_REDIS_URL",
            "EMPORIUM_REDIS_NAMESPACE",
            "EMPORIUM_SERVICE_CLIENTS",
            "EMPORIUM_SERVICE_CLIENT_ID and EMPORIUM_SERVICE_CLIENT_SECRET",
            "EMPORIUM_DASHBOARD_BUDGET_MS",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(var)),
                "{var}: {errors:?}"
            );
        }
    }

    #[test]
    fn each_bad_value_is_named() {
        let errors = from(&[
            ("EMPORIUM_LISTEN", "nowhere"),
            ("EMPORIUM_BUS", "kafka"),
            ("EMPORIUM_CONTEXTS", "identity,billing"),
            ("EMPORIUM_DATABASE_URL", "mysql://x"),
            ("EMPORIUM_RATE_LIMIT", "maybe"),
        ])
        .err()
        .unwrap_or_default();
        for var in [
            "EMPORIUM_LISTEN",
            "EMPORIUM_BUS",
            "EMPORIUM_CONTEXTS",
            "EMPORIUM_DATABASE_URL",
            "EMPORIUM_RATE_LIMIT",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(var)),
                "{var} not reported in {errors:?}"
            );
        }
    }

    #[test]
    fn per_context_urls_override_the_shared_one() {
        let c = from(&[
            ("EMPORIUM_DATABASE_URL", "postgres://a/db"),
            ("EMPORIUM_CATALOG_DATABASE_URL", "postgres://b/db"),
            ("EMPORIUM_CONTEXTS", "catalog, identity"),
        ])
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            c.database_url_for(ContextName::Catalog),
            Some("postgres://b/db")
        );
        assert_eq!(
            c.database_url_for(ContextName::Identity),
            Some("postgres://a/db")
        );
        assert_eq!(
            c.contexts,
            vec![ContextName::Identity, ContextName::Catalog]
        );
    }

    #[test]
    fn stripe_is_chosen_with_its_key_and_refused_without_it() {
        let c = from(&[
            ("EMPORIUM_PAYMENTS", "stripe"),
            ("EMPORIUM_STRIPE_SECRET_KEY", "sk_test_123"),
            ("EMPORIUM_STRIPE_API_BASE", "http://127.0.0.1:8420"),
        ]);
        let payments = c.map(|c| c.payments).ok();
        assert_eq!(
            payments,
            Some(ordering::Payments::Stripe {
                api_base: "http://127.0.0.1:8420".to_owned(),
                secret_key: "sk_test_123".to_owned(),
            })
        );
        assert!(!format!("{payments:?}").contains("sk_test_123"));
        for bad in [
            vec![("EMPORIUM_PAYMENTS", "stripe")],
            vec![
                ("EMPORIUM_PAYMENTS", "stripe"),
                ("EMPORIUM_STRIPE_SECRET_KEY", "pk_live_1"),
            ],
            vec![
                ("EMPORIUM_PAYMENTS", "stripe"),
                ("EMPORIUM_STRIPE_SECRET_KEY", "sk_test_1"),
                ("EMPORIUM_STRIPE_API_BASE", "ftp://stripe"),
            ],
            vec![("EMPORIUM_PAYMENTS", "paypal")],
        ] {
            assert!(from(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            from(&[]).map(|c| c.payments).ok(),
            Some(ordering::Payments::Simulated)
        );
    }

    #[test]
    fn secrets_can_come_from_files() {
        let dir = std::env::temp_dir().join(format!("emporium-cfg-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("pw");
        let _ = std::fs::write(&file, "s3cret-passphrase!\n");
        let c = from(&[
            ("EMPORIUM_BOOTSTRAP_ADMIN_EMAIL", "admin@example.com"),
            (
                "EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD_FILE",
                file.to_str().unwrap_or_default(),
            ),
        ])
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            c.bootstrap_admin.map(|(_, p)| p).as_deref(),
            Some("s3cret-passphrase!")
        );
    }
}

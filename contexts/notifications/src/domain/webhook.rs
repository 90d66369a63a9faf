//! Outbound webhooks: an endpoint (where, what it hears, its signing secret, its health), a
//! delivery's life (pending, delivered, failed), the retry schedule and the per-endpoint
//! circuit, the Standard Webhooks signature, and which addresses may be called. No I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use kernel::id::UserId;
use kernel::Timestamp;

/// A receiver: where events go, which types it hears, and how it has been answering.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Endpoint {
    pub(crate) id: uuid::Uuid,
    pub(crate) url: String,
    pub(crate) description: String,
    pub(crate) event_types: Vec<String>,
    /// `whsec_<base64 key>`: shown once at creation, used to sign every attempt.
    pub(crate) secret: String,
    pub(crate) enabled: bool,
    /// The admin who made it (told by mail when it is disabled for failing).
    pub(crate) created_by: UserId,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    pub(crate) health: Health,
}

/// How an endpoint has been answering lately.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Health {
    /// Failed attempts since the last success, across its deliveries.
    pub(crate) consecutive_failures: u32,
    /// The first failure since the last success.
    pub(crate) failing_since: Option<Timestamp>,
    /// While the circuit is open, none of the endpoint's deliveries is tried before this.
    pub(crate) circuit_open_until: Option<Timestamp>,
    /// Why it was turned off, when the server turned it off.
    pub(crate) disabled_reason: Option<String>,
}

/// What a failed attempt did to its endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EndpointAfterFailure {
    /// Still closed: the endpoint's other deliveries go on.
    Open,
    /// Held back until then; one delivery probes it then.
    CircuitOpen(Timestamp),
    /// It has failed, without a success between, for the whole retry window: turned off
    /// (the reason is kept).
    Disabled,
}

impl Endpoint {
    pub(crate) fn new(
        url: String,
        event_types: Vec<String>,
        description: String,
        created_by: UserId,
        secret: String,
        now: Timestamp,
    ) -> Self {
        Self {
            id: uuid::Uuid::now_v7(),
            url,
            description,
            event_types,
            secret,
            enabled: true,
            created_by,
            created_at: now,
            updated_at: now,
            health: Health::default(),
        }
    }

    pub(crate) fn hears(&self, event_type: &str) -> bool {
        self.enabled && self.event_types.iter().any(|t| t == event_type)
    }

    /// Turned on by an admin: its past failures are forgiven.
    pub(crate) fn enable(&mut self, now: Timestamp) {
        self.enabled = true;
        self.health = Health::default();
        self.updated_at = now;
    }

    pub(crate) fn disable(&mut self, now: Timestamp) {
        self.enabled = false;
        self.updated_at = now;
    }

    /// A receiver that answered 2xx: the circuit closes, the streak ends.
    pub(crate) fn succeeded(&mut self) {
        self.health.consecutive_failures = 0;
        self.health.failing_since = None;
        self.health.circuit_open_until = None;
    }

    /// A receiver that failed an attempt at `now`.
    pub(crate) fn failed(
        &mut self,
        now: Timestamp,
        schedule: &WebhookSchedule,
        jitter: f64,
    ) -> EndpointAfterFailure {
        let h = &mut self.health;
        h.consecutive_failures = h.consecutive_failures.saturating_add(1);
        let since = *h.failing_since.get_or_insert(now);
        if now >= since.plus(schedule.window) {
            self.enabled = false;
            self.updated_at = now;
            h.circuit_open_until = None;
            h.disabled_reason = Some(format!(
                "every attempt failed for {} (the last {} in a row)",
                human(schedule.window),
                h.consecutive_failures
            ));
            return EndpointAfterFailure::Disabled;
        }
        if h.consecutive_failures < schedule.circuit_after {
            return EndpointAfterFailure::Open;
        }
        let opens = h.consecutive_failures - schedule.circuit_after + 1;
        let until = now.plus(schedule.jittered(schedule.circuit_delay(opens), jitter));
        h.circuit_open_until = Some(until);
        EndpointAfterFailure::CircuitOpen(until)
    }

    /// Whether the circuit lets a delivery through at `now` (closed, or open and due a probe).
    pub(crate) fn lets_through(&self, now: Timestamp) -> bool {
        self.enabled
            && self
                .health
                .circuit_open_until
                .is_none_or(|until| until <= now)
    }

    /// A half-open circuit lets one delivery probe the receiver; a closed one, several.
    pub(crate) fn probing(&self, schedule: &WebhookSchedule) -> bool {
        self.health.consecutive_failures >= schedule.circuit_after
    }
}

fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WebhookStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// Every attempt over the retry window failed; an admin can replay it.
    Failed,
}

impl WebhookStatus {
    pub(crate) const ALL: [Self; 3] = [Self::Pending, Self::Delivered, Self::Failed];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub(crate) fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// One event for one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WebhookDelivery {
    pub(crate) id: uuid::Uuid,
    pub(crate) endpoint_id: uuid::Uuid,
    /// The event's envelope id: the `webhook-id` every attempt carries, for receivers to
    /// take each event once.
    pub(crate) event_id: uuid::Uuid,
    pub(crate) event_type: String,
    /// The JSON body, fixed at fan-out (every attempt sends the same bytes).
    pub(crate) body: String,
    pub(crate) status: WebhookStatus,
    pub(crate) attempts: u32,
    pub(crate) next_attempt_at: Timestamp,
    /// Attempts are made while `now` is within the retry window from here (creation, or
    /// the last replay).
    pub(crate) window_start: Timestamp,
    pub(crate) last_status: Option<u16>,
    pub(crate) last_error: Option<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    pub(crate) delivered_at: Option<Timestamp>,
}

/// One try at a receiver, as the delivery's history lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebhookAttempt {
    pub(crate) number: u32,
    pub(crate) at: Timestamp,
    /// The receiver's status code, when it answered.
    pub(crate) status_code: Option<u16>,
    /// Why it did not count as delivered (no answer, a refused address, a non-2xx).
    pub(crate) error: Option<String>,
    pub(crate) duration_ms: u64,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttemptOutcome {
    /// A 2xx.
    Accepted(u16),
    /// Another status: the receiver is there but did not take it.
    Rejected(u16),
    /// No answer: unreachable, timed out, or the address is not allowed.
    Unreached(String),
}

impl AttemptOutcome {
    pub(crate) fn status_code(&self) -> Option<u16> {
        match self {
            Self::Accepted(s) | Self::Rejected(s) => Some(*s),
            Self::Unreached(_) => None,
        }
    }

    pub(crate) fn error(&self) -> Option<String> {
        match self {
            Self::Accepted(_) => None,
            Self::Rejected(s) => Some(format!("the receiver answered {s}")),
            Self::Unreached(e) => Some(e.clone()),
        }
    }
}

/// A replay asked of a delivery that has not failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotFailed(pub(crate) WebhookStatus);

impl WebhookDelivery {
    pub(crate) fn new(
        endpoint_id: uuid::Uuid,
        event_id: uuid::Uuid,
        event_type: String,
        body: String,
        now: Timestamp,
    ) -> Self {
        Self {
            id: uuid::Uuid::now_v7(),
            endpoint_id,
            event_id,
            event_type,
            body,
            status: WebhookStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            window_start: now,
            last_status: None,
            last_error: None,
            created_at: now,
            updated_at: now,
            delivered_at: None,
        }
    }

    /// Records an attempt made at `now` and decides what follows.
    pub(crate) fn attempted(
        &mut self,
        outcome: &AttemptOutcome,
        now: Timestamp,
        schedule: &WebhookSchedule,
        jitter: f64,
    ) {
        self.attempts = self.attempts.saturating_add(1);
        self.updated_at = now;
        self.last_status = outcome.status_code();
        self.last_error = outcome.error();
        match outcome {
            AttemptOutcome::Accepted(_) => {
                self.status = WebhookStatus::Delivered;
                self.delivered_at = Some(now);
            }
            _ if now >= self.window_start.plus(schedule.window) => {
                self.status = WebhookStatus::Failed;
            }
            _ => {
                let delay = schedule.jittered(schedule.delay(self.attempts), jitter);
                self.next_attempt_at = now.plus(delay);
            }
        }
    }

    /// An admin sends a failed delivery again: a new retry window from `now`.
    pub(crate) fn replay(&mut self, now: Timestamp) -> Result<(), NotFailed> {
        if self.status != WebhookStatus::Failed {
            return Err(NotFailed(self.status));
        }
        self.status = WebhookStatus::Pending;
        self.next_attempt_at = now;
        self.window_start = now;
        self.updated_at = now;
        Ok(())
    }
}

/// When attempts are made again, and when an endpoint is held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WebhookSchedule {
    /// The first retry's delay; each next one doubles, up to `max_delay`.
    pub(crate) first_delay: Duration,
    pub(crate) max_delay: Duration,
    /// How long a delivery is tried (and how long an endpoint may fail before it is turned
    /// off): `EMPORIUM_WEBHOOK_RETRY_HOURS`.
    pub(crate) window: Duration,
    /// Failures in a row that open an endpoint's circuit.
    pub(crate) circuit_after: u32,
    /// The longest an open circuit waits before its next probe.
    pub(crate) circuit_max: Duration,
}

impl WebhookSchedule {
    pub(crate) fn with_window(window: Duration) -> Self {
        Self {
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(3600),
            window,
            circuit_after: 5,
            circuit_max: Duration::from_secs(60),
        }
    }

    /// The delay before attempt `attempts + 1`, `attempts` having been made.
    pub(crate) fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.first_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }

    /// The wait of an open circuit the `opens`-th time in a row.
    pub(crate) fn circuit_delay(&self, opens: u32) -> Duration {
        self.delay(opens).min(self.circuit_max)
    }

    /// Between half and all of `delay`, by `jitter` in [0, 1): receivers that fail together
    /// are not all retried together.
    pub(crate) fn jittered(&self, delay: Duration, jitter: f64) -> Duration {
        let jitter = jitter.clamp(0.0, 1.0);
        delay.mul_f64(0.5 + jitter / 2.0)
    }
}

/// The prefix of a Standard Webhooks secret.
pub(crate) const SECRET_PREFIX: &str = "whsec_";

/// A signing secret from 32 random bytes.
pub(crate) fn secret_from_key(key: &[u8; 32]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The `webhook-signature` value of one attempt (Standard Webhooks `v1`): HMAC-SHA256 with the
/// secret's key over `{id}.{timestamp}.{body}`, base64. None for a secret not of that shape.
pub(crate) fn signature(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    let signed = format!("{id}.{timestamp}.{body}");
    let mac = platform::secret::hmac_sha256(&key, signed.as_bytes());
    Some(format!("v1,{}", STANDARD.encode(mac)))
}

/// Why a receiver's URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TargetRefused {
    #[error("not an absolute URL: {0}")]
    Malformed(String),
    #[error("only http and https URLs can receive webhooks")]
    Scheme,
    #[error("a URL with a user name or password is not accepted; put credentials in the path or ask the receiver to check the signature")]
    Credentials,
    #[error("{0} is a loopback, private, link-local or otherwise internal address")]
    Internal(IpAddr),
    #[error("{0} does not resolve to any address")]
    Unresolved(String),
}

/// Checks a receiver URL's shape, and its address when the host is an IP literal.
pub(crate) fn check_url(raw: &str, allow_private: bool) -> Result<url::Url, TargetRefused> {
    let url = url::Url::parse(raw).map_err(|e| TargetRefused::Malformed(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetRefused::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetRefused::Credentials);
    }
    match url.host() {
        None => return Err(TargetRefused::Malformed("the URL has no host".into())),
        Some(url::Host::Ipv4(ip)) => check_address(IpAddr::V4(ip), allow_private)?,
        Some(url::Host::Ipv6(ip)) => check_address(IpAddr::V6(ip), allow_private)?,
        Some(url::Host::Domain(_)) => {}
    }
    Ok(url)
}

/// Refuses an address a webhook must not reach (unless private ones are allowed).
pub(crate) fn check_address(ip: IpAddr, allow_private: bool) -> Result<(), TargetRefused> {
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(TargetRefused::Internal(ip))
    }
}

/// Whether `ip` is an address on the public internet: not loopback, private, shared (CGNAT),
/// link-local (which holds the cloud metadata services), unique-local, documentation,
/// benchmarking, multicast, reserved or unspecified; an IPv4 address inside IPv6 (mapped,
/// compatible or NAT64) is judged as the IPv4 address it carries.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96) carry an IPv4 address.
    let carried = Ipv4Addr::new(
        (s[6] >> 8) as u8,
        (s[6] & 0xff) as u8,
        (s[7] >> 8) as u8,
        (s[7] & 0xff) as u8,
    );
    if s[..6] == [0, 0, 0, 0, 0, 0] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return !ip.is_unspecified() && !ip.is_loopback() && is_public_v4(carried);
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> WebhookSchedule {
        WebhookSchedule::with_window(Duration::from_secs(3600))
    }

    #[test]
    fn the_signature_is_the_standard_webhooks_one() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, id, 1614265330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(signature("not-a-secret", id, 1, body), None);
    }

    #[test]
    fn internal_addresses_are_refused_and_public_ones_allowed() {
        for internal in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "::a00:1",
        ] {
            let ip: IpAddr = internal
                .parse()
                .unwrap_or_else(|e| panic!("{internal}: {e}"));
            assert!(!is_public(ip), "{internal} is internal");
            assert!(check_address(ip, false).is_err());
            assert!(check_address(ip, true).is_ok(), "allowed when private is");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = public.parse().unwrap_or_else(|e| panic!("{public}: {e}"));
            assert!(is_public(ip), "{public} is public");
        }
    }

    #[test]
    fn a_url_is_refused_for_its_scheme_credentials_or_literal_address() {
        assert!(check_url("https://hooks.example.com/in", false).is_ok());
        assert_eq!(
            check_url("ftp://hooks.example.com/", false),
            Err(TargetRefused::Scheme)
        );
        assert_eq!(
            check_url("https://user:pw@hooks.example.com/", false),
            Err(TargetRefused::Credentials)
        );
        assert!(matches!(
            check_url("http://169.254.169.254/latest/meta-data", false),
            Err(TargetRefused::Internal(_))
        ));
        assert!(matches!(
            check_url("http://[::ffff:10.0.0.1]/", false),
            Err(TargetRefused::Internal(_))
        ));
        assert!(matches!(
            check_url("not a url", false),
            Err(TargetRefused::Malformed(_))
        ));
        assert!(check_url("http://127.0.0.1:8080/", true).is_ok());
    }

    #[test]
    fn retries_back_off_with_jitter_until_the_window_ends() {
        let s = schedule();
        let t0 = Timestamp::from_micros(1_000_000_000_000);
        let mut d = WebhookDelivery::new(
            uuid::Uuid::now_v7(),
            uuid::Uuid::now_v7(),
            "ordering.order_paid".into(),
            "{}".into(),
            t0,
        );
        let down = AttemptOutcome::Unreached("connection refused".into());
        d.attempted(&down, t0, &s, 0.0);
        assert_eq!(d.status, WebhookStatus::Pending);
        assert_eq!(d.next_attempt_at, t0.plus(Duration::from_secs(1)));
        d.attempted(&AttemptOutcome::Rejected(500), t0, &s, 0.999_999);
        assert!(d.next_attempt_at > t0.plus(Duration::from_millis(3999)));
        assert_eq!(d.last_status, Some(500));
        let late = t0.plus(Duration::from_secs(3600));
        d.attempted(&down, late, &s, 0.5);
        assert_eq!(d.status, WebhookStatus::Failed);
        assert_eq!(d.attempts, 3);
        assert_eq!(d.replay(late), Ok(()));
        assert_eq!(d.status, WebhookStatus::Pending);
        assert_eq!(d.window_start, late);
        d.attempted(&AttemptOutcome::Accepted(204), late, &s, 0.5);
        assert_eq!(d.status, WebhookStatus::Delivered);
        assert_eq!(d.replay(late), Err(NotFailed(WebhookStatus::Delivered)));
        assert_eq!(s.delay(40), Duration::from_secs(3600), "capped");
    }

    #[test]
    fn an_endpoint_opens_its_circuit_then_is_disabled_after_the_window() {
        let s = schedule();
        let t0 = Timestamp::from_micros(1_000_000_000_000);
        let mut e = Endpoint::new(
            "https://hooks.example.com".into(),
            vec!["ordering.order_paid".into()],
            String::new(),
            UserId::new(),
            "whsec_AAAA".into(),
            t0,
        );
        for _ in 0..4 {
            assert_eq!(e.failed(t0, &s, 0.0), EndpointAfterFailure::Open);
        }
        assert!(e.lets_through(t0));
        let EndpointAfterFailure::CircuitOpen(until) = e.failed(t0, &s, 0.0) else {
            panic!("the fifth failure in a row opens the circuit");
        };
        assert!(!e.lets_through(t0));
        assert!(e.lets_through(until));
        assert!(e.probing(&s));
        // Long open circuits are capped.
        for _ in 0..20 {
            e.failed(t0, &s, 0.999);
        }
        assert!(e.health.circuit_open_until <= Some(t0.plus(s.circuit_max)));
        let late = t0.plus(s.window);
        assert_eq!(e.failed(late, &s, 0.0), EndpointAfterFailure::Disabled);
        assert!(!e.enabled);
        assert!(!e.hears("ordering.order_paid"));
        assert!(e.health.disabled_reason.is_some());
        e.enable(late);
        assert_eq!(e.health, Health::default());
        assert!(e.hears("ordering.order_paid"));
        e.failed(late, &s, 0.0);
        e.succeeded();
        assert_eq!(e.health, Health::default());
    }
}

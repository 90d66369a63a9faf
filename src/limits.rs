//! Request limits: per-client rate limiting (429 problem+json with `Retry-After`, and the
//! `RateLimit-Policy` / `RateLimit` fields of the IETF httpapi draft on every answer) and
//! CORS from configuration.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_cors::Cors;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use platform::client_ip::TrustedProxies;
use platform::error::ApiError;
use platform::shared::SharedState;

use crate::config::Config;

/// Per-client-address rate limit, GCRA (the generic cell rate algorithm): each address may
/// send `per_second` requests a second on average, with bursts of up to `burst`. One
/// "theoretical arrival time" per address, in a bounded cache.
#[derive(Clone)]
pub struct RateLimit {
    enabled: bool,
    trusted: TrustedProxies,
    /// Time between requests at the sustained rate.
    interval: Duration,
    /// How far ahead of now an address's arrival time may run (the burst).
    tolerance: Duration,
    /// `RateLimit-Policy`, the same on every answer.
    policy: actix_web::http::header::HeaderValue,
    arrivals: moka::sync::Cache<IpAddr, Arc<Mutex<Instant>>>,
    /// With Redis, every instance draws from one budget per address.
    shared: Option<Arc<SharedState>>,
    /// Requests carrying this key in [`INTERNAL_HEADER`] come from this process itself.
    internal_key: Option<Arc<str>>,
}

/// The header that marks a process's requests to its own listener (the dashboard's).
pub const INTERNAL_HEADER: &str = "x-emporium-internal";

impl RateLimit {
    pub fn new(config: &Config, shared: Option<Arc<SharedState>>) -> anyhow::Result<Self> {
        let per_second = config.rate_limit_per_second.max(1);
        let interval = Duration::from_secs(1) / per_second;
        let burst = config.rate_limit_burst.max(1);
        let tolerance = interval.saturating_mul(burst.saturating_sub(1));
        // The quota is the burst; the window, the time the sustained rate takes to refill it.
        let window = (interval.saturating_mul(burst).as_secs_f64().ceil() as u64).max(1);
        let policy = format!("\"default\";q={burst};w={window}");
        Ok(Self {
            enabled: config.rate_limit,
            trusted: config.trusted_proxies.clone(),
            interval,
            tolerance,
            policy: actix_web::http::header::HeaderValue::from_str(&policy)?,
            arrivals: moka::sync::Cache::builder()
                .max_capacity(200_000)
                // An address idle for longer than a full burst takes has nothing to remember.
                .time_to_idle(tolerance + interval + Duration::from_secs(1))
                .build(),
            shared,
            internal_key: None,
        })
    }

    /// Requests that carry `key` in [`INTERNAL_HEADER`] are not limited.
    pub fn exempting(mut self, key: String) -> Self {
        self.internal_key = Some(key.into());
        self
    }

    fn is_internal(&self, req: &ServiceRequest) -> bool {
        let (Some(key), Some(presented)) = (&self.internal_key, req.headers().get(INTERNAL_HEADER))
        else {
            return false;
        };
        let presented = presented.as_bytes();
        presented.len() == key.len()
            && presented
                .iter()
                .zip(key.as_bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// `Err(seconds to wait)` when the address is over its limit; `Ok(Some(ahead))` when it
    /// passes, its arrival time now `ahead` of the clock (what is left of the burst). With
    /// Redis, the budget is shared by every instance; Redis unreachable, the request passes
    /// with nothing known (`Ok(None)`; a warning at most every 10 s, and
    /// `emporium_shared_state_failures_total{use="rate_limit"}`): a missing limit is better
    /// than a shop that refuses everyone.
    pub async fn admit(&self, client: IpAddr) -> Result<Option<Duration>, u64> {
        let Some(shared) = &self.shared else {
            return self.check(client, Instant::now()).map(Some);
        };
        let key = shared.key("rate", &client.to_string());
        match shared.gcra(&key, self.interval, self.tolerance).await {
            Ok(Ok(ahead)) => Ok(Some(ahead)),
            Ok(Err(wait)) => Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)),
            Err(e) => {
                metrics::counter!("emporium_shared_state_failures_total", "use" => "rate_limit")
                    .increment(1);
                static LAST_WARNING: AtomicU64 = AtomicU64::new(0);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                if LAST_WARNING.swap(now, Ordering::Relaxed) + 10 <= now {
                    tracing::warn!(error = %format!("{e:#}"), "rate limit: Redis unreachable; requests pass unlimited");
                }
                Ok(None)
            }
        }
    }

    /// `Err(seconds to wait)` when the address is over its limit; otherwise counts the request
    /// and says how far ahead of `now` the address's arrival time has moved.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<Duration, u64> {
        let cell = self.arrivals.get_with(client, || Arc::new(Mutex::new(now)));
        let mut tat = cell.lock().unwrap_or_else(|p| p.into_inner());
        let arrival = (*tat).max(now);
        let ahead = arrival - now;
        if ahead > self.tolerance {
            let wait = ahead - self.tolerance;
            return Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        }
        *tat = arrival + self.interval;
        Ok(ahead + self.interval)
    }

    /// The `RateLimit` field after a request that left the arrival time `ahead` of now: how
    /// many more requests pass at once, and the seconds until the whole burst is back.
    fn remaining(&self, ahead: Duration) -> String {
        let left = match self.tolerance.checked_sub(ahead) {
            Some(room) => room.as_nanos() / self.interval.as_nanos().max(1) + 1,
            None => 0,
        };
        let reset = ahead.as_secs() + u64::from(ahead.subsec_nanos() > 0);
        format!("\"default\";r={left};t={reset}")
    }

    /// The address a request is limited by: the peer, or behind a trusted proxy the address it
    /// forwards for. IPv6 clients are limited per /56, as providers hand out whole prefixes.
    fn key(&self, req: &ServiceRequest) -> Option<IpAddr> {
        self.key_of(req.peer_addr().map(|a| a.ip()), req.headers())
    }

    /// The key of a request from `peer` with `headers` (only `X-Forwarded-For` is read) when
    /// limiting is on. A request carrying the internal header is the middleware's to judge.
    pub fn applies_to(
        &self,
        peer: Option<IpAddr>,
        headers: &actix_web::http::header::HeaderMap,
    ) -> Option<IpAddr> {
        self.enabled.then(|| self.key_of(peer, headers)).flatten()
    }

    fn key_of(
        &self,
        peer: Option<IpAddr>,
        headers: &actix_web::http::header::HeaderMap,
    ) -> Option<IpAddr> {
        let ip = self.trusted.client_ip(peer, headers)?;
        Some(match ip {
            IpAddr::V6(v6) => {
                let mut octets = v6.octets();
                octets[7..].fill(0);
                IpAddr::V6(octets.into())
            }
            v4 => v4,
        })
    }
}

/// Middleware: 429 problem+json with `Retry-After` (at least 1 s) over the limit.
pub async fn rate_limit_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limited = req
        .app_data::<web::Data<RateLimit>>()
        .filter(|limit| limit.enabled && !limit.is_internal(&req))
        .and_then(|limit| limit.key(&req).map(|ip| (limit.clone(), ip)));
    let Some((limit, ip)) = limited else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let (mut response, state) = match limit.admit(ip).await {
        Err(wait) => {
            let response = ApiError::too_many_requests(wait.max(1)).error_response();
            let state = format!("\"default\";r=0;t={}", wait.max(1));
            (req.into_response(response), Some(state))
        }
        Ok(ahead) => (
            next.call(req).await?.map_into_boxed_body(),
            ahead.map(|a| limit.remaining(a)),
        ),
    };
    let headers = response.headers_mut();
    headers.insert(
        actix_web::http::header::HeaderName::from_static("ratelimit-policy"),
        limit.policy.clone(),
    );
    if let Some(value) = state.and_then(|s| actix_web::http::header::HeaderValue::from_str(&s).ok())
    {
        headers.insert(
            actix_web::http::header::HeaderName::from_static("ratelimit"),
            value,
        );
    }
    Ok(response)
}

/// CORS for the configured origins (`*` for any); none configured: no cross-origin access.
pub fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            "authorization",
            "content-type",
            "idempotency-key",
            "if-match",
            "if-none-match",
            "x-cart-token",
            "x-order-token",
            "x-request-id",
        ])
        .expose_headers([
            "x-request-id",
            "etag",
            "location",
            "link",
            "retry-after",
            "ratelimit",
            "ratelimit-policy",
            "idempotent-replayed",
        ])
        .max_age(3600);
    for origin in origins {
        cors = if origin == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(origin)
        };
    }
    cors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_second: u32, burst: u32) -> RateLimit {
        let mut config = Config::local(std::path::PathBuf::from("."));
        config.rate_limit_per_second = per_second;
        config.rate_limit_burst = burst;
        RateLimit::new(&config, None).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_burst_passes_then_the_sustained_rate() {
        let l = limit(10, 5);
        let ip: IpAddr = [1, 2, 3, 4].into();
        let t0 = Instant::now();
        for i in 0..5 {
            let ahead = l.check(ip, t0);
            assert_eq!(ahead, Ok(Duration::from_millis(100) * (i + 1)));
            // What is left of the burst of 5 after i + 1 requests, and when it is whole again.
            let left = l.remaining(ahead.unwrap_or_default());
            assert_eq!(left, format!("\"default\";r={};t=1", 4 - i));
        }
        assert_eq!(l.check(ip, t0), Err(1));
        assert_eq!(l.policy, "\"default\";q=5;w=1");
        // One interval later, one more.
        let t1 = t0 + Duration::from_millis(100);
        assert!(l.check(ip, t1).is_ok());
        assert!(l.check(ip, t1).is_err());
        // Another address has its own budget.
        assert!(l.check([5, 6, 7, 8].into(), t1).is_ok());
    }
}

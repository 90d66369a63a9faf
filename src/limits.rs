//! Request limits: per-IP rate limiting (429 + `Retry-After`, rendered as problem+json by the
//! request middleware) and CORS from configuration.

use std::net::IpAddr;

use actix_cors::Cors;
use actix_governor::governor::middleware::NoOpMiddleware;
use actix_governor::{
    Governor, GovernorConfig, GovernorConfigBuilder, KeyExtractor, SimpleKeyExtractionError,
};
use actix_web::dev::ServiceRequest;
use actix_web::middleware::Condition;
use kernel::client_ip::TrustedProxies;

use crate::config::Config;

#[derive(Clone)]
pub struct RateLimit {
    enabled: bool,
    config: GovernorConfig<ClientIp, NoOpMiddleware>,
}

impl RateLimit {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let per_second = u64::from(config.rate_limit_per_second.max(1));
        let governor = GovernorConfigBuilder::default()
            .key_extractor(ClientIp(config.trusted_proxies.clone()))
            .milliseconds_per_request((1000 / per_second).max(1))
            .burst_size(config.rate_limit_burst.max(1))
            .finish()
            .ok_or_else(|| anyhow::anyhow!("EMPORIUM_RATE_LIMIT_PER_SECOND: invalid rate limit"))?;
        Ok(Self {
            enabled: config.rate_limit,
            config: governor,
        })
    }

    pub fn middleware(&self) -> Condition<Governor<ClientIp, NoOpMiddleware>> {
        Condition::new(self.enabled, Governor::new(&self.config))
    }
}

/// Keys the limit by the client's address: the peer, or behind a trusted proxy the address it
/// forwards for. IPv6 clients are limited per /56, as providers hand out whole prefixes.
#[derive(Clone)]
pub struct ClientIp(TrustedProxies);

impl KeyExtractor for ClientIp {
    type Key = IpAddr;
    type KeyExtractionError = SimpleKeyExtractionError<&'static str>;

    fn extract(&self, req: &ServiceRequest) -> Result<IpAddr, Self::KeyExtractionError> {
        let peer = req.peer_addr().map(|a| a.ip());
        let ip = self
            .0
            .client_ip(peer, req.headers())
            .ok_or_else(|| SimpleKeyExtractionError::new("no client address"))?;
        Ok(match ip {
            IpAddr::V6(v6) => {
                let mut octets = v6.octets();
                octets[7..].fill(0);
                IpAddr::V6(octets.into())
            }
            v4 => v4,
        })
    }
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
            "x-request-id",
        ])
        .expose_headers([
            "x-request-id",
            "etag",
            "location",
            "retry-after",
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

//! Request limits: per-IP rate limiting (429 + `Retry-After`, rendered as problem+json by the
//! request middleware) and CORS from configuration.

use actix_cors::Cors;
use actix_governor::governor::middleware::NoOpMiddleware;
use actix_governor::{Governor, GovernorConfig, GovernorConfigBuilder, PeerIpKeyExtractor};
use actix_web::middleware::Condition;

use crate::config::Config;

#[derive(Clone)]
pub struct RateLimit {
    enabled: bool,
    config: GovernorConfig<PeerIpKeyExtractor, NoOpMiddleware>,
}

impl RateLimit {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let per_second = u64::from(config.rate_limit_per_second.max(1));
        let governor = GovernorConfigBuilder::default()
            .milliseconds_per_request((1000 / per_second).max(1))
            .burst_size(config.rate_limit_burst.max(1))
            .finish()
            .ok_or_else(|| anyhow::anyhow!("EMPORIUM_RATE_LIMIT_PER_SECOND: invalid rate limit"))?;
        Ok(Self {
            enabled: config.rate_limit,
            config: governor,
        })
    }

    pub fn middleware(&self) -> Condition<Governor<PeerIpKeyExtractor, NoOpMiddleware>> {
        Condition::new(self.enabled, Governor::new(&self.config))
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

//! Access-token verification, shared by every context so that each (and each split-out
//! service) checks tokens locally with identity's public keys.
//!
//! Tokens are EdDSA (Ed25519) JWTs with a `kid`. Only EdDSA is accepted: `alg: none`, HMAC
//! and RSA tokens are refused before any key is looked at, which closes algorithm confusion.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use kernel::id::UserId;

pub const ISSUER: &str = "emporium";
pub const AUDIENCE: &str = "emporium-api";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        match raw {
            "customer" => Some(Role::Customer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub roles: Vec<Role>,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// Where verifying keys come from.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync + 'static {
    /// The public key with this `kid`, if known (a remote source may refresh to find it).
    async fn key(&self, kid: &str) -> Option<Arc<DecodingKey>>;
    /// Whether the source can currently serve keys (readiness).
    async fn ready(&self) -> bool {
        true
    }
}

/// Keys held in memory: identity puts its public keys here when it runs in the process.
#[derive(Default)]
pub struct LocalKeys {
    keys: RwLock<HashMap<String, Arc<DecodingKey>>>,
}

impl LocalKeys {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the whole key set (rotation keeps old keys in the set it passes).
    pub fn set(&self, jwks: &JwkSet) {
        let mut map = HashMap::new();
        for jwk in &jwks.keys {
            if let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), decoding_key(jwk)) {
                map.insert(kid, Arc::new(key));
            }
        }
        if let Ok(mut keys) = self.keys.write() {
            *keys = map;
        }
    }
}

fn decoding_key(jwk: &Jwk) -> Result<DecodingKey, jsonwebtoken::errors::Error> {
    DecodingKey::from_jwk(jwk)
}

#[async_trait::async_trait]
impl KeySource for LocalKeys {
    async fn key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.keys.read().ok()?.get(kid).cloned()
    }
}

/// Keys fetched from identity's JWKS endpoint, cached, refreshed on an unknown `kid` (at most
/// once every few seconds, so forged kids cannot make us hammer identity).
pub struct RemoteJwks {
    url: String,
    client: reqwest::Client,
    cache: moka::future::Cache<String, Arc<DecodingKey>>,
    last_refresh: tokio::sync::Mutex<Option<std::time::Instant>>,
}

impl RemoteJwks {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            cache: moka::future::Cache::builder()
                .max_capacity(64)
                .time_to_live(Duration::from_secs(3600))
                .build(),
            last_refresh: tokio::sync::Mutex::new(None),
        }
    }

    async fn refresh(&self) -> anyhow::Result<()> {
        let mut last = self.last_refresh.lock().await;
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(5)) {
            return Ok(());
        }
        *last = Some(std::time::Instant::now());
        let set: JwkSet = self
            .client
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        for jwk in &set.keys {
            if let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), decoding_key(jwk)) {
                self.cache.insert(kid, Arc::new(key)).await;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl KeySource for RemoteJwks {
    async fn key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        if let Some(key) = self.cache.get(kid).await {
            return Some(key);
        }
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, url = %self.url, "cannot fetch JWKS");
        }
        self.cache.get(kid).await
    }

    async fn ready(&self) -> bool {
        // The cache counts its entries lazily: without its pending work done, keys inserted
        // moments ago are not counted yet (and a refresh within 5 s of the last fetches none).
        self.cache.run_pending_tasks().await;
        if self.cache.entry_count() > 0 {
            return true;
        }
        self.refresh().await.is_ok() && {
            self.cache.run_pending_tasks().await;
            self.cache.entry_count() > 0
        }
    }
}

/// The caller, authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub user_id: UserId,
    pub roles: Vec<Role>,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
    }
}

/// An authenticated caller with the admin role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUser(pub AuthUser);

/// Verifies access tokens against a key source. A token verified once is remembered until it
/// expires (tokens are immutable and short-lived), so a signature is checked once per token,
/// not once per request.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Arc<dyn KeySource>,
    validation: Validation,
    verified: moka::sync::Cache<String, (AuthUser, i64)>,
}

impl TokenVerifier {
    pub fn new(keys: Arc<dyn KeySource>) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            keys,
            validation,
            verified: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(3600))
                .build(),
        }
    }

    pub fn keys(&self) -> &Arc<dyn KeySource> {
        &self.keys
    }

    pub async fn verify(&self, token: &str) -> Result<AuthUser, ApiError> {
        let invalid = || ApiError::unauthorized("the access token is invalid or expired");
        let now = chrono::Utc::now().timestamp();
        if let Some((user, exp)) = self.verified.get(token) {
            if now <= exp + i64::try_from(self.validation.leeway).unwrap_or(0) {
                return Ok(user);
            }
            self.verified.invalidate(token);
            return Err(invalid());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid());
        }
        let kid = header.kid.ok_or_else(invalid)?;
        let key = self.keys.key(&kid).await.ok_or_else(invalid)?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation)
            .map_err(|_| invalid())?;
        let user_id = UserId::parse(&data.claims.sub).map_err(|_| invalid())?;
        let user = AuthUser {
            user_id,
            roles: data.claims.roles,
        };
        if token.len() <= 4096 {
            self.verified
                .insert(token.to_owned(), (user.clone(), data.claims.exp));
        }
        Ok(user)
    }
}

/// The claims of a service's access token (OAuth 2.0 client credentials): `sub` names the
/// calling service, `aud` the one context the token is for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// A context that accepts service tokens: its name is the audience they must carry.
pub trait ServiceAudience: 'static {
    const NAME: &'static str;
}

/// A service authenticated by a client-credentials token for the audience `A`. Endpoints
/// meant for services only take this and nothing else: a token for another audience is 401,
/// a user's token (valid as it may be) is 403.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCaller<A> {
    /// The calling service (`sub`).
    pub service: String,
    audience: std::marker::PhantomData<A>,
}

impl TokenVerifier {
    /// Verifies a service token for `audience`.
    pub async fn verify_service(&self, token: &str, audience: &str) -> Result<String, ApiError> {
        self.verify_service_among(token, &[audience]).await
    }

    /// Verifies a service token for any of `audiences` (a process hosting several contexts
    /// accepts a token for each); the calling service.
    pub async fn verify_service_among(
        &self,
        token: &str,
        audiences: &[&str],
    ) -> Result<String, ApiError> {
        let invalid = || ApiError::unauthorized("the access token is invalid or expired");
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid());
        }
        let kid = header.kid.ok_or_else(invalid)?;
        let key = self.keys.key(&kid).await.ok_or_else(invalid)?;
        // Signature, issuer and lifetime first; the audience decides between 401 and 403.
        let mut any_audience = self.validation.clone();
        any_audience.validate_aud = false;
        let data = jsonwebtoken::decode::<ServiceClaims>(token, &key, &any_audience)
            .map_err(|_| invalid())?;
        if data.claims.aud == AUDIENCE {
            return Err(ApiError::forbidden(
                "this endpoint is for services: a user's access token is not accepted",
            ));
        }
        if !audiences.contains(&data.claims.aud.as_str()) {
            return Err(ApiError::unauthorized(format!(
                "the access token is not for this service (audience {})",
                audiences.join(" or ")
            )));
        }
        Ok(data.claims.sub)
    }
}

impl<A: ServiceAudience> FromRequest for ServiceCaller<A> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = verifier_and_token(req, "a service access token is required");
        Box::pin(async move {
            let (verifier, token) = found?;
            let service = verifier.verify_service(&token, A::NAME).await?;
            Ok(ServiceCaller {
                service,
                audience: std::marker::PhantomData,
            })
        })
    }
}

/// The app's verifier and the request's bearer token (401 with `missing` without one).
pub fn verifier_and_token(
    req: &HttpRequest,
    missing: &'static str,
) -> Result<(web::Data<TokenVerifier>, String), ApiError> {
    let verifier = req
        .app_data::<web::Data<TokenVerifier>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no token verifier configured")))?;
    let token = bearer(req).ok_or_else(|| ApiError::unauthorized(missing))?;
    Ok((verifier, token))
}

/// The token of an `Authorization: Bearer` header, if any.
pub fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

impl FromRequest for AuthUser {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = verifier_and_token(req, "a bearer access token is required");
        Box::pin(async move {
            let (verifier, token) = found?;
            Ok(verifier.verify(&token).await?)
        })
    }
}

impl FromRequest for AdminUser {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = AuthUser::from_request(req, payload);
        Box::pin(async move {
            let user = user.await?;
            if !user.is_admin() {
                return Err(ApiError::forbidden("this operation needs the admin role").into());
            }
            Ok(AdminUser(user))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves one JWKS document to every connection.
    async fn jwks_server(body: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 1024];
                let _ = socket.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        format!("http://{addr}/.well-known/jwks.json")
    }

    #[tokio::test]
    async fn keys_fetched_moments_ago_make_the_source_ready() {
        let url = jwks_server(
            r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1","alg":"EdDSA","use":"sig"}]}"#,
        )
        .await;
        let jwks = RemoteJwks::new(url);
        assert!(jwks.key("k1").await.is_some());
        // Within the 5 s in which no refetch happens: the key just cached must count.
        assert!(jwks.ready().await);
        assert!(jwks.key("unknown").await.is_none());
        assert!(jwks.ready().await);
    }
}

//! Ed25519 signing keys: loaded from `EMPORIUM_JWT_PRIVATE_KEY` (PKCS#8 PEM) or generated once
//! into the data dir. Public keys are recorded in the `signing_key` table; a key replaced by a
//! new one stays in the JWKS until every token it signed has expired.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kernel::id::UserId;
use kernel::{Clock, Timestamp};
use platform::auth::{AccessClaims, ServiceClaims, AUDIENCE, ISSUER};
use platform::db::Database;
use sha2::{Digest, Sha256};
use std::sync::Arc;

use crate::application::ports::{AccessTokenIssuer, IssuedAccessToken, ServiceTokenIssuer};
use crate::domain::Roles;

const KEY_FILE: &str = "jwt-ed25519.pem";

pub(crate) struct TokenSigner {
    kid: String,
    encoding: EncodingKey,
    public_jwk: serde_json::Value,
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl TokenSigner {
    /// Loads the configured key, or the one generated earlier in `data_dir`, or generates it.
    pub(crate) fn load(
        configured_pem: Option<&str>,
        data_dir: &Path,
        ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let signing = match configured_pem {
            Some(pem) => SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| {
                anyhow::anyhow!("EMPORIUM_JWT_PRIVATE_KEY: not an Ed25519 PKCS#8 PEM key: {e}")
            })?,
            None => {
                let path = data_dir.join(KEY_FILE);
                if path.exists() {
                    let pem = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| {
                        anyhow::anyhow!("{} is not an Ed25519 PKCS#8 PEM key: {e}", path.display())
                    })?
                } else {
                    let key = SigningKey::generate(&mut rand::rngs::OsRng);
                    let pem = key
                        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
                        .map_err(|e| anyhow::anyhow!("cannot encode key: {e}"))?;
                    std::fs::create_dir_all(data_dir)?;
                    write_private(&path, pem.as_bytes())?;
                    tracing::warn!(path = %path.display(), "EMPORIUM_JWT_PRIVATE_KEY is not set: generated a signing key; set the variable when running more than one identity instance");
                    key
                }
            }
        };
        let der = signing
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("cannot encode key: {e}"))?;
        let encoding = EncodingKey::from_ed_der(der.as_bytes());
        let public = signing.verifying_key().to_bytes();
        let x = URL_SAFE_NO_PAD.encode(public);
        // RFC 7638 thumbprint as the key id.
        let thumbprint_input = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()));
        let public_jwk = serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"
        });
        Ok(Self {
            kid,
            encoding,
            public_jwk,
            ttl,
            clock,
        })
    }

    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// Records this key as current and retires the others (they stay published for one TTL).
    pub(crate) async fn publish(&self, db: &Database) -> anyhow::Result<()> {
        let now = self.clock.now().as_micros();
        let mut tx = db.begin().await?;
        sqlx::query(
            "insert into signing_key (kid, public_jwk, created_at) values ($1, $2, $3) on conflict (kid) do update set retired_at = null",
        )
        .bind(&self.kid)
        .bind(self.public_jwk.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "update signing_key set retired_at = $1 where kid <> $2 and retired_at is null",
        )
        .bind(now)
        .bind(&self.kid)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The published key set: the current key and keys retired less than one TTL ago.
    pub(crate) async fn jwks(&self, db: &Database) -> anyhow::Result<JwkSet> {
        let cutoff = self
            .clock
            .now()
            .minus(self.ttl + Duration::from_secs(60))
            .as_micros();
        let rows: Vec<String> = sqlx::query_scalar(
            "select public_jwk from signing_key where retired_at is null or retired_at > $1 order by created_at desc",
        )
        .bind(cutoff)
        .fetch_all(db.pool())
        .await?;
        let keys = rows
            .iter()
            .filter_map(|raw| serde_json::from_str(raw).ok())
            .collect();
        Ok(JwkSet { keys })
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot create {}", path.display()))
}

impl AccessTokenIssuer for TokenSigner {
    fn issue(&self, user: UserId, roles: &Roles) -> anyhow::Result<IssuedAccessToken> {
        let now: Timestamp = self.clock.now();
        let iat = now.as_micros() / 1_000_000;
        let ttl = self.ttl.as_secs();
        let claims = AccessClaims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: user.to_string(),
            roles: roles.as_slice().to_vec(),
            iat,
            exp: iat + i64::try_from(ttl).unwrap_or(900),
            jti: uuid::Uuid::now_v7().to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .context("cannot sign access token")?;
        Ok(IssuedAccessToken {
            token,
            expires_in: ttl,
        })
    }
}

/// Service tokens live five minutes (or the access token lifetime, if shorter): a service
/// asks again, a leaked one is soon useless.
const SERVICE_TOKEN_TTL: Duration = Duration::from_secs(300);

impl ServiceTokenIssuer for TokenSigner {
    fn issue_service(&self, service: &str, audience: &str) -> anyhow::Result<IssuedAccessToken> {
        let iat = self.clock.now().as_micros() / 1_000_000;
        let ttl = SERVICE_TOKEN_TTL.min(self.ttl).as_secs();
        let claims = ServiceClaims {
            iss: ISSUER.to_owned(),
            aud: audience.to_owned(),
            sub: service.to_owned(),
            iat,
            exp: iat + i64::try_from(ttl).unwrap_or(300),
            jti: uuid::Uuid::now_v7().to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .context("cannot sign service token")?;
        Ok(IssuedAccessToken {
            token,
            expires_in: ttl,
        })
    }
}

//! argon2id with the OWASP parameters (19 MiB, 2 passes, 1 lane), off the async threads.

use anyhow::Context as _;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::application::ports::PasswordHasher;
use crate::domain::Password;

pub(crate) struct Argon2idHasher {
    /// A real hash of a random password: unknown accounts are verified against it.
    dummy: String,
}

fn argon() -> anyhow::Result<Argon2<'static>> {
    let params =
        Params::new(19 * 1024, 2, 1, None).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2 hash: {e}"))?;
    Ok(hash.to_string())
}

impl Argon2idHasher {
    pub(crate) fn new() -> anyhow::Result<Self> {
        let random = uuid::Uuid::new_v4().to_string();
        Ok(Self {
            dummy: hash_blocking(&random)?,
        })
    }
}

#[async_trait::async_trait]
impl PasswordHasher for Argon2idHasher {
    async fn hash(&self, password: &Password) -> anyhow::Result<String> {
        let password = password.expose().to_owned();
        tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .context("hashing task failed")?
    }

    async fn verify(&self, password: &str, hash: Option<&str>) -> anyhow::Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy).to_owned();
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || -> anyhow::Result<bool> {
            let parsed = PasswordHash::new(&hash)
                .map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
            Ok(argon()?
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await
        .context("verification task failed")??;
        Ok(ok && known)
    }
}

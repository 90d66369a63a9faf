//! Bearer secrets (refresh, reset, verification, cart and order tokens): 256 random bits,
//! handed out once and stored only as their SHA-256.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 256 bits from the operating system's generator, as bytes (a signing key).
pub fn random_key() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A new secret: 256 bits from the operating system's generator, base64url (43 characters).
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 (base64url) a secret is stored as.
pub fn hash_secret(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `presented` could be a secret of [`new_secret`]'s shape: a cheap refusal of junk
/// before any lookup.
pub fn looks_like_secret(presented: &str) -> bool {
    presented.len() == 43
        && presented
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// HMAC-SHA256 of `message` under `key` (webhook signatures).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().into()
        }
        // HMAC takes keys of every length (a long one is hashed first): never taken.
        Err(_) => [0; 32],
    }
}

/// Whether two byte strings are equal, in time that depends on their length only.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_distinct_well_formed_and_hashed_one_way() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a, b);
        assert!(looks_like_secret(&a), "{a}");
        assert!(!looks_like_secret("short"));
        assert!(!looks_like_secret(&format!("{}!", &a[..42])));
        assert_eq!(hash_secret(&a), hash_secret(&a));
        assert_ne!(hash_secret(&a), a);
        assert_ne!(hash_secret(&a), hash_secret(&b));
    }

    #[test]
    fn hmac_matches_rfc_4231_and_comparisons_are_exact() {
        // RFC 4231, test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}

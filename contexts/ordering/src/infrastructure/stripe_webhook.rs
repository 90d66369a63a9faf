//! Stripe's webhook signatures and events. `Stripe-Signature: t=<unix seconds>,v1=<hex>`:
//! v1 is HMAC-SHA256 under an endpoint secret (`whsec_…`) of `"<t>.<raw body>"`. A request is
//! taken only when one v1 matches one configured secret (several while a secret rotates) and
//! `t` is within the tolerance of now, so a captured request cannot be replayed later.

use kernel::Timestamp;
use platform::secret::{constant_time_eq, hmac_sha256};

use crate::domain::ProviderEvent;

/// How far a signature's time may be from now (Stripe's own libraries use 300 s).
pub(crate) const TOLERANCE_SECS: i64 = 300;

/// Why a webhook was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No header, or not `t=…,v1=…`.
    Malformed,
    /// The time is outside the tolerance.
    Stale,
    /// No v1 matches a secret.
    Forged,
    /// Signed, but not a Stripe event.
    NotAnEvent,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `header` over `body` against `secrets` at `now`.
pub(crate) fn verify(
    secrets: &[String],
    header: Option<&str>,
    body: &[u8],
    now: Timestamp,
) -> Result<(), Refused> {
    let header = header.ok_or(Refused::Malformed)?;
    let mut time = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => time = Some(t.parse::<i64>().map_err(|_| Refused::Malformed)?),
            Some(("v1", v)) => signatures.push(v.to_ascii_lowercase()),
            _ => {}
        }
    }
    let time = time.ok_or(Refused::Malformed)?;
    if signatures.is_empty() {
        return Err(Refused::Malformed);
    }
    if (now.as_micros() / 1_000_000 - time).abs() > TOLERANCE_SECS {
        return Err(Refused::Stale);
    }
    let mut signed = format!("{time}.").into_bytes();
    signed.extend_from_slice(body);
    let matched = secrets.iter().any(|secret| {
        let expected = hex(&hmac_sha256(secret.as_bytes(), &signed));
        signatures
            .iter()
            .any(|v1| constant_time_eq(v1.as_bytes(), expected.as_bytes()))
    });
    if matched {
        Ok(())
    } else {
        Err(Refused::Forged)
    }
}

/// The event a verified body carries: its id, type, the payment intent it is about, and the
/// provider's state of the charge it implies (for the events that say one).
pub(crate) fn event(body: &[u8]) -> Result<ProviderEvent, Refused> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| Refused::NotAnEvent)?;
    let id = value["id"].as_str().filter(|id| id.starts_with("evt_"));
    let kind = value["type"].as_str();
    let (Some(id), Some(kind)) = (id, kind) else {
        return Err(Refused::NotAnEvent);
    };
    let object = &value["data"]["object"];
    let intent = match object["object"].as_str() {
        Some("payment_intent") => object["id"].as_str(),
        _ => object["payment_intent"].as_str(),
    };
    let status = match kind {
        "payment_intent.succeeded" => Some("succeeded"),
        "payment_intent.payment_failed" => Some("failed"),
        "payment_intent.canceled" => Some("canceled"),
        "charge.refunded" if object["refunded"] == true => Some("refunded"),
        "charge.refunded" => Some("partially_refunded"),
        "charge.dispute.created" => Some("disputed"),
        _ => None,
    };
    Ok(ProviderEvent {
        id: id.chars().take(255).collect(),
        kind: kind.chars().take(255).collect(),
        payment_reference: intent.map(|i| i.chars().take(255).collect()),
        provider_status: status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let mut signed = format!("{t}.").into_bytes();
        signed.extend_from_slice(body);
        format!("t={t},v1={}", hex(&hmac_sha256(secret.as_bytes(), &signed)))
    }

    #[test]
    fn only_a_fresh_signature_under_a_configured_secret_is_taken() {
        let now = Timestamp::from_micros(1_700_000_000_000_000);
        let t = 1_700_000_000;
        let body = br#"{"id":"evt_1","type":"charge.refunded"}"#;
        let secrets = vec!["whsec_old".to_owned(), "whsec_new".to_owned()];
        assert_eq!(
            verify(&secrets, Some(&sign("whsec_new", t, body)), body, now),
            Ok(())
        );
        assert_eq!(
            verify(&secrets, Some(&sign("whsec_old", t, body)), body, now),
            Ok(())
        );
        assert_eq!(
            verify(&secrets, Some(&sign("whsec_other", t, body)), body, now),
            Err(Refused::Forged)
        );
        let tampered = br#"{"id":"evt_1","type":"charge.refunded "}"#;
        assert_eq!(
            verify(&secrets, Some(&sign("whsec_new", t, body)), tampered, now),
            Err(Refused::Forged)
        );
        assert_eq!(
            verify(&secrets, Some(&sign("whsec_new", t - 301, body)), body, now),
            Err(Refused::Stale)
        );
        assert_eq!(verify(&secrets, None, body, now), Err(Refused::Malformed));
        assert_eq!(
            verify(&secrets, Some("v1=abc"), body, now),
            Err(Refused::Malformed)
        );
        assert_eq!(
            verify(&secrets, Some("t=1,v0=abc"), body, now),
            Err(Refused::Malformed)
        );
    }

    #[test]
    fn events_name_the_intent_and_the_state_they_imply() {
        let refund = event(br#"{"id":"evt_2","type":"charge.refunded","data":{"object":{"object":"charge","payment_intent":"pi_9","refunded":false}}}"#);
        assert_eq!(
            refund
                .as_ref()
                .map(|e| (e.payment_reference.as_deref(), e.provider_status)),
            Ok((Some("pi_9"), Some("partially_refunded")))
        );
        let paid = event(br#"{"id":"evt_3","type":"payment_intent.succeeded","data":{"object":{"object":"payment_intent","id":"pi_7"}}}"#);
        assert_eq!(
            paid.map(|e| (e.payment_reference, e.provider_status)),
            Ok((Some("pi_7".to_owned()), Some("succeeded")))
        );
        assert_eq!(event(b"[]").err(), Some(Refused::NotAnEvent));
        assert_eq!(
            event(br#"{"id":"x","type":"t"}"#).err(),
            Some(Refused::NotAnEvent)
        );
    }
}

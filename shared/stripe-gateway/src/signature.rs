//! Stripe webhook signatures: `Stripe-Signature: t=<unix s>,v1=<hex>,v1=<hex>,...` where each
//! `v1` is HMAC-SHA256 over `"<t>.<raw body>"` with the endpoint's secret.
//!
//! Every `v1` is checked (during a secret rotation Stripe signs with the old and the new
//! secret, and async-stripe's parser keeps only the last one, so it could refuse a valid event),
//! against every secret we hold, in constant time; the timestamp must be within [`TOLERANCE_S`]
//! of now.

// Numbers from outside (amounts, quantities, timestamps) are combined only with checked
// arithmetic; test code, exercising generated values, is exempt.
#![cfg_attr(not(test), warn(clippy::arithmetic_side_effects))]

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Stripe's default tolerance: older (or further in the future) signatures are refused.
pub const TOLERANCE_S: i64 = 300;
/// A header longer than this is not one Stripe sent.
const MAX_HEADER_LEN: usize = 8 * 1024;
/// Most signatures read from one header.
const MAX_SIGNATURES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

fn mac(secret: &str, timestamp: i64, payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    // `from_str_radix` alone would take a `+` sign: "+f" is not a hex byte.
    if !s.len().is_multiple_of(2) || s.len() > 128 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    s.as_bytes().chunks_exact(2).map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()).collect()
}

/// Whether `timestamp` is within [`TOLERANCE_S`] of `now`. Both may be any `i64` (the header's
/// comes from outside): a distance that does not even fit an `i64` is out of tolerance.
fn is_fresh(timestamp: i64, now: i64) -> bool {
    now.checked_sub(timestamp).and_then(i64::checked_abs).is_some_and(|age_s| age_s <= TOLERANCE_S)
}

/// The header Stripe would send for `payload` signed with each of `secrets` at `timestamp`.
pub fn sign(payload: &[u8], secrets: &[&str], timestamp: i64) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        let tag = mac(secret, timestamp, payload).finalize().into_bytes();
        header.push_str(",v1=");
        header.extend(tag.iter().map(|b| format!("{b:02x}")));
    }
    header
}

/// Checks `header` for `payload` against any of `secrets`, at time `now` (unix seconds).
pub fn verify(payload: &[u8], header: Option<&str>, secrets: &[&str], now: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    if header.len() > MAX_HEADER_LEN {
        return Err(SignatureError::Malformed);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(SignatureError::Malformed)?;
        match k {
            "t" => timestamp = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            "v1" if signatures.len() < MAX_SIGNATURES => {
                signatures.push(hex_decode(v).ok_or(SignatureError::Malformed)?);
            }
            // v0 (test-mode legacy) and schemes we don't know are ignored, as Stripe advises.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if !is_fresh(timestamp, now) {
        return Err(SignatureError::Stale);
    }
    let matches = secrets.iter().any(|secret| {
        // `verify_slice` compares in constant time.
        signatures.iter().any(|sig| mac(secret, timestamp, payload).verify_slice(sig).is_ok())
    });
    if matches { Ok(()) } else { Err(SignatureError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000;

    #[test]
    fn a_signed_payload_verifies() {
        let h = sign(b"{\"id\":\"evt_1\"}", &["whsec_a"], NOW);
        assert_eq!(verify(b"{\"id\":\"evt_1\"}", Some(&h), &["whsec_a"], NOW + 10), Ok(()));
    }

    #[test]
    fn refusals() {
        let body = b"{\"id\":\"evt_1\"}";
        let h = sign(body, &["whsec_a"], NOW);
        assert_eq!(verify(b"{\"id\":\"evt_2\"}", Some(&h), &["whsec_a"], NOW), Err(SignatureError::Mismatch));
        assert_eq!(verify(body, Some(&h), &["whsec_b"], NOW), Err(SignatureError::Mismatch));
        assert_eq!(verify(body, Some(&h), &["whsec_a"], NOW + TOLERANCE_S + 1), Err(SignatureError::Stale));
        assert_eq!(verify(body, Some(&h), &["whsec_a"], NOW - TOLERANCE_S - 1), Err(SignatureError::Stale));
        assert_eq!(verify(body, None, &["whsec_a"], NOW), Err(SignatureError::Missing));
        for bad in ["", "t=abc,v1=00", "v1=00", "t=1", "t=1,v1=zz", "garbage"] {
            assert!(verify(body, Some(bad), &["whsec_a"], NOW).is_err(), "{bad:?}");
        }
    }

    /// A timestamp from outside at either end of `i64` is stale, never an overflow (a panic in a
    /// debug build, a wrapped difference in a release one).
    #[test]
    fn extreme_timestamps_are_stale() {
        let body = b"{}";
        let zeros = "0".repeat(64);
        let opposite = |t: i64| if t < 0 { i64::MAX } else { i64::MIN };
        for t in [i64::MIN, i64::MAX, i64::MIN + 1] {
            let header = format!("t={t},v1={zeros}");
            for now in [NOW, 0, -NOW, opposite(t)] {
                assert_eq!(
                    verify(body, Some(&header), &["whsec_a"], now),
                    Err(SignatureError::Stale),
                    "t={t} at {now}"
                );
            }
        }
        assert_eq!(
            verify(body, Some("t=-9223372036854775808,v1=00"), &["whsec_a"], i64::MIN + TOLERANCE_S),
            Err(SignatureError::Mismatch),
            "within the tolerance even down there: only the signature is wrong"
        );
        // Validly signed at the far ends, and checked at the very same instant: fresh, and it verifies.
        for t in [i64::MIN, i64::MAX] {
            assert_eq!(verify(body, Some(&sign(body, &["whsec_a"], t)), &["whsec_a"], t), Ok(()));
        }
        assert_eq!(
            verify(body, Some("t=9223372036854775808,v1=00"), &["whsec_a"], NOW),
            Err(SignatureError::Malformed)
        );
        assert_eq!(verify(body, Some("t=1,v1=+f"), &["whsec_a"], NOW), Err(SignatureError::Malformed));
    }

    #[test]
    fn every_v1_and_every_secret_is_tried() {
        let body = b"payload";
        // Rotation: Stripe signs with the old and the new secret; we hold only the new one,
        // and the valid signature is the FIRST v1 (async-stripe keeps only the last).
        let both = sign(body, &["whsec_new", "whsec_old"], NOW);
        assert_eq!(verify(body, Some(&both), &["whsec_new"], NOW), Ok(()));
        // Or we hold both while Stripe already signs with the new one only.
        let new_only = sign(body, &["whsec_new"], NOW);
        assert_eq!(verify(body, Some(&new_only), &["whsec_old", "whsec_new"], NOW), Ok(()));
        // A v0 next to a valid v1 is ignored.
        let with_v0 = format!("{new_only},v0=deadbeef");
        assert_eq!(verify(body, Some(&with_v0), &["whsec_new"], NOW), Ok(()));
    }
}

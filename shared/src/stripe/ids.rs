//! Stripe's identifiers and the idempotency key, checked once at the edge.
//!
//! These are Stripe's ids, not ours: Stripe documents them as opaque strings of up to 255
//! characters with a type prefix, and real ones are long (a Checkout Session id in Stripe's own
//! examples is 66 characters: `cs_test_a11YYufWQzNY63zpQ6QSWRQhkUpVph4WRmzW0zWJO2znZKdVujZ0N0S22u`).
//! So they are not [`crate::domain::CheckoutId`] and friends, whose 64-character limit is ours.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Stripe's documented maximum for object ids and idempotency keys.
pub const STRIPE_ID_MAX_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Stripe {kind}: expected '{prefix}' then 1 to {STRIPE_ID_MAX_LEN} characters of a-z, A-Z, 0-9 or '_'")]
pub struct InvalidStripeId {
    kind: &'static str,
    prefix: &'static str,
}

fn check(kind: &'static str, prefix: &'static str, s: &str) -> Result<(), InvalidStripeId> {
    let ok = s.len() <= STRIPE_ID_MAX_LEN
        && s.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    if ok { Ok(()) } else { Err(InvalidStripeId { kind, prefix }) }
}

macro_rules! stripe_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn parse(s: &str) -> Result<Self, InvalidStripeId> {
                check($kind, $prefix, s)?;
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidStripeId;
            fn try_from(s: &str) -> Result<Self, InvalidStripeId> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

stripe_id!(
    /// A connected account (the partner's own Stripe account): `acct_...`. Sent as `Stripe-Account`.
    AccountId,
    "account id",
    "acct_"
);
stripe_id!(
    /// A customer on a connected account: `cus_...`.
    CustomerId,
    "customer id",
    "cus_"
);
stripe_id!(
    /// A Checkout Session: `cs_test_...` or `cs_live_...`.
    CheckoutSessionId,
    "Checkout Session id",
    "cs_"
);
stripe_id!(
    /// A PaymentIntent: `pi_...`.
    PaymentIntentId,
    "PaymentIntent id",
    "pi_"
);
stripe_id!(
    /// A saved payment method: `pm_...`.
    PaymentMethodId,
    "PaymentMethod id",
    "pm_"
);
stripe_id!(
    /// A charge: `ch_...` (`py_...` charges of other payment methods are not used here).
    ChargeId,
    "charge id",
    "ch_"
);
stripe_id!(
    /// A Connect OAuth authorization code: `ac_...`, single use, valid for 5 minutes.
    OAuthCode,
    "OAuth authorization code",
    "ac_"
);

/// An `Idempotency-Key`: 1 to 255 visible ASCII characters (it travels as a header).
///
/// The caller derives it from what the call does (`checkout:<workspace>:<request id>`,
/// `topup:<workspace>:<cycle>:<attempt>`), so a retry, by this process or by a later invocation,
/// sends the same key and Stripe replays the first result instead of acting twice.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an idempotency key must be 1 to {STRIPE_ID_MAX_LEN} visible ASCII characters")]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<Self, InvalidIdempotencyKey> {
        let ok = !s.is_empty() && s.len() <= STRIPE_ID_MAX_LEN && s.bytes().all(|b| b.is_ascii_graphic());
        if ok { Ok(Self(s.to_owned())) } else { Err(InvalidIdempotencyKey) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_take_stripe_lengths_and_refuse_the_rest() {
        let real = "cs_test_a11YYufWQzNY63zpQ6QSWRQhkUpVph4WRmzW0zWJO2znZKdVujZ0N0S22u";
        assert_eq!(CheckoutSessionId::parse(real).unwrap().as_str(), real);
        assert!(CheckoutSessionId::parse(&format!("cs_{}", "a".repeat(252))).is_ok());
        assert!(CheckoutSessionId::parse(&format!("cs_{}", "a".repeat(253))).is_err());
        for bad in ["", "cs_", "pi_123", "cs_a-b", "cs_a b", "CS_abc", "cs_é"] {
            assert!(CheckoutSessionId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(AccountId::parse("acct_1Nv0FGQ9RKHgCVdK").is_ok());
        assert!(AccountId::parse("cus_1").is_err());
        assert_eq!(
            AccountId::parse("x").unwrap_err().to_string(),
            "not a Stripe account id: expected 'acct_' then 1 to 255 characters of a-z, A-Z, 0-9 or '_'"
        );
        assert_eq!(serde_json::to_string(&CustomerId::parse("cus_9").unwrap()).unwrap(), "\"cus_9\"");
        assert!(serde_json::from_str::<CustomerId>("\"acct_9\"").is_err());
    }

    #[test]
    fn idempotency_keys() {
        assert!(IdempotencyKey::parse("topup:demo-ws-1:2026-11:1").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in [String::new(), "k".repeat(256), "a b".into(), "a\nb".into(), "é".into()] {
            assert_eq!(IdempotencyKey::parse(&bad), Err(InvalidIdempotencyKey), "{bad:?}");
        }
    }
}

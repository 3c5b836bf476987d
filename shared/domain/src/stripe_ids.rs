//! Stripe's identifiers and the idempotency key, checked once at the edge.
//!
//! These are Stripe's ids, not ours: Stripe documents them as opaque strings of up to 255
//! characters with a type prefix, and real ones are long (a Checkout Session id in Stripe's own
//! examples is 66 characters: `cs_test_a11YYufWQzNY63zpQ6QSWRQhkUpVph4WRmzW0zWJO2znZKdVujZ0N0S22u`).
//! The Checkout Session id is the domain's [`CheckoutId`] (it is stored with the checkout).

use std::fmt;

use crate::ids::{check_prefixed_up_to, string_id};
pub use crate::{CheckoutId, InvalidId, STRIPE_ID_MAX_LEN};

/// A Stripe id: its prefix, then letters, digits or `_`, at most [`STRIPE_ID_MAX_LEN`] in all.
macro_rules! stripe_id {
    ($name:ident, $kind:literal, $prefix:literal, $doc:literal) => {
        string_id!(
            #[doc = $doc]
            $name,
            |s| check_prefixed_up_to(
                STRIPE_ID_MAX_LEN,
                $kind,
                concat!("'", $prefix, "' then letters, digits or '_'"),
                s
            )
        );
    };
}

stripe_id!(
    AccountId,
    "account id",
    "acct_",
    "A connected account (the partner's own Stripe account): `acct_...`. Sent as `Stripe-Account`."
);
stripe_id!(CustomerId, "customer id", "cus_", "A customer on a connected account: `cus_...`.");
stripe_id!(PaymentIntentId, "PaymentIntent id", "pi_", "A PaymentIntent: `pi_...`.");
stripe_id!(PaymentMethodId, "PaymentMethod id", "pm_", "A saved payment method: `pm_...`.");
stripe_id!(
    ChargeId,
    "charge id",
    "ch_",
    "A charge: `ch_...` (`py_...` charges of other payment methods are not used here)."
);
stripe_id!(
    InvoiceId,
    "invoice id",
    "in_",
    "An invoice: `in_...`; here, the paid invoice Checkout creates for a payment it was asked to invoice."
);
stripe_id!(PriceId, "price id", "price_", "A price of a product on a connected account: `price_...`.");
stripe_id!(
    SubscriptionId,
    "subscription id",
    "sub_",
    "A subscription of a workspace's customer to its plan (and add-ons, in money): `sub_...`."
);
stripe_id!(SubscriptionItemId, "subscription item id", "si_", "One price on a subscription: `si_...`.");
stripe_id!(
    OAuthCode,
    "OAuth authorization code",
    "ac_",
    "A Connect OAuth authorization code: `ac_...`, single use, valid for 5 minutes."
);

/// The Stripe object whose receipt a top-up's payment has: the invoice a Checkout Session made
/// (its hosted page and PDF), or, for an off-session charge, the charge (its receipt page).
/// Told apart by the id's prefix, as Stripe's own ids are.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReceiptId {
    Invoice(InvoiceId),
    Charge(ChargeId),
}

impl ReceiptId {
    /// `in_...` or `ch_...`; anything else is no receipt of ours.
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        match s.get(..3) {
            Some("ch_") => ChargeId::parse(s).map(Self::Charge),
            _ => InvoiceId::parse(s).map(Self::Invoice),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Invoice(id) => id.as_str(),
            Self::Charge(id) => id.as_str(),
        }
    }
}

impl fmt::Display for ReceiptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
        assert_eq!(CheckoutId::parse(real).unwrap().as_str(), real);
        assert!(CheckoutId::parse(&format!("cs_{}", "a".repeat(252))).is_ok());
        assert!(CheckoutId::parse(&format!("cs_{}", "a".repeat(253))).is_err());
        for bad in ["", "cs_", "pi_123", "cs_a-b", "cs_a b", "CS_abc", "cs_é"] {
            assert!(CheckoutId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(AccountId::parse("acct_1Nv0FGQ9RKHgCVdK").is_ok());
        assert!(AccountId::parse("cus_1").is_err());
        assert_eq!(
            AccountId::parse("x").unwrap_err().to_string(),
            "account id must be 'acct_' then letters, digits or '_', at most 255 characters"
        );
        assert_eq!(serde_json::to_string(&CustomerId::parse("cus_9").unwrap()).unwrap(), "\"cus_9\"");
        assert!(serde_json::from_str::<CustomerId>("\"acct_9\"").is_err());
    }

    #[test]
    fn receipts_are_invoices_or_charges() {
        assert_eq!(ReceiptId::parse("in_1Abc").unwrap(), ReceiptId::Invoice(InvoiceId::parse("in_1Abc").unwrap()));
        assert_eq!(ReceiptId::parse("ch_3Xyz").unwrap(), ReceiptId::Charge(ChargeId::parse("ch_3Xyz").unwrap()));
        assert_eq!(ReceiptId::parse("ch_3Xyz").unwrap().to_string(), "ch_3Xyz");
        for bad in ["", "in_", "ch_", "pi_1", "py_1", "cs_test_1", "in_a-b", "IN_1"] {
            assert!(ReceiptId::parse(bad).is_err(), "{bad:?}");
        }
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

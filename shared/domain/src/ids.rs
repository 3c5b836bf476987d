//! Identifiers, checked once at the edge. Every id is a newtype with a private field: code that
//! holds a `WorkspaceId` holds a valid one.

use std::fmt;

/// Longest id we accept. Ids end up inside DynamoDB keys and Stripe metadata, so they stay short.
pub const ID_MAX_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} must be {shape}, at most {max_len} characters")]
pub struct InvalidId {
    kind: &'static str,
    shape: &'static str,
    max_len: usize,
}

impl InvalidId {
    pub(crate) fn new(kind: &'static str, shape: &'static str, max_len: usize) -> Self {
        Self { kind, shape, max_len }
    }
}

/// Partner and workspace ids are chosen by the platform: lowercase slugs such as `demo-ws-1`.
fn check_slug(kind: &'static str, s: &str) -> Result<(), InvalidId> {
    let ok = !s.is_empty()
        && s.len() <= ID_MAX_LEN
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(InvalidId { kind, shape: "a-z, 0-9, '-' or '_'", max_len: ID_MAX_LEN }) }
}

/// Stripe's own ids are longer than ours (a Checkout Session id is 66 characters); Stripe
/// documents them as at most 255.
pub const STRIPE_ID_MAX_LEN: usize = 255;

/// Ids the system mints itself carry a prefix (`ad_...`) so they can't be confused.
fn check_prefixed(kind: &'static str, shape: &'static str, s: &str) -> Result<(), InvalidId> {
    check_prefixed_up_to(ID_MAX_LEN, kind, shape, s)
}

/// `shape` is the human form of the prefix rule, e.g. "'ad_' then letters, digits or '_'"; the
/// prefix is what comes before its first `'` pair.
pub(crate) fn check_prefixed_up_to(
    max_len: usize,
    kind: &'static str,
    shape: &'static str,
    s: &str,
) -> Result<(), InvalidId> {
    let prefix = shape.split('\'').nth(1).expect("a shape names its prefix in quotes");
    let ok = s.len() <= max_len
        && s.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    if ok { Ok(()) } else { Err(InvalidId { kind, shape, max_len }) }
}

/// Declares a checked string id: private field, `parse`, `as_str`, `Display`, `TryFrom`,
/// serde as a string through `parse`.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, $crate::InvalidId> {
                let check: fn(&str) -> Result<(), $crate::InvalidId> = $check;
                check(s)?;
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = $crate::InvalidId;
            fn try_from(s: &str) -> Result<Self, $crate::InvalidId> {
                Self::parse(s)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                Self::parse(&s).map_err(::serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use string_id;

string_id!(
    /// A partner: the agency that resells the platform under its own brand.
    PartnerId,
    |s| check_slug("partner id", s)
);
string_id!(
    /// A workspace (sub-account) of a partner.
    WorkspaceId,
    |s| check_slug("workspace id", s)
);
string_id!(
    /// One add-on bought by (or given to) a workspace: `ad_<random>`.
    AddonId,
    |s| check_prefixed("add-on id", "'ad_' then letters, digits or '_'", s)
);
string_id!(
    /// A Stripe Checkout Session id: `cs_test_...` or `cs_live_...`.
    CheckoutId,
    |s| check_prefixed_up_to(STRIPE_ID_MAX_LEN, "Checkout Session id", "'cs_' then letters, digits or '_'", s)
);

string_id!(
    /// One of a partner's top-up options: `to_<random>`, minted when the partner saves a new
    /// option and kept across its edits, so a workspace can pay for it by id.
    TopupOptionId,
    |s| check_prefixed("top-up option id", "'to_' then letters, digits or '_'", s)
);

impl AddonId {
    /// A fresh random add-on id (96 bits of randomness).
    pub fn generate() -> Self {
        Self(format!("ad_{:024x}", fastrand::u128(..) >> 32))
    }
}

impl WorkspaceId {
    /// A fresh workspace id, `ws_` and 96 random bits in hex, from the same generator as the
    /// add-on and top-up option ids. It is not a CSPRNG, and needs not be: an id is no secret
    /// (every route checks that the caller's partner or workspace owns it), it only has to be
    /// new, and creation is conditioned on it being so (a clash draws another).
    pub fn generate() -> Self {
        Self(format!("ws_{:024x}", fastrand::u128(..) >> 32))
    }
}

impl TopupOptionId {
    /// A fresh random top-up option id (96 bits of randomness).
    pub fn generate() -> Self {
        Self(format!("to_{:024x}", fastrand::u128(..) >> 32))
    }
}

/// Whose wallet: a workspace's (points) or a partner's (the platform's currency).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WalletId {
    Workspace(WorkspaceId),
    Partner(PartnerId),
}

impl fmt::Display for WalletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Workspace(w) => write!(f, "ws:{w}"),
            Self::Partner(p) => write!(f, "partner:{p}"),
        }
    }
}

/// A ledger entry is the `seq`-th change of its wallet; `seq` is the wallet version it created.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LedgerEntryId {
    pub wallet: WalletId,
    pub seq: u64,
}

impl fmt::Display for LedgerEntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.wallet, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_checked() {
        assert!(WorkspaceId::parse("demo-ws-1").is_ok());
        assert!(PartnerId::parse("demo_partner").is_ok());
        for bad in ["", "Demo", "a b", "ws#1", "é", &"x".repeat(ID_MAX_LEN + 1)] {
            assert!(WorkspaceId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn prefixed_ids_are_checked() {
        assert!(CheckoutId::parse("cs_test_a1B2").is_ok());
        assert!(CheckoutId::parse("cs_").is_err());
        // A real Stripe session id is 66 characters.
        assert!(CheckoutId::parse(&format!("cs_test_{}", "a1B2".repeat(15))).is_ok());
        assert!(CheckoutId::parse("pi_123").is_err());
        let id = AddonId::generate();
        assert_eq!(AddonId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn ids_deserialize_through_parse() {
        let ok: WorkspaceId = serde_json::from_str("\"demo-ws-2\"").unwrap();
        assert_eq!(ok.as_str(), "demo-ws-2");
        assert!(serde_json::from_str::<WorkspaceId>("\"WS#2\"").is_err());
    }
}

//! The store's own vocabulary for items, conditions and writes.
//!
//! The wallet logic is written once against this vocabulary; `dynamodb.rs` translates it to
//! `TransactWriteItems`, and `memory.rs` evaluates it the way DynamoDB does. Keeping it this
//! small (equality and existence conditions, puts, updates, deletes, checks) is what lets the
//! two implementations be checked against each other by one contract suite.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

/// An attribute value. Numbers are exact decimals, as DynamoDB keeps them.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    S(String),
    N(Decimal),
    Bool(bool),
    Null,
    L(Vec<Attr>),
    M(BTreeMap<String, Attr>),
}

impl Attr {
    pub fn s(v: impl Into<String>) -> Self {
        Self::S(v.into())
    }

    pub fn n(v: impl Into<Decimal>) -> Self {
        Self::N(v.into())
    }
}

/// Partition and sort key of an item (`PK`, `SK` in the table).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self { pk: pk.into(), sk: sk.into() }
    }
}

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const ENTITY_TYPE: &str = "entity_type";

/// One item: its attributes, `PK`, `SK` and `entity_type` included.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Item(pub BTreeMap<String, Attr>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("item {key:?}: attribute {attr} is missing or malformed")]
pub struct MalformedItem {
    pub key: Option<Key>,
    pub attr: String,
}

impl Item {
    /// A new item with its key and entity type set; every item carries `entity_type`.
    pub fn new(key: &Key, entity_type: &str) -> Self {
        let mut item = Self::default();
        item.set(PK, Attr::s(&key.pk));
        item.set(SK, Attr::s(&key.sk));
        item.set(ENTITY_TYPE, Attr::s(entity_type));
        item
    }

    pub fn set(&mut self, name: &str, value: Attr) -> &mut Self {
        self.0.insert(name.to_owned(), value);
        self
    }

    pub fn with(mut self, name: &str, value: Attr) -> Self {
        self.set(name, value);
        self
    }

    pub fn get(&self, name: &str) -> Option<&Attr> {
        self.0.get(name)
    }

    pub fn key(&self) -> Option<Key> {
        match (self.get(PK), self.get(SK)) {
            (Some(Attr::S(pk)), Some(Attr::S(sk))) => Some(Key::new(pk, sk)),
            _ => None,
        }
    }

    fn malformed(&self, attr: &str) -> MalformedItem {
        MalformedItem { key: self.key(), attr: attr.to_owned() }
    }

    pub fn str(&self, name: &str) -> Result<&str, MalformedItem> {
        match self.get(name) {
            Some(Attr::S(s)) => Ok(s),
            _ => Err(self.malformed(name)),
        }
    }

    pub fn num(&self, name: &str) -> Result<Decimal, MalformedItem> {
        match self.get(name) {
            Some(Attr::N(n)) => Ok(*n),
            _ => Err(self.malformed(name)),
        }
    }

    pub fn u64(&self, name: &str) -> Result<u64, MalformedItem> {
        let n = self.num(name)?;
        u64::try_from(n).map_err(|_| self.malformed(name))
    }

    /// Parses a string attribute with `parse`, reporting the attribute on failure.
    pub fn parsed<T, E>(&self, name: &str, parse: impl FnOnce(&str) -> Result<T, E>) -> Result<T, MalformedItem> {
        parse(self.str(name)?).map_err(|_| self.malformed(name))
    }
}

/// What a write's condition protects, named so that a caller asks whether *that* failed
/// instead of counting positions in a transaction. One variant per meaning: two writes that
/// fail for the same reason (the workspace's profile and its index item, both taken) share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Guard {
    /// The request's idempotency record is absent or expired: this is its first answer.
    /// Written by the store itself ([`crate::Store::post`], [`crate::Store::commit`]).
    IdempotencyNew,
    /// The wallet is at the version the change was computed from (absent for version 0).
    /// Written by the store itself.
    WalletVersion,
    /// The ledger entry the change creates is not there yet. Written by the store itself.
    LedgerEntryNew,
    /// A new workspace's id is not taken: neither its profile nor its partner's index item exists.
    WorkspaceNew,
    /// The workspace's profile exists.
    WorkspaceExists,
    /// The workspace's profile is at the version read: nothing moved it in between.
    WorkspaceVersion,
    /// A new partner's id is not taken: its profile, index item and billing mode are absent.
    PartnerNew,
    /// The partner's profile exists.
    PartnerExists,
    /// The partner's profile is at the version read.
    PartnerVersion,
    /// The partner's billing mode (prepaid or postpaid) is at the version read.
    BillingVersion,
    /// The partner's list of top-up options is at the version read.
    TopupOptionsVersion,
    /// A workspace's auto top-up setting and attempt are at the version read.
    AutoTopupVersion,
    /// A partner wallet's auto-refill setting and attempt are at the version read.
    RefillVersion,
    /// A Stripe customer record (a workspace's on a connected account, or a partner's on the
    /// platform) does not exist yet.
    CustomerNew,
    /// A Stripe customer record is at the version read.
    CustomerVersion,
    /// A saved payment method's record is at the version read (absent for version 0).
    PaymentMethodVersion,
    /// The sweep's position in an account's events is where this run read it (absent for 0).
    SweepPositionVersion,
    /// A connected account is nobody's yet, or already this partner's.
    StripeAccountClaim,
    /// The partner's Stripe connection still names the account the event is about.
    StripeConnectionAccount,
    /// The partner's Stripe connection is the one read with the request (or still none).
    StripeConnectionAsRead,
    /// A Checkout Session's record does not exist yet.
    CheckoutNew,
    /// A checkout is in one of the states it may move from.
    CheckoutStatus,
    /// A payment's record does not exist yet: the payment was never credited.
    PaymentNew,
    /// A payment's record is at the version read.
    PaymentVersion,
    /// A receipt's record does not exist yet: written once, with its payment's credit.
    ReceiptNew,
    /// A wholesale charge's accrual does not exist yet.
    AccrualNew,
    /// An accrual is still there to fold: no other fold took it.
    AccrualExists,
    /// A partner event's outbox item does not exist yet.
    EventNew,
    /// A plan edit's job is still the edit that was read: no later edit of the plan replaced it.
    PlanEditPending,
    /// A refill request is still the one that was read: neither handled by another pass nor
    /// replaced by a newer request.
    RefillRequestPending,
    /// A workspace's list of billing managers is at the version read.
    BillingManagersVersion,
    /// A partner's webhook endpoint is at the version read (absent: none registered yet).
    WebhookEndpointVersion,
    /// A partner event's delivery was never queued before.
    DeliveryNew,
    /// A queued delivery is at the version read (absent: not queued).
    DeliveryQueued,
    /// A partner's mark of queued deliveries still counts what was read: nothing was queued since.
    WebhooksDueCount,
    /// What a wallet's balance alerts last told is at the version read (absent: nothing yet).
    AlertStateVersion,
    /// A workspace's renewal was not warned about before (`renewal.at_risk`).
    RenewalWarningNew,
}

impl Guard {
    /// The store's own guards of a balance change; a caller's writes never carry them, so that a
    /// failure of one is always the store's to handle.
    pub const STORE_OWN: [Guard; 3] = [Guard::IdempotencyNew, Guard::WalletVersion, Guard::LedgerEntryNew];
}

/// What a guarded condition requires of the item as it is now.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `attribute_not_exists(PK)`: the item must not exist.
    NotExists,
    /// `attribute_exists(PK)`: the item must exist.
    Exists,
    /// `#attr = :value` (so the item must exist).
    Equals { attr: String, value: Attr },
    /// `attribute_not_exists(PK) OR #attr < :now`: absent, or expired but not yet swept by TTL.
    NotExistsOrExpired { attr: String, now_epoch_s: i64 },
    /// `attribute_not_exists(PK) OR #attr = :value`: absent, or present with that value (a
    /// claim that is nobody's or already the claimant's).
    NotExistsOrEquals { attr: String, value: Attr },
    /// The item exists and `attr` holds one of `values` (a state machine's "from" states).
    OneOf { attr: String, values: Vec<Attr> },
}

/// The condition a write is guarded by. Every write states one (create = not-exists, replace =
/// version check); `Always` must be chosen on purpose. Every other condition names its
/// [`Guard`], which is how a failure is reported.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Always,
    Guarded { guard: Guard, test: Test },
}

impl Condition {
    pub fn not_exists(guard: Guard) -> Self {
        Self::Guarded { guard, test: Test::NotExists }
    }

    pub fn exists(guard: Guard) -> Self {
        Self::Guarded { guard, test: Test::Exists }
    }

    pub fn equals(guard: Guard, attr: &str, value: Attr) -> Self {
        Self::Guarded { guard, test: Test::Equals { attr: attr.to_owned(), value } }
    }

    /// `attr` is one of the strings `values`.
    pub fn one_of(guard: Guard, attr: &str, values: &[&str]) -> Self {
        assert!(!values.is_empty(), "a OneOf condition needs at least one value");
        let values = values.iter().map(|v| Attr::s(*v)).collect();
        Self::Guarded { guard, test: Test::OneOf { attr: attr.to_owned(), values } }
    }

    pub fn not_exists_or_equals(guard: Guard, attr: &str, value: Attr) -> Self {
        Self::Guarded { guard, test: Test::NotExistsOrEquals { attr: attr.to_owned(), value } }
    }

    pub fn not_exists_or_expired(guard: Guard, attr: &str, now_epoch_s: i64) -> Self {
        Self::Guarded { guard, test: Test::NotExistsOrExpired { attr: attr.to_owned(), now_epoch_s } }
    }

    /// The guard a failure of this condition reports; `None` for [`Condition::Always`].
    pub fn guard(&self) -> Option<Guard> {
        match self {
            Self::Always => None,
            Self::Guarded { guard, .. } => Some(*guard),
        }
    }
}

/// One action of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Create or replace the whole item.
    Put {
        item: Item,
        condition: Condition,
    },
    /// Set some attributes (creating the item if absent, as DynamoDB's `UpdateItem` does).
    Update {
        key: Key,
        set: Vec<(String, Attr)>,
        condition: Condition,
    },
    Delete {
        key: Key,
        condition: Condition,
    },
    /// Add each number of `add` to its attribute (counting from zero where the item or the
    /// attribute is absent), set `set`, and set `set_if_absent` only where the attribute is not
    /// there yet, creating the item if absent, as DynamoDB's `ADD` and `if_not_exists` do. No
    /// condition: additions commute, so concurrent ones all land.
    Add {
        key: Key,
        add: Vec<(String, Decimal)>,
        set: Vec<(String, Attr)>,
        set_if_absent: Vec<(String, Attr)>,
    },
    /// Write nothing; fail the transaction unless the condition holds.
    Check {
        key: Key,
        condition: Condition,
    },
}

impl Write {
    pub fn key(&self) -> Key {
        match self {
            Write::Put { item, .. } => item.key().expect("a put item always carries PK and SK"),
            Write::Update { key, .. }
            | Write::Delete { key, .. }
            | Write::Check { key, .. }
            | Write::Add { key, .. } => key.clone(),
        }
    }

    pub fn condition(&self) -> &Condition {
        match self {
            Write::Put { condition, .. }
            | Write::Update { condition, .. }
            | Write::Delete { condition, .. }
            | Write::Check { condition, .. } => condition,
            Write::Add { .. } => &Condition::Always,
        }
    }
}

/// Scan order of a query over one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

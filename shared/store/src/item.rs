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

/// The condition a write is guarded by. Every write states one (STYLE: create =
/// not-exists, replace = version check); `Always` must be chosen on purpose.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Always,
    /// `attribute_not_exists(PK)`: the item must not exist.
    NotExists,
    /// `attribute_exists(PK)`: the item must exist.
    Exists,
    /// `#attr = :value` (so the item must exist).
    Equals {
        attr: String,
        value: Attr,
    },
    /// `attribute_not_exists(PK) OR #attr < :now`: absent, or expired but not yet swept by TTL.
    NotExistsOrExpired {
        attr: String,
        now_epoch_s: i64,
    },
    /// The item exists and `attr` holds one of `values` (a state machine's "from" states).
    OneOf {
        attr: String,
        values: Vec<Attr>,
    },
}

impl Condition {
    pub fn equals(attr: &str, value: Attr) -> Self {
        Self::Equals { attr: attr.to_owned(), value }
    }

    /// `attr` is one of the strings `values`.
    pub fn one_of(attr: &str, values: &[&str]) -> Self {
        assert!(!values.is_empty(), "a OneOf condition needs at least one value");
        Self::OneOf { attr: attr.to_owned(), values: values.iter().map(|v| Attr::s(*v)).collect() }
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
            Write::Update { key, .. } | Write::Delete { key, .. } | Write::Check { key, .. } => key.clone(),
        }
    }

    pub fn condition(&self) -> &Condition {
        match self {
            Write::Put { condition, .. }
            | Write::Update { condition, .. }
            | Write::Delete { condition, .. }
            | Write::Check { condition, .. } => condition,
        }
    }
}

/// Scan order of a query over one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

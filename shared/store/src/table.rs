//! The table trait: the few DynamoDB operations the product needs, with typed errors.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::item::{Guard, Item, Key, Order, Write};
use super::schema::IndexKeys;

/// DynamoDB allows at most 100 actions in one `TransactWriteItems`.
pub const MAX_TRANSACTION_ACTIONS: usize = 100;
/// DynamoDB's limit on the keys of one `BatchGetItem`.
pub const MAX_BATCH_GET_KEYS: usize = 100;
/// Largest page a query returns; callers page with a cursor.
pub const MAX_QUERY_LIMIT: usize = 1000;

/// Why a transaction or read failed, in the terms callers act on. The error DynamoDB's SDK
/// answered with, when there is one, is the [`source`](std::error::Error::source), so that the
/// edge can log the whole chain.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TableError {
    /// The transaction was cancelled because the conditions of these guards failed. Each carries
    /// the item as it is now (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), so the caller
    /// can retry with fresh state without another read. Nothing was written.
    #[error("transaction cancelled: {failed}")]
    ConditionFailed { failed: FailedGuards },
    /// Nothing was written and trying again may work: throttling, a `TransactionConflict`
    /// with another transaction, a service error.
    #[error("transient: {what}")]
    Transient {
        what: String,
        #[source]
        source: Option<SdkCause>,
    },
    /// The outcome is unknown (a timeout or dropped connection after the request left): the
    /// write may or may not have happened. Safe to retry only with an idempotency guard.
    #[error("ambiguous: {what}")]
    Ambiguous {
        what: String,
        #[source]
        source: Option<SdkCause>,
    },
    /// Retrying won't help: validation error, missing table, access denied.
    #[error("fatal: {what}")]
    Fatal {
        what: String,
        #[source]
        source: Option<SdkCause>,
    },
}

impl TableError {
    pub fn transient(what: impl Into<String>) -> Self {
        Self::Transient { what: what.into(), source: None }
    }

    pub fn ambiguous(what: impl Into<String>) -> Self {
        Self::Ambiguous { what: what.into(), source: None }
    }

    pub fn fatal(what: impl Into<String>) -> Self {
        Self::Fatal { what: what.into(), source: None }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::Ambiguous { .. })
    }

    /// This error, caused by `sdk` (a cancelled transaction's failed guards need no cause).
    pub fn caused_by(self, sdk: SdkCause) -> Self {
        match self {
            Self::Transient { what, .. } => Self::Transient { what, source: Some(sdk) },
            Self::Ambiguous { what, .. } => Self::Ambiguous { what, source: Some(sdk) },
            Self::Fatal { what, .. } => Self::Fatal { what, source: Some(sdk) },
            failed @ Self::ConditionFailed { .. } => failed,
        }
    }
}

/// An error of the AWS SDK, kept whole (with its own sources) under a [`TableError`]. Shared,
/// so that the error stays cheap to clone; two are equal only if they are the same error.
#[derive(Debug, Clone)]
pub struct SdkCause(Arc<dyn Error + Send + Sync>);

impl SdkCause {
    pub fn new(e: impl Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(e))
    }
}

impl fmt::Display for SdkCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Error for SdkCause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for SdkCause {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A read of one partition (`Query`): the items whose sort key starts with `sk_prefix` (all of
/// them when empty), strictly after `start_after` in `order`, at most `limit` (1 to
/// [`MAX_QUERY_LIMIT`]). Strongly consistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query<'a> {
    pub pk: &'a str,
    pub sk_prefix: &'a str,
    pub start_after: Option<&'a str>,
    pub limit: usize,
    pub order: Order,
}

/// A read of a global secondary index: the items whose `index.partition` attribute is `pk`, in
/// `index.sort` order, strictly after `start_after`, at most `limit` (1 to [`MAX_QUERY_LIMIT`]).
/// Eventually consistent, as every DynamoDB global secondary index is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexQuery<'a> {
    pub index: &'a IndexKeys,
    pub pk: &'a str,
    pub start_after: Option<&'a IndexPosition>,
    pub limit: usize,
    pub order: Order,
}

/// Checks a query's page size, the one precondition both tables share.
pub(crate) fn check_limit(limit: usize) {
    assert!(limit > 0 && limit <= MAX_QUERY_LIMIT, "query limit {limit} out of range");
}

/// Where a page of an index query stopped: the last item's table key and index sort key
/// (what DynamoDB's `ExclusiveStartKey` needs for a global secondary index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPosition {
    pub key: Key,
    pub index_sk: String,
}

/// One write whose condition failed.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedGuard {
    /// What the failed condition protected.
    pub guard: Guard,
    /// The item's current state, `None` if it does not exist.
    pub current: Option<Item>,
}

/// The guards whose conditions failed in a cancelled transaction, one entry per failed write
/// (two writes under one guard may both be here), in the order of the writes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FailedGuards(Vec<FailedGuard>);

impl FailedGuards {
    pub fn new(failed: Vec<FailedGuard>) -> Self {
        Self(failed)
    }

    pub fn contains(&self, guard: Guard) -> bool {
        self.0.iter().any(|f| f.guard == guard)
    }

    /// The first failed write under `guard`.
    pub fn get(&self, guard: Guard) -> Option<&FailedGuard> {
        self.0.iter().find(|f| f.guard == guard)
    }

    /// The current item of the first failed write under `guard` (`None` also when it is absent).
    pub fn current(&self, guard: Guard) -> Option<&Item> {
        self.get(guard).and_then(|f| f.current.as_ref())
    }

    /// The failed guards, in the order of their writes.
    pub fn guards(&self) -> impl Iterator<Item = Guard> + '_ {
        self.0.iter().map(|f| f.guard)
    }

    pub fn iter(&self) -> impl Iterator<Item = &FailedGuard> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// These failures without those of `guards`.
    pub fn without(&self, guards: &[Guard]) -> Self {
        Self(self.0.iter().filter(|f| !guards.contains(&f.guard)).cloned().collect())
    }
}

impl std::fmt::Display for FailedGuards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let guards: Vec<String> = self.guards().map(|g| format!("{g:?}")).collect();
        write!(f, "condition failed: {}", guards.join(", "))
    }
}

/// One table of the single-table design. Implemented by DynamoDB and by the in-memory store.
pub trait Table: Send + Sync + 'static {
    /// A strongly consistent read of one item.
    fn get(&self, key: &Key) -> impl Future<Output = Result<Option<Item>, TableError>> + Send;

    /// A page of one partition.
    fn query(&self, query: Query<'_>) -> impl Future<Output = Result<Vec<Item>, TableError>> + Send;

    /// A page of a global secondary index.
    fn query_index(&self, query: IndexQuery<'_>) -> impl Future<Output = Result<Vec<Item>, TableError>> + Send;

    /// Several items in one request (`BatchGetItem`, strongly consistent): the answer has one
    /// entry per key, in the order of `keys`, `None` for an item that does not exist. At most
    /// [`MAX_BATCH_GET_KEYS`] keys, each once.
    fn get_many(&self, keys: &[Key]) -> impl Future<Output = Result<Vec<Option<Item>>, TableError>> + Send;

    /// All of `writes` or none of them. At most [`MAX_TRANSACTION_ACTIONS`], one per key.
    fn transact(&self, writes: Vec<Write>) -> impl Future<Output = Result<(), TableError>> + Send;
}

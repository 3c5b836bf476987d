//! The table trait: the few DynamoDB operations the product needs, with typed errors.

use std::future::Future;

use super::item::{Item, Key, Order, Write};
use super::schema::IndexKeys;

/// DynamoDB allows at most 100 actions in one `TransactWriteItems`.
pub const MAX_TRANSACTION_ACTIONS: usize = 100;
/// DynamoDB's limit on the keys of one `BatchGetItem`.
pub const MAX_BATCH_GET_KEYS: usize = 100;
/// Largest page a query returns; callers page with a cursor.
pub const MAX_QUERY_LIMIT: usize = 1000;

/// Why a transaction or read failed, in the terms callers act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TableError {
    /// The transaction was cancelled because these actions' conditions failed. Each carries the
    /// item as it is now (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), so the caller can
    /// retry with fresh state without another read. Nothing was written.
    #[error("condition failed on transaction action(s) {failed:?}", failed = .failed.iter().map(|f| f.index).collect::<Vec<_>>())]
    ConditionFailed { failed: Vec<FailedCondition> },
    /// Nothing was written and trying again may work: throttling, a `TransactionConflict`
    /// with another transaction, a service error.
    #[error("transient: {0}")]
    Transient(String),
    /// The outcome is unknown (a timeout or dropped connection after the request left): the
    /// write may or may not have happened. Safe to retry only with an idempotency guard.
    #[error("ambiguous: {0}")]
    Ambiguous(String),
    /// Retrying won't help: validation error, missing table, access denied.
    #[error("fatal: {0}")]
    Fatal(String),
}

impl TableError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient(_) | Self::Ambiguous(_))
    }
}

/// Where a page of an index query stopped: the last item's table key and index sort key
/// (what DynamoDB's `ExclusiveStartKey` needs for a global secondary index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPosition {
    pub key: Key,
    pub index_sk: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FailedCondition {
    /// Position of the action in the transaction.
    pub index: usize,
    /// The item's current state, `None` if it does not exist.
    pub current: Option<Item>,
}

/// One table of the single-table design. Implemented by DynamoDB and by the in-memory store.
pub trait Table: Send + Sync + 'static {
    /// A strongly consistent read of one item.
    fn get(&self, key: &Key) -> impl Future<Output = Result<Option<Item>, TableError>> + Send;

    /// Items of partition `pk` whose sort key starts with `sk_prefix`, strictly after
    /// `start_after` in the given order, at most `limit` (<= [`MAX_QUERY_LIMIT`]). Consistent.
    fn query(
        &self,
        pk: &str,
        sk_prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        order: Order,
    ) -> impl Future<Output = Result<Vec<Item>, TableError>> + Send;

    /// Items whose `index.partition` attribute is `pk`, in `index.sort` order, strictly after
    /// `start_after`, at most `limit`. Eventually consistent, as every DynamoDB global
    /// secondary index is.
    fn query_index(
        &self,
        index: &IndexKeys,
        pk: &str,
        start_after: Option<&IndexPosition>,
        limit: usize,
        order: Order,
    ) -> impl Future<Output = Result<Vec<Item>, TableError>> + Send;

    /// Several items in one request (`BatchGetItem`, strongly consistent): the answer has one
    /// entry per key, in the order of `keys`, `None` for an item that does not exist. At most
    /// [`MAX_BATCH_GET_KEYS`] keys, each once.
    fn get_many(&self, keys: &[Key]) -> impl Future<Output = Result<Vec<Option<Item>>, TableError>> + Send;

    /// All of `writes` or none of them. At most [`MAX_TRANSACTION_ACTIONS`], one per key.
    fn transact(&self, writes: Vec<Write>) -> impl Future<Output = Result<(), TableError>> + Send;
}

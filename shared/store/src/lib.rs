//! Storage over the single-table design (every key in `keys`).
//!
//! [`Table`] is the handful of DynamoDB operations the product uses, implemented by
//! [`dynamodb::DynamoTable`] (production) and [`memory::MemoryTable`] (embedded). [`Store`]
//! holds the product's operations, written once over any table.

pub mod attrs;
pub mod cursor;
pub mod dynamodb;
pub mod item;
pub mod keys;
pub mod load;
pub mod memory;
pub mod plan_billing;
pub mod records;
pub mod schema;
pub mod statements;
pub mod table;
pub mod upgrade;
pub mod wallet;
pub mod workspace_list;

pub use cursor::{
    DeliveryCursor, EventCursor, InvalidCursor, LedgerCursor, PartnerCursor, PartnerLedgerCursor, WorkspaceCursor,
};
pub use item::{Attr, Condition, Guard, Item, Key, MalformedItem, Order, Test, Write};
pub use load::{Loaded, Snapshot};
pub use table::{FailedGuard, FailedGuards, IndexQuery, Query, SdkCause, Table, TableError};
pub use wallet::{
    Committed, Crossing, IdempotencyKey, InvalidIdempotencyKey, Outcome, Page, PageRequest, Posting, RetryPolicy,
    Verified, WalletState, wallet_state,
};
pub use workspace_list::{Backfilled, Listed, MAX_LIST_PAGE};

/// The attribute DynamoDB's TTL sweeps on (epoch seconds).
pub const TTL_ATTR: &str = "expires_at";

/// The product's storage operations over one table.
#[derive(Debug, Clone)]
pub struct Store<T> {
    table: T,
    retry: RetryPolicy,
}

impl<T: Table> Store<T> {
    pub fn new(table: T) -> Self {
        Self { table, retry: RetryPolicy::DEFAULT }
    }

    pub fn with_retry(table: T, retry: RetryPolicy) -> Self {
        Self { table, retry }
    }

    pub fn table(&self) -> &T {
        &self.table
    }
}

/// Store failures, typed so that callers never match on strings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The wallet kept moving under us for every attempt; nothing was written. (HTTP 409.)
    #[error("the wallet changed concurrently {attempts} times; nothing was written")]
    Conflict { attempts: u32 },
    /// Conditions of the caller's own writes failed (only those: the store handles its own
    /// guards); nothing was written.
    #[error("{failed}")]
    ConditionFailed { failed: FailedGuards },
    /// The change would take a balance beyond the representable range; nothing was written.
    #[error("the balance would leave the representable range")]
    BalanceOutOfRange,
    /// DynamoDB stayed unavailable (throttling, service errors) through every retry.
    #[error("storage unavailable")]
    Unavailable(#[source] TableError),
    /// Stored data breaks an invariant. Someone must look; nothing retries this away.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A request DynamoDB refuses outright (validation, permissions, missing table), or a
    /// failure nothing was prepared for (a condition no caller expected).
    #[error("storage error")]
    Fatal(#[source] TableError),
}

impl StoreError {
    /// Maps a table error that reached a caller without being handled.
    pub fn from_table(e: TableError) -> Self {
        if e.is_retryable() { Self::Unavailable(e) } else { Self::Fatal(e) }
    }

    /// Whether the same request, sent again later, may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Conflict { .. } | Self::Unavailable(_))
    }
}

impl From<MalformedItem> for StoreError {
    fn from(e: MalformedItem) -> Self {
        Self::Corrupt(e.to_string())
    }
}

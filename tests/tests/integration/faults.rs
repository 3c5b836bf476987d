//! Fault injection: DynamoDB calls fail on purpose (before the commit, throttled, in conflict
//! with another transaction, or timing out after the write committed). Afterwards nothing is
//! half-written, and retrying with the same idempotency key converges to exactly one change.

use std::time::Duration;

use domain::{Balance, Overdraft};
use integration_tests::{Call, Fault, FaultyTable};
use serde_json::json;
use store::{Outcome, RetryPolicy, Store, StoreError, Table, TableError};

use crate::support::{new_wallet, posting, respond};

const FAST: RetryPolicy =
    RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(5) };

fn throttled() -> TableError {
    TableError::transient("ThrottlingError")
}
fn conflict() -> TableError {
    TableError::transient("TransactionConflict")
}
fn timeout() -> TableError {
    TableError::ambiguous("operation timed out")
}

/// Checks the wallet holds exactly `version` changes adding up to `balance`.
async fn assert_wallet<T: Table>(store: &Store<FaultyTable<T>>, w: &domain::WalletId, balance: &str, version: u64) {
    let state = store.wallet(w).await.unwrap();
    assert_eq!((state.balance, state.version), (Balance::parse(balance).unwrap(), version));
    assert_eq!(store.verify(w).await.unwrap().entries, version);
}

async fn transient_failures_before_commit_are_retried<T: Table>(table: T) {
    let store = Store::with_retry(FaultyTable::new(table), FAST);
    let w = new_wallet();
    for fault in [throttled(), conflict(), TableError::ambiguous("connection reset before sending")] {
        store.table().inject(Call::Transact, Fault::Before(fault.clone()));
        let key = format!("k-{fault}");
        let out = store.post(posting(&w, "10", Overdraft::Forbid, &key), respond).await.unwrap();
        assert!(matches!(out, Outcome::Applied { .. }), "{fault}: {out:?}");
    }
    assert_eq!(store.table().pending(), 0);
    assert_wallet(&store, &w, "30", 3).await;
}

async fn a_timeout_after_commit_is_not_applied_twice<T: Table>(table: T) {
    let store = Store::with_retry(FaultyTable::new(table), FAST);
    let w = new_wallet();
    store.post(posting(&w, "10", Overdraft::Forbid, "fund"), respond).await.unwrap();
    // The debit commits, the caller sees a timeout; the store's own retry finds the record.
    // This debit empties the wallet, so the retry meets the overdraft guard first, and must
    // still answer with the stored success rather than "insufficient".
    store.table().inject(Call::Transact, Fault::After(timeout()));
    let out = store.post(posting(&w, "-10", Overdraft::Forbid, "spend"), respond).await.unwrap();
    assert_eq!(out, Outcome::Replayed { response: json!({"entry": 2, "balance": "0.00"}) });
    assert_eq!(store.table().committed_despite_error.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_wallet(&store, &w, "0", 2).await;
}

async fn a_client_retry_after_giving_up_converges<T: Table>(table: T) {
    let store = Store::with_retry(FaultyTable::new(table), FAST);
    let w = new_wallet();
    // First attempt commits but times out; every internal retry is then throttled.
    store.table().inject(Call::Transact, Fault::After(timeout()));
    for _ in 1..FAST.max_attempts {
        store.table().inject(Call::Transact, Fault::Before(throttled()));
    }
    let err = store.post(posting(&w, "7.25", Overdraft::Forbid, "k"), respond).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_wallet(&store, &w, "7.25", 1).await;
    // The client sends the same request again, as a 503 invites it to.
    for _ in 0..2 {
        let again = store.post(posting(&w, "7.25", Overdraft::Forbid, "k"), respond).await.unwrap();
        assert_eq!(again, Outcome::Replayed { response: json!({"entry": 1, "balance": "7.25"}) });
    }
    assert_wallet(&store, &w, "7.25", 1).await;
}

async fn persistent_failures_write_nothing<T: Table>(table: T) {
    let store = Store::with_retry(FaultyTable::new(table), FAST);
    let w = new_wallet();
    store.post(posting(&w, "5", Overdraft::Forbid, "fund"), respond).await.unwrap();
    for _ in 0..FAST.max_attempts {
        store.table().inject(Call::Transact, Fault::Before(conflict()));
    }
    let err = store.post(posting(&w, "-2", Overdraft::Forbid, "k"), respond).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert_wallet(&store, &w, "5", 1).await;
    let out = store.post(posting(&w, "-2", Overdraft::Forbid, "k"), respond).await.unwrap();
    assert!(matches!(out, Outcome::Applied { ref entry, .. } if entry.balance_after == Balance::parse("3").unwrap()));
    assert_wallet(&store, &w, "3", 2).await;
}

async fn failed_reads_are_retried<T: Table>(table: T) {
    let store = Store::with_retry(FaultyTable::new(table), FAST);
    let w = new_wallet();
    store.table().inject(Call::Get, Fault::Before(throttled()));
    store.table().inject(Call::Get, Fault::Before(timeout()));
    let out = store.post(posting(&w, "1", Overdraft::Forbid, "k"), respond).await.unwrap();
    assert!(matches!(out, Outcome::Applied { .. }));
    assert_wallet(&store, &w, "1", 1).await;
}

async fn a_fatal_error_is_not_retried<T: Table>(table: T) {
    let store = Store::with_retry(FaultyTable::new(table), FAST);
    let w = new_wallet();
    store.table().inject(Call::Transact, Fault::Before(TableError::fatal("ValidationException")));
    store.table().inject(Call::Transact, Fault::Before(throttled()));
    let err = store.post(posting(&w, "1", Overdraft::Forbid, "k"), respond).await.unwrap_err();
    assert!(matches!(err, StoreError::Fatal(_)));
    assert_eq!(store.table().pending(), 1, "no retry after a fatal error");
    assert_wallet(&store, &w, "0", 0).await;
}

macro_rules! fault_suite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test] async fn $name() { super::$name(store::memory::MemoryTable::new()).await } )*
        }
        mod dynamodb {
            $( #[tokio::test] async fn $name() { super::$name(integration_tests::fresh_table().await).await } )*
        }
    };
}

fault_suite!(
    transient_failures_before_commit_are_retried,
    a_timeout_after_commit_is_not_applied_twice,
    a_client_retry_after_giving_up_converges,
    persistent_failures_write_nothing,
    failed_reads_are_retried,
    a_fatal_error_is_not_retried,
);

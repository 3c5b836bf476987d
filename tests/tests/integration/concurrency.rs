//! Many clients debiting one wallet at once: exact result, no overdraft, gapless ledger.

use std::sync::Arc;

use domain::{Balance, Overdraft};
use store::{Outcome, Store, StoreError, Table};

use crate::support::{new_wallet, posting, respond};

const CLIENTS: usize = 200;
const FUNDS: u32 = 150;
/// A client whose request met a conflict sends it again with the same key, as a real one
/// would after a 409; this bounds how often.
const CLIENT_RETRIES: usize = 100;

async fn concurrent_debits<T: Table>(store: Store<T>) {
    let store = Arc::new(store);
    let w = new_wallet();
    store.post(posting(&w, &FUNDS.to_string(), Overdraft::Forbid, "fund"), respond).await.unwrap();

    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (store, w) = (store.clone(), w.clone());
            tokio::spawn(async move {
                for _ in 0..CLIENT_RETRIES {
                    match store.post(posting(&w, "-1", Overdraft::Forbid, &format!("debit-{i}")), respond).await {
                        Err(StoreError::Conflict { .. }) => continue,
                        other => return other.unwrap(),
                    }
                }
                panic!("client {i} kept conflicting");
            })
        })
        .collect();
    let (mut applied, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Outcome::Applied { .. } => applied += 1,
            Outcome::InsufficientBalance { balance } => {
                assert!(balance < Balance::parse("1").unwrap());
                refused += 1
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((applied, refused), (FUNDS as usize, CLIENTS - FUNDS as usize));
    let state = store.wallet(&w).await.unwrap();
    assert_eq!((state.balance, state.version), (Balance::ZERO, u64::from(FUNDS) + 1));
    let verified = store.verify(&w).await.unwrap();
    assert_eq!((verified.entries, verified.balance), (u64::from(FUNDS) + 1, Balance::ZERO));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_debits_on_dynamodb_local() {
    concurrent_debits(crate::support::dynamo_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_debits_in_memory() {
    concurrent_debits(crate::support::memory_store()).await;
}

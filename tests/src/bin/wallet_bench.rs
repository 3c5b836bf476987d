//! Wallet benchmark: debits per second on ONE wallet with 1, 8 and 64 concurrent clients,
//! next to the floor of the same work (one read and one `TransactWriteItems` of the items a debit
//! writes, on the same hot wallet) against the same DynamoDB Local in the same run; and
//! DynamoDB calls per debit.
//!
//! Run with `scripts/test --bench` (release build; it starts DynamoDB Local). It prints
//! figures and asserts nothing. `BENCH_SECONDS` sets the length of each run (default 5).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use domain::{Actor, EntryKind, Overdraft, PointsDelta, WalletId, WorkspaceId};
use integration_tests::floor::{self, Recording};
use integration_tests::{CountingTable, fresh_table};
use store::dynamodb::DynamoTable;
use store::{IdempotencyKey, Outcome, Posting, RetryPolicy, Store, StoreError, keys};
use time::OffsetDateTime;

const CLIENTS: [usize; 3] = [1, 8, 64];
/// A client whose debit met a 409 sends it again with the same key; this bounds how often.
const CLIENT_RETRIES: u32 = 1000;

struct Run {
    ops: u64,
    elapsed: Duration,
}

impl Run {
    fn per_second(&self) -> f64 {
        // Figures for a human to read; no money is ever computed here.
        #[allow(clippy::float_arithmetic)]
        let rate = self.ops as f64 / self.elapsed.as_secs_f64();
        rate
    }
}

async fn ours(store: Arc<Store<CountingTable<DynamoTable>>>, clients: usize, length: Duration) -> (Run, u64) {
    let wallet = WalletId::Workspace(WorkspaceId::parse(&format!("bench-{clients}")).unwrap());
    let fund = posting(&wallet, "1000000000", "fund".into());
    store.post(fund, |_| serde_json::Value::Null).await.unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let client_retries = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (store, wallet, done, retries) = (store.clone(), wallet.clone(), done.clone(), client_retries.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while start.elapsed() < length {
                    let key = format!("c{c}-{n}");
                    for attempt in 0..CLIENT_RETRIES {
                        let p = posting(&wallet, "-0.0001", key.clone());
                        match store.post(p, |e| serde_json::json!({ "seq": e.id.seq })).await {
                            // A replay answers a retry whose first attempt landed (after a timeout, say).
                            Ok(Outcome::Applied { .. } | Outcome::Replayed { .. }) => break,
                            Err(StoreError::Conflict { .. }) if attempt + 1 < CLIENT_RETRIES => {
                                retries.fetch_add(1, Ordering::Relaxed);
                            }
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                    n += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let run = Run { ops: done.load(Ordering::Relaxed), elapsed: start.elapsed() };
    store.verify(&wallet).await.expect("the benchmark wallet verifies");
    (run, client_retries.load(Ordering::Relaxed))
}

fn posting(wallet: &WalletId, amount: &str, key: String) -> Posting {
    Posting {
        wallet: wallet.clone(),
        amount: PointsDelta::parse(amount).unwrap(),
        overdraft: Overdraft::Forbid,
        kind: EntryKind::Adjustment { reason: "bench".into() },
        actor: Actor::System("bench".into()),
        at: OffsetDateTime::now_utc(),
        idempotency: IdempotencyKey::new(&wallet.to_string(), &key, amount.as_bytes()).unwrap(),
        // A workspace's wallet is listed with its partner's workspaces: here, a partner of tests.
        partner: matches!(wallet, WalletId::Workspace(_)).then(|| domain::PartnerId::parse("tests").unwrap()),
        in_partner_ledger: false,
        also: Vec::new(),
    }
}

/// The floor of a debit: one read of the wallet and one transaction of the items a real debit
/// of this wallet wrote (recorded once, moved to fresh keys each time; the wallet item stays
/// and is only required to exist), with no version check, decision or retry.
async fn floor(table: Arc<DynamoTable>, clients: usize, length: Duration) -> Run {
    let recording = Store::new(Recording::new(table.as_ref().clone()));
    let wallet = WalletId::Workspace(WorkspaceId::parse(&format!("floor-{clients}")).unwrap());
    recording.post(posting(&wallet, "1000000000", "fund".into()), |_| serde_json::Value::Null).await.unwrap();
    let debit = posting(&wallet, "-0.0001", "template".into());
    recording.post(debit, |e| serde_json::json!({ "seq": e.id.seq })).await.unwrap();
    let template = Arc::new(recording.table().last_transaction());
    let hot = keys::wallet(&wallet);
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (table, template, hot, done) = (table.clone(), template.clone(), hot.clone(), done.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while start.elapsed() < length {
                    let writes = floor::moved(&template, &format!("FLOOR{clients}-{c}-{n}"), Some(&hot));
                    floor::once(table.as_ref(), writes).await.unwrap();
                    n += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    Run { ops: done.load(Ordering::Relaxed), elapsed: start.elapsed() }
}

/// The store's default retry policy, unless `BENCH_BASE_MS` / `BENCH_MAX_MS` /
/// `BENCH_ATTEMPTS` say otherwise (to compare policies on the same machine).
fn retry_policy_from_env() -> RetryPolicy {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let d = RetryPolicy::DEFAULT;
    RetryPolicy {
        max_attempts: env("BENCH_ATTEMPTS").map_or(d.max_attempts, |a| u32::try_from(a).unwrap_or(u32::MAX)),
        base_delay: env("BENCH_BASE_MS").map_or(d.base_delay, Duration::from_millis),
        max_delay: env("BENCH_MAX_MS").map_or(d.max_delay, Duration::from_millis),
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let length = Duration::from_secs(seconds);
    let table = fresh_table().await;
    let floor_table = Arc::new(table.clone());
    let retry = retry_policy_from_env();
    let store = Arc::new(Store::with_retry(CountingTable::new(table), retry));

    println!("wallet benchmark: one hot wallet on DynamoDB Local, {seconds} s per run, release build");
    println!("retry policy: {retry:?}");
    println!(
        "{:>7} | {:>12} | {:>12} | {:>6} | {:>7} | {:>8} | {:>13}",
        "clients", "debits/s", "floor/s", "ratio", "gets/op", "txns/op", "client 409s"
    );
    for clients in CLIENTS {
        let floor_run = floor(floor_table.clone(), clients, length).await;
        let before = store.table().counts();
        let (run, retries) = ours(store.clone(), clients, length).await;
        let after = store.table().counts();
        // The counts include the funding posting and the verification reads; both are one-offs
        // next to thousands of debits, and are left in rather than hidden.
        let per_op = |a: u64, b: u64| {
            #[allow(clippy::float_arithmetic)]
            let v = (a - b) as f64 / run.ops as f64;
            v
        };
        #[allow(clippy::float_arithmetic)]
        let ratio_percent = run.per_second() / floor_run.per_second() * 100.0;
        println!(
            "{:>7} | {:>12.0} | {:>12.0} | {:>5.0}% | {:>7.2} | {:>8.2} | {:>13}",
            clients,
            run.per_second(),
            floor_run.per_second(),
            ratio_percent,
            per_op(after.0, before.0),
            per_op(after.2, before.2),
            retries
        );
    }
}

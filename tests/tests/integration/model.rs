//! Model-based test: random sequences of credits, debits, replays and key reuse, run against
//! each store and compared after every step with a reference model a few lines long.

use std::collections::HashMap;

use domain::{Balance, Overdraft, PointsDelta, WalletId};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use store::{Outcome, Store, Table};

use crate::support::{new_wallet, posting, respond};

/// Sequences per store; 800 + 200 = 1,000 in all.
const MEMORY_SEQUENCES: u32 = 800;
const DYNAMODB_SEQUENCES: u32 = 200;
const MAX_STEPS: usize = 24;

#[derive(Debug, Clone)]
enum Op {
    /// A new request under a new key: amount in ten-thousandths, and whether it may overdraw.
    New { units: i64, overdraft: Overdraft },
    /// Send an earlier request again, same key, same body.
    Replay(usize),
    /// Send an earlier key with a different body.
    Reuse(usize, i64),
}

fn op() -> impl Strategy<Value = Op> {
    let overdraft = prop_oneof![3 => Just(Overdraft::Forbid), 1 => Just(Overdraft::Allow)];
    prop_oneof![
        5 => (-300_000i64..400_000, overdraft).prop_map(|(units, overdraft)| Op::New { units, overdraft }),
        2 => any::<usize>().prop_map(Op::Replay),
        1 => (any::<usize>(), -300_000i64..300_000).prop_map(|(i, u)| Op::Reuse(i, u)),
    ]
}

/// The reference: a balance, a version, and what each key was first used for.
#[derive(Default)]
struct Model {
    balance: Decimal,
    version: u64,
    /// key -> (amount, guard, stored response) for keys whose request was applied.
    recorded: HashMap<String, (String, Overdraft, Value)>,
}

/// An outcome as the model can predict it (it has no timestamps or entry ids to compare).
#[derive(Debug, PartialEq)]
enum Expected {
    Applied(Value),
    Replayed(Value),
    Insufficient(Balance),
    KeyReused,
}

impl From<Outcome> for Expected {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Applied { response, .. } => Self::Applied(response),
            Outcome::Replayed { response } => Self::Replayed(response),
            Outcome::InsufficientBalance { balance } => Self::Insufficient(balance),
            Outcome::KeyReused => Self::KeyReused,
        }
    }
}

impl Model {
    fn send(&mut self, key: &str, amount: &str, overdraft: Overdraft) -> Expected {
        if let Some((a, o, response)) = self.recorded.get(key) {
            return if a == amount && *o == overdraft {
                Expected::Replayed(response.clone())
            } else {
                Expected::KeyReused
            };
        }
        let delta = PointsDelta::parse(amount).unwrap().as_decimal();
        let after = self.balance + delta;
        if overdraft == Overdraft::Forbid && delta < Decimal::ZERO && after < Decimal::ZERO {
            return Expected::Insufficient(Balance::from_decimal(self.balance).unwrap());
        }
        self.balance = after;
        self.version += 1;
        let balance = Balance::from_decimal(after).unwrap();
        let response = json!({ "entry": self.version, "balance": balance.to_string() });
        self.recorded.insert(key.to_owned(), (amount.to_owned(), overdraft, response.clone()));
        Expected::Applied(response)
    }
}

fn amount(units: i64) -> String {
    PointsDelta::from_decimal(Decimal::new(units, 4)).unwrap().to_string()
}

async fn run_sequence<T: Table>(store: &Store<T>, ops: &[Op]) -> Result<(), TestCaseError> {
    let w: WalletId = new_wallet();
    let mut model = Model::default();
    // (key, amount, guard) of every request sent so far, for replays and reuse.
    let mut sent: Vec<(String, String, Overdraft)> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        let (key, amt, guard) = match op {
            Op::New { units, overdraft } => (format!("k{step}"), amount(*units), *overdraft),
            Op::Replay(i) if !sent.is_empty() => sent[i % sent.len()].clone(),
            Op::Reuse(i, units) if !sent.is_empty() => {
                let (key, _, guard) = sent[i % sent.len()].clone();
                (key, amount(*units), guard)
            }
            _ => (format!("k{step}"), amount(10_000), Overdraft::Forbid),
        };
        let expected = model.send(&key, &amt, guard);
        let actual = store.post(posting(&w, &amt, guard, &key), respond).await.unwrap();
        if let Outcome::Applied { entry, .. } = &actual {
            prop_assert_eq!(entry.amount.to_string(), amt.clone());
        }
        prop_assert_eq!(expected, Expected::from(actual), "step {}: {:?}", step, op);
        let state = store.wallet(&w).await.unwrap();
        prop_assert_eq!(state.balance.as_decimal(), model.balance, "step {}", step);
        prop_assert_eq!(state.version, model.version, "step {}", step);
        sent.push((key, amt, guard));
    }
    let verified = store.verify(&w).await.unwrap();
    prop_assert_eq!(verified.entries, model.version);
    Ok(())
}

/// Runs `cases` sequences on one store, made (and used) on one runtime.
fn run_model<T: Table, F: Future<Output = Store<T>>>(cases: u32, make: impl FnOnce() -> F) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let store = rt.block_on(make());
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    runner.run(&proptest::collection::vec(op(), 1..MAX_STEPS), |ops| rt.block_on(run_sequence(&store, &ops))).unwrap();
}

#[test]
fn model_memory() {
    run_model(MEMORY_SEQUENCES, || async { crate::support::memory_store() });
}

#[test]
fn model_dynamodb_local() {
    run_model(DYNAMODB_SEQUENCES, crate::support::dynamo_store);
}

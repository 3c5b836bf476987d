//! Exactly once, whatever Stripe's delivery does: randomized schedules of real events from the
//! fake (every event of several checkouts, each delivered one to three times, shuffled, in
//! concurrent bursts) end with exactly one credit per paid session and none for the others.
//!
//! Each schedule is one workspace with three checkouts whose fates are drawn from: paid at once,
//! paid later (a bank debit that succeeds), a bank debit that fails, expired, left open. The
//! seed of every schedule is printed with a failure, so a failing schedule can be replayed.

use std::io::Write;

use domain::{CheckoutId, CheckoutStatus};
use serde_json::json;
use store::{Table, keys, records};

use super::checkout::{events_of, seller};
use super::{Api, P, req, workspace_admin};
use billing::join_all;

/// Schedules run against the memory store, and (more slowly) against DynamoDB Local.
const MEMORY_SCHEDULES: usize = 1_000;
const DYNAMODB_SCHEDULES: usize = 100;
/// Schedules per fake Stripe (its event log is read after each schedule; keep it short).
const SCHEDULES_PER_STACK: usize = 25;
const CHECKOUTS_PER_SCHEDULE: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Paid,
    PaidLater,
    DebitFails,
    Expired,
    Open,
}

impl Fate {
    const ALL: [Fate; 5] = [Fate::Paid, Fate::PaidLater, Fate::DebitFails, Fate::Expired, Fate::Open];

    fn end(self) -> CheckoutStatus {
        match self {
            Fate::Paid | Fate::PaidLater => CheckoutStatus::Credited,
            Fate::DebitFails => CheckoutStatus::Failed,
            Fate::Expired => CheckoutStatus::Expired,
            Fate::Open => CheckoutStatus::Pending,
        }
    }
}

#[derive(Debug, Default)]
struct Totals {
    schedules: usize,
    deliveries: usize,
    credits: usize,
}

/// One schedule on workspace `w`: returns (deliveries made, credits expected).
async fn schedule<T: Table>(api: &Api<T>, w: &str, seed: u64) -> (usize, usize) {
    let mut rng = fastrand::Rng::with_seed(seed);
    api.workspace(P, w, "starter").await;
    let mut sessions = Vec::new();
    let mut expected_points = 0_u64;
    for _ in 0..CHECKOUTS_PER_SCHEDULE {
        let fate = Fate::ALL[rng.usize(..Fate::ALL.len())];
        // 50 to 549 points at 0.012: 0.60 to 6.59 USD.
        let points = rng.u64(50..550);
        let created = api
            .call(
                req("POST /workspace/checkout").by(workspace_admin(P, w)).json(json!({ "points": points.to_string() })),
            )
            .await
            .ok(201);
        let id = created["id"].as_str().unwrap().to_owned();
        match fate {
            Fate::Paid => {
                api.stripe.pay(&id).await.unwrap();
            }
            Fate::PaidLater | Fate::DebitFails => {
                api.stripe.make_async(&id).unwrap();
                api.stripe.pay(&id).await.unwrap();
                api.stripe.finish_async(&id, fate == Fate::PaidLater).await.unwrap();
            }
            Fate::Expired => {
                api.stripe.expire(&id).await.unwrap();
            }
            Fate::Open => {}
        }
        if fate.end() == CheckoutStatus::Credited {
            expected_points += points;
        }
        sessions.push((id, fate));
    }
    // Every event one to three times, shuffled, sent in bursts of one to four at once.
    let mut deliveries: Vec<String> = Vec::new();
    for (_, payload) in events_of(api, w) {
        for _ in 0..rng.usize(1..=3) {
            deliveries.push(payload.clone());
        }
    }
    rng.shuffle(&mut deliveries);
    let mut rest = deliveries.as_slice();
    while !rest.is_empty() {
        let (burst, after) = rest.split_at(rng.usize(1..=4).min(rest.len()));
        for answer in join_all(burst.iter().map(|p| api.deliver(p))).await {
            assert_eq!(answer.status, 200, "seed {seed}: {}", answer.body);
        }
        rest = after;
    }

    let credited = sessions.iter().filter(|(_, f)| f.end() == CheckoutStatus::Credited).count();
    for (id, fate) in &sessions {
        let key = keys::checkout(&CheckoutId::parse(id).unwrap());
        let stored = records::checkout_from(&api.billing.store.get(&key).await.unwrap().unwrap()).unwrap();
        assert_eq!(stored.status, fate.end(), "seed {seed}: {id} ({fate:?})");
    }
    assert_eq!(api.balance(P, w).await, format!("{expected_points}.00"), "seed {seed}: {sessions:?}");
    assert_eq!(api.verify(w).await, credited as u64, "seed {seed}: one ledger entry per paid session");
    (deliveries.len(), credited)
}

async fn run<T: Table, F: std::future::Future<Output = Api<T>>>(
    store: &str,
    schedules: usize,
    new_api: impl Fn() -> F,
) -> Totals {
    let base = fastrand::u64(..);
    let mut totals = Totals::default();
    let mut i = 0;
    while i < schedules {
        let api = new_api().await;
        api.partner(P, true).await;
        seller(&api, P).await;
        for _ in 0..SCHEDULES_PER_STACK.min(schedules - i) {
            let seed = base.wrapping_add(i as u64);
            let (deliveries, credits) = schedule(&api, &format!("ws-s{i}"), seed).await;
            totals.schedules += 1;
            totals.deliveries += deliveries;
            totals.credits += credits;
            i += 1;
        }
    }
    // Straight to stderr, past the test harness's capture: the count is in every test run's output.
    let _ = writeln!(
        std::io::stderr(),
        "randomized delivery schedules ({store}): {} schedules, {} deliveries, {} credits, each exactly once \
         (seeds {base}..{})",
        totals.schedules,
        totals.deliveries,
        totals.credits,
        base.wrapping_add(totals.schedules as u64)
    );
    totals
}

#[tokio::test]
async fn randomized_delivery_schedules_credit_each_paid_session_once_on_memory() {
    let totals = run("memory", MEMORY_SCHEDULES, Api::memory).await;
    assert_eq!(totals.schedules, MEMORY_SCHEDULES);
    assert!(totals.credits > 0 && totals.deliveries > totals.schedules * CHECKOUTS_PER_SCHEDULE);
}

#[tokio::test]
async fn randomized_delivery_schedules_credit_each_paid_session_once_on_dynamodb() {
    let totals = run("DynamoDB Local", DYNAMODB_SCHEDULES, Api::dynamodb).await;
    assert_eq!(totals.schedules, DYNAMODB_SCHEDULES);
    assert!(totals.credits > 0);
}

//! Renewal benchmark: `RENEWAL_BENCH_WORKSPACES` (default 20,000) workspaces due on DynamoDB
//! Local, each holding one add-on with points to pay for it, renewed by the scheduler's own
//! `renew_due` with `RENEWAL_BENCH_CONCURRENCY` (default 32) renewals at once; next to the floor of
//! the same work (one read and one `TransactWriteItems` of the items a recorded renewal writes)
//! at the same concurrency, in the same run; and the DynamoDB calls per renewal.
//!
//! Run with `scripts/test --bench` (release build; it starts DynamoDB Local). It prints figures
//! and asserts only that every workspace was renewed exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use billing::{Billing, Mutation, RenewalLimits};
use domain::{
    Actor, AddonCode, AddonId, AddonStatus, AnchorDay, EntryKind, FixedClock, Overdraft, PartnerId, PartnerSettings,
    PlanId, Points, PointsDelta, Usage, WalletId, Workspace, WorkspaceAddon, WorkspaceId, WorkspaceStatus,
};
use integration_tests::floor::{self, Recording};
use integration_tests::{CountingTable, fresh_table};
use store::item::{Condition, Guard, Write};
use store::{IdempotencyKey, Posting, Store, Table, records};
use time::macros::{date, datetime};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a count")))
}

#[allow(clippy::float_arithmetic)]
fn per_second(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// One workspace due on 1 May with one extra bot (10 points) and 100 points: ONE transaction
/// (the funding entry, the profile with its add-on).
async fn seed<T: Table>(billing: &Billing<T>, p: &PartnerId, i: usize) {
    let w = WorkspaceId::parse(&format!("bench-{i}")).unwrap();
    let created_at = datetime!(2026-04-01 09:00 UTC);
    let addon = WorkspaceAddon {
        id: AddonId::generate(),
        code: AddonCode::ExtraBot,
        quantity: 1,
        unit_points: Points::parse("10").unwrap(),
        status: AddonStatus::Active,
        period_end: date!(2026 - 04 - 30),
        created_at,
        billed: None,
    };
    let ws = Workspace {
        id: w.clone(),
        partner: p.clone(),
        name: format!("Bench {i}"),
        plan: PlanId::Starter,
        anchor: AnchorDay::new(1).unwrap(),
        usage: Usage::default(),
        status: WorkspaceStatus::Active,
        addons: vec![addon],
        renews_on: date!(2026 - 05 - 01),
        rebilling: Default::default(),
        subscription: None,
        version: 1,
        created_at,
    };
    let posting = Posting {
        wallet: WalletId::Workspace(w.clone()),
        amount: PointsDelta::parse("100").unwrap(),
        overdraft: Overdraft::Forbid,
        kind: EntryKind::Adjustment { reason: "bench".into() },
        actor: Actor::System("bench".into()),
        at: created_at,
        idempotency: IdempotencyKey::new("bench", &format!("seed-{i}"), b"seed").unwrap(),
        partner: Some(p.clone()),
        in_partner_ledger: true,
        also: vec![Write::Put {
            item: records::workspace_item(&ws),
            condition: Condition::not_exists(Guard::WorkspaceNew),
        }],
    };
    billing.store.post(posting, |_| serde_json::Value::Null).await.unwrap();
}

/// The items one renewal writes, recorded from a real one on a table of its own: the floor's
/// template.
async fn renewal_writes(clock: Arc<FixedClock>) -> Vec<Write> {
    let billing = Billing::new(Store::new(Recording::new(fresh_table().await)), clock.clone());
    let p = PartnerId::parse("floor-partner").unwrap();
    let key = IdempotencyKey::new("bench", "partner", b"p").unwrap();
    billing
        .create_partner(&p, &PartnerSettings::default(), Mutation::new(&key, &api::answers::partner_created))
        .await
        .unwrap();
    seed(&billing, &p, 0).await;
    let limits = RenewalLimits { page_size: 1, concurrency: 1 };
    let run = billing.renew_due(|| false, limits).await.unwrap();
    assert_eq!(run.renewed, 1, "{run:?}");
    billing.store.table().last_transaction()
}

async fn concurrently<F, Fut>(n: usize, concurrency: usize, f: F) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let f = Arc::new(f);
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, f) = (next.clone(), f.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= n {
                        break;
                    }
                    f(i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

#[tokio::main]
async fn main() {
    let n = env("RENEWAL_BENCH_WORKSPACES", 20_000);
    let concurrency = env("RENEWAL_BENCH_CONCURRENCY", 32);
    let clock = Arc::new(FixedClock::new(datetime!(2026-04-15 10:00 UTC)));
    let billing = Arc::new(Billing::new(Store::new(CountingTable::new(fresh_table().await)), clock.clone()));
    let p = PartnerId::parse("bench-partner").unwrap();
    let key = IdempotencyKey::new("bench", "partner", b"p").unwrap();
    billing
        .create_partner(&p, &PartnerSettings::default(), Mutation::new(&key, &api::answers::partner_created))
        .await
        .unwrap();

    println!("renewal benchmark: {n} workspaces due, {concurrency} at once, DynamoDB Local");
    let seeding = {
        let (billing, p) = (billing.clone(), p.clone());
        concurrently(n, concurrency, move |i| {
            let (billing, p) = (billing.clone(), p.clone());
            async move { seed(&billing, &p, i).await }
        })
        .await
    };
    println!("  seeded in {:.1} s ({:.0} transactions/s)", seeding.as_secs_f64(), per_second(n as u64, seeding));

    clock.set(datetime!(2026-05-01 06:00 UTC));
    let before = billing.store.table().counts();
    let start = Instant::now();
    let limits = RenewalLimits { page_size: 100, concurrency };
    let run = billing.renew_due(|| false, limits).await.unwrap();
    let renewing = start.elapsed();
    let after = billing.store.table().counts();
    assert_eq!((run.renewed, run.failed, run.finished), (n as u64, 0, true), "{run:?}");
    let renewals = per_second(run.renewed, renewing);

    // The template is recorded at the same moment of the clock as the run it is the floor of.
    let template = Arc::new(renewal_writes(clock.clone()).await);
    let table = Arc::new(fresh_table().await);
    let floor_n = n.min(10_000);
    let floor_time = {
        let (table, template) = (table.clone(), template.clone());
        concurrently(floor_n, concurrency, move |i| {
            let (table, template) = (table.clone(), template.clone());
            async move { floor::once(table.as_ref(), floor::moved(&template, &format!("FLOOR{i}"), None)).await.unwrap() }
        })
        .await
    };
    let floor_rate = per_second(floor_n as u64, floor_time);
    // A second run finds nothing due: renewed exactly once.
    let again = billing.renew_due(|| false, limits).await.unwrap();
    assert_eq!((again.renewed, again.lapsed), (0, 0));

    #[allow(clippy::float_arithmetic)]
    let (gets, queries, txns) = {
        let per = |a: u64, b: u64| (b - a) as f64 / run.renewed as f64;
        (per(before.0, after.0), per(before.1, after.1), per(before.2, after.2))
    };
    #[allow(clippy::float_arithmetic)]
    let ratio = 100.0 * renewals / floor_rate;
    println!("  renewed {} in {:.1} s: {renewals:.0} renewals/s", run.renewed, renewing.as_secs_f64());
    println!(
        "  floor (one read + one TransactWriteItems of a renewal's {} items), same concurrency: {floor_rate:.0}/s",
        template.len()
    );
    println!("  renewals/s vs the floor: {ratio:.0}% (goal: at least 80%)");
    println!(
        "  DynamoDB calls per renewal: {gets:.2} reads (GetItem or BatchGetItem), {queries:.2} Query, {txns:.2} TransactWriteItems"
    );
}

//! Usage benchmark: one partner with `USAGE_BENCH_WORKSPACES` (default 100) workspaces, half
//! of them re-billed for voice minutes, takes usage events for `USAGE_BENCH_SECONDS` (default
//! 20) from `USAGE_BENCH_CONCURRENCY` (default 32) clients while a fold loop runs every second
//! (the `fold-usage` schedule, but faster); then a final fold. Next, the access check against a
//! bare `GetItem` of one item, `USAGE_BENCH_ACCESS_CALLS` (default 2,000) calls each, at the
//! same concurrency.
//!
//! Every write that reaches the table is counted per item and per one-second window, so the
//! figures say how hot any single item ran: the design promise is that no item takes a share
//! of all usage (the partner wallet moves only per fold batch, an accrual is written twice, a
//! partner's accrued sums take a sixteenth each, by the workspace's shard).
//!
//! Run with `scripts/test --bench usage-bench` (release build; it starts DynamoDB Local). It
//! prints figures and asserts only correctness: every event folded once, both wallets to the
//! last decimal, ledgers that verify.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use billing::{Billing, FoldRun, Mutation, NewWorkspace, OpError, PointsAdjustment, UsageEvent};
use domain::{
    Actor, AnchorDay, CreditRateTerms, MeterCode, PartnerId, PartnerSettings, PlanId, PointsDelta, Rebilling,
    SystemClock, UnitRate, UsageQuantity, WalletId, WorkspaceId,
};
use integration_tests::fresh_table;
use rust_decimal::Decimal;
use store::dynamodb::DynamoTable;
use store::schema::TABLE;
use store::{Attr, IdempotencyKey, IndexQuery, Item, Key, Query, Store, Table, TableError, Write, keys};

const VOICE: &str = "voice_minutes";
/// Every event reports this many minutes: 0.105 USD wholesale, 0.225 points re-billed.
const QUANTITY: &str = "1.5";
/// The partner's price of a point (USD) and its re-billing rate (points a minute): 0.075 USD a
/// minute, above the 0.07 wholesale cost, as the integration tests set it.
const PRICE_PER_POINT: &str = "0.50";
const REBILL_RATE: &str = "0.15";
/// Points each workspace starts with: far more than a run spends (0.225 a re-billed event), so
/// that the access check stays allowed and measures the read, not a refusal.
const FUNDING: &str = "1000000";
/// Pause between fold runs: the 1-minute schedule, sped up so that folds overlap usage often.
const FOLD_INTERVAL: Duration = Duration::from_secs(1);
/// An event that met a conflict or an unavailable table is sent again with its id; this bounds how often.
const CLIENT_RETRIES: u32 = 100;
/// Fold runs after the usage stops, each until its limits; all must come to "finished" first.
const MAX_FINAL_FOLDS: u32 = 100;
/// Workspace wallets whose whole ledger is verified (spread over both halves), besides the partner's.
const VERIFY_SAMPLE: usize = 10;
/// Items listed by their hottest second.
const TOP_ITEMS: usize = 10;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a count")))
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("a decimal literal")
}

/// Milliseconds with microsecond digits, from integers (no float is needed to print a time).
fn ms(d: Duration) -> String {
    let us = d.as_micros();
    format!("{}.{:03}", us / 1000, us % 1000)
}

/// `n` per second over `d`, rounded down.
fn per_second(n: u64, d: Duration) -> u64 {
    let us = d.as_micros().max(1);
    u64::try_from(u128::from(n) * 1_000_000 / us).unwrap_or(u64::MAX)
}

/// `n` per second over `d` with two decimals, from integers: "0.85/s".
fn rate(n: u64, d: Duration) -> String {
    let us = d.as_micros().max(1);
    let hundredths = u128::from(n) * 100_000_000 / us;
    format!("{}.{:02}/s", hundredths / 100, hundredths % 100)
}

/// The `p`-th percentile (0-100) of sorted samples, nearest rank.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    assert!(!sorted.is_empty(), "no samples");
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Writes to one item (or one index partition) in one-second windows since the run began.
#[derive(Debug, Default, Clone)]
struct PerSecond {
    total: u64,
    window: u64,
    in_window: u64,
    max_in_window: u64,
}

impl PerSecond {
    /// `window`s arrive in order: they are read under the same lock that records them.
    fn add(&mut self, window: u64) {
        if window != self.window {
            self.window = window;
            self.in_window = 0;
        }
        self.total += 1;
        self.in_window += 1;
        self.max_in_window = self.max_in_window.max(self.in_window);
    }
}

#[derive(Debug, Default, Clone)]
struct ItemWrites {
    /// Writes in transactions that committed.
    committed: PerSecond,
    /// Writes sent, cancelled transactions included: DynamoDB meters those against the item too.
    attempted: PerSecond,
}

#[derive(Debug, Default)]
struct Tally {
    since: Option<Instant>,
    items: HashMap<Key, ItemWrites>,
    /// Global secondary index partitions the writes land in (`GSI2PK=PARTNER#p`, say): an index
    /// partition has a write ceiling of its own.
    index_partitions: HashMap<String, ItemWrites>,
    /// Transactions that wrote nothing: a condition failed (a wallet's version moved, say), or
    /// the table refused them (DynamoDB Local's `TransactionConflict`, throttling).
    cancelled_on_condition: u64,
    cancelled_otherwise: u64,
}

/// Counts every write action (Put, Update, Delete; a Check writes nothing) per item key, while
/// armed. `CountingTable` counts calls, not items, hence this one.
struct WriteCounter<T> {
    inner: T,
    tally: Mutex<Tally>,
}

impl<T> WriteCounter<T> {
    fn new(inner: T) -> Self {
        Self { inner, tally: Mutex::new(Tally::default()) }
    }

    /// Counts from now on (the setup's writes are not the run's).
    fn arm(&self) {
        self.tally.lock().unwrap().since = Some(Instant::now());
    }

    fn disarm(&self) -> (Duration, Tally) {
        let mut tally = self.tally.lock().unwrap();
        let since = tally.since.take().expect("armed");
        (since.elapsed(), std::mem::take(&mut *tally))
    }
}

/// The index partitions a put lands in: an index holds an item only when it has the index's
/// partition attribute.
fn index_partitions(write: &Write) -> Vec<String> {
    let Write::Put { item, .. } = write else { return Vec::new() };
    TABLE
        .global_indexes
        .iter()
        .filter_map(|index| match item.get(index.partition) {
            Some(Attr::S(pk)) => Some(format!("{}={pk}", index.partition)),
            _ => None,
        })
        .collect()
}

impl<T: Table> Table for WriteCounter<T> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
        self.inner.get_many(keys).await
    }

    async fn query(&self, query: Query<'_>) -> Result<Vec<Item>, TableError> {
        self.inner.query(query).await
    }

    async fn query_index(&self, query: IndexQuery<'_>) -> Result<Vec<Item>, TableError> {
        self.inner.query_index(query).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), TableError> {
        let written: Vec<(Key, Vec<String>)> = writes
            .iter()
            .filter(|w| !matches!(w, Write::Check { .. }))
            .map(|w| (w.key(), index_partitions(w)))
            .collect();
        let result = self.inner.transact(writes).await;
        let mut tally = self.tally.lock().unwrap();
        let Some(since) = tally.since else { return result };
        let window = since.elapsed().as_secs();
        let committed = result.is_ok();
        match &result {
            Ok(()) => {}
            Err(TableError::ConditionFailed { .. }) => tally.cancelled_on_condition += 1,
            Err(_) => tally.cancelled_otherwise += 1,
        }
        for (key, partitions) in written {
            let item = tally.items.entry(key).or_default();
            item.attempted.add(window);
            if committed {
                item.committed.add(window);
            }
            for p in partitions {
                let part = tally.index_partitions.entry(p).or_default();
                part.attempted.add(window);
                if committed {
                    part.committed.add(window);
                }
            }
        }
        result
    }
}

type Bench = Billing<WriteCounter<DynamoTable>>;

fn idem(scope: &str, key: &str) -> IdempotencyKey {
    IdempotencyKey::new(scope, key, key.as_bytes()).unwrap()
}

fn workspace_id(i: usize) -> WorkspaceId {
    WorkspaceId::parse(&format!("bench-ws-{i}")).unwrap()
}

/// Even workspaces are re-billed for voice minutes, odd ones cost the partner only.
fn rebilled(i: usize) -> bool {
    i.is_multiple_of(2)
}

/// The partner, its credit rate, and `n` funded workspaces, half of them re-billed.
async fn set_up(billing: &Bench, p: &PartnerId, n: usize) {
    let settings = PartnerSettings { credit_billing: true, ..Default::default() };
    billing
        .create_partner(
            p,
            &settings,
            Mutation::new(&idem("platform", "create-partner"), &api::answers::partner_created),
        )
        .await
        .unwrap();
    let terms = CreditRateTerms::parse("usd", PRICE_PER_POINT, None, None).unwrap();
    billing
        .put_credit_rate(p, &terms, Mutation::new(&idem("partner", "credit-rate"), &api::answers::credit_rate_set))
        .await
        .unwrap();
    let rates = [(MeterCode::parse(VOICE).unwrap(), UnitRate::parse(REBILL_RATE).unwrap())].into();
    let rebilling = Rebilling { enabled: true, rates };
    for i in 0..n {
        let w = workspace_id(i);
        let new = NewWorkspace {
            id: w.clone(),
            name: format!("Bench {i}"),
            plan: PlanId::Starter,
            anchor: Some(AnchorDay::new(1).unwrap()),
        };
        billing
            .create_workspace(
                p,
                new,
                Mutation::new(&idem("partner", &format!("create-{w}")), &api::answers::workspace_created),
            )
            .await
            .unwrap();
        let funding = PointsAdjustment {
            amount: PointsDelta::parse(FUNDING).unwrap(),
            reason: "bench funding".into(),
            allow_negative: false,
            actor: Actor::System("bench".into()),
        };
        let funded = &api::answers::points_adjusted;
        billing
            .adjust_points(p, &w, funding, Mutation::new(&idem("partner", &format!("fund-{w}")), funded))
            .await
            .unwrap();
        if rebilled(i) {
            let key = idem("partner", &format!("rebill-{w}"));
            billing
                .put_rebilling(p, &w, rebilling.clone(), Mutation::new(&key, &api::answers::rebilling_set))
                .await
                .unwrap();
        }
    }
}

/// What one usage client did.
#[derive(Default)]
struct ClientRun {
    per_workspace: Vec<u64>,
    latencies: Vec<Duration>,
    retries: u64,
}

async fn usage_client(billing: Arc<Bench>, c: usize, workspaces: usize, length: Duration, start: Instant) -> ClientRun {
    let meter = MeterCode::parse(VOICE).unwrap();
    let quantity = UsageQuantity::parse(QUANTITY).unwrap();
    let mut run = ClientRun { per_workspace: vec![0; workspaces], ..Default::default() };
    let mut n = 0u64;
    while start.elapsed() < length {
        let i = fastrand::usize(..workspaces);
        let event =
            UsageEvent { workspace_id: workspace_id(i), meter: meter.clone(), quantity, event_id: format!("c{c}-{n}") };
        let began = Instant::now();
        let mut attempt = 0;
        let reply = loop {
            match billing.record_usage(&event, &api::answers::usage_recorded).await {
                Ok(reply) => break reply,
                // The same event id again: counted once however many times it is sent.
                Err(OpError::Conflict | OpError::Unavailable(_)) if attempt + 1 < CLIENT_RETRIES => {
                    attempt += 1;
                    run.retries += 1;
                }
                Err(e) => panic!("event {} failed: {e}", event.event_id),
            }
        };
        run.latencies.push(began.elapsed());
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(reply.body["rebilled"], rebilled(i), "{:?}", reply.body);
        run.per_workspace[i] += 1;
        n += 1;
    }
    run
}

fn add_fold(total: &mut FoldRun, run: FoldRun) {
    total.batches += run.batches;
    total.charges += run.charges;
    total.raced += run.raced;
}

/// Runs `calls` of `f` with `concurrency` at once; the latency of each, sorted.
async fn timed<F, Fut>(calls: usize, concurrency: usize, f: F) -> (Duration, Vec<Duration>)
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
                let mut latencies = Vec::new();
                loop {
                    let i = usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap();
                    if i >= calls {
                        break latencies;
                    }
                    let began = Instant::now();
                    f(i).await;
                    latencies.push(began.elapsed());
                }
            })
        })
        .collect();
    let mut all = Vec::with_capacity(calls);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    all.sort_unstable();
    (elapsed, all)
}

/// What kind of item a key names, for the per-kind summary.
fn kind(key: &Key) -> &'static str {
    let partner = key.pk.starts_with("PARTNER#");
    match key.sk.as_str() {
        keys::WALLET_SK if partner => "partner wallet",
        keys::WALLET_SK => "workspace wallet",
        sk if sk.starts_with(keys::LEDGER_PREFIX) => "ledger entry",
        _ if key.pk.starts_with("ACCRUAL#") => "accrual",
        _ if key.pk.starts_with("ACCRUED#") => "accrued sum",
        keys::IDEMP_SK => "idempotency record",
        sk if sk.starts_with("MONTH#") => "month totals",
        _ => "other",
    }
}

fn print_writes(tally: &Tally, run: Duration) {
    println!("  writes per item (Put/Update/Delete actions; committed, [sent incl. cancelled]):");
    println!(
        "    {:<20} | {:>7} | {:>9} | {:>13} | {:>17} | {:>14}",
        "kind", "items", "writes", "most per item", "hottest second", "sent, hottest"
    );
    let mut kinds: Vec<&'static str> = tally.items.keys().map(kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    for k in kinds {
        let of_kind: Vec<&ItemWrites> = tally.items.iter().filter(|(key, _)| kind(key) == k).map(|(_, w)| w).collect();
        let writes: u64 = of_kind.iter().map(|w| w.committed.total).sum();
        let most = of_kind.iter().map(|w| w.committed.total).max().unwrap_or(0);
        let hottest = of_kind.iter().map(|w| w.committed.max_in_window).max().unwrap_or(0);
        let sent_hottest = of_kind.iter().map(|w| w.attempted.max_in_window).max().unwrap_or(0);
        println!(
            "    {k:<20} | {:>7} | {writes:>9} | {most:>13} | {:>15}/s | {sent_hottest:>12}/s",
            of_kind.len(),
            hottest
        );
    }
    let mut top: Vec<(&Key, &ItemWrites)> = tally.items.iter().collect();
    top.sort_by(|a, b| b.1.committed.max_in_window.cmp(&a.1.committed.max_in_window).then(a.0.cmp(b.0)));
    println!("  hottest items (writes in their busiest second; average over the {} s run):", run.as_secs());
    for (key, w) in top.into_iter().take(TOP_ITEMS) {
        println!(
            "    {:<40} {:>5}/s max, {:>8} avg, {:>6} writes [{} sent]",
            format!("{} / {}", key.pk, key.sk),
            w.committed.max_in_window,
            rate(w.committed.total, run),
            w.committed.total,
            w.attempted.total
        );
    }
    for (partition, w) in &tally.index_partitions {
        println!(
            "  index partition {partition}: {}/s in its busiest second, {} avg, {} writes",
            w.committed.max_in_window,
            rate(w.committed.total, run),
            w.committed.total
        );
    }
    println!(
        "  cancelled transactions: {} on a condition, {} otherwise",
        tally.cancelled_on_condition, tally.cancelled_otherwise
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let workspaces = env("USAGE_BENCH_WORKSPACES", 100);
    let seconds = env("USAGE_BENCH_SECONDS", 20);
    let concurrency = env("USAGE_BENCH_CONCURRENCY", 32);
    let access_calls = env("USAGE_BENCH_ACCESS_CALLS", 2_000);
    assert!(workspaces >= 2 && concurrency >= 1, "at least two workspaces (one re-billed, one not) and one client");
    let length = Duration::from_secs(u64::try_from(seconds).unwrap());
    let billing: Arc<Bench> =
        Arc::new(Billing::new(Store::new(WriteCounter::new(fresh_table().await)), Arc::new(SystemClock)));
    let p = PartnerId::parse("bench-partner").unwrap();

    println!(
        "usage benchmark: 1 partner, {workspaces} workspaces (half re-billed at {REBILL_RATE} points a minute), \
         {concurrency} clients for {seconds} s, fold every {} s, DynamoDB Local, release build",
        FOLD_INTERVAL.as_secs()
    );
    let setup = Instant::now();
    set_up(&billing, &p, workspaces).await;
    println!("  set up in {} ms", ms(setup.elapsed()));

    // Usage, with the fold running beside it.
    billing.store.table().arm();
    let stop = Arc::new(AtomicBool::new(false));
    let folding = {
        let (billing, stop) = (billing.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut total, mut runs) = (FoldRun::default(), 0u32);
            while !stop.load(Ordering::Relaxed) {
                add_fold(&mut total, billing.fold_all(None).await.expect("a fold run"));
                runs += 1;
                tokio::time::sleep(FOLD_INTERVAL).await;
            }
            (total, runs)
        })
    };
    let start = Instant::now();
    let clients: Vec<_> =
        (0..concurrency).map(|c| tokio::spawn(usage_client(billing.clone(), c, workspaces, length, start))).collect();
    let mut per_workspace = vec![0u64; workspaces];
    let mut latencies = Vec::new();
    let mut retries = 0;
    for c in clients {
        let run = c.await.unwrap();
        for (sum, n) in per_workspace.iter_mut().zip(run.per_workspace) {
            *sum += n;
        }
        latencies.extend(run.latencies);
        retries += run.retries;
    }
    let usage_time = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (during, fold_runs) = folding.await.unwrap();
    let mut after = FoldRun::default();
    let mut final_runs = 0;
    loop {
        assert!(final_runs < MAX_FINAL_FOLDS, "the final fold did not finish in {MAX_FINAL_FOLDS} runs");
        let run = billing.fold_all(None).await.expect("the final fold");
        add_fold(&mut after, run);
        final_runs += 1;
        // Nothing else writes now: a run that found every shard empty leaves nothing behind.
        if run.finished {
            break;
        }
    }
    let (counted_for, tally) = billing.store.table().disarm();

    let events: u64 = per_workspace.iter().sum();
    latencies.sort_unstable();
    println!(
        "  usage: {events} events in {} ms: {} events/s; record_usage p50 {} ms, p99 {} ms; {retries} client retries",
        ms(usage_time),
        per_second(events, usage_time),
        ms(percentile(&latencies, 50)),
        ms(percentile(&latencies, 99))
    );
    println!(
        "  fold during usage: {fold_runs} runs, {} batches, {} charges, {} raced",
        during.batches, during.charges, during.raced
    );
    println!(
        "  final fold: {final_runs} runs, {} batches, {} charges, {} raced",
        after.batches, after.charges, after.raced
    );
    let rebilled_events: u64 = per_workspace.iter().enumerate().filter(|(i, _)| rebilled(*i)).map(|(_, n)| n).sum();
    let rebilled_workspaces = workspaces.div_ceil(2);
    println!(
        "  expected: a re-billed workspace's wallet written once per event, {} on average ({rebilled_events} events \
         over {rebilled_workspaces} wallets); the partner wallet once per fold batch",
        rate(rebilled_events, usage_time * u32::try_from(rebilled_workspaces).unwrap())
    );
    print_writes(&tally, counted_for);

    // Correctness: every event folded once, both wallets exact.
    assert!(billing.unfolded(&p).await.unwrap().is_empty(), "accruals left after the final fold");
    assert_eq!(u64::from(during.charges + after.charges), events, "every event's accrual folded exactly once");
    let partner_wallet = WalletId::Partner(p.clone());
    let partner_writes = tally.items.get(&keys::wallet(&partner_wallet)).map_or(0, |w| w.committed.total);
    assert_eq!(
        partner_writes,
        u64::from(during.batches + after.batches),
        "the partner wallet moves per fold batch only"
    );
    for (key, w) in &tally.items {
        if kind(key) == "accrual" {
            assert!(w.committed.total <= 2, "accrual {key:?} written {} times", w.committed.total);
        }
    }
    let wholesale = Decimal::from(events) * dec(QUANTITY) * dec("0.07");
    let partner_balance = billing.store.wallet(&partner_wallet).await.unwrap().balance.as_decimal();
    assert_eq!(partner_balance, -wholesale, "the partner owes every event's wholesale cost");
    let partner_entries = billing.store.verify(&partner_wallet).await.expect("the partner ledger verifies").entries;
    assert_eq!(partner_entries, u64::from(during.batches + after.batches), "one partner entry per fold batch");
    for (i, &n) in per_workspace.iter().enumerate() {
        let w = WalletId::Workspace(workspace_id(i));
        let charged = if rebilled(i) { Decimal::from(n) * dec(QUANTITY) * dec(REBILL_RATE) } else { Decimal::ZERO };
        let balance = billing.store.wallet(&w).await.unwrap().balance.as_decimal();
        assert_eq!(balance, dec(FUNDING) - charged, "workspace {i}: {n} events");
    }
    let step = (workspaces / VERIFY_SAMPLE).max(1);
    // An even step would sample the re-billed half only: take each sampled index and its neighbour.
    for i in (0..workspaces).step_by(step).flat_map(|i| [i, i + 1]).filter(|&i| i < workspaces) {
        let w = WalletId::Workspace(workspace_id(i));
        let verified = billing.store.verify(&w).await.expect("a workspace ledger verifies");
        let usage_entries = if rebilled(i) { per_workspace[i] } else { 0 };
        assert_eq!(verified.entries, 1 + usage_entries, "workspace {i}: the funding and one entry per event");
    }
    println!(
        "  checked: nothing unfolded; partner wallet {partner_balance} = -{events} x {QUANTITY} x 0.07; every \
         workspace balance exact; ledgers verify"
    );

    // The access check next to one bare read, same concurrency. Every workspace is seen once
    // first, so each check is its one BatchGetItem of 21 keys (the workspace, its wallet, the
    // partner's profile, wallet and billing mode, and its 16 sums of charges not folded).
    let meter = MeterCode::parse(VOICE).unwrap();
    for i in 0..workspaces {
        billing.access(&workspace_id(i), &meter).await.expect("access allowed");
    }
    let (access_time, access) = {
        let billing = billing.clone();
        timed(access_calls, concurrency, move |_| {
            let (billing, meter) = (billing.clone(), meter.clone());
            async move {
                let w = workspace_id(fastrand::usize(..workspaces));
                billing.access(&w, &meter).await.expect("access allowed");
            }
        })
        .await
    };
    let (get_time, gets) = {
        let billing = billing.clone();
        timed(access_calls, concurrency, move |_| {
            let billing = billing.clone();
            async move {
                let key = keys::wallet(&WalletId::Workspace(workspace_id(fastrand::usize(..workspaces))));
                billing.store.table().get(&key).await.unwrap().expect("the wallet exists");
            }
        })
        .await
    };
    println!(
        "  access check (BatchGetItem of 21): {access_calls} calls, {}/s, p50 {} ms, p99 {} ms",
        per_second(u64::try_from(access_calls).unwrap(), access_time),
        ms(percentile(&access, 50)),
        ms(percentile(&access, 99))
    );
    println!(
        "  bare GetItem of one item:         {access_calls} calls, {}/s, p50 {} ms, p99 {} ms",
        per_second(u64::try_from(access_calls).unwrap(), get_time),
        ms(percentile(&gets, 50)),
        ms(percentile(&gets, 99))
    );
}

//! Plans billed in money, exactly once whatever Stripe's delivery does: randomized schedules of
//! real subscription events from the fake. Each schedule is one subscription whose life is drawn
//! (add-ons put on the bill, an upgrade, renewals paid or declined, a later payment, a
//! cancellation); the events it makes are delivered in random bursts while it runs (a random
//! part of all sent so far, each one to three times, shuffled, stale ones included), and all of
//! them once more at its end. The workspace must end agreeing with the subscription as the fake
//! holds it, and every change must have been applied once: the add-ons held once each, each
//! partner event at most as often as its change happened.
//!
//! The seed of every schedule is printed with a failure, so a failing schedule can be replayed.

use std::io::Write;

use billing::join_all;
use serde_json::{Value, json};
use store::Table;
use stripe_fake::NextPaymentIntent;
use time::Month;

use super::plans::{at, in_next_year, money_partner, subscribe_paid, subscription};
use super::{Api, P, W, req, workspace_admin};

const MEMORY_SCHEDULES: usize = 40;
const DYNAMODB_SCHEDULES: usize = 8;

/// Delivers a random part of `pool` (each one to three times, shuffled, in concurrent bursts of
/// one to four), or all of it when `all`: every answer is 200.
async fn burst<T: Table>(api: &Api<T>, pool: &[String], rng: &mut fastrand::Rng, all: bool, seed: u64) -> usize {
    let mut deliveries = vec![];
    for payload in pool {
        if all || rng.bool() {
            for _ in 0..rng.usize(1..=3) {
                deliveries.push(payload.clone());
            }
        }
    }
    rng.shuffle(&mut deliveries);
    let mut rest = deliveries.as_slice();
    while !rest.is_empty() {
        let (now, after) = rest.split_at(rng.usize(1..=4).min(rest.len()));
        for answer in join_all(now.iter().map(|p| api.deliver(p))).await {
            assert_eq!(answer.status, 200, "seed {seed}: {}", answer.body);
        }
        rest = after;
    }
    deliveries.len()
}

/// The fake's events on connected accounts sent since `from` (and where it is now).
fn sent_since<T>(api: &Api<T>, from: &mut usize, pool: &mut Vec<String>) {
    let events = api.stripe.events();
    pool.extend(events[*from..].iter().filter(|e| e.account.is_some()).map(|e| e.payload.clone()));
    *from = events.len();
}

/// What the schedule did, to check the end against.
#[derive(Debug, Default)]
struct Life {
    members: u32,
    upgraded: bool,
    declined: u32,
    paid_later: bool,
    cancelled: bool,
}

async fn schedule<T: Table>(api: &Api<T>, seed: u64) -> usize {
    let mut rng = fastrand::Rng::with_seed(seed);
    let grace = rng.u32(0..=3);
    money_partner(api, grace).await;
    let (mut from, mut pool, mut deliveries) = (0, vec![], 0);
    let mut life = Life::default();
    let sub = subscribe_paid(api, "starter", in_next_year(Month::April, 1, 9)).await;
    sent_since(api, &mut from, &mut pool);
    // The subscription must be on the workspace before it can be changed: its events all come
    // (in any order, repeated); the rest come in bursts as the schedule runs.
    deliveries += burst(api, &pool, &mut rng, true, seed).await;
    if rng.bool() {
        at(api, in_next_year(Month::April, 15, 12)).await;
        let quantity = rng.u32(1..=3);
        let body = json!({ "addon": "extra_member", "quantity": quantity });
        api.call(req("POST /workspace/subscription/addons").by(workspace_admin(P, W)).json(body)).await.ok(201);
        life.members += quantity;
        sent_since(api, &mut from, &mut pool);
        deliveries += burst(api, &pool, &mut rng, false, seed).await;
    }
    if rng.bool() {
        at(api, in_next_year(Month::April, 20, 12)).await;
        let up = req("POST /workspace/plan").by(workspace_admin(P, W)).json(json!({ "plan": "growth" }));
        api.call(up).await.ok(200);
        life.upgraded = true;
        sent_since(api, &mut from, &mut pool);
        deliveries += burst(api, &pool, &mut rng, false, seed).await;
    }
    let decline = rng.bool();
    if decline {
        let outcome = Some(NextPaymentIntent::Decline("insufficient_funds".into()));
        api.stripe.set_subscription_payment_outcome(&sub, outcome).unwrap();
        life.declined += 1;
    }
    at(api, in_next_year(Month::May, 1, 10)).await;
    sent_since(api, &mut from, &mut pool);
    deliveries += burst(api, &pool, &mut rng, false, seed).await;
    if decline && rng.bool() {
        api.stripe.set_subscription_payment_outcome(&sub, None).unwrap();
        at(api, in_next_year(Month::May, 2, 10)).await;
        let account = api.account(P).await;
        let open = api.stripe.invoices(Some(&account)).into_iter().find(|i| i["status"] == "open").expect("open");
        api.stripe.pay_open_invoice(open["id"].as_str().unwrap()).await.unwrap();
        life.paid_later = true;
        sent_since(api, &mut from, &mut pool);
        deliveries += burst(api, &pool, &mut rng, false, seed).await;
    }
    if (!decline || life.paid_later) && rng.bool() {
        api.call(req("DELETE /workspace/subscription").by(workspace_admin(P, W))).await.ok(200);
        life.cancelled = true;
        at(api, in_next_year(Month::June, 1, 10)).await;
        sent_since(api, &mut from, &mut pool);
    }
    // Everything once more, in any order.
    deliveries += burst(api, &pool, &mut rng, true, seed).await;
    agrees(api, &sub, &life, seed).await;
    deliveries
}

/// The workspace agrees with the subscription as the fake holds it, and each change shows once.
async fn agrees<T: Table>(api: &Api<T>, sub: &str, life: &Life, seed: u64) {
    let account = api.account(P).await;
    let held = api.stripe.subscriptions(Some(&account)).into_iter().find(|s| s["id"] == sub).expect("the fake's");
    let ws = api.call(req("GET /workspace").by(workspace_admin(P, W))).await.ok(200);
    let ctx = format!("seed {seed}: {life:?}\nfake: {held}\nworkspace: {ws}");
    let events = api.call(req("GET /partner/events").by(super::partner_admin(P)).query("limit", "100")).await.ok(200);
    let types: Vec<&str> = events["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    let count = |t: &str| types.iter().filter(|x| **x == t).count();
    assert_eq!(count("subscription.started"), 1, "{ctx}\n{types:?}");
    assert!(count("subscription.past_due") <= life.declined as usize, "{ctx}\n{types:?}");
    assert!(count("subscription.recovered") <= count("subscription.past_due"), "{ctx}\n{types:?}");
    assert!(count("workspace.resumed") <= count("workspace.paused"), "{ctx}\n{types:?}");
    if life.cancelled {
        assert_eq!(held["status"], "canceled", "{ctx}");
        assert_eq!(ws["plan"], "starter", "{ctx}");
        assert_eq!(count("subscription.ended"), 1, "{ctx}\n{types:?}");
        assert!(ws["addons"].as_array().unwrap().is_empty(), "{ctx}");
        return;
    }
    let status = held["status"].as_str().unwrap();
    let details = subscription(api).await;
    let payment = details["subscription"]["payment"].as_str().unwrap();
    match status {
        "active" => assert_eq!(payment, "paid", "{ctx}"),
        "past_due" => assert!(payment == "past_due" || payment == "unpaid", "{ctx}"),
        other => panic!("{ctx}: the fake's subscription is {other}"),
    }
    assert_eq!(ws["plan"], if life.upgraded { "growth" } else { "starter" }, "{ctx}");
    let period_start = held["items"]["data"][0]["current_period_start"].as_i64().unwrap();
    let start = time::OffsetDateTime::from_unix_timestamp(period_start).unwrap().date().to_string();
    assert_eq!(details["subscription"]["cycle"]["start"], start, "{ctx}");
    // The extra members held once each, their quantity the fake's item's.
    let members: u64 = ws["addons"].as_array().unwrap().iter().map(|a| a["quantity"].as_u64().unwrap()).sum();
    assert_eq!(members, u64::from(life.members), "{ctx}");
    let billed: u64 = held["items"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["price"]["product"].as_str().is_some_and(|p| p.starts_with("addon_")))
        .map(|i| i["quantity"].as_u64().unwrap())
        .sum();
    assert_eq!(billed, members, "{ctx}");
    let limits: Value = ws["limits"]["members"].clone();
    let plan_members = if life.upgraded { 5 } else { 2 };
    assert_eq!(limits, json!(plan_members + life.members), "{ctx}");
}

async fn run<T: Table, F: std::future::Future<Output = Api<T>>>(
    store: &str,
    schedules: usize,
    new_api: impl Fn() -> F,
) {
    let base = fastrand::u64(..);
    let mut deliveries = 0;
    for i in 0..schedules {
        let api = new_api().await;
        deliveries += schedule(&api, base.wrapping_add(i as u64)).await;
    }
    let _ = writeln!(
        std::io::stderr(),
        "randomized subscription schedules ({store}): {schedules} schedules, {deliveries} deliveries, each change \
         applied once (seeds {base}..{})",
        base.wrapping_add(schedules as u64)
    );
}

#[tokio::test]
async fn randomized_subscription_schedules_apply_each_change_once_on_memory() {
    run("memory", MEMORY_SCHEDULES, Api::memory).await;
}

#[tokio::test]
async fn randomized_subscription_schedules_apply_each_change_once_on_dynamodb() {
    run("DynamoDB Local", DYNAMODB_SCHEDULES, Api::dynamodb).await;
}

//! The reconciliation sweep: a payment whose webhook never came is credited, a refund the
//! webhook missed is taken back, once, whether the webhook, the sweep or both apply the event,
//! in any order, at the same time. In these tests the fake only records its events: what a test
//! does not deliver is a webhook lost for good.

use std::time::Duration;

use billing::{SweepLimits, SweepRun};
use serde_json::json;
use store::Table;

use super::checkout::{events_of, of_type, outcome, seller, session};
use super::{Api, P, W, partner_admin, req};

/// The sweep as deployed, but reading up to now: the fake lists an event the moment it makes it.
fn limits() -> SweepLimits {
    SweepLimits { lag: time::Duration::ZERO, ..SweepLimits::default() }
}

/// Waits out the second the fake's last events were made in: a window ends before now, so an
/// event of this very second waits for the next run.
async fn next_second() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

async fn sweep<T: Table>(api: &Api<T>) -> SweepRun {
    api.billing.sweep(|| false, limits()).await.expect("the sweep")
}

async fn a_payment_whose_webhook_never_came_is_credited_once<T: Table>(api: Api<T>) {
    api.tenants().await;
    let option = seller(&api, P).await;
    // Nothing to find yet: both accounts (the platform's, P's and Q's) are read and caught up.
    let quiet = sweep(&api).await;
    assert_eq!((quiet.accounts, quiet.events, quiet.fixed, quiet.finished), (3, 0, 0, true), "{quiet:?}");

    // W pays; none of Stripe's events reaches the webhook.
    let id = session(&api, P, W, &option).await;
    api.stripe.pay(&id).await.unwrap();
    // P pays into its wallet on the platform's account; nor do those.
    let wallet = super::partner_wallet::wallet_checkout(P, "25.00");
    let wallet = api.call(wallet).await.ok(201)["id"].as_str().unwrap().to_owned();
    api.stripe.pay(&wallet).await.unwrap();
    assert_eq!((api.balance(P, W).await.as_str(), api.wallet_balance(P).await.as_str()), ("0.00", "0.00"));
    next_second().await;

    let run = sweep(&api).await;
    assert_eq!(api.balance(P, W).await, "1000.00", "{run:?}");
    assert_eq!(api.wallet_balance(P).await, "25.00");
    // Each payment: its card's details, its card saved, its credit; and the paid invoice
    // Checkout made for it, which bills no subscription and changes nothing.
    assert_eq!((run.events, run.fixed, run.refused, run.failed), (8, 6, 0, 0), "{run:?}");
    let top_up = &api.ledger(P, W).await[0];
    assert_eq!((&top_up["kind"], &top_up["actor"]["type"]), (&json!("top_up"), &json!("stripe")), "{top_up}");
    let card = api.call(req("GET /partner/wallet/card").by(partner_admin(P))).await.ok(200);
    assert_eq!(card["card"]["last4"], "4242", "{card}");

    // Again: nothing new, nothing more. The webhook, late: already done.
    next_second().await;
    let again = sweep(&api).await;
    assert_eq!((again.events, again.fixed), (0, 0), "{again:?}");
    let completed = of_type(&events_of(&api, W), "checkout.session.completed");
    assert_eq!(outcome(&api.deliver(&completed).await), "already_credited");
    assert_eq!(api.balance(P, W).await, "1000.00");
    assert_eq!(api.verify(W).await, 1);
    assert_eq!(api.verify_partner(P).await, 1);
}

async fn a_refund_the_webhook_missed_is_taken_back<T: Table>(api: Api<T>) {
    api.tenants().await;
    let option = seller(&api, P).await;
    let id = session(&api, P, W, &option).await;
    api.stripe.pay(&id).await.unwrap();
    assert_eq!(outcome(&api.deliver(&of_type(&events_of(&api, W), "checkout.session.completed")).await), "credited");
    let charge = api.stripe.session(&id).unwrap()["payment_intent"]["latest_charge"].as_str().unwrap().to_owned();
    api.stripe.refund(&charge, Some(400)).await.unwrap();
    next_second().await;
    let run = sweep(&api).await;
    assert_eq!(api.balance(P, W).await, "600.00", "{run:?}");
    let entry = &api.ledger(P, W).await[0];
    assert_eq!((&entry["kind"], &entry["amount"]), (&json!("claw_back"), &json!("-400.00")), "{entry}");
    // The refund's own webhook, late, takes nothing more.
    let refunded = of_type(&events_of(&api, W), "charge.refunded");
    assert_eq!(outcome(&api.deliver(&refunded).await), "unchanged");
    assert_eq!(api.balance(P, W).await, "600.00");
    assert_eq!(api.verify(W).await, 2);
}

/// On DynamoDB Local: in each round a payment's webhook is delivered (0 to 3 times, after random
/// waits) while two sweeps run (after random waits); the points are credited once.
async fn webhook_and_sweep_racing_credit_once<T: Table>(api: Api<T>) {
    api.tenants().await;
    let option = seller(&api, P).await;
    let seed = fastrand::u64(..);
    let mut rng = fastrand::Rng::with_seed(seed);
    let rounds: u64 = 8;
    for round in 1..=rounds {
        let id = session(&api, P, W, &option).await;
        api.stripe.pay(&id).await.unwrap();
        let completed = events_of(&api, W)
            .into_iter()
            .filter(|(t, p)| t == "checkout.session.completed" && p.contains(&id))
            .map(|(_, p)| p)
            .next()
            .unwrap();
        next_second().await;
        let deliveries: Vec<u64> = (0..rng.usize(0..=3)).map(|_| rng.u64(0..30)).collect();
        let sweeps: Vec<u64> = (0..2).map(|_| rng.u64(0..30)).collect();
        let webhook = deliveries.iter().map(|&wait| {
            let payload = completed.clone();
            let api = &api;
            async move {
                tokio::time::sleep(Duration::from_millis(wait)).await;
                let r = api.deliver(&payload).await;
                assert_eq!(r.status, 200, "seed {seed}: {}", r.body);
                r.body["outcome"].as_str().unwrap().to_owned()
            }
        });
        let swept = sweeps.iter().map(|&wait| {
            let api = &api;
            async move {
                tokio::time::sleep(Duration::from_millis(wait)).await;
                sweep(api).await
            }
        });
        let (outcomes, runs) = tokio::join!(billing::join_all(webhook), billing::join_all(swept));
        let credited_by_webhook = outcomes.iter().filter(|o| *o == "credited").count();
        assert!(credited_by_webhook <= 1, "seed {seed}: {outcomes:?}");
        assert_eq!(
            api.balance(P, W).await,
            format!("{}.00", 1000 * round),
            "seed {seed}, round {round}: {outcomes:?} {runs:?}"
        );
    }
    assert_eq!(api.verify(W).await, rounds);
    println!("webhook and sweep raced over {rounds} payments (seed {seed}): each credited once");
}

/// A run out of time leaves a cursor after the last partner it swept; the next goes on from
/// there, then starts over with the platform's account.
async fn a_run_out_of_time_is_taken_up_by_the_next<T: Table>(api: Api<T>) {
    api.tenants().await;
    // Every account ten seconds behind: one window each, one deadline check each.
    let behind = time::OffsetDateTime::now_utc().unix_timestamp() - 10;
    let mut accounts = vec![None];
    for p in [P, super::Q] {
        accounts.push(Some(stripe_gateway::ids::AccountId::parse(&api.account(p).await).unwrap()));
    }
    for account in &accounts {
        let position = store::records::SweepPosition { position: behind, version: 1 };
        let item = store::records::sweep_position_item(account.as_ref(), &position);
        api.billing.store.write(vec![store::Write::Put { item, condition: store::Condition::Always }]).await.unwrap();
    }
    let one_at_a_time = SweepLimits { concurrency: 1, ..limits() };
    // Asked before the platform's window, P's turn, P's window, then Q's turn: no more time.
    let asked = std::sync::atomic::AtomicU32::new(0);
    let out_of_time = || asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 3;
    let first = api.billing.sweep(out_of_time, one_at_a_time).await.unwrap();
    assert_eq!((first.accounts, first.finished), (2, false), "{first:?}");
    let second = api.billing.sweep(|| false, one_at_a_time).await.unwrap();
    assert_eq!((second.accounts, second.finished), (1, true), "Q alone: {second:?}");
    let third = api.billing.sweep(|| false, one_at_a_time).await.unwrap();
    assert_eq!((third.accounts, third.finished), (3, true), "from the start: {third:?}");
}

async fn an_account_stripe_will_not_list_holds_up_no_other<T: Table>(api: Api<T>) {
    api.tenants().await;
    let option = seller(&api, P).await;
    let id = session(&api, P, W, &option).await;
    api.stripe.pay(&id).await.unwrap();
    next_second().await;
    // Every attempt at the run's first listing (the platform's account) fails.
    api.stripe.fail_next("events.list", stripe_fake::FaultKind::ServerError, 4, 0);
    let run = sweep(&api).await;
    assert_eq!((run.accounts, run.failed, run.finished), (3, 1, true), "{run:?}");
    assert_eq!(api.balance(P, W).await, "1000.00", "P's account was swept all the same");
    let again = sweep(&api).await;
    assert_eq!((again.accounts, again.failed), (3, 0), "{again:?}");
}

api_suite!(
    an_account_stripe_will_not_list_holds_up_no_other,
    a_payment_whose_webhook_never_came_is_credited_once,
    a_refund_the_webhook_missed_is_taken_back,
    a_run_out_of_time_is_taken_up_by_the_next,
);

#[tokio::test]
async fn webhook_and_sweep_racing_on_dynamodb_local_credit_once() {
    webhook_and_sweep_racing_credit_once(Api::dynamodb().await).await;
}

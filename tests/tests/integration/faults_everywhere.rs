//! Faults across the money paths: for each operation (an add-on purchase, a partner's
//! adjustment, a checkout, the webhook's credit, a refund's claw-back, a renewal, a renewal that
//! charges the saved card, a usage event, the fold of wholesale charges, a threshold refill, a
//! partner's wallet checkout, its credit, and the partner wallet's refill after a fold),
//! each DynamoDB call it
//! makes fails in turn (a read; a write before it lands; a write that lands but answers an
//! error), and the operation is then retried as its caller would (the client with the same
//! Idempotency-Key, Stripe with the same event, the next scheduled run). Afterwards the state is
//! exactly that of one clean run: the ledger verifies, no wallet changed twice, no card was
//! charged twice, no second session was made.

use std::io::Write;

use billing::{RenewalLimits, RenewalRun};
use domain::Clock;
use integration_tests::{Call, Fault, FaultyTable};
use serde_json::json;
use store::memory::MemoryTable;
use store::table::TableError;
use time::macros::datetime;

use crate::api::autotopup::{turn_on, with_saved_card};
use crate::api::checkout::{checkout, events_of, seller, session};
use crate::api::{Api, P, W};

type FaultyApi = Api<FaultyTable<MemoryTable>>;

/// The faults each call kind gets, in turn.
fn faults(call: Call) -> Vec<Fault> {
    let fatal = |m: &str| TableError::fatal(m);
    match call {
        Call::Get => vec![Fault::Before(fatal("the read failed"))],
        Call::Transact => {
            vec![Fault::Before(fatal("the write failed")), Fault::After(fatal("the write landed, the answer was lost"))]
        }
    }
}

/// Runs `op` once with the `index`-th call of kind `call` failing with `fault`, then again
/// clean (the retry), and checks the end state. Returns false when `op` makes fewer such calls.
async fn once_failing(
    call: Call,
    index: usize,
    fault: Fault,
    setup: impl AsyncFn(&FaultyApi) -> String,
    op: impl AsyncFn(&FaultyApi, &str) -> bool,
    check: impl AsyncFn(&FaultyApi, &str),
) -> bool {
    let api = Api::over(FaultyTable::new(MemoryTable::new())).await;
    let ctx = setup(&api).await;
    let table = api.billing.store.table();
    for _ in 0..index {
        table.inject(call, Fault::Pass);
    }
    table.inject(call, fault.clone());
    let first = op(&api, &ctx).await;
    if table.pending() > 0 {
        // Fewer calls than `index + 1`: the operation ran clean and must have succeeded.
        assert!(first, "a clean run failed");
        return false;
    }
    // The caller's retry, without faults; then the state of exactly one application.
    assert!(op(&api, &ctx).await, "{call:?} #{index} {fault:?}: the retry did not succeed");
    check(&api, &ctx).await;
    true
}

async fn every_call_fails_once(
    name: &str,
    setup: impl AsyncFn(&FaultyApi) -> String,
    op: impl AsyncFn(&FaultyApi, &str) -> bool,
    check: impl AsyncFn(&FaultyApi, &str),
) {
    let mut runs = 0;
    for call in [Call::Get, Call::Transact] {
        for fault in faults(call) {
            let mut index = 0;
            while once_failing(call, index, fault.clone(), &setup, &op, &check).await {
                index += 1;
                runs += 1;
                assert!(index < 40, "{name}: more calls than expected");
            }
        }
    }
    assert!(runs >= 3, "{name}: only {runs} faults struck");
    // Past the harness's capture: how many faults each path took, in every test run's output.
    let _ = writeln!(std::io::stderr(), "faults: {name}: {runs} injected faults, each retried to one clean outcome");
}

async fn renew(api: &FaultyApi) -> RenewalRun {
    api.billing.renew_due(|| false, RenewalLimits::default()).await.unwrap()
}

/// The charging pass (charge-refills, which the table's stream invokes after a change): whether
/// every request it took came to an outcome.
async fn charged(api: &FaultyApi) -> bool {
    api.billing.charge_refills(|| false).await.is_ok_and(|run| run.errors == 0)
}

#[tokio::test]
async fn a_checkout_under_faults_makes_one_session() {
    every_call_fails_once(
        "checkout",
        async |api| {
            api.tenants().await;
            seller(api, P).await
        },
        async |api, option| {
            let r = api.call(checkout(P, W, json!({ "topup_option_id": option })).key("checkout-1")).await;
            r.status == 201
        },
        async |api, _| {
            let account = api.account(P).await;
            assert_eq!(api.stripe.sessions(Some(&account)).len(), 1, "one session");
            assert_eq!(api.stripe.customers(Some(&account)).len(), 1, "one customer");
        },
    )
    .await;
}

#[tokio::test]
async fn the_webhook_credit_under_faults_credits_once() {
    every_call_fails_once(
        "credit",
        async |api| {
            api.tenants().await;
            let option = seller(api, P).await;
            let id = session(api, P, W, &option).await;
            api.stripe.pay(&id).await.unwrap();
            events_of(api, W).into_iter().find(|(t, _)| t == "checkout.session.completed").unwrap().1
        },
        async |api, payload| api.deliver(payload).await.status == 200,
        async |api, _| {
            assert_eq!(api.balance(P, W).await, "1000.00");
            assert_eq!(api.verify(W).await, 1);
        },
    )
    .await;
}

#[tokio::test]
async fn a_refund_under_faults_claws_back_once() {
    every_call_fails_once(
        "refund",
        async |api| {
            api.tenants().await;
            let option = seller(api, P).await;
            let id = session(api, P, W, &option).await;
            api.stripe.pay(&id).await.unwrap();
            for (_, payload) in events_of(api, W) {
                api.deliver(&payload).await.ok(200);
            }
            let charge =
                api.stripe.session(&id).unwrap()["payment_intent"]["latest_charge"].as_str().unwrap().to_owned();
            api.stripe.refund(&charge, Some(250)).await.unwrap();
            events_of(api, W).into_iter().find(|(t, _)| t == "charge.refunded").unwrap().1
        },
        async |api, payload| api.deliver(payload).await.status == 200,
        async |api, _| {
            assert_eq!(api.balance(P, W).await, "750.00");
            assert_eq!(api.verify(W).await, 2);
        },
    )
    .await;
}

#[tokio::test]
async fn a_renewal_under_faults_charges_once() {
    every_call_fails_once(
        "renewal",
        async |api| {
            api.tenants().await;
            api.fund(P, W, "100").await;
            api.buy(P, W, "extra_bot", 1).await.ok(201);
            api.set_clock(datetime!(2026-05-01 06:00 UTC));
            String::new()
        },
        // The scheduler counts a failed renewal and leaves it due; the next run is the retry.
        async |api, _| {
            let run = renew(api).await;
            run.failed == 0 && run.finished
        },
        async |api, _| {
            assert_eq!(api.balance(P, W).await, "85.00");
            assert_eq!(api.verify(W).await, 3);
            assert_eq!(api.view(P, W).await["renews_on"], "2026-06-01");
        },
    )
    .await;
}

#[tokio::test]
async fn an_auto_top_up_under_faults_charges_the_card_once() {
    every_call_fails_once(
        "auto top-up",
        async |api| {
            let option = with_saved_card(api, 0).await;
            turn_on(api, &option).await;
            api.set_clock(datetime!(2026-05-01 06:00 UTC));
            String::new()
        },
        // The next scheduled run comes later (renew-addons runs every 15 minutes): it asks again
        // for a top-up a failure left in flight, and the charging pass takes it up.
        async |api, _| {
            api.set_clock(api.clock.now() + time::Duration::minutes(15));
            let run = renew(api).await;
            run.failed == 0 && run.finished && charged(api).await
        },
        async |api, _| {
            let account = api.account(P).await;
            assert_eq!(api.stripe.charges(Some(&account)).len(), 2, "the checkout and one top-up");
            assert_eq!(api.balance(P, W).await, "0.00");
            assert_eq!(api.verify(W).await, 4);
        },
    )
    .await;
}

#[tokio::test]
async fn a_usage_event_under_faults_counts_once() {
    every_call_fails_once(
        "usage",
        async |api| {
            api.tenants().await;
            api.point_price(P, "0.50").await;
            api.rebill(P, W, "0.15").await.ok(200);
            api.fund(P, W, "10").await;
            String::new()
        },
        // The platform sends the event again with its id.
        async |api, _| api.spend(W, "2", "evt-1").await.status == 200,
        async |api, _| {
            assert_eq!(api.balance(P, W).await, "9.70");
            assert_eq!(api.verify(W).await, 2);
            assert_eq!(api.fold(P).await.charges, 1);
            assert_eq!(api.partner_wallet(P).await["balance"], "-0.14");
        },
    )
    .await;
}

#[tokio::test]
async fn a_fold_under_faults_charges_the_partner_once() {
    every_call_fails_once(
        "fold",
        async |api| {
            api.tenants().await;
            for i in 0..3 {
                api.spend(W, "10", &format!("evt-{i}")).await.ok(200);
            }
            String::new()
        },
        // The next scheduled run is the retry.
        async |api, _| api.billing.fold_partner(&domain::PartnerId::parse(P).unwrap()).await.is_ok(),
        async |api, _| {
            assert_eq!(api.partner_wallet(P).await["balance"], "-2.10");
            assert_eq!(api.verify_partner(P).await, 1);
            assert!(api.billing.unfolded(&domain::PartnerId::parse(P).unwrap()).await.unwrap().is_empty());
        },
    )
    .await;
}

#[tokio::test]
async fn a_threshold_refill_under_faults_charges_the_card_once() {
    every_call_fails_once(
        "refill",
        async |api| {
            crate::api::autotopup::with_a_refill(api, None).await;
            // 10 - 33 x 0.15 = 5.05: one more minute takes it below the threshold of 5.
            for i in 0..33 {
                api.spend(W, "1", &format!("setup-{i}")).await.ok(200);
            }
            String::new()
        },
        // The platform's next call comes a few minutes later: it takes up a refill that a
        // failure left recorded but not charged (after REFILL_RESUME_AFTER).
        async |api, _| {
            let now = api.clock.now() + time::Duration::minutes(3);
            api.set_clock(now);
            api.spend(W, "1", &format!("call-{}", now.unix_timestamp())).await.status == 200 && charged(api).await
        },
        async |api, _| {
            let account = api.account(P).await;
            assert_eq!(api.stripe.charges(Some(&account)).len(), 2, "the checkout and one refill");
            // The call that failed before its usage was recorded counts nothing: 34 or 35 calls.
            let ledger = api.ledger(P, W).await;
            let calls = ledger.iter().filter(|e| e["kind"] == "usage").count();
            assert!(calls == 34 || calls == 35, "{calls} calls recorded");
            let refills = ledger.iter().filter(|e| e["actor"]["id"] == "auto-topup").count();
            assert_eq!(refills, 1, "one refill credited");
            // 10 - calls x 0.15 + 10.
            let expected = rust_decimal::Decimal::from(20)
                - rust_decimal::Decimal::new(15, 2) * rust_decimal::Decimal::from(calls);
            assert_eq!(api.balance(P, W).await, format!("{:.2}", expected));
            assert_eq!(api.verify(W).await, u64::try_from(3 + calls + 1).unwrap());
        },
    )
    .await;
}

#[tokio::test]
async fn a_purchase_under_faults_debits_once() {
    every_call_fails_once(
        "purchase",
        async |api| {
            api.tenants().await;
            api.fund(P, W, "100").await;
            String::new()
        },
        // The client sends the same request with the same Idempotency-Key.
        async |api, _| {
            let body = json!({ "addon": "extra_bot", "quantity": 1 });
            let buy = crate::api::req("POST /workspace/addons").by(crate::api::workspace_admin(P, W)).json(body);
            api.call(buy.key("buy-1")).await.status == 201
        },
        async |api, _| {
            // 10 points x 15/30 days, once; one add-on; its cost price accrued once.
            assert_eq!(api.balance(P, W).await, "95.00");
            assert_eq!(api.verify(W).await, 2);
            assert_eq!(api.view(P, W).await["addons"].as_array().unwrap().len(), 1);
            assert_eq!(api.fold(P).await.charges, 1);
            assert_eq!(api.partner_wallet(P).await["balance"], "-2.50");
        },
    )
    .await;
}

#[tokio::test]
async fn an_adjustment_under_faults_credits_once() {
    every_call_fails_once(
        "adjustment",
        async |api| {
            api.tenants().await;
            String::new()
        },
        async |api, _| {
            let body = json!({ "amount": "25", "reason": "goodwill" });
            let adjust = crate::api::req("POST /partner/workspaces/{id}/points")
                .param("id", W)
                .by(crate::api::partner_admin(P))
                .json(body);
            api.call(adjust.key("adjust-1")).await.status == 201
        },
        async |api, _| {
            assert_eq!(api.balance(P, W).await, "25.00");
            assert_eq!(api.verify(W).await, 1);
        },
    )
    .await;
}

#[tokio::test]
async fn a_wallet_checkout_under_faults_makes_one_session() {
    every_call_fails_once(
        "wallet checkout",
        async |api| {
            api.tenants().await;
            String::new()
        },
        async |api, _| {
            api.call(crate::api::partner_wallet::wallet_checkout(P, "100.00").key("wallet-1")).await.status == 201
        },
        async |api, _| {
            assert_eq!(api.stripe.sessions(None).len(), 1, "one session on the platform's account");
            assert_eq!(api.stripe.customers(None).len(), 1, "one platform customer");
        },
    )
    .await;
}

#[tokio::test]
async fn a_wallet_credit_under_faults_credits_once() {
    every_call_fails_once(
        "wallet credit",
        async |api| {
            api.tenants().await;
            let created = api.call(crate::api::partner_wallet::wallet_checkout(P, "100.00")).await.ok(201);
            api.stripe.pay(created["id"].as_str().unwrap()).await.unwrap();
            api.platform_event(P, "checkout.session.completed")
        },
        // Stripe delivers the same event again.
        async |api, payload| api.deliver_platform(payload).await.status == 200,
        async |api, _| {
            assert_eq!(api.wallet_balance(P).await, "100.00");
            assert_eq!(api.verify_partner(P).await, 1);
        },
    )
    .await;
}

#[tokio::test]
async fn a_partner_refill_under_faults_charges_the_card_once() {
    every_call_fails_once(
        "partner refill",
        async |api| {
            api.tenants().await;
            api.pay_into_wallet(P, "100.00").await;
            let on = json!({ "enabled": true, "threshold": "50.00", "amount": "200.00" });
            api.auto_refill(P, on).await.ok(200);
            // 800 minutes at 0.07: 56.00, which the next fold takes below the threshold.
            api.spend(W, "800", "setup").await.ok(200);
            String::new()
        },
        // The next scheduled fold, a few minutes later (after REFILL_RESUME_AFTER), with the
        // minute of usage that came meanwhile: it takes up a refill a failure left recorded.
        async |api, _| {
            let now = api.clock.now() + time::Duration::minutes(3);
            api.set_clock(now);
            api.spend(W, "1", &format!("call-{}", now.unix_timestamp())).await.status == 200
                && api.billing.fold_partner(&domain::PartnerId::parse(P).unwrap()).await.is_ok()
                && charged(api).await
        },
        async |api, _| {
            assert_eq!(api.stripe.charges(None).len(), 2, "the wallet checkout and one refill");
            let wallet = api.partner_wallet(P).await;
            let entries = wallet["ledger"]["data"].as_array().unwrap();
            let refills = entries.iter().filter(|e| e["kind"] == "top_up").count();
            assert_eq!(refills, 2, "the checkout and one refill credited: {wallet}");
            // The minutes folded: the setup's 800, then 1 or 2 (a call whose answer was lost is
            // sent again under a new id, as the platform's next call).
            let charges: u64 = entries
                .iter()
                .filter(|e| e["kind"] == "wholesale_charges")
                .map(|e| e["detail"]["charges"].as_u64().unwrap())
                .sum();
            let minutes = rust_decimal::Decimal::from(800 + charges - 1);
            let expected = rust_decimal::Decimal::from(300) - rust_decimal::Decimal::new(7, 2) * minutes;
            assert_eq!(wallet["balance"], format!("{:.2}", expected), "{wallet}");
            api.verify_partner(P).await;
            assert!(api.billing.unfolded(&domain::PartnerId::parse(P).unwrap()).await.unwrap().is_empty());
        },
    )
    .await;
}

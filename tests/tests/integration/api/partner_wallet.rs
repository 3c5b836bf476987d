//! Money into the partner wallet: Checkout on the platform's OWN Stripe account (the
//! fake's requests name no `Stripe-Account`), its events on the platform endpoint, the credit
//! once, refunds taken back, and the threshold auto-refill after a fold on the partner's saved
//! card with the auto top-up rails (one at a time, an hour after a decline, off after three,
//! a monthly cap).

use serde_json::{Value, json};
use store::Table;
use stripe_fake::NextPaymentIntent;

use super::{Api, P, Q, W, partner_admin, req};

const SUCCESS: &str = "https://console.agency.example/wallet/paid";
const CANCEL: &str = "https://console.agency.example/wallet";

pub(crate) fn wallet_checkout(p: &str, amount: &str) -> super::Req {
    req("POST /partner/wallet/checkout")
        .by(partner_admin(p))
        .json(json!({ "amount": amount, "success_url": SUCCESS, "cancel_url": CANCEL }))
}

fn outcome(r: &super::Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["outcome"].as_str().unwrap().to_owned()
}

impl<T: Table> Api<T> {
    /// The fake's events on the platform's own account about partner `p`, oldest first.
    pub(crate) fn platform_events(&self, p: &str) -> Vec<(String, String)> {
        self.stripe
            .events()
            .into_iter()
            .filter(|e| e.account.is_none())
            .filter(|e| {
                let v: Value = serde_json::from_str(&e.payload).unwrap();
                v["data"]["object"]["metadata"]["partner_id"] == p
            })
            .map(|e| (e.type_, e.payload))
            .collect()
    }

    pub(crate) fn platform_event(&self, p: &str, t: &str) -> String {
        let all = self.platform_events(p);
        all.iter().rev().find(|(ty, _)| ty == t).unwrap_or_else(|| panic!("no {t} event in {all:?}")).1.clone()
    }

    /// Partner `p` pays `amount` into its wallet through Checkout, and Stripe's events arrive.
    pub(crate) async fn pay_into_wallet(&self, p: &str, amount: &str) -> String {
        let created = self.call(wallet_checkout(p, amount)).await.ok(201);
        let id = created["id"].as_str().unwrap().to_owned();
        self.stripe.pay(&id).await.unwrap();
        // A card saved within the same second as the one before it is not newer: "unchanged".
        let saved = outcome(&self.deliver_platform(&self.platform_event(p, "payment_intent.succeeded")).await);
        assert!(saved == "card_saved" || saved == "unchanged", "{saved}");
        assert_eq!(
            outcome(&self.deliver_platform(&self.platform_event(p, "checkout.session.completed")).await),
            "credited"
        );
        id
    }

    pub(crate) async fn wallet_balance(&self, p: &str) -> String {
        self.partner_wallet(p).await["balance"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn auto_refill(&self, p: &str, body: Value) -> super::Resp {
        self.call(req("PUT /partner/wallet/auto-refill").by(partner_admin(p)).json(body)).await
    }

    /// Off-session PaymentIntents made on the platform's account.
    pub(crate) fn platform_charges(&self) -> usize {
        self.stripe
            .requests()
            .iter()
            .filter(|r| r.operation.as_deref() == Some("payment_intents.create") && r.account.is_none())
            .count()
    }
}

async fn a_partner_pays_into_its_wallet_once<T: Table>(api: Api<T>) {
    api.tenants().await;
    let before_ws = api.balance(P, W).await;
    let created = api.call(wallet_checkout(P, "100.00")).await.ok(201);
    assert_eq!(
        (&created["amount_major"], &created["currency"], &created["status"]),
        (&json!("100.00"), &json!("usd"), &json!("pending"))
    );
    // On the platform's own account: neither the customer nor the session names an account.
    let made: Vec<_> = api
        .stripe
        .requests()
        .into_iter()
        .filter(|r| matches!(r.operation.as_deref(), Some("customers.create" | "checkout.sessions.create")))
        .collect();
    assert_eq!(made.len(), 2, "{made:?}");
    assert!(made.iter().all(|r| r.account.is_none()), "{made:?}");
    let id = created["id"].as_str().unwrap().to_owned();
    api.stripe.pay(&id).await.unwrap();
    let completed = api.platform_event(P, "checkout.session.completed");
    // The platform's events come to the platform endpoint only, and the Connect endpoint's to it.
    api.deliver(&completed).await.invalid("account");
    let mut foreign: Value = serde_json::from_str(&completed).unwrap();
    foreign["account"] = json!(api.account(P).await);
    api.deliver_platform(&foreign.to_string()).await.invalid("account");
    assert_eq!(api.wallet_balance(P).await, "0.00");

    assert_eq!(outcome(&api.deliver_platform(&api.platform_event(P, "payment_intent.succeeded")).await), "card_saved");
    assert_eq!(outcome(&api.deliver_platform(&completed).await), "credited");
    assert_eq!(outcome(&api.deliver_platform(&completed).await), "already_credited");
    let wallet = api.partner_wallet(P).await;
    assert_eq!(wallet["balance"], "100.00", "{wallet}");
    let entry = &wallet["ledger"]["data"][0];
    assert_eq!((&entry["kind"], &entry["amount"]), (&json!("top_up"), &json!("100.00")), "{wallet}");
    assert_eq!(entry["detail"]["payment"], id.as_str());
    assert_eq!(wallet["auto_refill"]["card_saved"], true);
    assert_eq!(api.verify_partner(P).await, 1);
    assert_eq!(api.balance(P, W).await, before_ws, "the workspace's wallet is not the partner's");
    assert_eq!(api.wallet_balance(Q).await, "0.00");
    // A second payment reuses the partner's customer on the platform.
    api.pay_into_wallet(P, "20.50").await;
    assert_eq!(api.wallet_balance(P).await, "120.50");
    assert_eq!(api.stripe.customers(None).len(), 1);
}

async fn wallet_checkouts_are_refused_with_nothing_written<T: Table>(api: Api<T>) {
    api.tenants().await;
    let before = api.state().await;
    let requests = api.stripe.requests().len();
    // Below Stripe's minimum, more decimals than USD has, negative, not a number, above Stripe's
    // maximum.
    for amount in ["0.49", "10.001", "-5", "ten", "1000000.00"] {
        api.call(wallet_checkout(P, amount)).await.invalid("amount");
    }
    let bad_url = json!({ "amount": "10.00", "success_url": "ftp://x", "cancel_url": CANCEL });
    api.call(req("POST /partner/wallet/checkout").by(partner_admin(P)).json(bad_url)).await.invalid("success_url");
    let extra = json!({ "amount": "10.00", "success_url": SUCCESS, "cancel_url": CANCEL, "workspace_id": W });
    assert_eq!(api.call(req("POST /partner/wallet/checkout").by(partner_admin(P)).json(extra)).await.status, 400);
    assert_eq!(api.state().await, before, "nothing written");
    assert_eq!(api.stripe.requests().len(), requests, "no Stripe call");
}

async fn a_refund_of_a_wallet_payment_takes_its_share_back<T: Table>(api: Api<T>) {
    api.tenants().await;
    let id = api.pay_into_wallet(P, "100.00").await;
    let charge = api.stripe.session(&id).unwrap()["payment_intent"]["latest_charge"].as_str().unwrap().to_owned();
    api.stripe.refund(&charge, Some(2500)).await.unwrap();
    let refunded = api.platform_event(P, "charge.refunded");
    assert_eq!(outcome(&api.deliver_platform(&refunded).await), "clawed_back");
    assert_eq!(outcome(&api.deliver_platform(&refunded).await), "unchanged");
    assert_eq!(api.wallet_balance(P).await, "75.00");
    let events = api.call(req("GET /partner/events").by(partner_admin(P))).await.ok(200);
    let clawed = events["data"].as_array().unwrap().iter().find(|e| e["type"] == "refund.clawed_back").cloned();
    assert_eq!(clawed.as_ref().map(|e| &e["workspace_id"]), Some(&Value::Null), "{events}");
    assert_eq!(api.verify_partner(P).await, 2);
}

/// 100 usage events of 10 minutes (0.70 each): the first fold transaction is a full batch
/// (`FOLD_BATCH`, 96 accruals: 67.20) that leaves 32.80, under the threshold of 50.00, and it still
/// has room for its refill request. The second batch folds the rest; one refill of 100.00.
async fn a_full_fold_batch_still_asks_for_its_refill<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.pay_into_wallet(P, "100.00").await;
    api.auto_refill(P, json!({ "enabled": true, "threshold": "50.00", "amount": "100.00" })).await.ok(200);
    for i in 0..100 {
        api.spend(W, "10", &format!("call-{i}")).await.ok(200);
    }
    let folded = api.fold(P).await;
    assert_eq!((folded.batches, folded.charges), (2, 100), "{folded:?}");
    assert_eq!(api.platform_charges(), 1);
    assert_eq!(api.wallet_balance(P).await, "130.00", "100.00 - 70.00 + 100.00");
    assert_eq!(api.verify_partner(P).await, 4, "the payment, two folds, the refill");
}

/// 800 voice minutes at 0.07 (56.00) take 100.00 to 44.00, under the threshold of 50.00: the
/// fold charges the saved card 200.00 once.
async fn a_fold_under_the_threshold_refills_once<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.pay_into_wallet(P, "100.00").await;
    let set = api
        .auto_refill(P, json!({ "enabled": true, "threshold": "50.00", "amount": "200.00", "monthly_cap": "500.00" }))
        .await
        .ok(200);
    assert_eq!(
        (&set["enabled"], &set["amount"], &set["threshold"]),
        (&json!(true), &json!({ "amount_minor": 20000, "currency": "usd" }), &json!("50.00"))
    );
    api.spend(W, "500", "call-1").await.ok(200);
    api.fold(P).await;
    assert_eq!(api.wallet_balance(P).await, "65.00", "above the threshold: no refill");
    assert_eq!(api.platform_charges(), 0);
    api.spend(W, "300", "call-2").await.ok(200);
    api.fold(P).await;
    assert_eq!(api.wallet_balance(P).await, "244.00", "44.00 + one refill of 200.00");
    assert_eq!(api.platform_charges(), 1);
    // Stripe's own event of that charge credits nothing more.
    let succeeded = api.platform_event(P, "payment_intent.succeeded");
    assert_eq!(outcome(&api.deliver_platform(&succeeded).await), "already_credited");
    assert_eq!(api.wallet_balance(P).await, "244.00");
    let wallet = api.partner_wallet(P).await;
    assert_eq!(
        (&wallet["auto_refill"]["spent_this_month"], &wallet["auto_refill"]["monthly_cap"]),
        (&json!({ "amount_minor": 20000, "currency": "usd" }), &json!({ "amount_minor": 50000, "currency": "usd" })),
        "{wallet}"
    );
    let entry = &wallet["ledger"]["data"][0];
    assert_eq!(
        (&entry["kind"], &entry["amount"], &entry["actor"]["id"]),
        (&json!("top_up"), &json!("200.00"), &json!("partner-refill")),
        "{wallet}"
    );
    assert_eq!(api.verify_partner(P).await, 4, "the payment, two folds, the refill");

    // Eight workspaces' usage (35.00 each, in several accrual shards) folded by eight folds at
    // once: the folds that leave the wallet under 50.00 race to refill, and one refill is made
    // (244 - 280 + 200).
    for n in 0..8 {
        let w = format!("ws-acme-many-{n}");
        api.workspace(P, &w, "starter").await;
        api.spend(&w, "500", &format!("many-{n}")).await.ok(200);
    }
    let folds = billing::join_all((0..8).map(|_| api.fold(P))).await;
    assert_eq!(folds.iter().map(|f| f.charges).sum::<u32>(), 8, "{folds:?}");
    assert_eq!(api.wallet_balance(P).await, "164.00");
    assert_eq!(api.platform_charges(), 2);
    assert!(api.billing.unfolded(&domain::PartnerId::parse(P).unwrap()).await.unwrap().is_empty());
}

async fn a_declined_refill_waits_and_three_switch_it_off<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.pay_into_wallet(P, "10.00").await;
    api.auto_refill(P, json!({ "enabled": true, "threshold": "50.00", "amount": "100.00" })).await.ok(200);
    api.stripe.next_payment_intents(NextPaymentIntent::Decline("insufficient_funds".into()), 3);
    api.spend(W, "10", "call-1").await.ok(200);
    api.fold(P).await;
    let refill = api.partner_wallet(P).await["auto_refill"].clone();
    assert_eq!(
        (&refill["consecutive_failures"], &refill["last_failure"]["code"]),
        (&json!(1), &json!("insufficient_funds")),
        "{refill}"
    );
    // Within the hour: nothing is tried.
    api.spend(W, "10", "call-2").await.ok(200);
    api.fold(P).await;
    assert_eq!(api.platform_charges(), 1);
    for (n, call) in [(2, "call-3"), (3, "call-4")] {
        api.set_clock(super::T0 + time::Duration::hours(n));
        api.spend(W, "10", call).await.ok(200);
        api.fold(P).await;
    }
    assert_eq!(api.platform_charges(), 3);
    let refill = api.partner_wallet(P).await["auto_refill"].clone();
    assert_eq!(refill["enabled"], false, "{refill}");
    assert!(refill["disabled_reason"].as_str().unwrap().contains("3 failed attempts"), "{refill}");
    let events = api.call(req("GET /partner/events").by(partner_admin(P))).await.ok(200);
    let types: Vec<_> =
        events["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(types.iter().filter(|t| *t == "topup.failed").count(), 3, "{events}");
    assert!(types.contains(&"autotopup.disabled".to_owned()), "{events}");
    assert_eq!(api.wallet_balance(P).await, "7.20", "10.00 - 40 minutes, nothing refilled");
}

async fn the_monthly_cap_holds_the_refill<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.pay_into_wallet(P, "10.00").await;
    api.auto_refill(P, json!({ "enabled": true, "threshold": "50.00", "amount": "60.00", "monthly_cap": "100.00" }))
        .await
        .ok(200);
    api.spend(W, "100", "call-1").await.ok(200);
    api.fold(P).await;
    assert_eq!(api.wallet_balance(P).await, "63.00", "10 - 7 + 60");
    api.spend(W, "300", "call-2").await.ok(200);
    api.fold(P).await;
    assert_eq!(api.wallet_balance(P).await, "42.00", "a second 60.00 would pass the cap of 100.00");
    assert_eq!(api.platform_charges(), 1);
    // Held, not failed: the partner sees what the month has spent against the cap.
    let refill = api.partner_wallet(P).await["auto_refill"].clone();
    assert_eq!(
        (&refill["spent_this_month"], &refill["monthly_cap"], &refill["last_failure"], &refill["enabled"]),
        (
            &json!({ "amount_minor": 6000, "currency": "usd" }),
            &json!({ "amount_minor": 10000, "currency": "usd" }),
            &Value::Null,
            &json!(true)
        ),
        "{refill}"
    );
    // Next month the cap starts again.
    api.set_clock(time::macros::datetime!(2026-05-02 10:00 UTC));
    api.spend(W, "1", "call-3").await.ok(200);
    api.fold(P).await;
    assert_eq!(api.wallet_balance(P).await, "101.93");
}

async fn refill_settings_are_checked<T: Table>(api: Api<T>) {
    api.tenants().await;
    let on = json!({ "enabled": true, "threshold": "50.00", "amount": "100.00" });
    api.auto_refill(P, on.clone()).await.invalid("enabled");
    api.pay_into_wallet(P, "10.00").await;
    let before = api.state().await;
    for (body, param) in [
        (json!({ "enabled": true, "amount": "100.00" }), "threshold"),
        (json!({ "enabled": true, "threshold": "0", "amount": "100.00" }), "threshold"),
        (json!({ "enabled": true, "threshold": "50.00" }), "amount"),
        (json!({ "enabled": true, "threshold": "50.00", "amount": "0.10" }), "amount"),
        (json!({ "enabled": true, "threshold": "50.00", "amount": "100.001" }), "amount"),
        (json!({ "enabled": true, "threshold": "50.00", "amount": "100.00", "monthly_cap": "99.99" }), "monthly_cap"),
        (json!({ "enabled": false, "threshold": "50.00" }), "threshold"),
    ] {
        api.auto_refill(P, body).await.invalid(param);
    }
    assert_eq!(api.state().await, before, "nothing written");
    api.auto_refill(P, on).await.ok(200);
    let off = api.auto_refill(P, json!({ "enabled": false })).await.ok(200);
    assert_eq!((&off["enabled"], &off["amount"]["amount_minor"]), (&json!(false), &json!(10000)));
}

api_suite!(
    a_partner_pays_into_its_wallet_once,
    wallet_checkouts_are_refused_with_nothing_written,
    a_refund_of_a_wallet_payment_takes_its_share_back,
    a_fold_under_the_threshold_refills_once,
    a_full_fold_batch_still_asks_for_its_refill,
    a_declined_refill_waits_and_three_switch_it_off,
    the_monthly_cap_holds_the_refill,
    refill_settings_are_checked,
);

//! Metered usage with two wallets: `POST /platform/usage`, the access check,
//! re-billing, prepaid and postpaid partners, and the fold into the partner's wallet.
//!
//! The figures: voice minutes cost the partner 0.07 USD each (the platform's default meter);
//! partner P prices a point at 0.50 USD and re-bills its workspace at 0.15 points a minute
//! (0.075 USD, above the wholesale cost).

use billing::join_all;
use domain::{PartnerId, WalletId};
use serde_json::{Value, json};
use store::Table;

use super::{Api, P, Q, W, X, partner_admin, platform, req, workspace_admin};

const VOICE: &str = "voice_minutes";

fn partner_id(p: &str) -> PartnerId {
    PartnerId::parse(p).unwrap()
}

impl<T: Table> Api<T> {
    /// Partner `p` prices a point at `price` USD.
    pub(crate) async fn point_price(&self, p: &str, price: &str) {
        let body = json!({ "currency": "usd", "price_per_point": price });
        self.call(req("PUT /partner/credit-rate").by(partner_admin(p)).json(body)).await.ok(200);
    }

    /// Partner `p` re-bills `w` for voice minutes at `rate` points a minute.
    pub(crate) async fn rebill(&self, p: &str, w: &str, rate: &str) -> super::Resp {
        let body = json!({ "enabled": true, "rates": { VOICE: rate } });
        self.call(req("PUT /partner/workspaces/{id}/rebilling").param("id", w).by(partner_admin(p)).json(body)).await
    }

    /// The platform reports `quantity` voice minutes of `w` as event `event_id`.
    /// A 409 (the wallet kept moving under concurrent writers; nothing was written) is sent
    /// again with the same event id, as the platform does, at most a few times.
    pub(crate) async fn spend(&self, w: &str, quantity: &str, event_id: &str) -> super::Resp {
        let body = json!({ "workspace_id": w, "meter": VOICE, "quantity": quantity, "event_id": event_id });
        let mut r = self.call(req("POST /platform/usage").by(platform()).json(body.clone())).await;
        for _ in 1..5 {
            if r.status != 409 {
                break;
            }
            r = self.call(req("POST /platform/usage").by(platform()).json(body.clone())).await;
        }
        r
    }

    pub(crate) async fn access(&self, w: &str) -> super::Resp {
        self.call(req("GET /platform/workspaces/{id}/access").param("id", w).query("meter", VOICE).by(platform())).await
    }

    pub(crate) async fn partner_wallet(&self, p: &str) -> Value {
        self.call(req("GET /partner/wallet").by(partner_admin(p)).query("limit", "100")).await.ok(200)
    }

    /// The fold, then the charging pass its refill request sets off (charge-refills, which the
    /// table's stream invokes); a charge that failed is left to what the test checks.
    pub(crate) async fn fold(&self, p: &str) -> billing::FoldRun {
        let run = self.billing.fold_partner(&partner_id(p)).await.expect("the fold runs");
        self.charge_refills().await;
        run
    }

    pub(crate) async fn verify_partner(&self, p: &str) -> u64 {
        self.billing.store.verify(&WalletId::Partner(partner_id(p))).await.expect("the partner ledger adds up").entries
    }

    pub(crate) async fn set_billing(&self, p: &str, mode: &str) {
        let body = json!({ "mode": mode });
        self.call(req("PUT /platform/partners/{id}/billing").param("id", p).by(platform()).json(body)).await.ok(200);
    }

    pub(crate) async fn credit_partner(&self, p: &str, amount: &str) -> Value {
        let body = json!({ "amount": amount, "reason": "invoice paid" });
        self.call(req("POST /platform/partners/{id}/wallet/adjustments").param("id", p).by(platform()).json(body))
            .await
            .ok(201)
    }
}

/// Both wallets charged, to the cent: three calls of 10, 0.5 and 2.25 minutes.
async fn voice_minutes_are_charged_to_both_wallets<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.point_price(P, "0.50").await;
    let set = api.rebill(P, W, "0.15").await.ok(200);
    assert_eq!(set, json!({ "workspace_id": W, "rebilling": { "enabled": true, "rates": { VOICE: "0.15" } } }));
    api.fund(P, W, "10").await;

    let first = api.spend(W, "10", "call-1").await.ok(200);
    assert_eq!(
        first,
        json!({
            "event_id": "call-1",
            "workspace_id": W,
            "meter": VOICE,
            "quantity": "10",
            "wholesale": { "amount": "0.70", "currency": "usd" },
            "rebilled": true,
            "workspace_charge": { "rate": "0.15", "points": "1.50", "balance": "8.50", "ledger_entry": "ws:ws-acme-1:2" },
        })
    );
    let half = api.spend(W, "0.5", "call-2").await.ok(200);
    assert_eq!(half["wholesale"]["amount"], "0.035");
    assert_eq!(half["workspace_charge"]["points"], "0.075");
    let third = api.spend(W, "2.25", "call-3").await.ok(200);
    assert_eq!(
        (&third["wholesale"]["amount"], &third["workspace_charge"]["points"]),
        (&json!("0.1575"), &json!("0.3375"))
    );
    assert_eq!(api.balance(P, W).await, "8.0875");
    let ledger = api.ledger(P, W).await;
    assert_eq!(ledger[0]["kind"], "usage");
    assert_eq!(
        ledger[0]["detail"],
        json!({ "meter": VOICE, "quantity": "2.25", "rate": "0.15", "event_id": "call-3" })
    );
    assert_eq!(api.verify(W).await, 4);
    // Usage stays out of the partner's cross-workspace ledger (its index would be one hot
    // partition); the workspace's own ledger, read through the partner, has it.
    let across = api.call(req("GET /partner/ledger").by(partner_admin(P)).query("limit", "100")).await.ok(200);
    assert!(across["data"].as_array().unwrap().iter().all(|e| e["kind"] != "usage"), "{across}");
    let one = req("GET /partner/ledger").by(partner_admin(P)).query("workspace_id", W).query("limit", "100");
    let one = api.call(one).await.ok(200);
    assert_eq!(one["data"].as_array().unwrap().iter().filter(|e| e["kind"] == "usage").count(), 3);

    // The partner's wallet moves only when the fold runs: one entry for the three charges.
    assert_eq!(api.partner_wallet(P).await["balance"], "0.00");
    assert_eq!(api.billing.unfolded(&partner_id(P)).await.unwrap().len(), 3);
    let run = api.fold(P).await;
    assert_eq!((run.batches, run.charges), (1, 3));
    let wallet = api.partner_wallet(P).await;
    assert_eq!(
        (&wallet["balance"], &wallet["currency"], &wallet["mode"]),
        (&json!("-0.8925"), &json!("usd"), &json!("postpaid"))
    );
    let entries = wallet["ledger"]["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["kind"], "wholesale_charges");
    assert_eq!(entries[0]["amount"], "-0.8925");
    assert_eq!(entries[0]["actor"], json!({ "type": "system", "id": "usage-fold" }));
    assert_eq!(
        entries[0]["detail"],
        json!({ "charges": 3, "lines": [
            { "workspace_id": W, "source": "usage:voice_minutes", "charges": 3, "quantity": "12.75", "amount": "0.8925" }
        ] })
    );
    assert_eq!(api.verify_partner(P).await, 1);
    // Nothing is left, and a second fold finds nothing.
    assert!(api.billing.unfolded(&partner_id(P)).await.unwrap().is_empty());
    assert_eq!(api.fold(P).await.batches, 0);
    // The other partner paid nothing.
    assert_eq!(api.partner_wallet(Q).await["balance"], "0.00");
}

/// Without re-billing the workspace pays nothing: the partner pays the wholesale cost.
async fn without_rebilling_only_the_partner_pays<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "5").await;
    let r = api.spend(W, "3", "call-1").await.ok(200);
    assert_eq!((&r["rebilled"], &r["workspace_charge"]), (&json!(false), &Value::Null));
    assert_eq!(r["wholesale"]["amount"], "0.21");
    assert_eq!(api.balance(P, W).await, "5.00");
    assert_eq!(api.verify(W).await, 1, "no usage entry in the workspace's ledger");
    // Re-billing switched off again leaves the workspace out too.
    api.point_price(P, "0.50").await;
    api.rebill(P, W, "0.15").await.ok(200);
    let off = json!({ "enabled": false, "rates": { VOICE: "0.15" } });
    api.call(req("PUT /partner/workspaces/{id}/rebilling").param("id", W).by(partner_admin(P)).json(off)).await.ok(200);
    assert_eq!(api.spend(W, "1", "call-2").await.ok(200)["rebilled"], false);
    api.fold(P).await;
    assert_eq!(api.partner_wallet(P).await["balance"], "-0.28");
    // Access is the partner's business only: a postpaid partner in debt still lets it through.
    assert_eq!(api.access(W).await.ok(200), json!({ "allowed": true, "workspace_id": W, "meter": VOICE }));
}

/// 403 for each reason: the workspace's wallet at zero, a prepaid partner's at zero, paused.
async fn access_is_refused_at_zero_for_each_wallet<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.point_price(P, "0.50").await;
    api.rebill(P, W, "0.15").await.ok(200);
    api.access(W).await.err(403, "wallet_depleted", None);
    api.fund(P, W, "1.50").await;
    api.access(W).await.ok(200);
    // Exactly down to zero: refused at zero, not only below it.
    api.spend(W, "10", "call-1").await.ok(200);
    assert_eq!(api.balance(P, W).await, "0.00");
    api.access(W).await.err(403, "wallet_depleted", None);

    // The other partner is prepaid: its empty wallet refuses its (not re-billed) workspace.
    api.set_billing(Q, "prepaid").await;
    api.access(X).await.err(403, "partner_wallet_depleted", None);
    let credited = api.credit_partner(Q, "20").await;
    assert_eq!(credited["balance"], "20.00");
    api.access(X).await.ok(200);
    // 300 minutes x 0.07 = 21.00 owed: refused at once, before the fold moves it into the
    // wallet (at -1.00 then).
    api.spend(X, "300", "call-x").await.ok(200);
    api.access(X).await.err(403, "partner_wallet_depleted", None);
    api.fold(Q).await;
    assert_eq!(api.partner_wallet(Q).await["balance"], "-1.00");
    api.access(X).await.err(403, "partner_wallet_depleted", None);
    assert_eq!(api.verify_partner(Q).await, 2);

    // Paused comes first, whatever the wallets say.
    api.fund(P, W, "100").await;
    api.usage(W, 5, 1, 0).await.ok(200);
    api.access(W).await.err(403, "paused", None);
    api.usage(W, 1, 1, 0).await.ok(200);
    api.access(W).await.ok(200);
}

/// Usage that happened is recorded even past zero; a top-up brings access back.
async fn usage_goes_negative_and_a_top_up_recovers<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.point_price(P, "0.50").await;
    api.rebill(P, W, "0.15").await.ok(200);
    api.fund(P, W, "1").await;
    let r = api.spend(W, "20", "call-1").await.ok(200);
    assert_eq!(r["workspace_charge"]["balance"], "-2.00");
    api.access(W).await.err(403, "wallet_depleted", None);
    // The debit that took it to zero or below told the partner, once.
    let events = api.call(req("GET /partner/events").by(partner_admin(P))).await.ok(200);
    let low: Vec<_> = events["data"].as_array().unwrap().iter().filter(|e| e["type"] == "wallet.low_balance").collect();
    assert_eq!(low.len(), 1, "{events}");
    assert_eq!(
        low[0]["data"],
        json!({ "balance": "-2.00", "threshold": null, "ledger_entry": "ws:ws-acme-1:2", "usage_event_id": "call-1" })
    );
    api.spend(W, "1", "call-2").await.ok(200);
    let events = api.call(req("GET /partner/events").by(partner_admin(P))).await.ok(200);
    assert_eq!(events["data"].as_array().unwrap().iter().filter(|e| e["type"] == "wallet.low_balance").count(), 1);
    // A purchase with points is refused while the balance is negative.
    api.buy(P, W, "extra_bot", 1).await.err(402, "insufficient_points", None);
    api.fund(P, W, "2.15").await;
    assert_eq!(api.balance(P, W).await, "0.00");
    api.access(W).await.err(403, "wallet_depleted", None);
    api.fund(P, W, "0.01").await;
    api.access(W).await.ok(200);
    assert_eq!(api.verify(W).await, 5);
}

/// One event id is one usage: a retry is answered as the first time and charges nothing more;
/// the same id with another quantity is refused.
async fn a_usage_event_counts_once<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.point_price(P, "0.50").await;
    api.rebill(P, W, "0.15").await.ok(200);
    api.fund(P, W, "10").await;
    let first = api.spend(W, "2", "evt-1").await.ok(200);
    let retries = join_all((0..10).map(|_| api.spend(W, "2", "evt-1"))).await;
    for r in retries {
        assert_eq!(r.ok(200), first);
    }
    // "2.0" is the same quantity as "2".
    assert_eq!(api.spend(W, "2.0", "evt-1").await.ok(200), first);
    api.spend(W, "3", "evt-1").await.err(422, "idempotency_key_reused", None);
    assert_eq!(api.balance(P, W).await, "9.70");
    assert_eq!(api.verify(W).await, 2);
    api.fold(P).await;
    assert_eq!(api.partner_wallet(P).await["balance"], "-0.14");
    // The same event id in another workspace is another event.
    api.workspace(P, "ws-acme-2", "starter").await;
    api.spend("ws-acme-2", "2", "evt-1").await.ok(200);
    api.fold(P).await;
    assert_eq!(api.partner_wallet(P).await["balance"], "-0.28");
}

/// Folds racing with usage: every charge lands in the partner's wallet exactly once.
async fn a_fold_concurrent_with_usage_loses_and_doubles_nothing<T: Table>(api: Api<T>) {
    api.tenants().await;
    for i in 2..=4 {
        api.workspace(P, &format!("ws-acme-{i}"), "starter").await;
    }
    let events: Vec<(String, String)> =
        (0..120).map(|i| (format!("ws-acme-{}", i % 4 + 1), format!("e-{i}"))).collect();
    let usage = join_all(events.iter().map(|(w, e)| api.spend(w, "1.5", e)));
    let folds = join_all((0..6).map(|_| async {
        let mut runs = Vec::new();
        for _ in 0..5 {
            runs.push(api.fold(P).await);
            tokio::task::yield_now().await;
        }
        runs
    }));
    let (answers, runs) = tokio::join!(usage, folds);
    assert!(answers.into_iter().all(|r| r.status == 200));
    let during: u32 = runs.iter().flatten().map(|r| r.charges).sum();
    let last = api.fold(P).await;
    assert_eq!(during + last.charges, 120, "every charge folded once (during the race: {during})");
    assert!(api.billing.unfolded(&partner_id(P)).await.unwrap().is_empty());
    // 120 x 1.5 minutes x 0.07 = 12.60.
    assert_eq!(api.partner_wallet(P).await["balance"], "-12.60");
    let entries = api.verify_partner(P).await;
    assert!(entries >= 2, "the fold ran in several batches ({entries})");
    println!("fold concurrent with usage: 120 usage events, {entries} fold transactions, partner wallet -12.60");
}

/// A re-billing rate must be sold at or above the wholesale cost where points have a price.
async fn rebilling_rates_are_checked<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.point_price(P, "0.50").await;
    let before = api.state().await;
    // 0.13 points x 0.50 USD = 0.065 USD a minute, below 0.07.
    api.rebill(P, W, "0.13").await.invalid("rates.voice_minutes");
    api.rebill(P, W, "-1").await.invalid("rates.voice_minutes");
    api.rebill(P, W, "0.12345").await.invalid("rates.voice_minutes");
    let unknown = json!({ "enabled": true, "rates": { "sms": "1" } });
    let r = api.call(req("PUT /partner/workspaces/{id}/rebilling").param("id", W).by(partner_admin(P)).json(unknown));
    r.await.invalid("rates.sms");
    // Another partner's workspace is not found.
    api.rebill(P, X, "0.15").await.err(404, "not_found", None);
    assert_eq!(api.state().await, before, "nothing was written");
    // At the floor exactly: 0.14 x 0.50 = 0.07.
    api.rebill(P, W, "0.14").await.ok(200);
    // The partner default applies to new workspaces.
    let settings = json!({ "credit_billing": true, "grace_days": 0,
                           "default_rebilling": { "enabled": true, "rates": { VOICE: "0.20" } } });
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(settings)).await.ok(200);
    let low = json!({ "credit_billing": true, "grace_days": 0,
                      "default_rebilling": { "enabled": true, "rates": { VOICE: "0.10" } } });
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(low))
        .await
        .invalid("default_rebilling.rates.voice_minutes");
    api.workspace(P, "ws-acme-2", "starter").await;
    api.fund(P, "ws-acme-2", "1").await;
    let r = api.spend("ws-acme-2", "1", "call-1").await.ok(200);
    assert_eq!(r["workspace_charge"]["points"], "0.20");
}

/// Bad usage reports are refused with nothing written.
async fn bad_usage_is_refused<T: Table>(api: Api<T>) {
    api.tenants().await;
    let before = api.state().await;
    let send = |body: Value| api.call(req("POST /platform/usage").by(platform()).json(body));
    let ok = json!({ "workspace_id": W, "meter": VOICE, "quantity": "1", "event_id": "e-1" });
    for (field, value, param) in [
        ("quantity", json!("0"), "quantity"),
        ("quantity", json!(1.5), "quantity"),
        ("quantity", json!("1.23456"), "quantity"),
        ("meter", json!("sms"), "meter"),
        ("event_id", json!(""), "event_id"),
        ("event_id", json!("a b"), "event_id"),
    ] {
        let mut body = ok.clone();
        body[field] = value;
        send(body.clone()).await.invalid(param);
    }
    let mut unknown = ok.clone();
    unknown["workspace_id"] = json!("ws-nobody");
    send(unknown).await.err(404, "not_found", None);
    api.call(req("POST /platform/usage").by(workspace_admin(P, W)).json(ok.clone())).await.err(403, "forbidden", None);
    api.call(req("GET /platform/workspaces/{id}/access").param("id", W).by(platform())).await.invalid("meter");
    assert_eq!(api.state().await, before);
    assert!(api.billing.unfolded(&partner_id(P)).await.unwrap().is_empty());
}

/// An add-on costs its partner the cost price, prorated by the published rule, and a prepaid
/// partner with an empty wallet can't let its workspaces buy.
async fn addon_purchases_and_renewals_charge_the_partner_cost_price<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "100").await;
    // 15 April in a 1-30 April cycle: 15 days remain. Extra bot: 5.00 USD x 15/30 = 2.50.
    api.buy(P, W, "extra_bot", 1).await.ok(201);
    // Two extra members: 2 x 5.00 x 15/30 = 5.00.
    api.buy(P, W, "extra_member", 2).await.ok(201);
    api.fold(P).await;
    let wallet = api.partner_wallet(P).await;
    assert_eq!(wallet["balance"], "-7.50");
    let lines = &wallet["ledger"]["data"][0]["detail"]["lines"];
    assert_eq!(
        lines,
        &json!([
            { "workspace_id": W, "source": "addon_purchase:extra_bot", "charges": 1, "quantity": null, "amount": "2.50" },
            { "workspace_id": W, "source": "addon_purchase:extra_member", "charges": 1, "quantity": null, "amount": "5.00" },
        ])
    );
    // The renewal on 1 May charges the whole month: 5.00 + 2 x 5.00.
    api.set_clock(time::macros::datetime!(2026-05-01 06:00 UTC));
    api.billing.renew_workspace(&domain::WorkspaceId::parse(W).unwrap()).await.unwrap();
    api.fold(P).await;
    assert_eq!(api.partner_wallet(P).await["balance"], "-22.50");
    assert_eq!(api.verify_partner(P).await, 2);

    // Prepaid and empty: the workspace's purchase is refused, nothing written.
    api.set_billing(Q, "prepaid").await;
    api.fund(Q, X, "100").await;
    let before = api.state().await;
    api.buy(Q, X, "extra_bot", 1).await.err(403, "partner_wallet_depleted", None);
    assert_eq!(api.state().await, before);
    api.credit_partner(Q, "1").await;
    api.buy(Q, X, "extra_bot", 1).await.ok(201);
}

api_suite!(
    voice_minutes_are_charged_to_both_wallets,
    without_rebilling_only_the_partner_pays,
    access_is_refused_at_zero_for_each_wallet,
    usage_goes_negative_and_a_top_up_recovers,
    a_usage_event_counts_once,
    a_fold_concurrent_with_usage_loses_and_doubles_nothing,
    rebilling_rates_are_checked,
    bad_usage_is_refused,
    addon_purchases_and_renewals_charge_the_partner_cost_price,
);

//! Auto top-up at renewal: the card saved at checkout is charged once for a shortfall, declines
//! wait an hour, three in a row switch it off (the add-ons then lapse and the workspace pauses),
//! and a crash between the charge and the renewal never charges twice.

use billing::{RenewalLimits, RenewalRun};
use domain::WorkspaceId;
use serde_json::{Value, json};
use store::memory::MemoryTable;
use store::table::TableError;
use store::{Table, keys};
use stripe_fake::NextPaymentIntent;
use time::macros::datetime;

use integration_tests::{Call, Fault, FaultyTable};

use super::checkout::{events_of, session};
use super::{Api, P, W, partner_admin, req, workspace_admin, workspace_member};

/// A renewal run and the charging pass its requests set off (charge-refills), counted as one
/// run: a renewal that waited for its auto top-up counts as what the pass's renewal came to.
pub(crate) async fn run<T: Table>(api: &Api<T>) -> RenewalRun {
    let mut run = api.billing.renew_due(|| false, RenewalLimits::default()).await.unwrap();
    let charged = api.charge_refills().await;
    assert_eq!(charged.errors, 0, "{charged:?}");
    run.awaiting_topup -= charged.renewed + charged.in_grace + charged.lapsed;
    run.renewed += charged.renewed;
    run.in_grace += charged.in_grace;
    run.lapsed += charged.lapsed;
    run
}

/// P sells a small option (1.00 USD for 10 points) with `grace_days`; W pays for one through
/// Checkout (which saves its card, and credits 10 points), then buys two extra bots on 15 April
/// (10.00 prorated): balance 0, and May's renewal needs 20.00. Returns the option id.
pub(crate) async fn with_saved_card<T: Table>(api: &Api<T>, grace_days: u32) -> String {
    api.partner(P, true).await;
    api.workspace(P, W, "starter").await;
    let settings = json!({
        "credit_billing": true, "success_url": "https://agency.example/ok", "cancel_url": "https://agency.example/back",
        "grace_days": grace_days,
    });
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(settings)).await.ok(200);
    let options = json!({ "options": [{ "label": "Small", "currency": "usd", "amount_minor": 100, "points": "10" }] });
    let saved = api.call(req("PUT /partner/topup-options").by(partner_admin(P)).json(options)).await.ok(200);
    let option = saved["data"][0]["id"].as_str().unwrap().to_owned();
    let id = session(api, P, W, &option).await;
    api.stripe.pay(&id).await.unwrap();
    for (_, payload) in events_of(api, W) {
        api.deliver(&payload).await.ok(200);
    }
    assert_eq!(api.view(P, W).await["auto_topup"]["card_saved"], true);
    assert_eq!(api.buy(P, W, "extra_bot", 2).await.ok(201)["balance"], "0.00");
    option
}

pub(crate) async fn turn_on<T: Table>(api: &Api<T>, option: &str) -> Value {
    let body = json!({ "enabled": true, "topup_option_id": option });
    api.call(req("PUT /workspace/auto-topup").by(workspace_admin(P, W)).json(body)).await.ok(200)
}

/// PaymentIntents the workspace's renewals asked Stripe for (each attempt, retries included).
pub(crate) fn charge_requests<T>(api: &Api<T>) -> usize {
    api.stripe.requests().iter().filter(|r| r.operation.as_deref() == Some("payment_intents.create")).count()
}

/// Distinct charges asked for: requests under one idempotency key are one charge.
fn charges_asked<T>(api: &Api<T>) -> usize {
    let requests = api.stripe.requests();
    let keys: std::collections::BTreeSet<_> = requests
        .iter()
        .filter(|r| r.operation.as_deref() == Some("payment_intents.create"))
        .map(|r| r.idempotency_key.clone().expect("every charge carries an idempotency key"))
        .collect();
    keys.len()
}

async fn a_shortfall_is_charged_once_and_the_renewal_goes_on<T: Table>(api: Api<T>) {
    let option = with_saved_card(&api, 0).await;
    let on = turn_on(&api, &option).await;
    assert_eq!(
        (&on["enabled"], &on["topup_option_id"], &on["card_saved"]),
        (&json!(true), &json!(option), &json!(true))
    );
    api.set_clock(datetime!(2026-05-01 06:00 UTC));
    assert_eq!(run(&api).await, RenewalRun { renewed: 1, finished: true, ..Default::default() });
    // 20 points short: two of the option (one charge of 2.00), then the renewal of 20.
    assert_eq!(charge_requests(&api), 1);
    assert_eq!(api.balance(P, W).await, "0.00");
    let ledger = api.ledger(P, W).await;
    let kinds: Vec<_> = ledger.iter().map(|e| (e["kind"].as_str().unwrap(), e["amount"].as_str().unwrap())).collect();
    assert_eq!(kinds, [("renewal", "-20.00"), ("top_up", "20.00"), ("addon_purchase", "-10.00"), ("top_up", "10.00")]);
    let topup = &ledger[1];
    assert!(topup["detail"]["payment"].as_str().unwrap().starts_with("pi_"), "{topup}");
    assert_eq!((&topup["detail"]["amount"], &topup["actor"]["id"]), (&json!("2.00"), &json!("auto-topup")));
    // Stripe's own word on that payment credits nothing more.
    let succeeded = api
        .stripe
        .events()
        .into_iter()
        .filter(|e| e.type_ == "payment_intent.succeeded")
        .find(|e| e.payload.contains("\"auto_topup\""))
        .expect("the off-session payment's event");
    assert_eq!(api.deliver(&succeeded.payload).await.ok(200)["outcome"], "already_credited");
    assert_eq!(api.balance(P, W).await, "0.00");
    assert_eq!(api.verify(W).await, 4);
    let view = api.view(P, W).await["auto_topup"].clone();
    assert_eq!((&view["consecutive_failures"], &view["last_failure"]), (&json!(0), &Value::Null));
}

/// An option the platform's floor has overtaken since the partner saved it is not charged
/// off-session either: the attempt fails with its reason (and counts towards switching auto
/// top-up off) until the partner prices it at or above the floor.
async fn an_option_under_a_raised_floor_is_not_charged<T: Table>(api: Api<T>) {
    let option = with_saved_card(&api, 1).await;
    turn_on(&api, &option).await;
    // 1.00 USD for 10 points is 0.10 a point: under a floor of 0.12.
    let terms = json!({ "wholesale_floors": { "usd": "0.12" }, "billing_mode": "postpaid" });
    api.call(req("PUT /platform/partners/{id}/terms").param("id", P).by(super::platform()).json(terms)).await.ok(200);
    api.set_clock(datetime!(2026-05-01 06:00 UTC));
    assert_eq!(run(&api).await, RenewalRun { in_grace: 1, finished: true, ..Default::default() });
    assert_eq!(charge_requests(&api), 0);
    assert_eq!(api.balance(P, W).await, "0.00");
    let seen = api.view(P, W).await["auto_topup"].clone();
    assert_eq!(
        (&seen["last_failure"]["code"], &seen["consecutive_failures"]),
        (&json!("topup_option_below_floor"), &json!(1))
    );
    // Priced at the floor (1.20 for 10 points), the next attempt an hour later is charged.
    let options = json!({ "options": [{ "id": option, "label": "Small", "currency": "usd", "amount_minor": 120, "points": "10" }] });
    api.call(req("PUT /partner/topup-options").by(partner_admin(P)).json(options)).await.ok(200);
    api.set_clock(datetime!(2026-05-01 07:00 UTC));
    assert_eq!(run(&api).await.renewed, 1);
    assert_eq!(charge_requests(&api), 1);
    assert_eq!(api.balance(P, W).await, "0.00");
}

async fn a_decline_waits_an_hour_then_succeeds<T: Table>(api: Api<T>) {
    let option = with_saved_card(&api, 1).await;
    turn_on(&api, &option).await;
    api.stripe.next_payment_intents(NextPaymentIntent::Decline("insufficient_funds".into()), 1);
    api.set_clock(datetime!(2026-05-01 06:00 UTC));
    assert_eq!(run(&api).await, RenewalRun { in_grace: 1, finished: true, ..Default::default() });
    let seen = api.call(req("GET /workspace").by(workspace_member(P, W))).await.ok(200)["auto_topup"].clone();
    assert_eq!(seen["last_failure"]["code"], "insufficient_funds");
    assert_eq!((&seen["consecutive_failures"], &seen["enabled"]), (&json!(1), &json!(true)));
    assert_eq!(seen["next_attempt_after"], "2026-05-01T07:00:00Z");
    // The partner sees it too.
    let theirs = api.call(req("GET /partner/workspaces/{id}").param("id", W).by(partner_admin(P))).await.ok(200);
    assert_eq!(theirs["auto_topup"], seen);
    // Half an hour later: no new attempt.
    api.set_clock(datetime!(2026-05-01 06:30 UTC));
    assert_eq!(run(&api).await.in_grace, 1);
    assert_eq!(charge_requests(&api), 1);
    // An hour later: paid, renewed.
    api.set_clock(datetime!(2026-05-01 07:00 UTC));
    assert_eq!(run(&api).await.renewed, 1);
    assert_eq!(charge_requests(&api), 2);
    assert_eq!(api.balance(P, W).await, "0.00");
    assert_eq!(api.view(P, W).await["auto_topup"]["consecutive_failures"], 0);
}

async fn three_declines_switch_it_off_then_the_addons_lapse<T: Table>(api: Api<T>) {
    let option = with_saved_card(&api, 1).await;
    turn_on(&api, &option).await;
    api.usage(W, 3, 1, 1).await.ok(200);
    api.stripe.next_payment_intents(NextPaymentIntent::Decline("card_declined".into()), 2);
    api.stripe.next_payment_intents(NextPaymentIntent::AuthenticationRequired, 1);
    for hour in [6, 7, 8] {
        api.set_clock(datetime!(2026-05-01 00:00 UTC) + time::Duration::hours(hour));
        assert_eq!(run(&api).await.in_grace, 1, "{hour}:00");
    }
    assert_eq!(charge_requests(&api), 3);
    let seen = api.view(P, W).await["auto_topup"].clone();
    assert_eq!((&seen["enabled"], &seen["consecutive_failures"]), (&json!(false), &json!(3)));
    assert_eq!(seen["last_failure"]["code"], "authentication_required");
    assert!(seen["disabled_reason"].as_str().unwrap().contains("3 failed attempts"), "{seen}");
    // Off: no more attempts, however long it waits.
    api.set_clock(datetime!(2026-05-01 12:00 UTC));
    run(&api).await;
    assert_eq!(charge_requests(&api), 3);
    // The grace day ends: both bots lapse, and 3 bots on a 1-bot plan pause the workspace.
    api.set_clock(datetime!(2026-05-02 06:00 UTC));
    assert_eq!(run(&api).await.lapsed, 1);
    let view = api.view(P, W).await;
    assert_eq!((&view["status"], &view["exceeded"]), (&json!("paused"), &json!(["bots"])));
    assert_eq!(api.ledger(P, W).await[0]["kind"], "lapse");
    // Turning it on again starts the count over.
    let on = turn_on(&api, &option).await;
    assert_eq!(
        (&on["enabled"], &on["consecutive_failures"], &on["disabled_reason"]),
        (&json!(true), &json!(0), &Value::Null)
    );
}

async fn settings_are_checked<T: Table>(api: Api<T>) {
    api.tenants().await;
    let put = |body: Value| req("PUT /workspace/auto-topup").by(workspace_admin(P, W)).json(body);
    let before = api.state().await;
    // No card saved yet; no option; an option the partner doesn't sell; an option with "off".
    let options = json!({ "options": [{ "label": "Small", "currency": "usd", "amount_minor": 100, "points": "10" }] });
    let saved = api.call(req("PUT /partner/topup-options").by(partner_admin(P)).json(options)).await.ok(200);
    let option = saved["data"][0]["id"].as_str().unwrap().to_owned();
    let before_put = api.state().await;
    assert_ne!(before, before_put);
    api.call(put(json!({ "enabled": true, "topup_option_id": option }))).await.invalid("enabled");
    api.call(put(json!({ "enabled": true }))).await.invalid("topup_option_id");
    api.call(put(json!({ "enabled": true, "topup_option_id": "to_nope" }))).await.invalid("topup_option_id");
    api.call(put(json!({ "enabled": false, "topup_option_id": option }))).await.invalid("topup_option_id");
    api.call(req("PUT /workspace/auto-topup").by(workspace_member(P, W)).json(json!({ "enabled": false }))).await.err(
        403,
        "forbidden",
        None,
    );
    assert_eq!(api.state().await, before_put, "nothing written");
    // Off is always allowed.
    let off = api.call(put(json!({ "enabled": false }))).await.ok(200);
    assert_eq!((&off["enabled"], &off["card_saved"]), (&json!(false), &json!(false)));
}

/// The crediting transaction after the charge fails (the process dies there): the next run
/// asks Stripe again under the same key, gets the same payment, credits it once and renews.
#[tokio::test]
async fn a_crash_between_the_charge_and_the_renewal_never_charges_twice() {
    let api = Api::over(FaultyTable::new(MemoryTable::new())).await;
    let option = with_saved_card(&api, 0).await;
    turn_on(&api, &option).await;
    api.set_clock(datetime!(2026-05-01 06:00 UTC));
    // The renewal asks for its top-up, the pass takes the request, the attempt is recorded and
    // the card charged; then the transaction that credits it (and the renewal) never happens.
    let table = api.billing.store.table();
    for _ in 0..3 {
        table.inject(Call::Transact, Fault::Pass);
    }
    table.inject(Call::Transact, Fault::Before(TableError::fatal("the process died")));
    let asked = api.billing.renew_due(|| false, RenewalLimits::default()).await.unwrap();
    assert_eq!(asked, RenewalRun { awaiting_topup: 1, finished: true, ..Default::default() });
    let crashed = api.charge_refills().await;
    assert_eq!((crashed.taken, crashed.errors), (0, 1), "{crashed:?}");
    assert_eq!(table.pending(), 0);
    assert_eq!(api.balance(P, W).await, "0.00", "nothing credited yet");
    let account = api.account(P).await;
    assert_eq!(api.stripe.charges(Some(&account)).len(), 2, "the checkout and the top-up");
    // Within the minutes an attempt is left to the call charging it, the renewal waits.
    let waiting = api.billing.renew_due(|| false, RenewalLimits::default()).await.unwrap();
    assert_eq!(waiting.awaiting_topup, 1);
    assert_eq!(api.charge_refills().await.taken, 0, "nothing asked");
    api.set_clock(datetime!(2026-05-01 06:05 UTC));
    // The next run: the same attempt, the same payment, one credit, the renewal.
    assert_eq!(run(&api).await.renewed, 1);
    assert_eq!(api.stripe.charges(Some(&account)).len(), 2, "no second charge");
    assert_eq!(charge_requests(&api), 2, "asked twice, under one key");
    assert_eq!(api.balance(P, W).await, "0.00");
    assert_eq!(api.verify(W).await, 4);
}

/// Threshold refill: W (with a saved card, 10 points) is re-billed 0.15 points a voice minute
/// and refills below 5 points with the Small option (10 points for 1.00 USD).
pub(crate) async fn with_a_refill<T: Table>(api: &Api<T>, cap_minor: Option<i64>) -> String {
    let option = with_saved_card(api, 0).await;
    api.fund(P, W, "10").await;
    let rate = json!({ "currency": "usd", "price_per_point": "0.50" });
    api.call(req("PUT /partner/credit-rate").by(partner_admin(P)).json(rate)).await.ok(200);
    let rebill = json!({ "enabled": true, "rates": { "voice_minutes": "0.15" } });
    api.call(req("PUT /partner/workspaces/{id}/rebilling").param("id", W).by(partner_admin(P)).json(rebill))
        .await
        .ok(200);
    let mut body = json!({ "enabled": true, "topup_option_id": option, "threshold": "5" });
    if let Some(cap) = cap_minor {
        body["monthly_cap_minor"] = json!(cap);
    }
    let on = api.call(req("PUT /workspace/auto-topup").by(workspace_admin(P, W)).json(body)).await.ok(200);
    assert_eq!(on["threshold"], "5.00");
    option
}

/// Most attempts at one usage event: a 409 (the wallet kept moving under 50 writers; nothing was
/// written) is sent again with the same event id, as the platform does.
const SEND_ATTEMPTS: usize = 5;

async fn report<T: Table>(api: &Api<T>, event_id: String) -> super::Resp {
    let body = json!({ "workspace_id": W, "meter": "voice_minutes", "quantity": "1", "event_id": event_id });
    let mut r = api.call(req("POST /platform/usage").by(super::platform()).json(body.clone())).await;
    for _ in 1..SEND_ATTEMPTS {
        if r.status != 409 {
            break;
        }
        r = api.call(req("POST /platform/usage").by(super::platform()).json(body.clone())).await;
    }
    r
}

/// A minute reported, then the charging pass its refill request sets off (the table's stream
/// invokes charge-refills after each change), as the deployed stack does them.
async fn spend<T: Table>(api: &Api<T>, event_id: String) -> super::Resp {
    let r = report(api, event_id).await;
    let charged = api.charge_refills().await;
    assert_eq!(charged.errors, 0, "{charged:?}");
    r
}

/// 50 usage events at once take the balance from 10 down through the threshold: exactly one
/// refill is charged and credited (10 - 50 x 0.15 + 10 = 12.50; a second one would make 22.50).
async fn a_threshold_refill_fires_once_under_concurrent_usage<T: Table>(api: Api<T>) {
    with_a_refill(&api, None).await;
    let answers = billing::join_all((0..50).map(|i| spend(&api, format!("call-{i}")))).await;
    assert!(answers.iter().all(|r| r.status == 200), "{answers:?}");
    // Counted by idempotency key: on a loaded machine the client's short test timeout may send
    // the one charge twice under its key, which Stripe answers once.
    assert_eq!(charges_asked(&api), 1, "one refill, asked for once");
    assert_eq!(api.balance(P, W).await, "12.50");
    let ledger = api.ledger(P, W).await;
    let refills: Vec<_> = ledger.iter().filter(|e| e["kind"] == "top_up" && e["detail"]["amount"] == "1.00").collect();
    assert_eq!(refills.len(), 2, "the checkout's and the one refill: {refills:?}");
    assert_eq!(ledger.iter().filter(|e| e["kind"] == "usage").count(), 50);
    assert_eq!(api.view(P, W).await["auto_topup"]["payment_pending"], false);
    // The checkout, the purchase, the funding, 50 calls and one refill.
    assert_eq!(api.verify(W).await, 3 + 50 + 1);
    // One crossing under the threshold, one event for the partner, whatever the race.
    let events = api.call(req("GET /partner/events").by(partner_admin(P)).query("limit", "100")).await.ok(200);
    let low: Vec<_> = events["data"].as_array().unwrap().iter().filter(|e| e["type"] == "wallet.low_balance").collect();
    assert_eq!(low.len(), 1, "{events}");
    assert_eq!(low[0]["data"]["threshold"], "5.00");
}

/// A debit under the threshold asks for a refill; before the charging pass takes the request,
/// the wallet is topped up another way. The pass reads the wallet again and charges nothing.
async fn a_refill_topped_up_meanwhile_is_not_charged<T: Table>(api: Api<T>) {
    with_a_refill(&api, None).await;
    // 10 - 34 x 0.15 = 4.90: under 5.
    for i in 0..34 {
        report(&api, format!("call-{i}")).await.ok(200);
    }
    api.fund(P, W, "10").await;
    let charged = api.charge_refills().await;
    assert_eq!((charged.taken, charged.not_tried), (1, 1), "{charged:?}");
    assert_eq!(charges_asked(&api), 0, "nothing charged");
    assert_eq!(api.balance(P, W).await, "14.90");
    assert_eq!(api.charge_refills().await.taken, 0, "the request is gone");
}

/// A monthly cap of one charge: the second time the balance drops below the threshold in the
/// month, nothing is charged; the next month, a refill goes through again.
async fn a_monthly_cap_holds_refills<T: Table>(api: Api<T>) {
    with_a_refill(&api, Some(100)).await;
    for i in 0..34 {
        spend(&api, format!("a-{i}")).await.ok(200);
    }
    // 10 - 34 x 0.15 = 4.90: below 5, one refill of 10.
    assert_eq!((charge_requests(&api), api.balance(P, W).await), (1, "14.90".to_owned()));
    for i in 0..66 {
        spend(&api, format!("b-{i}")).await.ok(200);
    }
    // 14.90 - 9.90 = 5.00, then below: the cap (1.00 USD, spent) holds the refill.
    spend(&api, "b-last".into()).await.ok(200);
    assert_eq!((charge_requests(&api), api.balance(P, W).await), (1, "4.85".to_owned()));
    let seen = api.view(P, W).await["auto_topup"].clone();
    assert_eq!(seen["monthly_cap"], json!({ "amount_minor": 100, "currency": "usd" }));
    assert_eq!(seen["spent_this_month"], json!({ "amount_minor": 100, "currency": "usd" }));
    assert_eq!(seen["last_failure"], Value::Null, "a cap is not a failure");
    api.set_clock(datetime!(2026-05-01 00:10 UTC));
    spend(&api, "c-1".into()).await.ok(200);
    assert_eq!((charge_requests(&api), api.balance(P, W).await), (2, "14.70".to_owned()));
}

/// A declined refill waits an hour, like any auto top-up.
async fn a_declined_refill_waits_an_hour<T: Table>(api: Api<T>) {
    with_a_refill(&api, None).await;
    api.stripe.next_payment_intents(NextPaymentIntent::Decline("insufficient_funds".into()), 1);
    for i in 0..40 {
        spend(&api, format!("a-{i}")).await.ok(200);
    }
    assert_eq!(charge_requests(&api), 1, "declined once, not asked again within the hour");
    assert_eq!(api.balance(P, W).await, "4.00");
    assert_eq!(api.view(P, W).await["auto_topup"]["last_failure"]["code"], "insufficient_funds");
    api.set_clock(super::T0 + time::Duration::minutes(61));
    spend(&api, "b-1".into()).await.ok(200);
    assert_eq!((charge_requests(&api), api.balance(P, W).await), (2, "13.85".to_owned()));
}

/// Refill settings are checked: a threshold of zero, a cap below one charge, either while off.
async fn refill_settings_are_checked<T: Table>(api: Api<T>) {
    let option = with_saved_card(&api, 0).await;
    let put = |body: Value| api.call(req("PUT /workspace/auto-topup").by(workspace_admin(P, W)).json(body));
    put(json!({ "enabled": true, "topup_option_id": option, "threshold": "0" })).await.invalid("threshold");
    put(json!({ "enabled": true, "topup_option_id": option, "threshold": "-1" })).await.invalid("threshold");
    put(json!({ "enabled": true, "topup_option_id": option, "monthly_cap_minor": 99 }))
        .await
        .invalid("monthly_cap_minor");
    put(json!({ "enabled": false, "threshold": "5" })).await.invalid("threshold");
    put(json!({ "enabled": false, "monthly_cap_minor": 500 })).await.invalid("monthly_cap_minor");
    let on = put(json!({ "enabled": true, "topup_option_id": option, "threshold": "5", "monthly_cap_minor": 500 }));
    let on = on.await.ok(200);
    assert_eq!(
        (&on["monthly_cap"], &on["spent_this_month"]),
        (&json!({ "amount_minor": 500, "currency": "usd" }), &json!({ "amount_minor": 0, "currency": "usd" }))
    );
}

/// Three declined refills, an hour apart, switch auto top-up off: the partner is told once (an
/// `autotopup.disabled` naming the workspace), and later debits under the threshold charge
/// nothing.
async fn three_declined_refills_switch_it_off<T: Table>(api: Api<T>) {
    with_a_refill(&api, None).await;
    api.stripe.next_payment_intents(NextPaymentIntent::Decline("card_declined".into()), 3);
    for i in 0..34 {
        spend(&api, format!("a-{i}")).await.ok(200);
    }
    for hour in 1..=3 {
        api.set_clock(super::T0 + time::Duration::minutes(61 * hour));
        spend(&api, format!("b-{hour}")).await.ok(200);
    }
    assert_eq!(charge_requests(&api), 3, "one a decline, an hour apart");
    let seen = api.view(P, W).await["auto_topup"].clone();
    assert_eq!((&seen["enabled"], &seen["consecutive_failures"]), (&json!(false), &json!(3)), "{seen}");
    assert!(seen["disabled_reason"].as_str().unwrap().contains("3 failed attempts"), "{seen}");
    api.set_clock(super::T0 + time::Duration::hours(5));
    spend(&api, "c-1".into()).await.ok(200);
    assert_eq!(charge_requests(&api), 3, "off: nothing charged");
    assert_eq!(api.balance(P, W).await, "4.30", "10 - 38 x 0.15, nothing refilled");
    let events = api.call(req("GET /partner/events").by(partner_admin(P)).query("limit", "100")).await.ok(200);
    let of = |t: &str| -> Vec<Value> {
        events["data"].as_array().unwrap().iter().filter(|e| e["type"] == t).cloned().collect()
    };
    assert_eq!(of("topup.failed").len(), 3, "{events}");
    let disabled = of("autotopup.disabled");
    assert_eq!(disabled.len(), 1, "{events}");
    assert_eq!(disabled[0]["workspace_id"], W);
}

/// A workspace whose customer record was stored before it moved to the workspace's one key (under
/// a key of its account; moved there here): its saved card still counts, auto top-up turns on
/// with it, and the next checkout reuses the customer and moves the record to the key.
async fn a_customer_kept_under_its_account_is_found_and_moved<T: Table>(api: Api<T>) {
    let option = with_saved_card(&api, 0).await;
    let w = WorkspaceId::parse(W).unwrap();
    let table = api.billing.store.table();
    let record = table.get(&keys::workspace_customer(&w)).await.unwrap().expect("the checkout stored it");
    let account = record.str("account").unwrap().to_owned();
    let earlier = keys::earlier_workspace_customer(&w, &stripe_gateway::ids::AccountId::parse(&account).unwrap());
    let mut moved = record.clone();
    moved.0.extend(store::Item::new(&earlier, "stripe_customer").0);
    let writes = vec![
        store::Write::Put { item: moved.clone(), condition: store::Condition::Always },
        store::Write::Delete { key: keys::workspace_customer(&w), condition: store::Condition::Always },
    ];
    table.transact(writes).await.unwrap();

    assert_eq!(api.view(P, W).await["auto_topup"]["card_saved"], true);
    assert_eq!(turn_on(&api, &option).await["enabled"], true);
    assert!(table.get(&keys::workspace_customer(&w)).await.unwrap().is_none(), "a read moves nothing");
    session(&api, P, W, &option).await;
    let at_key = table.get(&keys::workspace_customer(&w)).await.unwrap().expect("the checkout moved it");
    assert_eq!(
        (at_key.get("customer"), at_key.get("payment_method")),
        (record.get("customer"), record.get("payment_method"))
    );
    let customers = api.stripe.customers(Some(&account));
    assert_eq!(customers.iter().filter(|c| c["metadata"]["workspace_id"] == W).count(), 1, "no second customer");
}

api_suite!(
    a_customer_kept_under_its_account_is_found_and_moved,
    three_declined_refills_switch_it_off,
    a_threshold_refill_fires_once_under_concurrent_usage,
    a_refill_topped_up_meanwhile_is_not_charged,
    a_monthly_cap_holds_refills,
    a_declined_refill_waits_an_hour,
    refill_settings_are_checked,
    a_shortfall_is_charged_once_and_the_renewal_goes_on,
    a_decline_waits_an_hour_then_succeeds,
    an_option_under_a_raised_floor_is_not_charged,
    three_declines_switch_it_off_then_the_addons_lapse,
    settings_are_checked,
);

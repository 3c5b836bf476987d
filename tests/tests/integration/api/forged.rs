//! Credits from Stripe come only from what was stored before Stripe was asked. A PaymentIntent's
//! metadata is the payer's to write: a partner can make, on its own connected account, a
//! PaymentIntent that claims to be an auto top-up of its workspace for any number of points, and
//! Stripe then sends our webhook a genuine, signed event about it. Each credit path (workspace
//! checkout, auto top-up, partner wallet checkout, partner refill) is sent events with forged
//! metadata, a mismatched amount, a mismatched currency and an unknown attempt: each is answered
//! 200 `ignored` with nothing written, and the genuine event still credits exactly once.

use billing::{RenewalLimits, RenewalRun};
use serde_json::{Value, json};
use store::Table;
use stripe_fake::FaultKind;
use time::macros::datetime;

use super::autotopup::{charge_requests, turn_on, with_saved_card};
use super::checkout::{events_of, seller, session};
use super::partner_wallet::wallet_checkout;
use super::{Api, P, Q, Resp, W, X};

fn outcome(r: &Resp) -> &str {
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["outcome"].as_str().unwrap()
}

/// A signed `payment_intent.*` event as Stripe sends it about a PaymentIntent on `account`
/// (`None`: the platform's own), with the given amount, currency and metadata.
fn pi_event(t: &str, account: Option<&str>, pi: &str, amount_minor: i64, currency: &str, metadata: Value) -> String {
    let received = if t == "payment_intent.succeeded" { amount_minor } else { 0 };
    json!({
        "id": format!("evt_{:016x}", fastrand::u64(..)), "object": "event", "type": t, "livemode": false,
        "account": account, "api_version": "2026-09-30.endive", "created": 1_777_000_000,
        "data": { "object": {
            "id": pi, "object": "payment_intent", "created": 1_777_000_000,
            "status": if received > 0 { "succeeded" } else { "requires_payment_method" },
            "amount": amount_minor, "amount_received": received, "currency": currency,
            "customer": null, "payment_method": null, "setup_future_usage": null, "metadata": metadata,
        } }
    })
    .to_string()
}

/// `payload` with `edit` applied to its `data.object`, under a new event id.
fn edited(payload: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(payload).unwrap();
    edit(&mut v["data"]["object"]);
    v["id"] = json!(format!("evt_{:016x}", fastrand::u64(..)));
    v.to_string()
}

/// Each payload, delivered through `deliver`, is answered 200 `ignored` and writes nothing.
async fn all_ignored<T: Table>(api: &Api<T>, platform: bool, payloads: &[(&str, String)]) {
    let before = api.state().await;
    for (case, payload) in payloads {
        let r = if platform { api.deliver_platform(payload).await } else { api.deliver(payload).await };
        assert_eq!((r.status, r.body["outcome"].as_str()), (200, Some("ignored")), "{case}: {}", r.body);
    }
    assert_eq!(api.state().await, before, "nothing written");
}

/// The attack: P makes, on its own account, a 0.50 USD PaymentIntent that says it is
/// auto top-up attempt 1 of W for 5,000,000 points, with W's auto top-up off. Nothing is credited,
/// and neither is it with any other attempt number, nor on another partner's account, nor on the
/// platform endpoint; a forged failure records nothing either.
async fn a_forged_auto_topup_credits_nothing<T: Table>(api: Api<T>) {
    let option = with_saved_card(&api, 0).await;
    let account = api.account(P).await;
    api.partner(Q, true).await;
    let rival = api.account(Q).await;
    let forged = |attempt: &str| {
        json!({ "source": "auto_topup", "workspace_id": W, "partner_id": P, "points": "5000000",
                "topup_option_id": option, "attempt": attempt })
    };
    let succeeded = "payment_intent.succeeded";
    all_ignored(
        &api,
        false,
        &[
            ("attempt 1, forged", pi_event(succeeded, Some(&account), "pi_forged_1", 50, "usd", forged("1"))),
            ("attempt 0", pi_event(succeeded, Some(&account), "pi_forged_2", 50, "usd", forged("0"))),
            ("no attempt", {
                let mut m = forged("1");
                m.as_object_mut().unwrap().remove("attempt");
                pi_event(succeeded, Some(&account), "pi_forged_3", 50, "usd", m)
            }),
            ("another partner's account", pi_event(succeeded, Some(&rival), "pi_forged_4", 50, "usd", forged("1"))),
            (
                "a forged failure",
                pi_event("payment_intent.payment_failed", Some(&account), "pi_forged_5", 50, "usd", forged("1")),
            ),
        ],
    )
    .await;
    all_ignored(&api, true, &[("on the platform", pi_event(succeeded, None, "pi_forged_6", 50, "usd", forged("1")))])
        .await;
    assert_eq!(api.balance(P, W).await, "0.00");
    assert_eq!(api.view(P, W).await["auto_topup"]["last_failure"], Value::Null);
    assert_eq!(api.verify(W).await, 2, "the checkout's credit and the purchase");
}

/// W's renewal charges the card (2.00 USD for 20 points, attempt 1) and the answer is lost:
/// the attempt stays in flight. Events naming it with another amount, another currency or
/// another attempt number, and a forged failure, are ignored; Stripe's own event credits the
/// 20 points the attempt stored, once, and the next renewal charges nothing more.
async fn an_auto_topup_event_credits_only_its_stored_attempt<T: Table>(api: Api<T>) {
    let option = with_saved_card(&api, 0).await;
    turn_on(&api, &option).await;
    api.set_clock(datetime!(2026-05-01 06:00 UTC));
    // Every attempt of the call (under one key) loses its answer.
    api.stripe.fail_next("payment_intents.create", FaultKind::TimeoutAfter, 4, 1_000);
    let run = api.billing.renew_due(|| false, RenewalLimits::default()).await.unwrap();
    assert_eq!(run, RenewalRun { awaiting_topup: 1, finished: true, ..Default::default() });
    assert_eq!(api.charge_refills().await.errors, 1, "Stripe's answer lost");
    api.stripe.clear_faults();
    let asked = charge_requests(&api);
    let (_, genuine) = events_of(&api, W)
        .into_iter()
        .rfind(|(t, p)| t == "payment_intent.succeeded" && p.contains("\"auto_topup\""))
        .expect("the charge's event");
    let meta = |edit: fn(&mut Value)| edited(&genuine, |o| edit(&mut o["metadata"]));
    all_ignored(
        &api,
        false,
        &[
            (
                "forged points and amount",
                edited(&genuine, |o| {
                    o["metadata"]["points"] = json!("5000000");
                    o["amount"] = json!(50);
                    o["amount_received"] = json!(50);
                }),
            ),
            ("an amount not received", edited(&genuine, |o| o["amount_received"] = json!(199))),
            (
                "another amount",
                edited(&genuine, |o| {
                    o["amount"] = json!(100);
                    o["amount_received"] = json!(100);
                }),
            ),
            ("another currency", edited(&genuine, |o| o["currency"] = json!("eur"))),
            ("an unknown attempt", meta(|m| m["attempt"] = json!("2"))),
            ("an unknown workspace", meta(|m| m["workspace_id"] = json!("ws-nobody"))),
            ("a forged failure of another amount", {
                let failed = genuine.replace("payment_intent.succeeded", "payment_intent.payment_failed");
                edited(&failed, |o| o["amount"] = json!(50))
            }),
        ],
    )
    .await;
    assert_eq!(api.balance(P, W).await, "0.00");
    let pending = api.view(P, W).await["auto_topup"].clone();
    assert_eq!((&pending["last_failure"], &pending["consecutive_failures"]), (&Value::Null, &json!(0)));

    // Even with forged points in its metadata, the attempt's own 20 points are credited.
    let mut v: Value = serde_json::from_str(&genuine).unwrap();
    v["data"]["object"]["metadata"]["points"] = json!("5000000");
    let genuine = v.to_string();
    assert_eq!(outcome(&api.deliver(&genuine).await), "credited");
    assert_eq!(outcome(&api.deliver(&genuine).await), "already_credited");
    assert_eq!(api.balance(P, W).await, "20.00");
    let top_up = api.ledger(P, W).await[0].clone();
    assert_eq!(
        (&top_up["kind"], &top_up["amount"], &top_up["detail"]["amount"], &top_up["actor"]["type"]),
        (&json!("top_up"), &json!("20.00"), &json!("2.00"), &json!("stripe")),
        "{top_up}"
    );
    // The attempt is settled: the renewal takes the 20 points and charges nothing more.
    let run = api.billing.renew_due(|| false, RenewalLimits::default()).await.unwrap();
    assert_eq!(run.renewed, 1, "{run:?}");
    assert_eq!(charge_requests(&api), asked);
    assert_eq!(api.balance(P, W).await, "0.00");
    assert_eq!(api.verify(W).await, 4);
}

/// A workspace checkout (10.00 USD for 1,000 points): a session event of another session, or
/// that charged another amount or currency, credits nothing; the genuine one credits the 1,000
/// points the checkout stored, whatever its metadata says, once.
async fn a_checkout_credits_only_what_its_session_charged<T: Table>(api: Api<T>) {
    api.tenants().await;
    let option = seller(&api, P).await;
    let id = session(&api, P, W, &option).await;
    api.stripe.pay(&id).await.unwrap();
    let (_, completed) = events_of(&api, W).into_iter().rfind(|(t, _)| t == "checkout.session.completed").unwrap();
    let forged = |o: &mut Value| {
        o["metadata"]["points"] = json!("5000000");
        o["amount_total"] = json!(50);
    };
    all_ignored(
        &api,
        false,
        &[
            ("forged metadata and amount", edited(&completed, forged)),
            ("an unknown session", edited(&completed, |o| o["id"] = json!("cs_test_forged"))),
            ("another amount", edited(&completed, |o| o["amount_total"] = json!(999))),
            ("another currency", edited(&completed, |o| o["currency"] = json!("eur"))),
            ("no amount", edited(&completed, |o| o["amount_total"] = Value::Null)),
            ("async, another amount", {
                let later = completed.replace("checkout.session.completed", "checkout.session.async_payment_succeeded");
                edited(&later, |o| o["amount_total"] = json!(50))
            }),
        ],
    )
    .await;
    assert_eq!(api.balance(P, W).await, "0.00");
    // The metadata names another tenant's workspace: the wallet read with the checkout is only a
    // hint, and the checkout record's wallet is credited.
    let genuine = edited(&completed, |o| {
        o["metadata"]["points"] = json!("5000000");
        o["metadata"]["workspace_id"] = json!(X);
    });
    let rival = api.balance(Q, X).await;
    assert_eq!(outcome(&api.deliver(&genuine).await), "credited");
    assert_eq!(outcome(&api.deliver(&completed).await), "already_credited");
    assert_eq!(api.balance(P, W).await, "1000.00");
    assert_eq!(api.balance(Q, X).await, rival);
    assert_eq!(api.verify(W).await, 1);
}

/// A partner wallet checkout of 100.00 USD on the platform endpoint: the same rules.
async fn a_wallet_checkout_credits_only_what_its_session_charged<T: Table>(api: Api<T>) {
    api.tenants().await;
    let created = api.call(wallet_checkout(P, "100.00")).await.ok(201);
    let id = created["id"].as_str().unwrap().to_owned();
    api.stripe.pay(&id).await.unwrap();
    let completed = api.platform_event(P, "checkout.session.completed");
    let before = api.wallet_balance(P).await;
    all_ignored(
        &api,
        true,
        &[
            (
                "forged metadata and amount",
                edited(&completed, |o| {
                    o["metadata"]["points"] = json!("5000000");
                    o["amount_total"] = json!(50);
                }),
            ),
            ("an unknown session", edited(&completed, |o| o["id"] = json!("cs_test_forged"))),
            ("another amount", edited(&completed, |o| o["amount_total"] = json!(9_999))),
            ("another currency", edited(&completed, |o| o["currency"] = json!("eur"))),
        ],
    )
    .await;
    assert_eq!(api.wallet_balance(P).await, before);
    assert_eq!(outcome(&api.deliver_platform(&completed).await), "credited");
    assert_eq!(outcome(&api.deliver_platform(&completed).await), "already_credited");
    let paid: rust_decimal::Decimal = api.wallet_balance(P).await.parse().unwrap();
    assert_eq!(paid - before.parse::<rust_decimal::Decimal>().unwrap(), rust_decimal::Decimal::new(10_000, 2));
}

/// The partner refill path: with auto-refill off, a forged refill (on the platform endpoint, or
/// on the partner's own account on the Connect endpoint) credits nothing; with a refill of
/// 200.00 in flight (its answer lost), another amount, currency or attempt number credits
/// nothing, and Stripe's own event credits the 200.00 once.
async fn a_partner_refill_event_credits_only_its_stored_attempt<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.pay_into_wallet(P, "100.00").await;
    let account = api.account(P).await;
    let forged = json!({ "source": "partner_refill", "partner_id": P, "points": "5000000", "attempt": "1" });
    all_ignored(
        &api,
        true,
        &[
            (
                "no refill in flight",
                pi_event("payment_intent.succeeded", None, "pi_forged_1", 50, "usd", forged.clone()),
            ),
            (
                "a forged failure",
                pi_event("payment_intent.payment_failed", None, "pi_forged_2", 50, "usd", forged.clone()),
            ),
        ],
    )
    .await;
    all_ignored(
        &api,
        false,
        &[(
            "on a connected account",
            pi_event("payment_intent.succeeded", Some(&account), "pi_forged_3", 50, "usd", forged),
        )],
    )
    .await;
    assert_eq!(api.wallet_balance(P).await, "100.00");

    api.auto_refill(P, json!({ "enabled": true, "threshold": "50.00", "amount": "200.00" })).await.ok(200);
    api.stripe.fail_next("payment_intents.create", FaultKind::TimeoutAfter, 4, 1_000);
    api.spend(W, "800", "call-1").await.ok(200);
    api.fold(P).await;
    api.stripe.clear_faults();
    let asked = api.platform_charges();
    assert_eq!(api.wallet_balance(P).await, "44.00", "charged, the answer lost: nothing credited yet");
    let genuine = api
        .platform_events(P)
        .into_iter()
        .rfind(|(t, p)| t == "payment_intent.succeeded" && p.contains("\"partner_refill\""))
        .expect("the refill's event")
        .1;
    all_ignored(
        &api,
        true,
        &[
            (
                "forged points and amount",
                edited(&genuine, |o| {
                    o["metadata"]["points"] = json!("5000000");
                    o["amount"] = json!(50);
                    o["amount_received"] = json!(50);
                }),
            ),
            ("another amount", edited(&genuine, |o| o["amount_received"] = json!(19_999))),
            ("another currency", edited(&genuine, |o| o["currency"] = json!("eur"))),
            ("an unknown attempt", edited(&genuine, |o| o["metadata"]["attempt"] = json!("7"))),
            ("an unknown partner", edited(&genuine, |o| o["metadata"]["partner_id"] = json!("p-nobody"))),
        ],
    )
    .await;
    assert_eq!(api.wallet_balance(P).await, "44.00");
    assert_eq!(outcome(&api.deliver_platform(&genuine).await), "credited");
    assert_eq!(outcome(&api.deliver_platform(&genuine).await), "already_credited");
    assert_eq!(api.wallet_balance(P).await, "244.00");
    let refill = api.partner_wallet(P).await["auto_refill"].clone();
    assert_eq!((&refill["payment_pending"], &refill["consecutive_failures"]), (&json!(false), &json!(0)), "{refill}");
    assert_eq!(api.platform_charges(), asked);
    assert_eq!(api.verify_partner(P).await, 3, "the payment, the fold, the refill");
}

/// A refund of a payment we never credited, whose metadata names nothing of ours, is ignored
/// (nothing to take back from); one that names a workspace of the account's partner waits for
/// its credit.
async fn a_refund_of_an_unknown_payment_is_ignored<T: Table>(api: Api<T>) {
    api.tenants().await;
    let account = api.account(P).await;
    let charge = |metadata: Value| {
        json!({
            "id": format!("evt_{:016x}", fastrand::u64(..)), "object": "event", "type": "charge.refunded",
            "livemode": false, "created": 1_777_000_000, "account": account,
            "data": { "object": { "id": "ch_forged", "object": "charge", "payment_intent": "pi_forged",
                                  "amount": 50, "amount_refunded": 50, "currency": "usd", "metadata": metadata } }
        })
        .to_string()
    };
    all_ignored(
        &api,
        false,
        &[
            ("no metadata", charge(json!({}))),
            ("a workspace we don't have", charge(json!({ "source": "checkout", "workspace_id": "ws-nobody" }))),
        ],
    )
    .await;
    let r = api.deliver(&charge(json!({ "source": "checkout", "workspace_id": W }))).await;
    r.err(503, "retry_later", None);
}

api_suite!(
    a_forged_auto_topup_credits_nothing,
    an_auto_topup_event_credits_only_its_stored_attempt,
    a_checkout_credits_only_what_its_session_charged,
    a_wallet_checkout_credits_only_what_its_session_charged,
    a_partner_refill_event_credits_only_its_stored_attempt,
    a_refund_of_an_unknown_payment_is_ignored,
);

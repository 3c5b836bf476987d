//! Money in: a workspace pays through Stripe Checkout on its partner's connected account (the
//! fake), and Stripe's events (taken from the fake, signed, delivered to the webhook route) credit
//! the points exactly once, whatever their order and repetitions; refunds take back their share
//! (disputes: `disputes.rs`); a revoked account turns credit billing off.

use domain::{CheckoutId, CheckoutStatus, PartnerId, WalletId, WorkspaceId};
use serde_json::{Value, json};
use store::{Table, keys, records};
use stripe_fake::FaultKind;
use stripe_gateway::signature;
use time::OffsetDateTime;

use super::{Api, P, Q, Resp, W, X, partner_admin, req, workspace_admin, workspace_member};

const SUCCESS: &str = "https://agency.example/paid";
const CANCEL: &str = "https://agency.example/back";

/// P sells: return URLs, one option (10.00 USD for 1,000 points) and a rate (0.012 per point).
/// Returns the option's id.
pub(crate) async fn seller<T: Table>(api: &Api<T>, p: &str) -> String {
    let settings = json!({ "credit_billing": true, "success_url": SUCCESS, "cancel_url": CANCEL, "grace_days": 0 });
    api.call(req("PUT /partner/settings").by(partner_admin(p)).json(settings)).await.ok(200);
    let options =
        json!({ "options": [{ "label": "Pack", "currency": "usd", "amount_minor": 1000, "points": "1000" }] });
    let saved = api.call(req("PUT /partner/topup-options").by(partner_admin(p)).json(options)).await.ok(200);
    let rate = json!({ "currency": "usd", "price_per_point": "0.012" });
    api.call(req("PUT /partner/credit-rate").by(partner_admin(p)).json(rate)).await.ok(200);
    saved["data"][0]["id"].as_str().unwrap().to_owned()
}

pub(crate) fn checkout(p: &str, w: &str, body: Value) -> super::Req {
    req("POST /workspace/checkout").by(workspace_admin(p, w)).json(body)
}

/// Creates a checkout for the option and returns its session id.
pub(crate) async fn session<T: Table>(api: &Api<T>, p: &str, w: &str, option: &str) -> String {
    let created = api.call(checkout(p, w, json!({ "topup_option_id": option }))).await.ok(201);
    created["id"].as_str().unwrap().to_owned()
}

/// The fake's events about workspace `w`, oldest first: (type, payload).
pub(crate) fn events_of<T>(api: &Api<T>, w: &str) -> Vec<(String, String)> {
    api.stripe
        .events()
        .into_iter()
        .filter(|e| {
            let v: Value = serde_json::from_str(&e.payload).unwrap();
            v["data"]["object"]["metadata"]["workspace_id"] == w
        })
        .map(|e| (e.type_, e.payload))
        .collect()
}

pub(crate) fn of_type(events: &[(String, String)], t: &str) -> String {
    events.iter().find(|(ty, _)| ty == t).unwrap_or_else(|| panic!("no {t} event in {events:?}")).1.clone()
}

/// The same event with another type and id (what Stripe would send next for the same object).
fn retyped(payload: &str, t: &str) -> String {
    let mut v: Value = serde_json::from_str(payload).unwrap();
    v["type"] = json!(t);
    v["id"] = json!(format!("evt_{:016x}", fastrand::u64(..)));
    v.to_string()
}

async fn status<T: Table>(api: &Api<T>, session: &str) -> CheckoutStatus {
    let item = api.billing.store.get(&keys::checkout(&CheckoutId::parse(session).unwrap())).await.unwrap().unwrap();
    records::checkout_from(&item).unwrap().status
}

pub(crate) fn outcome(r: &Resp) -> &str {
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["outcome"].as_str().unwrap()
}

async fn a_paid_checkout_credits_its_points_once<T: Table>(api: Api<T>) {
    api.tenants().await;
    let option = seller(&api, P).await;
    let created = api.call(checkout(P, W, json!({ "topup_option_id": option }))).await.ok(201);
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        (&created["points"], &created["amount_major"], &created["currency"], &created["status"]),
        (&json!("1000.00"), &json!("10.00"), &json!("usd"), &json!("pending"))
    );
    assert!(created["url"].as_str().unwrap().ends_with(&format!("/pay/{id}")), "{created}");
    // The session is on P's own account, for W's customer, with the points in its metadata.
    let account = api.account(P).await;
    let on_stripe = api.stripe.session(id).expect("the session is on the fake");
    assert_eq!(api.stripe.sessions(Some(&account)).len(), 1);
    assert_eq!(on_stripe["metadata"]["points"], "1000.00", "{on_stripe}");
    assert_eq!(on_stripe["client_reference_id"], W);
    assert_eq!(on_stripe["success_url"], SUCCESS);
    assert_eq!(api.balance(P, W).await, "0.00", "nothing before Stripe says paid");

    api.stripe.pay(id).await.unwrap();
    let events = events_of(&api, W);
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["payment_intent.succeeded", "checkout.session.completed"]);
    assert_eq!(outcome(&api.deliver(&events[0].1).await), "card_saved");
    assert_eq!(outcome(&api.deliver(&events[1].1).await), "credited");
    assert_eq!(api.balance(P, W).await, "1000.00");
    // Every event again: nothing more.
    assert_eq!(outcome(&api.deliver(&events[0].1).await), "unchanged");
    assert_eq!(outcome(&api.deliver(&events[1].1).await), "already_credited");
    assert_eq!(api.balance(P, W).await, "1000.00");
    assert_eq!(status(&api, id).await, CheckoutStatus::Credited);
    let ledger = api.call(req("GET /workspace/ledger").by(workspace_admin(P, W))).await.ok(200);
    let entry = &ledger["data"][0];
    assert_eq!((&entry["kind"], &entry["amount"]), (&json!("top_up"), &json!("1000.00")), "{ledger}");
    // The receipt is the invoice Stripe made for the session (receipts.rs reads its link).
    let invoice = api.stripe.session(id).unwrap()["invoice"].clone();
    assert!(invoice.as_str().is_some_and(|i| i.starts_with("in_")), "{invoice}");
    assert_eq!(
        entry["detail"],
        json!({ "payment": id, "topup_option_id": option, "amount": "10.00", "currency": "usd", "receipt": invoice })
    );
    assert_eq!(entry["actor"]["type"], "stripe");
    assert_eq!(api.verify(W).await, 1);

    // Points at the rate: 250 x 0.012 = 3.00 USD; a second checkout reuses W's customer.
    let by_points = api.call(checkout(P, W, json!({ "points": "250" }))).await.ok(201);
    assert_eq!((&by_points["amount_minor"], &by_points["topup_option_id"]), (&json!(300), &Value::Null));
    assert_eq!(api.stripe.customers(Some(&account)).len(), 1, "one customer per workspace");
    api.stripe.pay(by_points["id"].as_str().unwrap()).await.unwrap();
    let completed = events_of(&api, W).into_iter().rfind(|(t, _)| t == "checkout.session.completed").unwrap();
    assert_eq!(outcome(&api.deliver(&completed.1).await), "credited");
    assert_eq!(api.balance(P, W).await, "1250.00");
    assert_eq!(api.verify(W).await, 2);
}

async fn checkouts_are_refused_with_nothing_written<T: Table>(api: Api<T>) {
    api.tenants().await;
    // No return URLs yet: the partner isn't ready to sell.
    api.call(checkout(P, W, json!({ "points": "100" }))).await.err(403, "forbidden", None);
    let option = seller(&api, P).await;
    let before_fake = api.stripe.sessions(None).len();
    for (body, param) in [
        (json!({ "topup_option_id": "to_nope" }), "topup_option_id"),
        (json!({ "topup_option_id": "not an id" }), "topup_option_id"),
        (json!({}), "topup_option_id"),
        (json!({ "topup_option_id": option, "points": "100" }), "points"),
        // 10 x 0.012 = 0.12 USD, below Stripe's 0.50.
        (json!({ "points": "10" }), "points"),
        (json!({ "points": "0" }), "points"),
        (json!({ "points": "1.234" }), "points"),
        (json!({ "points": super::lit("100") }), "points"),
    ] {
        api.call(checkout(P, W, body.clone())).await.invalid(param);
    }
    // A member may look, not pay; another partner's token is not W's.
    api.call(req("POST /workspace/checkout").by(workspace_member(P, W)).json(json!({ "points": "100" }))).await.err(
        403,
        "forbidden",
        None,
    );
    api.call(checkout(Q, W, json!({ "points": "100" }))).await.err(404, "not_found", None);
    // Q sells no points at a rate, and has no URLs.
    api.call(checkout(Q, X, json!({ "points": "100" }))).await.err(403, "forbidden", None);
    // Credit billing off.
    let off = json!({ "credit_billing": false, "success_url": SUCCESS, "cancel_url": CANCEL, "grace_days": 0 });
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(off)).await.ok(200);
    let after_off = api.state().await;
    api.call(checkout(P, W, json!({ "topup_option_id": option }))).await.err(403, "forbidden", None);
    assert_eq!(api.state().await, after_off, "a refused checkout writes nothing");
    assert_eq!(api.stripe.sessions(None).len(), before_fake, "and creates nothing on Stripe");
}

/// P sells at 0.012 USD per point, 100 to 5000 points a purchase: at the bounds the amount is
/// exact; outside them the checkout is refused before Stripe is asked anything; what is bought
/// lands in W's own wallet and nowhere else.
async fn points_at_the_rate_stay_within_the_partner_bounds<T: Table>(api: Api<T>) {
    api.tenants().await;
    seller(&api, P).await;
    let bounded = json!({ "currency": "usd", "price_per_point": "0.012", "min_points": "100", "max_points": "5000" });
    api.call(req("PUT /partner/credit-rate").by(partner_admin(P)).json(bounded)).await.ok(200);
    let account = api.account(P).await;

    let before = api.state().await;
    let stripe_calls = api.stripe.requests().len();
    for (points, message) in [
        ("99.99", "points: must be at least 100.00, the partner's minimum"),
        // 50 x 0.012 = 0.60 USD: Stripe would take it, the partner doesn't sell so few.
        ("50", "points: must be at least 100.00, the partner's minimum"),
        ("5000.01", "points: must be at most 5000.00, the partner's maximum"),
        ("1000000", "points: must be at most 5000.00, the partner's maximum"),
    ] {
        let r = api.call(checkout(P, W, json!({ "points": points })).key("k-out")).await;
        r.invalid("points");
        let said = r.body["error"]["message"].as_str().unwrap();
        assert!(said.starts_with(message), "{points}: {said:?} should start with {message:?}");
    }
    assert_eq!(api.state().await, before, "a refused checkout writes nothing");
    assert!(!api.key_recorded("ws:ws-acme-1", "k-out").await);
    assert_eq!(api.stripe.requests().len(), stripe_calls, "and asks nothing of Stripe");
    assert_eq!(api.stripe.sessions(None).len(), 0);

    // At the bounds: 100 x 0.012 = 1.20 USD, 5000 x 0.012 = 60.00 USD.
    let at_min = api.call(checkout(P, W, json!({ "points": "100" }))).await.ok(201);
    assert_eq!(
        (&at_min["points"], &at_min["amount_minor"], &at_min["amount_major"], &at_min["topup_option_id"]),
        (&json!("100.00"), &json!(120), &json!("1.20"), &Value::Null)
    );
    let at_max = api.call(checkout(P, W, json!({ "points": "5000" }))).await.ok(201);
    assert_eq!((&at_max["points"], &at_max["amount_minor"]), (&json!("5000.00"), &json!(6000)));
    let id = at_max["id"].as_str().unwrap();
    let on_stripe = api.stripe.session(id).expect("the session is on the fake");
    assert_eq!((&on_stripe["metadata"]["points"], &on_stripe["client_reference_id"]), (&json!("5000.00"), &json!(W)));
    assert_eq!(api.stripe.sessions(Some(&account)).len(), 2);

    let partner_wallet = WalletId::Partner(PartnerId::parse(P).unwrap());
    let x_wallet = WalletId::Workspace(WorkspaceId::parse(X).unwrap());
    let others_before =
        (api.billing.store.wallet(&partner_wallet).await.unwrap(), api.billing.store.wallet(&x_wallet).await.unwrap());
    api.stripe.pay(id).await.unwrap();
    let completed = events_of(&api, W).into_iter().rfind(|(t, _)| t == "checkout.session.completed").unwrap();
    assert_eq!(outcome(&api.deliver(&completed.1).await), "credited");
    assert_eq!(api.balance(P, W).await, "5000.00");
    let entry = &api.ledger(P, W).await[0];
    assert_eq!((&entry["kind"], &entry["amount"]), (&json!("top_up"), &json!("5000.00")), "{entry}");
    assert_eq!(api.verify(W).await, 1);
    // Only W's wallet moved: not its partner's, not the other tenant's workspace.
    let others_after =
        (api.billing.store.wallet(&partner_wallet).await.unwrap(), api.billing.store.wallet(&x_wallet).await.unwrap());
    assert_eq!(others_after, others_before);
}

async fn webhook_refusals_credit_nothing<T: Table>(api: Api<T>) {
    api.tenants().await;
    let option = seller(&api, P).await;
    seller(&api, Q).await;
    let id = session(&api, P, W, &option).await;
    api.stripe.pay(&id).await.unwrap();
    let completed = of_type(&events_of(&api, W), "checkout.session.completed");
    let before = api.state().await;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let send = |payload: String, header: Option<String>| {
        let mut r = req("POST /stripe/webhook").no_key().raw(&payload);
        if let Some(h) = header {
            r = r.header("stripe-signature", &h);
        }
        api.call(r)
    };
    let secret = local::stripe::FAKE_WEBHOOK_SECRET;
    let sign = |payload: &str, secrets: &[&str], t: i64| signature::sign(payload.as_bytes(), secrets, t);
    // No header, a tampered body, another secret, a stale or future timestamp.
    send(completed.clone(), None).await.invalid("Stripe-Signature");
    let tampered = completed.replace("\"paid\"", "\"paid\" ");
    send(tampered, Some(sign(&completed, &[secret], now))).await.invalid("Stripe-Signature");
    send(completed.clone(), Some(sign(&completed, &["whsec_other"], now))).await.invalid("Stripe-Signature");
    send(completed.clone(), Some(sign(&completed, &[secret], now - 301))).await.invalid("Stripe-Signature");
    // Read again: on a busy machine the seconds since `now` would bring a timestamp 301 s ahead
    // of it within the tolerance by the time the webhook checks it.
    let later = OffsetDateTime::now_utc().unix_timestamp();
    send(completed.clone(), Some(sign(&completed, &[secret], later + 305))).await.invalid("Stripe-Signature");
    send(completed.clone(), Some("t=1,v1=zz".into())).await.invalid("Stripe-Signature");
    // Signed right, but from another partner's account, or the other mode.
    let mut v: Value = serde_json::from_str(&completed).unwrap();
    v["account"] = json!(api.account(Q).await);
    api.deliver(&v.to_string()).await.invalid("account");
    let mut v: Value = serde_json::from_str(&completed).unwrap();
    v["account"] = Value::Null;
    api.deliver(&v.to_string()).await.invalid("account");
    let mut v: Value = serde_json::from_str(&completed).unwrap();
    v["livemode"] = json!(true);
    api.deliver(&v.to_string()).await.invalid("livemode");
    // Unreadable, or a session we never created (nothing of ours to credit).
    api.deliver("{\"id\": \"evt_1\"}").await.invalid("body");
    let mut v: Value = serde_json::from_str(&completed).unwrap();
    v["data"]["object"]["id"] = json!("cs_test_not_ours");
    assert_eq!(outcome(&api.deliver(&v.to_string()).await), "ignored");
    // An unknown type is acknowledged.
    assert_eq!(outcome(&api.deliver(&retyped(&completed, "customer.created")).await), "ignored");
    assert_eq!(api.state().await, before, "nothing credited, nothing written");
    assert_eq!(status(&api, &id).await, CheckoutStatus::Pending);

    // Two v1 (a secret rotation): one valid is enough.
    let rotated = sign(&completed, &["whsec_old", secret], now);
    assert_eq!(outcome(&send(completed.clone(), Some(rotated)).await), "credited");
    assert_eq!(api.balance(P, W).await, "1000.00");
}

async fn two_events_for_one_payment_and_late_ones_change_nothing<T: Table>(api: Api<T>) {
    api.tenants().await;
    let option = seller(&api, P).await;
    // completed (paid) and async_payment_succeeded for one session: one credit.
    let id = session(&api, P, W, &option).await;
    api.stripe.pay(&id).await.unwrap();
    let completed = of_type(&events_of(&api, W), "checkout.session.completed");
    let succeeded = retyped(&completed, "checkout.session.async_payment_succeeded");
    assert_eq!(outcome(&api.deliver(&succeeded).await), "credited");
    assert_eq!(outcome(&api.deliver(&completed).await), "already_credited");
    // Late ones: expired after completed, async_payment_failed after success.
    assert_eq!(outcome(&api.deliver(&retyped(&completed, "checkout.session.expired")).await), "unchanged");
    assert_eq!(outcome(&api.deliver(&retyped(&completed, "checkout.session.async_payment_failed")).await), "unchanged");
    assert_eq!(status(&api, &id).await, CheckoutStatus::Credited);
    assert_eq!(api.balance(P, W).await, "1000.00");

    // A bank debit: completed unpaid, then async success credits (and completed again doesn't).
    let slow = session(&api, P, W, &option).await;
    api.stripe.make_async(&slow).unwrap();
    api.stripe.pay(&slow).await.unwrap();
    let unpaid = events_of(&api, W).into_iter().rfind(|(t, _)| t == "checkout.session.completed").unwrap().1;
    assert_eq!(outcome(&api.deliver(&unpaid).await), "awaiting_payment");
    assert_eq!(api.balance(P, W).await, "1000.00");
    api.stripe.finish_async(&slow, true).await.unwrap();
    let ok = of_type(&events_of(&api, W), "checkout.session.async_payment_succeeded");
    assert_eq!(outcome(&api.deliver(&ok).await), "credited");
    assert_eq!(outcome(&api.deliver(&unpaid).await), "unchanged");
    assert_eq!(api.balance(P, W).await, "2000.00");

    // A failed bank debit: failed first, the unpaid completed after it: failed, nothing credited.
    let failing = session(&api, P, W, &option).await;
    api.stripe.make_async(&failing).unwrap();
    api.stripe.pay(&failing).await.unwrap();
    api.stripe.finish_async(&failing, false).await.unwrap();
    let events = events_of(&api, W);
    let failed = of_type(&events, "checkout.session.async_payment_failed");
    let unpaid = events.iter().rfind(|(t, _)| t == "checkout.session.completed").unwrap().1.clone();
    assert_eq!(outcome(&api.deliver(&failed).await), "failed");
    assert_eq!(outcome(&api.deliver(&unpaid).await), "unchanged");
    assert_eq!(status(&api, &failing).await, CheckoutStatus::Failed);
    // An abandoned one expires.
    let abandoned = session(&api, P, W, &option).await;
    api.stripe.expire(&abandoned).await.unwrap();
    let expired = of_type(&events_of(&api, W), "checkout.session.expired");
    assert_eq!(outcome(&api.deliver(&expired).await), "expired");
    assert_eq!(status(&api, &abandoned).await, CheckoutStatus::Expired);
    assert_eq!(api.balance(P, W).await, "2000.00");
    assert_eq!(api.verify(W).await, 2);
}

async fn one_event_ten_times_at_once_credits_once<T: Table>(api: Api<T>) {
    api.tenants().await;
    let option = seller(&api, P).await;
    let id = session(&api, P, W, &option).await;
    api.stripe.pay(&id).await.unwrap();
    let completed = of_type(&events_of(&api, W), "checkout.session.completed");
    let answers = billing::join_all((0..10).map(|_| api.deliver(&completed))).await;
    let mut outcomes: Vec<&str> = answers.iter().map(outcome).collect();
    outcomes.sort_unstable();
    assert_eq!(outcomes, [vec!["already_credited"; 9], vec!["credited"]].concat());
    assert_eq!(api.balance(P, W).await, "1000.00");
    assert_eq!(api.verify(W).await, 1);
}

async fn refunds_take_back_their_share_once<T: Table>(api: Api<T>) {
    api.tenants().await;
    let option = seller(&api, P).await;
    let id = session(&api, P, W, &option).await;
    api.stripe.pay(&id).await.unwrap();
    assert_eq!(outcome(&api.deliver(&of_type(&events_of(&api, W), "checkout.session.completed")).await), "credited");
    // 900 of the 1,000 points are spent.
    let spend = json!({ "amount": "-900", "reason": "spent" });
    api.call(req("POST /partner/workspaces/{id}/points").param("id", W).by(partner_admin(P)).json(spend)).await.ok(201);
    let charge = api.stripe.session(&id).unwrap()["payment_intent"]["latest_charge"].as_str().unwrap().to_owned();
    let refunded = |n: usize| events_of(&api, W).into_iter().filter(|(t, _)| t == "charge.refunded").nth(n).unwrap().1;
    // 2.50 of 10.00: 250 points back to the customer's bank, so 250 off the wallet.
    api.stripe.refund(&charge, Some(250)).await.unwrap();
    let first = refunded(0);
    assert_eq!(outcome(&api.deliver(&first).await), "clawed_back");
    assert_eq!(api.balance(P, W).await, "-150.00", "the points were spent: the balance goes negative");
    assert_eq!(outcome(&api.deliver(&first).await), "unchanged", "each refund once");
    // A second partial refund: the charge's total is now 5.00, 250 more.
    api.stripe.refund(&charge, Some(250)).await.unwrap();
    let second = refunded(1);
    assert_eq!(outcome(&api.deliver(&second).await), "clawed_back");
    assert_eq!(outcome(&api.deliver(&first).await), "unchanged", "an older total takes nothing");
    assert_eq!(api.balance(P, W).await, "-400.00");
    // The rest: all 1,000 points are taken back in all.
    api.stripe.refund(&charge, None).await.unwrap();
    assert_eq!(outcome(&api.deliver(&refunded(2)).await), "clawed_back");
    assert_eq!(api.balance(P, W).await, "-900.00");
    let ledger = api.call(req("GET /workspace/ledger").by(workspace_admin(P, W))).await.ok(200);
    let entry = &ledger["data"][0];
    assert_eq!((&entry["kind"], &entry["amount"]), (&json!("claw_back"), &json!("-500.00")), "{ledger}");
    assert_eq!(entry["detail"]["cause"], "refund");
    assert_eq!((&entry["detail"]["refunded"], &entry["detail"]["disputed"]), (&json!("10.00"), &json!("0.00")));
    assert_eq!(api.verify(W).await, 5);
}

async fn a_refund_before_its_credit_is_retried_later<T: Table>(api: Api<T>) {
    api.tenants().await;
    let option = seller(&api, P).await;
    let id = session(&api, P, W, &option).await;
    api.stripe.pay(&id).await.unwrap();
    let charge = api.stripe.session(&id).unwrap()["payment_intent"]["latest_charge"].as_str().unwrap().to_owned();
    api.stripe.refund(&charge, None).await.unwrap();
    let events = events_of(&api, W);
    let refund = of_type(&events, "charge.refunded");
    // The refund overtook the crediting event: Stripe is told to try again.
    let early = api.deliver(&refund).await;
    early.err(503, "retry_later", None);
    assert_eq!(outcome(&api.deliver(&of_type(&events, "checkout.session.completed")).await), "credited");
    assert_eq!(outcome(&api.deliver(&refund).await), "clawed_back");
    assert_eq!(api.balance(P, W).await, "0.00");
    assert_eq!(api.verify(W).await, 2);
}

async fn a_revoked_account_turns_credit_billing_off<T: Table>(api: Api<T>) {
    api.tenants().await;
    let option = seller(&api, P).await;
    let account = api.account(P).await;
    api.stripe.deauthorize(&account).await.unwrap();
    let revoked = api
        .stripe
        .events()
        .into_iter()
        .find(|e| e.type_ == "account.application.deauthorized")
        .expect("the fake says so")
        .payload;
    assert_eq!(outcome(&api.deliver(&revoked).await), "deauthorized");
    assert_eq!(outcome(&api.deliver(&revoked).await), "unchanged");
    let settings = api.call(req("GET /partner/settings").by(partner_admin(P))).await.ok(200);
    assert_eq!(settings["credit_billing"], false);
    let connection = api.call(req("GET /partner/stripe").by(partner_admin(P))).await.ok(200);
    assert!(connection["connection"]["deauthorized_at"].is_string(), "{connection}");
    api.call(checkout(P, W, json!({ "topup_option_id": option }))).await.err(403, "forbidden", None);
    // On again only with an account connected again.
    let on = json!({ "credit_billing": true, "success_url": SUCCESS, "cancel_url": CANCEL, "grace_days": 0 });
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(on.clone())).await.invalid("credit_billing");
    let (code, _) = api.stripe.issue_oauth_code(None, false);
    api.call(req("POST /partner/stripe/connect").by(partner_admin(P)).json(json!({ "code": code }))).await.ok(200);
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(on)).await.ok(200);
    api.call(checkout(P, W, json!({ "topup_option_id": option }))).await.ok(201);
    // Q's account was never touched.
    assert_eq!(api.call(req("GET /partner/settings").by(partner_admin(Q))).await.ok(200)["credit_billing"], true);
}

async fn connecting_checks_the_code_the_mode_and_the_owner<T: Table>(api: Api<T>) {
    api.tenants().await;
    let connect =
        |p: &str, code: &str| req("POST /partner/stripe/connect").by(partner_admin(p)).json(json!({ "code": code }));
    let before = api.state().await;
    // A live-mode account on this test deployment; a code that is not a code; an unknown one.
    let (live, _) = api.stripe.issue_oauth_code(None, true);
    api.call(connect(P, &live)).await.invalid("code");
    api.call(connect(P, "not-a-code")).await.invalid("code");
    api.call(connect(P, "ac_unknown")).await.invalid("code");
    // Q's account can't become P's.
    let q_account = api.account(Q).await;
    let (q_code, _) = api.stripe.issue_oauth_code(Some(&q_account), false);
    api.call(connect(P, &q_code)).await.err(409, "already_exists", None);
    assert_eq!(api.state().await, before);
    // A new account replaces the old; the same request again answers the same.
    let (code, account) = api.stripe.issue_oauth_code(None, false);
    let first = api.call(connect(P, &code).key("connect-1")).await.ok(200);
    assert_eq!(first["account"], account);
    assert_eq!(api.call(connect(P, &code).key("connect-1")).await.ok(200), first);
    assert_eq!(api.account(P).await, account);
}

async fn stripe_failures_answer_clearly_and_duplicate_nothing<T: Table>(api: Api<T>) {
    api.tenants().await;
    let option = seller(&api, P).await;
    let account = api.account(P).await;
    let body = json!({ "topup_option_id": option });
    // Each call, each fault: first every attempt fails (a clear 503, nothing stored), then the
    // client retries with the same key and gets one session on one customer.
    let cases = [
        ("customers.create", FaultKind::ServerError),
        ("customers.create", FaultKind::RateLimited),
        ("customers.create", FaultKind::TimeoutBefore),
        ("customers.create", FaultKind::TimeoutAfter),
        ("checkout.sessions.create", FaultKind::ServerError),
        ("checkout.sessions.create", FaultKind::BadGateway),
        ("checkout.sessions.create", FaultKind::TimeoutBefore),
        ("checkout.sessions.create", FaultKind::TimeoutAfter),
    ];
    for (i, (operation, fault)) in cases.into_iter().enumerate() {
        let w = format!("ws-fault-{i}");
        api.workspace(P, &w, "starter").await;
        let key = format!("checkout-{i}");
        api.stripe.fail_next(operation, fault, 4, 1_000);
        let before = api.state().await;
        let failed = api.call(checkout(P, &w, body.clone()).key(&key)).await;
        failed.err(503, "stripe_unavailable", None);
        let after = api.state().await;
        if operation == "checkout.sessions.create" {
            // The customer was made (and kept, so the retry reuses it); no checkout was stored.
            assert_eq!(
                api.stripe
                    .customers(Some(&account))
                    .iter()
                    .filter(|c| c["metadata"]["workspace_id"] == w.as_str())
                    .count(),
                1
            );
        } else {
            assert_eq!(after, before, "{operation} {fault:?}: nothing stored");
        }
        api.stripe.clear_faults();
        let ok = api.call(checkout(P, &w, body.clone()).key(&key)).await.ok(201);
        let again = api.call(checkout(P, &w, body.clone()).key(&key)).await.ok(201);
        assert_eq!(ok, again);
        let customers = api.stripe.customers(Some(&account));
        let mine: Vec<_> = customers.iter().filter(|c| c["metadata"]["workspace_id"] == w.as_str()).collect();
        assert_eq!(mine.len(), 1, "{operation} {fault:?}: one customer");
        let sessions = api.stripe.sessions(Some(&account));
        let mine: Vec<_> = sessions.iter().filter(|s| s["client_reference_id"] == w.as_str()).collect();
        assert_eq!(mine.len(), 1, "{operation} {fault:?}: one session: {mine:?}");
        assert_eq!(mine[0]["id"], ok["id"]);
    }
    // One failed attempt is retried inside the call: the caller never sees it.
    api.stripe.fail_next("checkout.sessions.create", FaultKind::ServerError, 1, 0);
    api.call(checkout(P, W, body.clone())).await.ok(201);
    // Stripe refusing outright (W's customer was deleted on the partner's account, say): a 502,
    // nothing stored.
    let w = domain::WorkspaceId::parse(W).unwrap();
    let gone = records::StripeCustomer {
        account: stripe_gateway::ids::AccountId::parse(&account).unwrap(),
        customer: stripe_gateway::ids::CustomerId::parse("cus_deleted").unwrap(),
        payment_method: None,
        payment_method_created: None,
        card: None,
        expiry_noticed: false,
        version: 1,
    };
    api.billing
        .store
        .write(vec![store::Write::Put {
            item: records::stripe_customer_item(&w, &gone),
            condition: store::Condition::Always,
        }])
        .await
        .unwrap();
    let before = api.state().await;
    api.call(checkout(P, W, body)).await.err(502, "stripe_error", None);
    assert_eq!(api.state().await, before);
}

/// A live deployment takes live accounts only, and credit billing needs one: a partner's
/// test-mode account on a live deployment would take no real money.
#[tokio::test]
async fn a_live_deployment_refuses_test_mode_accounts() {
    let api = Api::memory().await;
    api.tenants().await;
    let live = billing::Payments::new(true)
        .with_gateway(std::sync::Arc::new(
            stripe_gateway::client::StripeGateway::new(
                stripe_gateway::client::StripeConfig::new(local::stripe::FAKE_SECRET_KEY).with_base(&api.stripe.url),
            )
            .unwrap(),
        ))
        .with_webhook_secrets(vec![local::stripe::FAKE_WEBHOOK_SECRET.to_owned()]);
    let billing = billing::Billing::new(store::Store::new(store::memory::MemoryTable::new()), api.clock.clone())
        .with_payments(live);
    let p = domain::PartnerId::parse(P).unwrap();
    let key = |k: &str| store::IdempotencyKey::new("t", k, k.as_bytes()).unwrap();
    billing
        .create_partner(
            &p,
            &domain::PartnerSettings::default(),
            billing::Mutation::new(&key("p"), &api::answers::partner_created),
        )
        .await
        .unwrap();
    let (test_code, _) = api.stripe.issue_oauth_code(None, false);
    let test_code = stripe_gateway::ids::OAuthCode::parse(&test_code).unwrap();
    let refused = billing
        .connect_stripe(&p, &test_code, billing::Mutation::new(&key("c1"), &api::answers::stripe_connected))
        .await
        .unwrap_err();
    assert!(matches!(&refused, billing::OpError::Invalid { param, .. } if param == "code"), "{refused:?}");
    let on = domain::PartnerSettings { credit_billing: true, ..Default::default() };
    let refused = billing
        .put_partner_settings(&p, &on, billing::Mutation::new(&key("s1"), &api::answers::settings_set))
        .await
        .unwrap_err();
    assert!(matches!(&refused, billing::OpError::Invalid { param, .. } if param == "credit_billing"), "{refused:?}");
    let (live_code, account) = api.stripe.issue_oauth_code(None, true);
    let live_code = stripe_gateway::ids::OAuthCode::parse(&live_code).unwrap();
    let connected = billing
        .connect_stripe(&p, &live_code, billing::Mutation::new(&key("c2"), &api::answers::stripe_connected))
        .await
        .unwrap();
    assert_eq!(
        (connected.body["account"].as_str(), &connected.body["livemode"]),
        (Some(account.as_str()), &json!(true))
    );
    billing
        .put_partner_settings(&p, &on, billing::Mutation::new(&key("s2"), &api::answers::settings_set))
        .await
        .unwrap();
}

api_suite!(
    a_paid_checkout_credits_its_points_once,
    checkouts_are_refused_with_nothing_written,
    points_at_the_rate_stay_within_the_partner_bounds,
    webhook_refusals_credit_nothing,
    two_events_for_one_payment_and_late_ones_change_nothing,
    one_event_ten_times_at_once_credits_once,
    refunds_take_back_their_share_once,
    a_refund_before_its_credit_is_retried_later,
    a_revoked_account_turns_credit_billing_off,
    connecting_checks_the_code_the_mode_and_the_owner,
    stripe_failures_answer_clearly_and_duplicate_nothing,
);

//! Receipts of top-ups: a paid checkout's entry names the invoice Stripe made for it, an auto
//! top-up's the charge; the routes answer Stripe's link of the moment, to the wallet's own
//! readers only, and nobody learns whether another tenant's receipt exists.

use serde_json::{Value, json};
use store::Table;
use stripe_fake::FaultKind;
use stripe_gateway::gateway::MAX_ATTEMPTS;
use time::macros::datetime;

use super::autotopup::{run, turn_on, with_saved_card};
use super::checkout::{events_of, of_type, outcome, seller, session};
use super::{Api, P, Q, W, X, partner_admin, req, workspace_admin, workspace_member};

/// A second workspace of P, which may not read W's receipts either.
const W2: &str = "ws-acme-2";

fn receipt_of(w_or_p: super::Claims, route: &'static str, id: &str) -> super::Req {
    req(route).param("id", id).by(w_or_p)
}

fn workspace_receipt(p: &str, w: &str, id: &str) -> super::Req {
    receipt_of(workspace_admin(p, w), "GET /workspace/receipts/{id}", id)
}

fn wallet_receipt(p: &str, id: &str) -> super::Req {
    receipt_of(partner_admin(p), "GET /partner/wallet/receipts/{id}", id)
}

/// How many times Stripe was asked for `operation`.
fn asked<T>(api: &Api<T>, operation: &str) -> Vec<Option<String>> {
    api.stripe.requests().into_iter().filter(|r| r.operation.as_deref() == Some(operation)).map(|r| r.account).collect()
}

async fn a_paid_checkout_names_its_invoice_and_links_to_it<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.workspace(P, W2, "starter").await;
    let option = seller(&api, P).await;
    let account = api.account(P).await;

    // Credited from an event that names no invoice (as before receipts were kept): no receipt.
    let first = session(&api, P, W, &option).await;
    api.stripe.pay(&first).await.unwrap();
    let mut bare: Value = serde_json::from_str(&of_type(&events_of(&api, W), "checkout.session.completed")).unwrap();
    let first_invoice = bare["data"]["object"]["invoice"].as_str().expect("the fake invoiced it").to_owned();
    bare["data"]["object"]["invoice"] = Value::Null;
    assert_eq!(outcome(&api.deliver(&bare.to_string()).await), "credited");
    let entry = api.ledger(P, W).await[0].clone();
    assert_eq!(entry["detail"].get("receipt"), None, "{entry}");
    api.call(workspace_receipt(P, W, &first_invoice)).await.err(404, "not_found", None);

    // Paid and credited as Stripe tells it: the entry names the session's invoice.
    let id = session(&api, P, W, &option).await;
    api.stripe.pay(&id).await.unwrap();
    let completed = events_of(&api, W).into_iter().rfind(|(t, _)| t == "checkout.session.completed").unwrap().1;
    assert_eq!(outcome(&api.deliver(&completed).await), "credited");
    let invoice = api.stripe.session(&id).unwrap()["invoice"].as_str().unwrap().to_owned();
    let entry = api.ledger(P, W).await[0].clone();
    assert_eq!(
        entry["detail"],
        json!({ "payment": id, "topup_option_id": option, "amount": "10.00", "currency": "usd", "receipt": invoice })
    );
    let on_stripe = api.stripe.invoices(Some(&account)).into_iter().find(|i| i["id"] == invoice.as_str()).unwrap();
    assert_eq!((&on_stripe["status"], &on_stripe["amount_paid"]), (&json!("paid"), &json!(1000)));
    let expected = json!({ "receipt": {
        "id": invoice, "url": on_stripe["hosted_invoice_url"], "pdf": on_stripe["invoice_pdf"],
    } });
    assert!(expected["receipt"]["url"].as_str().unwrap().starts_with(&api.stripe.url), "{expected}");

    // Anyone of W may read it; Stripe is asked each time, on P's account.
    for who in [workspace_admin(P, W), workspace_member(P, W)] {
        let got = api.call(receipt_of(who, "GET /workspace/receipts/{id}", &invoice)).await.ok(200);
        assert_eq!(got, expected);
    }
    assert_eq!(asked(&api, "invoices.retrieve"), [Some(account.clone()), Some(account.clone())]);

    // Nobody else: another workspace of P, Q's, P's own wallet route, X's token naming P.
    let before = asked(&api, "invoices.retrieve").len();
    api.call(workspace_receipt(P, W2, &invoice)).await.err(404, "not_found", None);
    api.call(workspace_receipt(Q, X, &invoice)).await.err(404, "not_found", None);
    api.call(wallet_receipt(P, &invoice)).await.err(404, "not_found", None);
    api.call(wallet_receipt(Q, &invoice)).await.err(404, "not_found", None);
    api.call(workspace_receipt(Q, W, &invoice)).await.err(404, "not_found", None);
    // Not receipts of W's: the payment's charge (its receipt is the invoice), ids unknown or of
    // other objects. Each answers as another tenant's does.
    let pi = api.stripe.session(&id).unwrap()["payment_intent"]["latest_charge"].as_str().unwrap().to_owned();
    for other in [pi.as_str(), "in_nonesuch", "ch_nonesuch", id.as_str(), "pi_1", "in_", "in_a-b"] {
        let r = api.call(workspace_receipt(P, W, other)).await;
        assert_eq!((r.status, &r.body["error"]["message"]), (404, &json!("receipt not found")), "{other}: {}", r.body);
    }
    assert_eq!(asked(&api, "invoices.retrieve").len(), before, "none of them asked Stripe");

    // Stripe unavailable: 503, nothing learnt; then the link again.
    api.stripe.fail_next("invoices.retrieve", FaultKind::ServerError, MAX_ATTEMPTS, 0);
    api.call(workspace_receipt(P, W, &invoice)).await.err(503, "stripe_unavailable", None);
    assert_eq!(api.call(workspace_receipt(P, W, &invoice)).await.ok(200), expected);
    assert_eq!(api.verify(W).await, 2);
}

async fn an_auto_top_up_names_its_charge_and_links_to_its_receipt<T: Table>(api: Api<T>) {
    let option = with_saved_card(&api, 0).await;
    turn_on(&api, &option).await;
    api.set_clock(datetime!(2026-05-01 06:00 UTC));
    assert_eq!(run(&api).await.renewed, 1);
    api.partner(Q, true).await;
    api.workspace(Q, X, "starter").await;
    let ledger = api.ledger(P, W).await;
    let kinds: Vec<_> = ledger.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["renewal", "top_up", "addon_purchase", "top_up"]);
    let (auto, checkout) = (&ledger[1]["detail"], &ledger[3]["detail"]);
    assert!(checkout["receipt"].as_str().unwrap().starts_with("in_"), "{checkout}");
    let charge = auto["receipt"].as_str().expect("the auto top-up names its charge").to_owned();
    // The off-session PaymentIntent's charge, on P's account.
    let account = api.account(P).await;
    let on_stripe = api.stripe.charges(Some(&account)).into_iter().find(|c| c["id"] == charge.as_str()).unwrap();
    assert_eq!((&on_stripe["payment_intent"], &on_stripe["amount"]), (&auto["payment"], &json!(200)));
    let got = api.call(workspace_receipt(P, W, &charge)).await.ok(200);
    assert_eq!(got, json!({ "receipt": { "id": charge, "url": on_stripe["receipt_url"], "pdf": null } }));
    assert_eq!(asked(&api, "charges.retrieve"), [Some(account)]);
    // Stripe's own word on the payment credits nothing more, and names the same charge.
    let succeeded = api
        .stripe
        .events()
        .into_iter()
        .find(|e| e.type_ == "payment_intent.succeeded" && e.payload.contains("\"auto_topup\""))
        .unwrap();
    assert!(succeeded.payload.contains(&charge));
    assert_eq!(api.deliver(&succeeded.payload).await.ok(200)["outcome"], "already_credited");
    // Another partner's workspace: as if it did not exist.
    api.call(workspace_receipt(Q, X, &charge)).await.err(404, "not_found", None);
    api.stripe.fail_next("charges.retrieve", FaultKind::RateLimited, MAX_ATTEMPTS, 0);
    api.call(workspace_receipt(P, W, &charge)).await.err(503, "stripe_unavailable", None);
}

async fn a_partner_wallet_top_up_links_to_its_invoice<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.pay_into_wallet(P, "100.00").await;
    let wallet = api.partner_wallet(P).await;
    let invoice = wallet["ledger"]["data"][0]["detail"]["receipt"].as_str().unwrap().to_owned();
    // On the platform's own account: the partner is the platform's customer.
    let on_stripe = api.stripe.invoices(None).into_iter().find(|i| i["id"] == invoice.as_str()).unwrap();
    let got = api.call(wallet_receipt(P, &invoice)).await.ok(200);
    assert_eq!(
        got,
        json!({ "receipt": { "id": invoice, "url": on_stripe["hosted_invoice_url"], "pdf": on_stripe["invoice_pdf"] } })
    );
    assert_eq!(asked(&api, "invoices.retrieve"), [None]);
    // Not Q's, not W's (the partner's wallet is not its workspace's).
    api.call(wallet_receipt(Q, &invoice)).await.err(404, "not_found", None);
    api.call(workspace_receipt(P, W, &invoice)).await.err(404, "not_found", None);
    api.call(wallet_receipt(P, "in_nonesuch")).await.err(404, "not_found", None);
    // A suspended partner is refused, whatever the id.
    let suspend = req("POST /platform/partners/{id}/suspend").param("id", P).by(super::platform());
    api.call(suspend.json(json!({ "reason": "test" }))).await.ok(200);
    for id in [invoice.as_str(), "in_nonesuch", "nonsense"] {
        api.call(wallet_receipt(P, id)).await.err(403, "partner_suspended", None);
    }
}

api_suite!(
    a_paid_checkout_names_its_invoice_and_links_to_it,
    an_auto_top_up_names_its_charge_and_links_to_its_receipt,
    a_partner_wallet_top_up_links_to_its_invoice,
);

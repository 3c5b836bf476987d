//! Disputes: a chargeback takes back the disputed share of the points once; the bank's decision
//! for the merchant gives that share back once (`charge.dispute.funds_reinstated` and
//! `charge.dispute.closed` with status `won`, both sent); a lost dispute changes nothing more.
//! Every event in any order, repeated: the payment record's totals decide, not the events.

use serde_json::{Value, json};
use store::Table;

use super::checkout::{events_of, of_type, outcome, seller, session};
use super::{Api, P, W, partner_admin, req};

/// W pays the 10.00 option (1,000 points), credited: the charge's id.
async fn paid<T: Table>(api: &Api<T>) -> String {
    api.tenants().await;
    let option = seller(api, P).await;
    let id = session(api, P, W, &option).await;
    api.stripe.pay(&id).await.unwrap();
    assert_eq!(outcome(&api.deliver(&of_type(&events_of(api, W), "checkout.session.completed")).await), "credited");
    api.stripe.session(&id).unwrap()["payment_intent"]["latest_charge"].as_str().unwrap().to_owned()
}

/// The fake's event of type `t` about dispute `dp`.
fn event_of(api: &Api<impl Table>, dp: &str, t: &str) -> String {
    api.stripe
        .events()
        .into_iter()
        .find(|e| e.type_ == t && serde_json::from_str::<Value>(&e.payload).unwrap()["data"]["object"]["id"] == dp)
        .unwrap_or_else(|| panic!("no {t} event of {dp}"))
        .payload
}

/// Disputes the charge (`amount` minor units, by default what was not refunded): its id.
async fn dispute<T: Table>(api: &Api<T>, charge: &str, amount: Option<i64>) -> String {
    api.stripe.dispute(charge, amount, None).await.unwrap()["id"].as_str().unwrap().to_owned()
}

async fn partner_events<T: Table>(api: &Api<T>) -> Vec<Value> {
    let page = api.call(req("GET /partner/events").by(partner_admin(P)).query("limit", "100")).await.ok(200);
    page["data"].as_array().unwrap().clone()
}

async fn a_dispute_takes_back_the_disputed_share_once<T: Table>(api: Api<T>) {
    let charge = paid(&api).await;
    // 4.00 refunded, then the rest (6.00) disputed: all 1,000 points are taken back, once.
    api.stripe.refund(&charge, Some(400)).await.unwrap();
    assert_eq!(outcome(&api.deliver(&of_type(&events_of(&api, W), "charge.refunded")).await), "clawed_back");
    let dp = dispute(&api, &charge, None).await;
    let disputed = event_of(&api, &dp, "charge.dispute.created");
    assert_eq!(outcome(&api.deliver(&disputed).await), "clawed_back");
    assert_eq!(outcome(&api.deliver(&disputed).await), "unchanged");
    assert_eq!(api.balance(P, W).await, "0.00");
    let entry = &api.ledger(P, W).await[0];
    assert_eq!((&entry["kind"], &entry["amount"]), (&json!("claw_back"), &json!("-600.00")), "{entry}");
    assert_eq!(
        (&entry["detail"]["cause"], &entry["detail"]["refunded"], &entry["detail"]["disputed"]),
        (&json!("dispute"), &json!("4.00"), &json!("6.00"))
    );
    // A dispute of a payment we never credited is not ours to act on.
    let mut other: Value = serde_json::from_str(&disputed).unwrap();
    other["data"]["object"]["payment_intent"] = json!("pi_not_ours");
    assert_eq!(outcome(&api.deliver(&other.to_string()).await), "ignored");
    assert_eq!(api.verify(W).await, 3);
}

async fn a_won_dispute_gives_the_points_back_once<T: Table>(api: Api<T>) {
    let charge = paid(&api).await;
    api.stripe.refund(&charge, Some(400)).await.unwrap();
    assert_eq!(outcome(&api.deliver(&of_type(&events_of(&api, W), "charge.refunded")).await), "clawed_back");
    let dp = dispute(&api, &charge, None).await;
    let created = event_of(&api, &dp, "charge.dispute.created");
    assert_eq!(outcome(&api.deliver(&created).await), "clawed_back");
    assert_eq!(api.balance(P, W).await, "0.00");

    // The bank decides for the merchant: Stripe sends both events; the 600 points come back once.
    api.stripe.close_dispute(&dp, true).await.unwrap();
    let (reinstated, closed) =
        (event_of(&api, &dp, "charge.dispute.funds_reinstated"), event_of(&api, &dp, "charge.dispute.closed"));
    assert_eq!(outcome(&api.deliver(&reinstated).await), "given_back");
    for late in [&closed, &reinstated, &created, &closed] {
        assert_eq!(outcome(&api.deliver(late).await), "unchanged");
    }
    assert_eq!(api.balance(P, W).await, "600.00");
    let entry = &api.ledger(P, W).await[0];
    assert_eq!((&entry["kind"], &entry["amount"]), (&json!("dispute_won"), &json!("600.00")), "{entry}");
    assert_eq!(
        entry["detail"],
        json!({ "payment_intent": entry["detail"]["payment_intent"], "dispute": dp, "amount": "6.00",
                "refunded": "4.00", "disputed": "0.00", "currency": "usd" })
    );
    assert!(entry["detail"]["payment_intent"].as_str().unwrap().starts_with("pi_"));
    assert_eq!(entry["actor"]["type"], "stripe");
    let won = partner_events(&api).await.into_iter().find(|e| e["type"] == "dispute.won").expect("an event");
    assert_eq!(
        (&won["workspace_id"], &won["data"]["points"], &won["data"]["dispute"]),
        (&json!(W), &json!("600.00"), &json!(dp))
    );

    // A refund after the win still takes its share: the rest of the charge, all 600 points.
    api.stripe.refund(&charge, None).await.unwrap();
    let refunds: Vec<String> =
        events_of(&api, W).into_iter().filter(|(t, _)| t == "charge.refunded").map(|(_, p)| p).collect();
    assert_eq!(outcome(&api.deliver(&refunds[1]).await), "clawed_back");
    assert_eq!(api.balance(P, W).await, "0.00");
    assert_eq!(api.verify(W).await, 5);
}

async fn a_lost_dispute_changes_nothing_more<T: Table>(api: Api<T>) {
    let charge = paid(&api).await;
    let dp = dispute(&api, &charge, Some(250)).await;
    api.stripe.close_dispute(&dp, false).await.unwrap();
    let (created, closed) =
        (event_of(&api, &dp, "charge.dispute.created"), event_of(&api, &dp, "charge.dispute.closed"));
    // Lost, heard of before it was opened: the share is taken back once, by whichever comes first.
    assert_eq!(outcome(&api.deliver(&closed).await), "clawed_back");
    assert_eq!(outcome(&api.deliver(&created).await), "unchanged");
    assert_eq!(outcome(&api.deliver(&closed).await), "unchanged");
    assert_eq!(api.balance(P, W).await, "750.00");
    assert_eq!(api.ledger(P, W).await[0]["detail"]["disputed"], "2.50");
    assert_eq!(api.verify(W).await, 2);
}

async fn a_dispute_won_before_it_is_heard_of_moves_nothing<T: Table>(api: Api<T>) {
    let charge = paid(&api).await;
    let dp = dispute(&api, &charge, None).await;
    api.stripe.close_dispute(&dp, true).await.unwrap();
    // The decision overtook the dispute: it counts in and out at once, and the dispute's own
    // event, arriving last, takes nothing.
    let closed = event_of(&api, &dp, "charge.dispute.closed");
    assert_eq!(outcome(&api.deliver(&closed).await), "recorded");
    for late in ["charge.dispute.funds_reinstated", "charge.dispute.created"] {
        assert_eq!(outcome(&api.deliver(&event_of(&api, &dp, late)).await), "unchanged", "{late}");
    }
    assert_eq!(api.balance(P, W).await, "1000.00");
    assert_eq!(api.verify(W).await, 1);
}

async fn an_inquiry_moves_no_points<T: Table>(api: Api<T>) {
    let charge = paid(&api).await;
    let dp = dispute(&api, &charge, None).await;
    // An inquiry: the bank asks, no money is withdrawn, so no points are taken.
    let mut inquiry: Value = serde_json::from_str(&event_of(&api, &dp, "charge.dispute.created")).unwrap();
    inquiry["data"]["object"]["status"] = json!("warning_needs_response");
    assert_eq!(outcome(&api.deliver(&inquiry.to_string()).await), "ignored");
    inquiry["type"] = json!("charge.dispute.closed");
    inquiry["data"]["object"]["status"] = json!("warning_closed");
    assert_eq!(outcome(&api.deliver(&inquiry.to_string()).await), "ignored");
    assert_eq!(api.balance(P, W).await, "1000.00");
    // It became a chargeback: the money is withdrawn now, and so are the points.
    inquiry["type"] = json!("charge.dispute.funds_withdrawn");
    inquiry["data"]["object"]["status"] = json!("needs_response");
    assert_eq!(outcome(&api.deliver(&inquiry.to_string()).await), "clawed_back");
    assert_eq!(api.balance(P, W).await, "0.00");
    assert_eq!(api.verify(W).await, 2);
}

api_suite!(
    a_dispute_takes_back_the_disputed_share_once,
    a_won_dispute_gives_the_points_back_once,
    a_lost_dispute_changes_nothing_more,
    a_dispute_won_before_it_is_heard_of_moves_nothing,
    an_inquiry_moves_no_points,
);

//! The control endpoints over HTTP: asynchronous payments, expiry, refunds, disputes, and events
//! delivered twice, late, held and released out of order.

use std::time::Duration;

use serde_json::{Value, json};
use stripe_gateway::gateway::{Account, PaymentGateway, PaymentStatus, SessionStatus};
use stripe_gateway::ids::CheckoutId;

use crate::support::*;

/// A customer and an open session on [`ACCOUNT`], through the gateway.
async fn open_session(stack: &Stack, n: u32, minor: i64) -> CheckoutId {
    let cus = stack
        .gateway
        .create_customer(Account::Connected(&account()), &key(&format!("c{n}")), &new_customer("ws-1"))
        .await
        .unwrap();
    stack
        .gateway
        .create_checkout_session(Account::Connected(&account()), &key(&format!("s{n}")), &new_session(&cus, usd(minor)))
        .await
        .unwrap()
        .id
}

fn session_path(id: &CheckoutId, action: &str) -> String {
    format!("/checkout/sessions/{id}/{action}")
}

#[tokio::test]
async fn an_asynchronous_payment_completes_unpaid_then_succeeds_or_fails() {
    let stack = Stack::start().await;
    let good = open_session(&stack, 1, 1000).await;
    let bad = open_session(&stack, 2, 1000).await;
    for id in [&good, &bad] {
        assert_eq!(stack.http.control("POST", &session_path(id, "async"), Value::Null).await.status, 200);
        let paid = stack.http.control("POST", &session_path(id, "pay"), Value::Null).await;
        assert_eq!(paid.status, 200);
        assert_eq!(
            (paid.json()["status"].as_str(), paid.json()["payment_status"].as_str()),
            (Some("complete"), Some("unpaid"))
        );
    }
    // Each saves its card as it is paid; the money comes later.
    let saved_then_completed = ["payment_method.attached", "checkout.session.completed"];
    assert_eq!(stack.receiver.types(), [saved_then_completed, saved_then_completed].concat());
    let completed = stack.receiver.events().into_iter().filter(|e| e.json()["type"] == "checkout.session.completed");
    assert!(completed.into_iter().all(|e| e.json()["data"]["object"]["payment_status"] == "unpaid"));

    let result = |id, r| {
        let http = stack.http.clone();
        let path = session_path(id, "async_result");
        async move { http.control("POST", &path, json!({ "result": r })).await }
    };
    assert_eq!(result(&good, "succeeded").await.json()["payment_status"], "paid");
    assert_eq!(result(&bad, "failed").await.json()["payment_status"], "unpaid");
    assert_eq!(result(&bad, "succeeded").await.status, 409, "settled once");
    assert_eq!(
        stack.receiver.types()[4..],
        [
            "payment_intent.succeeded",
            "invoice.finalized",
            "invoice.paid",
            "checkout.session.async_payment_succeeded",
            "payment_intent.payment_failed",
            "checkout.session.async_payment_failed"
        ]
    );
    let good = stack.gateway.retrieve_checkout_session(Account::Connected(&account()), &good).await.unwrap();
    assert_eq!((good.status, good.payment_status), (SessionStatus::Complete, PaymentStatus::Paid));
    assert!(good.charge.is_some());
    let bad = stack.gateway.retrieve_checkout_session(Account::Connected(&account()), &bad).await.unwrap();
    assert_eq!((bad.status, bad.payment_status, bad.charge), (SessionStatus::Complete, PaymentStatus::Unpaid, None));
}

#[tokio::test]
async fn an_expired_session_cannot_be_paid() {
    let stack = Stack::start().await;
    let id = open_session(&stack, 1, 1000).await;
    let expired = stack.http.control("POST", &session_path(&id, "expire"), Value::Null).await;
    assert_eq!(expired.json()["status"], "expired");
    assert_eq!(stack.receiver.types(), ["checkout.session.expired"]);
    assert_eq!(stack.receiver.events()[0].json()["account"], ACCOUNT);
    assert_eq!(stack.http.send("POST", &format!("/pay/{id}"), &[], "").await.status, 409);
    assert!(stack.http.send("GET", &format!("/pay/{id}"), &[], "").await.text().contains("is expired"));
    assert_eq!(stack.http.control("POST", &session_path(&id, "expire"), Value::Null).await.status, 409);
    let read = stack.gateway.retrieve_checkout_session(Account::Connected(&account()), &id).await.unwrap();
    assert_eq!((read.status, read.url), (SessionStatus::Expired, None));
    assert_eq!(stack.receiver.events().len(), 1);
}

#[tokio::test]
async fn refunds_full_or_partial_send_charge_refunded_with_the_running_total() {
    let stack = Stack::start().await;
    let id = open_session(&stack, 1, 1000).await;
    stack.http.control("POST", &session_path(&id, "pay"), Value::Null).await;
    let view = stack.http.control("GET", &format!("/checkout/sessions/{id}"), Value::Null).await.json();
    let charge = view["fake"]["charge"].as_str().unwrap().to_owned();
    let refund = |amount: Value| {
        let (http, path) = (stack.http.clone(), format!("/charges/{charge}/refund"));
        async move { http.control("POST", &path, amount).await }
    };

    let first = refund(json!({ "amount": 300 })).await;
    assert_eq!(first.status, 200);
    assert_eq!((first.json()["object"].as_str(), first.json()["amount"].as_i64()), (Some("refund"), Some(300)));
    let rest = refund(json!({})).await;
    assert_eq!(rest.json()["amount"], 700);
    assert_eq!(refund(json!({ "amount": 1 })).await.status, 409);

    let refunded: Vec<Value> =
        stack.receiver.events().iter().map(|e| e.json()).filter(|e| e["type"] == "charge.refunded").collect();
    assert_eq!(refunded.len(), 2);
    let summary = |e: &Value| {
        let c = &e["data"]["object"];
        (
            c["id"].clone(),
            c["amount_refunded"].clone(),
            c["refunded"].clone(),
            e["data"]["previous_attributes"]["amount_refunded"].clone(),
        )
    };
    assert_eq!(summary(&refunded[0]), (json!(charge), json!(300), json!(false), json!(0)));
    assert_eq!(summary(&refunded[1]), (json!(charge), json!(1000), json!(true), json!(300)));
    assert_eq!(refunded[0]["account"], ACCOUNT);
}

/// A session of `minor` on [`ACCOUNT`], paid: its charge and PaymentIntent.
async fn paid_charge(stack: &Stack, n: u32, minor: i64) -> (String, String) {
    let id = open_session(stack, n, minor).await;
    assert_eq!(stack.http.control("POST", &session_path(&id, "pay"), Value::Null).await.status, 200);
    let view = stack.http.control("GET", &format!("/checkout/sessions/{id}"), Value::Null).await.json();
    (view["fake"]["charge"].as_str().unwrap().to_owned(), view["payment_intent"]["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_dispute_sends_charge_dispute_created_for_what_was_not_refunded_once_per_charge() {
    let stack = Stack::start().await;
    let (charge, payment_intent) = paid_charge(&stack, 1, 1000).await;
    stack.http.control("POST", &format!("/charges/{charge}/refund"), json!({ "amount": 300 })).await;
    let dispute_path = format!("/charges/{charge}/dispute");

    let disputed = stack.http.control("POST", &dispute_path, json!({})).await;
    assert_eq!(disputed.status, 200, "{}", disputed.text());
    let dispute = disputed.json();
    let id = dispute["id"].as_str().unwrap();
    assert!(id.starts_with("dp_") && id.len() == 27, "{id}");
    let summary = |d: &Value| {
        (
            d["amount"].clone(),
            d["reason"].clone(),
            d["status"].clone(),
            d["charge"].clone(),
            d["payment_intent"].clone(),
        )
    };
    let expected = (json!(700), json!("fraudulent"), json!("needs_response"), json!(charge), json!(payment_intent));
    assert_eq!(summary(&dispute), expected, "the default: all that was not refunded");
    assert_eq!(dispute["currency"], "usd");
    let due_by = dispute["evidence_details"]["due_by"].as_i64().unwrap();
    assert_eq!(due_by - dispute["created"].as_i64().unwrap(), 7 * 24 * 60 * 60);

    let events: Vec<Value> =
        stack.receiver.events().iter().map(|e| e.json()).filter(|e| e["type"] == "charge.dispute.created").collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["account"], ACCOUNT);
    assert_eq!(summary(&events[0]["data"]["object"]), expected);
    assert_eq!(events[0]["data"]["object"]["id"], id);

    let charges = stack.http.control("GET", &format!("/charges?account={ACCOUNT}"), Value::Null).await.json();
    assert_eq!(charges["data"][0]["disputed"], true);
    let disputes = stack.http.control("GET", &format!("/disputes?account={ACCOUNT}"), Value::Null).await.json();
    assert_eq!(disputes["data"], json!([dispute]));

    let again = stack.http.control("POST", &dispute_path, json!({ "amount": 100 })).await;
    assert_eq!(again.status, 409);
    assert!(again.json()["error"]["message"].as_str().unwrap().contains("already been disputed"), "{}", again.text());
    assert_eq!(stack.fake.events().iter().filter(|e| e.type_ == "charge.dispute.created").count(), 1);
}

#[tokio::test]
async fn a_dispute_of_an_unknown_charge_or_of_more_than_the_charge_is_refused() {
    let stack = Stack::start().await;
    let (charge, _) = paid_charge(&stack, 1, 1000).await;
    let dispute = |body: Value| {
        let (http, path) = (stack.http.clone(), format!("/charges/{charge}/dispute"));
        async move { http.control("POST", &path, body).await }
    };

    assert_eq!(stack.http.control("POST", "/charges/ch_nonesuch/dispute", json!({})).await.status, 404);
    assert_eq!(dispute(json!({ "amount": 1001 })).await.status, 409);
    assert_eq!(dispute(json!({ "amount": 0 })).await.status, 409);
    assert_eq!(dispute(json!({ "amount": 10, "evidence": "x" })).await.status, 400, "unknown fields");
    assert!(stack.fake.events().iter().all(|e| e.type_ != "charge.dispute.created"), "nothing refused was sent");

    // The refusals left the charge disputable: the whole charge, for the reason given.
    let disputed = dispute(json!({ "amount": 1000, "reason": "product_not_received" })).await;
    assert_eq!(disputed.status, 200, "{}", disputed.text());
    assert_eq!(
        (disputed.json()["amount"].as_i64(), disputed.json()["reason"].as_str()),
        (Some(1000), Some("product_not_received"))
    );
    assert_eq!(stack.receiver.types().last().map(String::as_str), Some("charge.dispute.created"));
}

#[tokio::test]
async fn a_dispute_is_closed_once_won_with_its_funds_reinstated_or_lost() {
    let stack = Stack::start().await;
    let (charge, _) = paid_charge(&stack, 1, 1000).await;
    let dispute = stack.http.control("POST", &format!("/charges/{charge}/dispute"), json!({})).await.json();
    let close_path = format!("/disputes/{}/close", dispute["id"].as_str().unwrap());

    assert_eq!(stack.http.control("POST", "/disputes/dp_nonesuch/close", json!({ "status": "won" })).await.status, 404);
    assert_eq!(stack.http.control("POST", &close_path, json!({ "status": "drawn" })).await.status, 400);
    assert_eq!(stack.http.control("POST", &close_path, json!({})).await.status, 400);
    let won = stack.http.control("POST", &close_path, json!({ "status": "won" })).await;
    assert_eq!(won.status, 200, "{}", won.text());
    assert_eq!((won.json()["id"].clone(), won.json()["status"].clone()), (dispute["id"].clone(), json!("won")));
    let types = stack.receiver.types();
    assert_eq!(types[types.len() - 2..], ["charge.dispute.funds_reinstated", "charge.dispute.closed"]);
    for event in stack.receiver.events().iter().rev().take(2) {
        assert_eq!(event.json()["data"]["object"]["status"], "won");
        assert_eq!(event.json()["data"]["object"]["amount"], 1000);
    }
    let again = stack.http.control("POST", &close_path, json!({ "status": "lost" })).await;
    assert_eq!(again.status, 409);
    assert!(again.json()["error"]["message"].as_str().unwrap().contains("already closed (won)"), "{}", again.text());
    assert_eq!(stack.receiver.types().len(), types.len(), "nothing more was sent");

    // Lost: only `closed`, and the money stays with the cardholder.
    let (charge, _) = paid_charge(&stack, 2, 500).await;
    let dispute = stack.http.control("POST", &format!("/charges/{charge}/dispute"), json!({})).await.json();
    let path = format!("/disputes/{}/close", dispute["id"].as_str().unwrap());
    assert_eq!(stack.http.control("POST", &path, json!({ "status": "lost" })).await.json()["status"], "lost");
    let event = stack.receiver.events().last().unwrap().json();
    assert_eq!((&event["type"], &event["data"]["object"]["status"]), (&json!("charge.dispute.closed"), &json!("lost")));
    let types = stack.receiver.types();
    assert_eq!(types[types.len() - 2..], ["charge.dispute.created", "charge.dispute.closed"]);
}

#[tokio::test]
async fn events_can_be_sent_twice() {
    let stack = Stack::start().await;
    let id = open_session(&stack, 1, 1000).await;
    stack.http.control("POST", "/events/config", json!({ "duplicate": true })).await;
    stack.http.send("POST", &format!("/pay/{id}"), &[], "").await;
    let events = stack.receiver.events();
    assert_eq!(
        stack.receiver.types(),
        [
            "payment_method.attached",
            "payment_method.attached",
            "payment_intent.succeeded",
            "payment_intent.succeeded",
            "invoice.finalized",
            "invoice.finalized",
            "invoice.paid",
            "invoice.paid",
            "checkout.session.completed",
            "checkout.session.completed"
        ]
    );
    assert_eq!(events[8].body, events[9].body, "the same event, byte for byte");
    let recorded = stack.fake.events();
    assert!(recorded.iter().all(|e| e.deliveries.len() == 2 && e.deliveries.iter().all(|d| d.status == Some(200))));
}

#[tokio::test]
async fn events_can_be_held_and_released_out_of_order() {
    let stack = Stack::start().await;
    let first = open_session(&stack, 1, 1000).await;
    let second = open_session(&stack, 2, 2000).await;
    stack.http.control("POST", "/events/config", json!({ "hold": true })).await;
    stack.http.control("POST", &session_path(&first, "pay"), Value::Null).await;
    stack.http.control("POST", &session_path(&second, "expire"), Value::Null).await;
    assert!(stack.receiver.events().is_empty());
    let held = stack.http.control("GET", "/events", Value::Null).await.json();
    let held: Vec<String> =
        held["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(
        held,
        [
            "payment_method.attached",
            "payment_intent.succeeded",
            "invoice.finalized",
            "invoice.paid",
            "checkout.session.completed",
            "checkout.session.expired"
        ]
    );

    let released = stack.http.control("POST", "/events/release", json!({ "order": "reverse" })).await.json();
    assert_eq!(released["released"].as_array().unwrap().len(), 6);
    assert_eq!(
        stack.receiver.types(),
        [
            "checkout.session.expired",
            "checkout.session.completed",
            "invoice.paid",
            "invoice.finalized",
            "payment_intent.succeeded",
            "payment_method.attached"
        ]
    );
    // Nothing is left to release; still holding new ones.
    assert_eq!(stack.http.control("POST", "/events/release", Value::Null).await.json()["released"], json!([]));

    // One event again, on demand (a late duplicate).
    let completed = stack.receiver.events()[1].json()["id"].as_str().unwrap().to_owned();
    let again = stack.http.control("POST", &format!("/events/{completed}/deliver"), Value::Null).await;
    assert_eq!(again.json()["status"], 200);
    assert_eq!(stack.receiver.types().last().map(String::as_str), Some("checkout.session.completed"));
}

#[tokio::test]
async fn events_can_arrive_late() {
    let stack = Stack::start().await;
    let id = open_session(&stack, 1, 1000).await;
    stack.http.control("POST", "/events/config", json!({ "delay_ms": 500 })).await;
    stack.http.control("POST", &session_path(&id, "pay"), Value::Null).await;
    assert!(stack.receiver.events().is_empty(), "not yet");
    // Bounded wait for the background delivery.
    for _ in 0..100 {
        if stack.receiver.events().len() == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        stack.receiver.types(),
        [
            "payment_method.attached",
            "payment_intent.succeeded",
            "invoice.finalized",
            "invoice.paid",
            "checkout.session.completed"
        ]
    );
}

#[tokio::test]
async fn a_failing_receiver_is_recorded_and_the_event_can_be_sent_again() {
    let stack = Stack::start().await;
    let id = open_session(&stack, 1, 1000).await;
    *stack.receiver.status.lock().unwrap() = 500;
    stack.http.control("POST", &session_path(&id, "expire"), Value::Null).await;
    let events = stack.http.control("GET", "/events?type=checkout.session.expired", Value::Null).await.json();
    let event = &events["data"][0];
    assert_eq!(event["deliveries"][0]["status"], 500);
    *stack.receiver.status.lock().unwrap() = 200;
    let id = event["id"].as_str().unwrap();
    assert_eq!(stack.http.control("POST", &format!("/events/{id}/deliver"), Value::Null).await.json()["status"], 200);
    assert_eq!(stack.receiver.events().len(), 2);
}

#[tokio::test]
async fn control_faults_and_the_request_log() {
    let stack = Stack::start().await;
    let set = stack
        .http
        .control("POST", "/faults", json!({ "operation": "customers.create", "fault": "429", "count": 2 }))
        .await;
    assert_eq!(set.json()["faults"][0]["remaining"], 2);
    assert_eq!(stack.http.control("POST", "/faults", json!({ "operation": "nope", "fault": "500" })).await.status, 400);
    assert_eq!(stack.http.control("POST", "/faults", json!({ "operation": "*", "fault": "teapot" })).await.status, 400);
    let raw = stack.http.api("POST", "/v1/customers", Some(ACCOUNT), Some("k"), "").await;
    assert_eq!((raw.status, raw.header("stripe-should-retry")), (429, Some("true")));
    assert_eq!(stack.http.control("DELETE", "/faults", Value::Null).await.json()["faults"], json!([]));
    assert_eq!(stack.http.api("POST", "/v1/customers", Some(ACCOUNT), Some("k"), "").await.status, 200);
    let replay = stack.http.api("POST", "/v1/customers", Some(ACCOUNT), Some("k"), "").await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));

    let log = stack.http.control("GET", "/requests?operation=customers.create", Value::Null).await.json();
    let log: Vec<(u64, bool, Option<&str>)> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["status"].as_u64().unwrap(), r["replayed"].as_bool().unwrap(), r["fault"].as_str()))
        .collect();
    assert_eq!(log, [(429, false, Some("429")), (200, false, None), (200, true, None)]);
}

#[tokio::test]
async fn idempotency_compares_parameters_not_their_order() {
    let stack = Stack::start().await;
    let a = stack.http.api("POST", "/v1/customers", Some(ACCOUNT), Some("k"), "metadata[a]=1&metadata[b]=2").await;
    let b = stack.http.api("POST", "/v1/customers", Some(ACCOUNT), Some("k"), "metadata[b]=2&metadata[a]=1").await;
    assert_eq!(a.json()["id"], b.json()["id"]);
    assert_eq!(b.header("idempotent-replayed"), Some("true"));
    // The same key on another account is another key.
    let other = stack.fake.create_account(None, false);
    let c = stack.http.api("POST", "/v1/customers", Some(&other), Some("k"), "metadata[a]=1&metadata[b]=2").await;
    assert_ne!(c.json()["id"], a.json()["id"]);
    // A validation failure is not kept under the key.
    let bad = stack.http.api("POST", "/v1/customers", Some(ACCOUNT), Some("k2"), "bogus=1").await;
    assert_eq!(bad.status, 400);
    assert_eq!(stack.http.api("POST", "/v1/customers", Some(ACCOUNT), Some("k2"), "").await.status, 200);
}

#[tokio::test]
async fn the_oauth_consent_page_redirects_with_a_code() {
    let stack = Stack::start().await;
    let page = stack.http.send("GET", "/oauth/authorize?response_type=code&client_id=ca_1&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fconnected&state=s%201", &[], "").await;
    assert!(page.text().contains("id=\"connect\""));
    let back = stack
        .http
        .send(
            "POST",
            "/oauth/authorize",
            &[("content-type", "application/x-www-form-urlencoded")],
            "redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fconnected&state=s%201",
        )
        .await;
    assert_eq!(back.status, 303);
    let location = back.header("location").unwrap();
    assert!(location.starts_with("http://localhost:3000/connected?code=ac_"), "{location}");
    assert!(location.ends_with("&scope=read_write&state=s%201"), "{location}");
    let code = location.split("code=").nth(1).unwrap().split('&').next().unwrap();
    let connected = stack.gateway.connect_account(&stripe_gateway::ids::OAuthCode::parse(code).unwrap()).await.unwrap();
    assert!(connected.account.as_str().starts_with("acct_"));
}

#[tokio::test]
async fn the_key_may_come_as_basic_auth_as_curl_sends_it() {
    let stack = Stack::start().await;
    // `curl -u sk_test_fake_4242:` sends base64("sk_test_fake_4242:").
    let basic = "Basic c2tfdGVzdF9mYWtlXzQyNDI6";
    let ok =
        stack.http.send("POST", "/v1/customers", &[("authorization", basic), ("stripe-account", ACCOUNT)], "").await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let wrong = stack.http.send("POST", "/v1/customers", &[("authorization", "Basic c2tfdGVzdF9ub3BlOg==")], "").await;
    assert_eq!(wrong.status, 401);
}

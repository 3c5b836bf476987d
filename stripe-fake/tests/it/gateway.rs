//! `stripe_gateway::client::StripeGateway` (async-stripe) against the fake, over HTTP.

use domain::{Currency, Money};
use serde_json::json;
use stripe_fake::{FaultKind, NextPaymentIntent};
use stripe_gateway::gateway::{
    Account, GatewayError, MAX_ATTEMPTS, Metadata, OffSessionCharge, OffSessionOutcome, PaymentGateway, PaymentStatus,
    SessionStatus,
};
use stripe_gateway::ids::{AccountId, CheckoutId, CustomerId, OAuthCode, PaymentMethodId};
use stripe_gateway::signature;

use crate::support::*;

async fn customer(stack: &Stack, workspace: &str) -> CustomerId {
    stack
        .gateway
        .create_customer(
            Account::Connected(&account()),
            &key(&format!("customer:{workspace}")),
            &new_customer(workspace),
        )
        .await
        .unwrap()
}

/// A paid session whose card is saved on `customer`: what an off-session charge needs.
async fn saved_card(stack: &Stack, customer: &CustomerId) -> PaymentMethodId {
    let session = stack
        .gateway
        .create_checkout_session(
            Account::Connected(&account()),
            &key(&format!("checkout:{customer}")),
            &new_session(customer, usd(1000)),
        )
        .await
        .unwrap();
    stack.fake.pay(session.id.as_str()).await.unwrap();
    let paid = stack.gateway.retrieve_checkout_session(Account::Connected(&account()), &session.id).await.unwrap();
    paid.payment_method.expect("the card is saved")
}

fn off_session(customer: &CustomerId, payment_method: &PaymentMethodId, minor: i64) -> OffSessionCharge {
    OffSessionCharge {
        customer: customer.clone(),
        payment_method: payment_method.clone(),
        amount: usd(minor),
        description: "Auto top-up".into(),
        metadata: Metadata::new().with("workspace_id", "ws-1").unwrap().with("kind", "auto_topup").unwrap(),
    }
}

#[tokio::test]
async fn a_customer_is_created_once_per_idempotency_key() {
    let stack = Stack::start().await;
    let k = key("customer:ws-1");
    let first = stack.gateway.create_customer(Account::Connected(&account()), &k, &new_customer("ws-1")).await.unwrap();
    let again = stack.gateway.create_customer(Account::Connected(&account()), &k, &new_customer("ws-1")).await.unwrap();
    assert_eq!(first, again);
    assert!(first.as_str().starts_with("cus_"));
    let other = stack
        .gateway
        .create_customer(Account::Connected(&account()), &key("customer:ws-2"), &new_customer("ws-2"))
        .await
        .unwrap();
    assert_ne!(first, other);

    let customers = stack.fake.customers(Some(ACCOUNT));
    assert_eq!(customers.len(), 2);
    assert_eq!(customers[0]["id"], first.as_str());
    assert_eq!(customers[0]["metadata"], json!({ "workspace_id": "ws-1" }));
    assert_eq!(customers[0]["description"], "workspace ws-1");
    let log = stack.requests("customers.create");
    assert_eq!(log.iter().map(|r| r.replayed).collect::<Vec<_>>(), [false, true, false]);
    assert!(log.iter().all(|r| r.account.as_deref() == Some(ACCOUNT)));
    assert_eq!(log[1].idempotency_key.as_deref(), Some("customer:ws-1"));
}

#[tokio::test]
async fn a_checkout_session_is_created_as_designed_and_read_back() {
    let stack = Stack::start().await;
    let cus = customer(&stack, "ws-1").await;
    let created = stack
        .gateway
        .create_checkout_session(Account::Connected(&account()), &key("checkout:ws-1:1"), &new_session(&cus, usd(1000)))
        .await
        .unwrap();
    assert!(created.id.as_str().starts_with("cs_test_"));
    // As long as Stripe's own (66 characters).
    assert_eq!(created.id.as_str().len(), 66);
    assert_eq!(created.url, format!("{}/pay/{}", stack.fake.url, created.id));
    assert_eq!(created.payment_status, PaymentStatus::Unpaid);
    let lifetime_s = (created.expires_at - time::OffsetDateTime::now_utc()).whole_seconds();
    assert!((24 * 3600 - 60..=24 * 3600).contains(&lifetime_s), "{lifetime_s}");

    // What went over the wire: the connected account, our idempotency key, and a card saved for
    // off-session use.
    let sent = &stack.requests("checkout.sessions.create")[0];
    assert_eq!(sent.account.as_deref(), Some(ACCOUNT));
    assert_eq!(sent.idempotency_key.as_deref(), Some("checkout:ws-1:1"));
    assert_eq!(
        sent.params,
        json!({
            "mode": "payment",
            "customer": cus.as_str(),
            "line_items": { "0": {
                "price_data": { "currency": "usd", "unit_amount": "1000", "product_data": { "name": "1,000 points" } },
                "quantity": "1",
            } },
            "payment_intent_data": {
                "setup_future_usage": "off_session",
                "metadata": { "workspace_id": "ws-1", "option_id": "opt_1", "points": "1000" },
            },
            "metadata": { "workspace_id": "ws-1", "option_id": "opt_1", "points": "1000" },
            "client_reference_id": "ws-1:topup:1",
            "success_url": "https://partner.example/topup/done?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://partner.example/topup",
            "invoice_creation": { "enabled": "true" },
        })
    );

    let read = stack.gateway.retrieve_checkout_session(Account::Connected(&account()), &created.id).await.unwrap();
    assert_eq!(read.id, created.id);
    assert_eq!(read.status, SessionStatus::Open);
    assert_eq!(read.payment_status, PaymentStatus::Unpaid);
    assert_eq!(read.amount_total, Some(usd(1000)));
    assert_eq!(read.customer, Some(cus));
    assert_eq!(read.client_reference_id.as_deref(), Some("ws-1:topup:1"));
    assert_eq!(read.metadata.get("points"), Some("1000"));
    assert_eq!((read.payment_intent, read.payment_method, read.charge), (None, None, None));
    assert_eq!(read.expires_at, created.expires_at);
    assert_eq!(read.url.as_deref(), Some(created.url.as_str()));
    // Reads carry no idempotency key.
    assert_eq!(stack.requests("checkout.sessions.retrieve")[0].idempotency_key, None);
}

#[tokio::test]
async fn paying_on_the_pay_page_sends_a_signed_webhook_for_the_connected_account() {
    let stack = Stack::start().await;
    let cus = customer(&stack, "ws-1").await;
    let created = stack
        .gateway
        .create_checkout_session(Account::Connected(&account()), &key("checkout:1"), &new_session(&cus, usd(1250)))
        .await
        .unwrap();
    let path = format!("/pay/{}", created.id);

    let page = stack.http.send("GET", &path, &[], "").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("12.50 USD"), "{html}");
    assert!(html.contains("1,000 points"));
    assert!(html.contains(&format!("<form method=\"post\" action=\"{path}\">")));
    assert!(html.contains(">Pay now</button>"));

    let paid = stack.http.send("POST", &path, &[], "").await;
    assert_eq!(paid.status, 303);
    assert_eq!(
        paid.header("location"),
        Some(format!("https://partner.example/topup/done?session={}", created.id).as_str())
    );

    // Delivered before the pay page answered: no waiting.
    let events = stack.receiver.events();
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
    let completed = &events[4];
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(signature::verify(&completed.body, completed.signature.as_deref(), &[WEBHOOK_SECRET], now), Ok(()));
    assert_eq!(
        signature::verify(&completed.body, completed.signature.as_deref(), &["whsec_other"], now),
        Err(signature::SignatureError::Mismatch)
    );
    let event = completed.json();
    assert_eq!(event["account"], ACCOUNT);
    assert_eq!(event["livemode"], false);
    assert_eq!(event["object"], "event");
    let session = &event["data"]["object"];
    assert_eq!(session["id"], created.id.as_str());
    assert_eq!(session["status"], "complete");
    assert_eq!(session["payment_status"], "paid");
    assert_eq!(session["amount_total"], 1250);
    assert_eq!(session["currency"], "usd");
    assert_eq!(session["client_reference_id"], "ws-1:topup:1");
    assert_eq!(session["metadata"]["points"], "1000");
    assert!(session["payment_intent"].as_str().unwrap().starts_with("pi_"));

    let read = stack.gateway.retrieve_checkout_session(Account::Connected(&account()), &created.id).await.unwrap();
    assert_eq!((read.status, read.payment_status), (SessionStatus::Complete, PaymentStatus::Paid));
    assert_eq!(read.payment_intent.as_ref().map(|p| p.as_str()), session["payment_intent"].as_str());
    assert!(read.payment_method.is_some() && read.charge.is_some());
    assert_eq!(read.url, None);

    // A second "Pay now" does nothing.
    let again = stack.http.send("POST", &path, &[], "").await;
    assert_eq!(again.status, 409);
    assert_eq!(stack.receiver.events().len(), 5);
    assert!(stack.http.send("GET", &path, &[], "").await.text().contains("This checkout session is complete"));
}

#[tokio::test]
async fn the_pay_page_writes_amounts_in_the_currency_s_own_decimals() {
    let stack = Stack::start().await;
    let cus = customer(&stack, "ws-1").await;
    for (code, minor, shown) in [("jpy", 1000, "1000 JPY"), ("kwd", 5120, "5.120 KWD"), ("eur", 50, "0.50 EUR")] {
        let amount = Money::from_minor(minor, Currency::parse(code).unwrap()).unwrap();
        let created = stack
            .gateway
            .create_checkout_session(
                Account::Connected(&account()),
                &key(&format!("checkout:{code}")),
                &new_session(&cus, amount),
            )
            .await
            .unwrap();
        let html = stack.http.send("GET", &format!("/pay/{}", created.id), &[], "").await.text();
        assert!(html.contains(&format!("<p class=\"amount\" id=\"amount\">{shown}</p>")), "{code}: {html}");
    }
}

#[tokio::test]
async fn off_session_charges_succeed_decline_or_need_authentication() {
    let stack = Stack::start().await;
    let cus = customer(&stack, "ws-1").await;
    let pm = saved_card(&stack, &cus).await;

    let ok = stack
        .gateway
        .charge_off_session(Account::Connected(&account()), &key("topup:ws-1:2026-11:1"), &off_session(&cus, &pm, 2000))
        .await;
    let Ok(OffSessionOutcome::Succeeded { payment_intent, charge }) = ok else { panic!("{ok:?}") };
    let sent = stack.requests("payment_intents.create").pop().unwrap();
    assert_eq!(sent.params["off_session"], "true");
    assert_eq!(sent.params["confirm"], "true");
    assert_eq!(sent.params["customer"], cus.as_str());
    assert_eq!(sent.params["payment_method"], pm.as_str());
    assert_eq!(sent.params["amount"], "2000");
    assert_eq!(sent.params["currency"], "usd");
    let pi =
        stack.http.api("GET", &format!("/v1/payment_intents/{payment_intent}"), Some(ACCOUNT), None, "").await.json();
    assert_eq!((pi["status"].as_str(), pi["amount_received"].as_i64()), (Some("succeeded"), Some(2000)));
    assert_eq!(charge.as_ref().map(|c| c.as_str()), pi["latest_charge"].as_str(), "the charge it made");

    stack.fake.next_payment_intents(NextPaymentIntent::Decline("insufficient_funds".into()), 1);
    let k = key("topup:ws-1:2026-12:1");
    let declined = stack
        .gateway
        .charge_off_session(Account::Connected(&account()), &k, &off_session(&cus, &pm, 2000))
        .await
        .unwrap();
    let OffSessionOutcome::Declined { payment_intent: Some(declined_pi), code } = &declined else {
        panic!("{declined:?}")
    };
    assert_eq!(code, "insufficient_funds");
    // The same key replays the decline (Stripe keeps 402s under the key): no second attempt.
    let replay = stack
        .gateway
        .charge_off_session(Account::Connected(&account()), &k, &off_session(&cus, &pm, 2000))
        .await
        .unwrap();
    assert_eq!(replay, declined);
    assert!(stack.requests("payment_intents.create").last().unwrap().replayed);
    let failed =
        stack.receiver.events().into_iter().rfind(|e| e.json()["type"] == "payment_intent.payment_failed").unwrap();
    assert_eq!(failed.json()["data"]["object"]["id"], declined_pi.as_str());
    assert_eq!(failed.json()["data"]["object"]["last_payment_error"]["decline_code"], "insufficient_funds");

    stack.fake.next_payment_intents(NextPaymentIntent::AuthenticationRequired, 1);
    let auth = stack
        .gateway
        .charge_off_session(Account::Connected(&account()), &key("topup:ws-1:2027-01:1"), &off_session(&cus, &pm, 2000))
        .await;
    assert!(matches!(auth, Ok(OffSessionOutcome::AuthenticationRequired { payment_intent: Some(_) })), "{auth:?}");

    // A card never saved on this customer is refused before any charge.
    let other = customer(&stack, "ws-2").await;
    let refused = stack
        .gateway
        .charge_off_session(Account::Connected(&account()), &key("topup:ws-2:1"), &off_session(&other, &pm, 2000))
        .await;
    assert!(
        matches!(refused, Err(GatewayError::InvalidRequest { ref param, .. }) if param.as_deref() == Some("payment_method")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_oauth_code_exchange_connects_an_account_once() {
    let stack = Stack::start().await;
    let issued = stack.http.control("POST", "/oauth/codes", json!({})).await.json();
    let code = OAuthCode::parse(issued["code"].as_str().unwrap()).unwrap();
    let connected = stack.gateway.connect_account(&code).await.unwrap();
    assert_eq!(connected.account.as_str(), issued["account"].as_str().unwrap());
    assert!(!connected.livemode);
    // The platform's own call: no Stripe-Account.
    assert_eq!(stack.requests("oauth.token")[0].account, None);
    assert_eq!(
        stack.requests("oauth.token")[0].params,
        json!({ "grant_type": "authorization_code", "code": code.as_str() })
    );

    // The account works at once.
    let cus = stack
        .gateway
        .create_customer(Account::Connected(&connected.account), &key("c"), &new_customer("ws-9"))
        .await
        .unwrap();
    assert_eq!(stack.fake.customers(Some(connected.account.as_str()))[0]["id"], cus.as_str());

    let used = stack.gateway.connect_account(&code).await;
    assert!(
        matches!(&used, Err(GatewayError::InvalidRequest { code: Some(c), .. }) if c == "invalid_grant"),
        "{used:?}"
    );
    let unknown = stack.gateway.connect_account(&OAuthCode::parse("ac_nonesuch").unwrap()).await;
    assert!(
        matches!(&unknown, Err(GatewayError::InvalidRequest { code: Some(c), .. }) if c == "invalid_grant"),
        "{unknown:?}"
    );

    let live = stack.http.control("POST", "/oauth/codes", json!({ "livemode": true })).await.json();
    let live = stack.gateway.connect_account(&OAuthCode::parse(live["code"].as_str().unwrap()).unwrap()).await.unwrap();
    assert!(live.livemode);
}

#[tokio::test]
async fn a_lost_oauth_answer_is_ambiguous_not_invalid() {
    let stack = Stack::start().await;
    let (code, _) = stack.fake.issue_oauth_code(None, false);
    // Stripe used the code, the answer never came back; the retry is told the code was used.
    stack.fake.fail_next("oauth.token", FaultKind::TimeoutAfter, 1, FAULT_DELAY_MS);
    let result = stack.gateway.connect_account(&OAuthCode::parse(&code).unwrap()).await;
    assert!(matches!(result, Err(GatewayError::Ambiguous(_))), "{result:?}");
    assert_eq!(stack.requests("oauth.token").len(), 2);
}

#[tokio::test]
async fn a_500_is_retried_with_the_same_key_and_creates_one_customer() {
    let stack = Stack::start().await;
    stack.fake.fail_next("customers.create", FaultKind::ServerError, 1, 0);
    let cus = stack
        .gateway
        .create_customer(Account::Connected(&account()), &key("customer:ws-1"), &new_customer("ws-1"))
        .await
        .unwrap();
    let log = stack.requests("customers.create");
    assert_eq!(log.iter().map(|r| r.status).collect::<Vec<_>>(), [500, 200]);
    assert!(log.iter().all(|r| r.idempotency_key.as_deref() == Some("customer:ws-1")));
    assert_eq!(stack.fake.customers(Some(ACCOUNT)).len(), 1);
    assert_eq!(stack.fake.customers(Some(ACCOUNT))[0]["id"], cus.as_str());

    // A 500 on every attempt: the attempts are bounded, the error says "try again later".
    stack.fake.fail_next("customers.create", FaultKind::ServerError, 100, 0);
    let err = stack
        .gateway
        .create_customer(Account::Connected(&account()), &key("customer:ws-2"), &new_customer("ws-2"))
        .await;
    assert_eq!(err, Err(GatewayError::Unavailable));
    assert!(err.unwrap_err().is_retryable());
    let attempts = stack
        .requests("customers.create")
        .iter()
        .filter(|r| r.idempotency_key.as_deref() == Some("customer:ws-2"))
        .count();
    assert_eq!(attempts, MAX_ATTEMPTS as usize);
    assert_eq!(stack.fake.customers(Some(ACCOUNT)).len(), 1);
}

#[tokio::test]
async fn a_proxy_s_html_502_is_retried_too() {
    let stack = Stack::start().await;
    stack.fake.fail_next("customers.create", FaultKind::BadGateway, 1, 0);
    stack
        .gateway
        .create_customer(Account::Connected(&account()), &key("customer:ws-1"), &new_customer("ws-1"))
        .await
        .unwrap();
    let log = stack.requests("customers.create");
    assert_eq!(log.iter().map(|r| r.status).collect::<Vec<_>>(), [502, 200]);
    assert_eq!(stack.fake.customers(Some(ACCOUNT)).len(), 1);
}

#[tokio::test]
async fn a_429_backs_off_and_retries_then_gives_up_as_rate_limited() {
    let stack = Stack::start().await;
    let cus = customer(&stack, "ws-1").await;
    stack.fake.fail_next("checkout.sessions.create", FaultKind::RateLimited, 2, 0);
    let created = stack
        .gateway
        .create_checkout_session(Account::Connected(&account()), &key("checkout:1"), &new_session(&cus, usd(1000)))
        .await
        .unwrap();
    let log = stack.requests("checkout.sessions.create");
    assert_eq!(log.iter().map(|r| r.status).collect::<Vec<_>>(), [429, 429, 200]);
    assert!(log.iter().all(|r| r.idempotency_key.as_deref() == Some("checkout:1")));
    // Each retry waited (the policy's minimum is half its base delay, 10 ms here).
    assert!(
        log.windows(2).all(|w| w[1].at_ms >= w[0].at_ms + 10),
        "{:?}",
        log.iter().map(|r| r.at_ms).collect::<Vec<_>>()
    );
    assert_eq!(stack.fake.sessions(Some(ACCOUNT)).len(), 1);
    assert_eq!(stack.fake.sessions(Some(ACCOUNT))[0]["id"], created.id.as_str());

    stack.fake.fail_next("checkout.sessions.create", FaultKind::RateLimited, 100, 0);
    let err = stack
        .gateway
        .create_checkout_session(Account::Connected(&account()), &key("checkout:2"), &new_session(&cus, usd(1000)))
        .await;
    assert_eq!(err, Err(GatewayError::RateLimited));
    assert_eq!(stack.requests("checkout.sessions.create").len(), 3 + MAX_ATTEMPTS as usize);
    assert_eq!(stack.fake.sessions(Some(ACCOUNT)).len(), 1);
}

#[tokio::test]
async fn a_timeout_after_stripe_acted_is_retried_and_replays_the_same_session() {
    let stack = Stack::start().await;
    let cus = customer(&stack, "ws-1").await;
    stack.fake.fail_next("checkout.sessions.create", FaultKind::TimeoutAfter, 1, FAULT_DELAY_MS);
    let created = stack
        .gateway
        .create_checkout_session(Account::Connected(&account()), &key("checkout:1"), &new_session(&cus, usd(1000)))
        .await
        .unwrap();
    let log = stack.requests("checkout.sessions.create");
    assert_eq!(log.len(), 2);
    assert_eq!((log[0].fault.as_deref(), log[0].status, log[0].replayed), (Some("timeout_after"), 200, false));
    assert_eq!((log[1].fault.as_deref(), log[1].status, log[1].replayed), (None, 200, true));
    let sessions = stack.fake.sessions(Some(ACCOUNT));
    assert_eq!(sessions.len(), 1, "no duplicate session");
    assert_eq!(sessions[0]["id"], created.id.as_str());

    // Lost on the way in: Stripe never acted; the retry creates the one session.
    stack.fake.fail_next("checkout.sessions.create", FaultKind::TimeoutBefore, 1, FAULT_DELAY_MS);
    let second = stack
        .gateway
        .create_checkout_session(Account::Connected(&account()), &key("checkout:2"), &new_session(&cus, usd(1000)))
        .await
        .unwrap();
    let sessions = stack.fake.sessions(Some(ACCOUNT));
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[1]["id"], second.id.as_str());

    // A timeout on every attempt: bounded, retryable.
    stack.fake.fail_next("customers.create", FaultKind::TimeoutBefore, 100, FAULT_DELAY_MS);
    let err = stack
        .gateway
        .create_customer(Account::Connected(&account()), &key("customer:ws-3"), &new_customer("ws-3"))
        .await;
    assert_eq!(err, Err(GatewayError::Unavailable));
}

#[tokio::test]
async fn a_timeout_after_an_off_session_charge_does_not_charge_twice() {
    let stack = Stack::start().await;
    let cus = customer(&stack, "ws-1").await;
    let pm = saved_card(&stack, &cus).await;
    let charges_before = stack.fake.charges(Some(ACCOUNT)).len();
    stack.fake.fail_next("payment_intents.create", FaultKind::TimeoutAfter, 1, FAULT_DELAY_MS);
    let outcome = stack
        .gateway
        .charge_off_session(Account::Connected(&account()), &key("topup:1"), &off_session(&cus, &pm, 2000))
        .await;
    assert!(matches!(outcome, Ok(OffSessionOutcome::Succeeded { .. })), "{outcome:?}");
    assert_eq!(stack.fake.charges(Some(ACCOUNT)).len(), charges_before + 1);
}

#[tokio::test]
async fn a_key_reused_with_other_parameters_is_refused() {
    let stack = Stack::start().await;
    let k = key("customer:ws-1");
    stack.gateway.create_customer(Account::Connected(&account()), &k, &new_customer("ws-1")).await.unwrap();
    let err = stack.gateway.create_customer(Account::Connected(&account()), &k, &new_customer("ws-other")).await;
    let Err(GatewayError::InvalidRequest { code, message, .. }) = &err else { panic!("{err:?}") };
    assert_eq!(code.as_deref(), Some("idempotency_error"));
    assert!(message.contains("same parameters"), "{message}");
    assert_eq!(stack.fake.customers(Some(ACCOUNT)).len(), 1);
    // Not retried: one refusal.
    assert_eq!(stack.requests("customers.create").iter().filter(|r| r.status == 400).count(), 1);
}

#[tokio::test]
async fn an_unknown_or_disconnected_account_is_refused() {
    let stack = Stack::start().await;
    let stranger = AccountId::parse("acct_1Unknown").unwrap();
    let err = stack.gateway.create_customer(Account::Connected(&stranger), &key("c"), &new_customer("ws-1")).await;
    assert!(
        matches!(&err, Err(GatewayError::Fatal(m)) if m.contains("does not have access to account 'acct_1Unknown'")),
        "{err:?}"
    );
    let refused = stack.requests("customers.create").pop().unwrap();
    assert_eq!((refused.status, refused.account.as_deref()), (403, Some("acct_1Unknown")));
    assert!(stack.fake.customers(Some("acct_1Unknown")).is_empty());

    // The partner disconnects the platform.
    let cus = customer(&stack, "ws-1").await;
    stack.http.control("POST", &format!("/accounts/{ACCOUNT}/deauthorize"), serde_json::Value::Null).await;
    assert_eq!(stack.receiver.types(), ["account.application.deauthorized"]);
    assert_eq!(stack.receiver.events()[0].json()["account"], ACCOUNT);
    let err = stack
        .gateway
        .create_checkout_session(Account::Connected(&account()), &key("k"), &new_session(&cus, usd(1000)))
        .await;
    assert!(matches!(err, Err(GatewayError::Fatal(_))), "{err:?}");
}

#[tokio::test]
async fn stripe_s_refusals_come_back_typed() {
    let stack = Stack::start().await;
    let cus = customer(&stack, "ws-1").await;
    let small = stack
        .gateway
        .create_checkout_session(Account::Connected(&account()), &key("k1"), &new_session(&cus, usd(49)))
        .await;
    let Err(GatewayError::InvalidRequest { code, param, .. }) = &small else { panic!("{small:?}") };
    assert_eq!(code.as_deref(), Some("amount_too_small"));
    assert_eq!(param.as_deref(), Some("line_items[0][price_data][unit_amount]"));

    let nobody = CustomerId::parse("cus_nobody").unwrap();
    let missing = stack
        .gateway
        .create_checkout_session(Account::Connected(&account()), &key("k2"), &new_session(&nobody, usd(1000)))
        .await;
    assert!(
        matches!(&missing, Err(GatewayError::InvalidRequest { code: Some(c), param: Some(p), .. }) if c == "resource_missing" && p == "customer"),
        "{missing:?}"
    );

    // Another account's session is not there.
    let created = stack
        .gateway
        .create_checkout_session(Account::Connected(&account()), &key("k3"), &new_session(&cus, usd(1000)))
        .await
        .unwrap();
    let other = AccountId::parse(&stack.fake.create_account(None, false)).unwrap();
    let hidden = stack.gateway.retrieve_checkout_session(Account::Connected(&other), &created.id).await;
    assert!(
        matches!(&hidden, Err(GatewayError::InvalidRequest { code: Some(c), .. }) if c == "resource_missing"),
        "{hidden:?}"
    );
    let nonesuch = CheckoutId::parse("cs_test_nonesuch").unwrap();
    assert!(stack.gateway.retrieve_checkout_session(Account::Connected(&account()), &nonesuch).await.is_err());

    // A wrong secret key.
    let wrong = gateway(&stack.fake.url, "sk_test_wrong");
    let err = wrong.create_customer(Account::Connected(&account()), &key("k4"), &new_customer("ws-1")).await;
    assert!(matches!(&err, Err(GatewayError::Fatal(m)) if m.contains("Invalid API Key")), "{err:?}");
}

#[tokio::test]
async fn nothing_listening_is_unavailable_after_bounded_attempts() {
    // A port nobody listens on (bound, then released).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = gateway(&url, SECRET_KEY)
        .create_customer(Account::Connected(&account()), &key("k"), &new_customer("ws-1"))
        .await;
    assert_eq!(err, Err(GatewayError::Unavailable));
}

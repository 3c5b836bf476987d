//! Every object, error and event the fake returns (sent, or listed by `GET /v1/events`) parses with
//! async-stripe's own types (miniserde, as async-stripe parses Stripe's answers): if the fake
//! drifts from what async-stripe requires, these fail here rather than as an opaque "error
//! deserializing request data" in the gateway.

use serde_json::{Value, json};
use stripe_fake::NextPaymentIntent;

use crate::support::*;

/// Most pages of `GET /v1/events` read (10 events each, by default).
const MAX_LIST_PAGES: usize = 20;

fn parses<T: miniserde::Deserialize>(what: &str, v: &Value) -> T {
    miniserde::json::from_str::<T>(&v.to_string())
        .unwrap_or_else(|_| panic!("async-stripe can't parse this {what}: {v:#}"))
}

/// The object of an event, by type.
fn event_object_parses(event: &Value) {
    let object = &event["data"]["object"];
    let type_ = event["type"].as_str().unwrap();
    match type_.rsplit_once('.').map(|(kind, _)| kind).unwrap_or(type_) {
        "checkout.session" => {
            let _ = parses::<stripe_shared::CheckoutSession>(type_, object);
        }
        "payment_intent" => {
            let _ = parses::<stripe_shared::PaymentIntent>(type_, object);
        }
        "charge" => {
            let _ = parses::<stripe_shared::Charge>(type_, object);
        }
        "charge.dispute" => {
            let _ = parses::<stripe_shared::Dispute>(type_, object);
        }
        "account.application" => {
            let _ = parses::<stripe_shared::Application>(type_, object);
        }
        "payment_method" => {
            let _ = parses::<stripe_shared::PaymentMethod>(type_, object);
        }
        "setup_intent" => {
            let _ = parses::<stripe_shared::SetupIntent>(type_, object);
        }
        "invoice" => {
            let _ = parses::<stripe_shared::Invoice>(type_, object);
        }
        "customer.subscription" => {
            let _ = parses::<stripe_shared::Subscription>(type_, object);
        }
        "product" => {
            let _ = parses::<stripe_shared::Product>(type_, object);
        }
        "price" => {
            let _ = parses::<stripe_shared::Price>(type_, object);
        }
        // async-stripe has its type in async-stripe-billing, which the tests don't build with
        // its parser: its fields are checked where it is made.
        "invoiceitem" => assert_eq!(object["object"], "invoiceitem"),
        other => panic!("no check for events of kind {other}"),
    }
}

#[tokio::test]
async fn objects_errors_and_events_parse_with_async_stripe_types() {
    let stack = Stack::start().await;
    let api = |method: &'static str, path: String, key: Option<&'static str>, form: &'static str| {
        let http = stack.http.clone();
        async move { http.api(method, &path, Some(ACCOUNT), key, form).await }
    };

    let customer = api("POST", "/v1/customers".into(), Some("c1"), "description=ws&metadata[workspace_id]=ws-1").await;
    assert_eq!(customer.status, 200);
    let customer = customer.json();
    parses::<stripe_shared::Customer>("customer", &customer);
    let cus = customer["id"].as_str().unwrap().to_owned();
    parses::<stripe_shared::Customer>(
        "customer",
        &stack.http.api("GET", &format!("/v1/customers/{cus}"), Some(ACCOUNT), None, "").await.json(),
    );

    let form = format!(
        "mode=payment&customer={cus}&line_items[0][price_data][currency]=eur&line_items[0][price_data][unit_amount]=990\
         &line_items[0][price_data][product_data][name]=Points&line_items[0][quantity]=2\
         &payment_intent_data[setup_future_usage]=off_session&invoice_creation[enabled]=true\
         &success_url=https://x.example/ok"
    );
    let session = stack.http.api("POST", "/v1/checkout/sessions", Some(ACCOUNT), Some("s1"), &form).await;
    assert_eq!(session.status, 200, "{}", session.text());
    let session = session.json();
    assert_eq!(session["amount_total"], 1980);
    parses::<stripe_shared::CheckoutSession>("open session", &session);
    let cs = session["id"].as_str().unwrap().to_owned();
    stack.fake.pay(&cs).await.unwrap();
    let expanded = stack
        .http
        .api("GET", &format!("/v1/checkout/sessions/{cs}?expand[]=payment_intent"), Some(ACCOUNT), None, "")
        .await
        .json();
    assert_eq!(expanded["payment_intent"]["object"], "payment_intent");
    let parsed = parses::<stripe_shared::CheckoutSession>("session with its PaymentIntent", &expanded);
    assert!(parsed.payment_intent.unwrap().as_object().is_some());
    let pi = expanded["payment_intent"]["id"].as_str().unwrap().to_owned();
    let pm = expanded["payment_intent"]["payment_method"].as_str().unwrap().to_owned();
    let ch = expanded["payment_intent"]["latest_charge"].as_str().unwrap().to_owned();
    parses::<stripe_shared::PaymentIntent>(
        "payment intent",
        &api("GET", format!("/v1/payment_intents/{pi}"), None, "").await.json(),
    );
    let charge =
        parses::<stripe_shared::Charge>("charge", &api("GET", format!("/v1/charges/{ch}"), None, "").await.json());
    assert!(charge.receipt_url.is_some());
    assert!(parsed.invoice.is_some(), "a paid session that asked for an invoice names it");
    let invoice = parses::<stripe_shared::Invoice>(
        "invoice",
        &api("GET", format!("/v1/invoices/{}", expanded["invoice"].as_str().unwrap()), None, "").await.json(),
    );
    assert_eq!((invoice.status.map(|s| s.as_str().to_owned()), invoice.amount_paid), (Some("paid".into()), 1980));
    assert_eq!(invoice.lines.data.len(), 1);
    for listed in stack.fake.invoices(Some(ACCOUNT)) {
        parses::<stripe_shared::Invoice>("listed invoice", &listed);
    }

    let refund =
        stack.http.api("POST", "/v1/refunds", Some(ACCOUNT), Some("r1"), &format!("charge={ch}&amount=500")).await;
    assert_eq!(refund.status, 200, "{}", refund.text());
    let refund = refund.json();
    parses::<stripe_shared::Refund>("refund", &refund);
    let re = refund["id"].as_str().unwrap();
    parses::<stripe_shared::Refund>("refund", &api("GET", format!("/v1/refunds/{re}"), None, "").await.json());

    // An off-session PaymentIntent, and the 402 of a declined one with its PaymentIntent inside.
    let pi_form = format!("amount=700&currency=eur&customer={cus}&payment_method={pm}&off_session=true&confirm=true");
    let ok = stack.http.api("POST", "/v1/payment_intents", Some(ACCOUNT), Some("p1"), &pi_form).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    parses::<stripe_shared::PaymentIntent>("off-session payment intent", &ok.json());
    let off_session_charge = ok.json()["latest_charge"].as_str().unwrap().to_owned();
    stack.fake.next_payment_intents(NextPaymentIntent::Decline("generic_decline".into()), 1);
    let declined = stack.http.api("POST", "/v1/payment_intents", Some(ACCOUNT), Some("p2"), &pi_form).await;
    assert_eq!(declined.status, 402);
    let error = parses::<stripe_shared::Error>("card error", &declined.json());
    assert_eq!(error.error.decline_code.as_deref(), Some("generic_decline"));
    assert_eq!(
        error.error.payment_intent.map(|p| p.status.as_str().to_owned()).as_deref(),
        Some("requires_payment_method")
    );

    // Checkout in setup mode, its SetupIntent and the card it saves, read every way.
    let setup_form = format!(
        "mode=setup&customer={cus}&currency=eur&setup_intent_data[metadata][workspace_id]=ws-1\
         &setup_intent_data[description]=Card&success_url=https://x.example/ok"
    );
    let setup = stack.http.api("POST", "/v1/checkout/sessions", Some(ACCOUNT), Some("s4"), &setup_form).await;
    assert_eq!(setup.status, 200, "{}", setup.text());
    let parsed = parses::<stripe_shared::CheckoutSession>("open setup session", &setup.json());
    assert_eq!(parsed.mode.as_str(), "setup");
    let cs4 = setup.json()["id"].as_str().unwrap().to_owned();
    let seti = setup.json()["setup_intent"].as_str().unwrap().to_owned();
    let si = parses::<stripe_shared::SetupIntent>(
        "waiting setup intent",
        &api("GET", format!("/v1/setup_intents/{seti}"), None, "").await.json(),
    );
    assert_eq!(si.status.as_str(), "requires_payment_method");
    let card = stripe_fake::Card { brand: "amex".into(), last4: "0005".into(), exp_month: 1, exp_year: 2020 };
    stack.fake.pay_with_card(&cs4, Some(card)).await.unwrap();
    let expanded =
        api("GET", format!("/v1/checkout/sessions/{cs4}?expand[]=setup_intent.payment_method"), None, "").await.json();
    let parsed = parses::<stripe_shared::CheckoutSession>("session with its SetupIntent", &expanded);
    let si = parsed.setup_intent.unwrap().into_object().unwrap();
    assert_eq!(si.status.as_str(), "succeeded");
    let saved = si.payment_method.unwrap().into_object().unwrap();
    let saved_card = saved.card.unwrap();
    assert_eq!((saved_card.brand.as_str(), saved_card.last4.as_str(), saved_card.exp_year), ("amex", "0005", 2020));
    let saved = saved.id.as_str().to_owned();
    parses::<stripe_shared::SetupIntent>(
        "setup intent",
        &api("GET", format!("/v1/setup_intents/{seti}?expand[]=payment_method"), None, "").await.json(),
    );
    for path in [format!("/v1/payment_methods/{saved}"), format!("/v1/customers/{cus}/payment_methods/{saved}")] {
        let pm = parses::<stripe_shared::PaymentMethod>("payment method", &api("GET", path, None, "").await.json());
        assert_eq!(pm.customer.map(|c| c.id().as_str().to_owned()).as_deref(), Some(cus.as_str()));
    }
    // The expired card's charge, then the card updater, then the card detached.
    let expired_form =
        format!("amount=700&currency=eur&customer={cus}&payment_method={saved}&off_session=true&confirm=true");
    let expired = stack.http.api("POST", "/v1/payment_intents", Some(ACCOUNT), Some("p3"), &expired_form).await;
    assert_eq!(expired.status, 402);
    let error = parses::<stripe_shared::Error>("expired card", &expired.json());
    assert_eq!(
        (error.error.code.map(|c| c.as_str().to_owned()), error.error.decline_code),
        (Some("expired_card".into()), None)
    );
    parses::<stripe_shared::PaymentMethod>(
        "renewed card",
        &stack.fake.update_card_expiry(&saved, 2, 2040).await.unwrap(),
    );
    let detached =
        stack.http.api("POST", &format!("/v1/payment_methods/{saved}/detach"), Some(ACCOUNT), Some("d1"), "").await;
    assert_eq!(detached.status, 200, "{}", detached.text());
    parses::<stripe_shared::PaymentMethod>("detached card", &detached.json());
    for pm in stack.fake.payment_methods(Some(ACCOUNT)) {
        parses::<stripe_shared::PaymentMethod>("listed payment method", &pm);
    }

    // Errors of every kind the fake answers.
    let refusals = [
        stack.http.api("POST", "/v1/customers", Some(ACCOUNT), Some("c1"), "description=other").await,
        stack.http.api("POST", "/v1/customers", Some("acct_nobody"), None, "").await,
        stack.http.api("GET", "/v1/charges/ch_nonesuch", Some(ACCOUNT), None, "").await,
        stack.http.api("POST", "/v1/customers", Some(ACCOUNT), None, "bogus=1").await,
        stack.http.api("POST", "/v1/nonesuch", Some(ACCOUNT), None, "").await,
        stack.http.send("POST", "/v1/customers", &[], "").await,
        stack.http.api("POST", &format!("/v1/payment_methods/{saved}/detach"), Some(ACCOUNT), Some("d2"), "").await,
        stack
            .http
            .api("GET", &format!("/v1/customers/{cus}/payment_methods/pm_nonesuch"), Some(ACCOUNT), None, "")
            .await,
        stack.http.api("POST", "/v1/checkout/sessions", Some(ACCOUNT), None, "mode=setup").await,
        stack.http.api("GET", "/v1/invoices/in_nonesuch", Some(ACCOUNT), None, "").await,
        stack
            .http
            .api(
                "POST",
                "/v1/checkout/sessions",
                Some(ACCOUNT),
                None,
                "mode=setup&currency=eur&invoice_creation[enabled]=true",
            )
            .await,
    ];
    let statuses: Vec<u16> = refusals.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [400, 403, 404, 400, 404, 401, 400, 404, 400, 404, 400]);
    for r in &refusals {
        parses::<stripe_shared::Error>("error", &r.json());
    }
    assert_eq!(refusals[0].json()["error"]["type"], "idempotency_error");
    assert_eq!(refusals[3].json()["error"]["code"], "parameter_unknown");

    // Events of every kind.
    stack.fake.refund(&ch, None).await.unwrap();
    let dispute = stack.fake.dispute(&off_session_charge, None, None).await.unwrap();
    parses::<stripe_shared::Dispute>("dispute", &dispute);
    let won = stack.fake.close_dispute(dispute["id"].as_str().unwrap(), true).await.unwrap();
    parses::<stripe_shared::Dispute>("dispute", &won);
    let cs2 = stack.http.api("POST", "/v1/checkout/sessions", Some(ACCOUNT), Some("s2"), &form).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    stack.fake.expire(&cs2).await.unwrap();
    let cs3 = stack.http.api("POST", "/v1/checkout/sessions", Some(ACCOUNT), Some("s3"), &form).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    stack.fake.make_async(&cs3).unwrap();
    stack.fake.pay(&cs3).await.unwrap();
    stack.fake.finish_async(&cs3, false).await.unwrap();
    // The same events through the List Events API, read before the account is disconnected (its
    // calls are refused after): newest first, each exactly its webhook's body.
    let mut listed: Vec<Value> = Vec::new();
    let mut query = String::new();
    for _ in 0..MAX_LIST_PAGES {
        let page = stack.http.api("GET", &format!("/v1/events?{query}"), Some(ACCOUNT), None, "").await;
        assert_eq!(page.status, 200, "{}", page.text());
        let page = page.json();
        assert_eq!((&page["object"], &page["url"]), (&json!("list"), &json!("/v1/events")));
        let data = page["data"].as_array().unwrap();
        listed.extend(data.iter().cloned());
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        query = format!("starting_after={}", data.last().unwrap()["id"].as_str().unwrap());
    }
    let sent: Vec<Value> = stack.receiver.events().iter().rev().map(Received::json).collect();
    assert_eq!(listed, sent);
    for event in &listed {
        parses::<stripe_shared::Event>("listed event", event);
        event_object_parses(event);
    }
    stack.fake.deauthorize(ACCOUNT).await.unwrap();
    let mut kinds: Vec<String> = stack.receiver.types();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "account.application.deauthorized",
            "charge.dispute.closed",
            "charge.dispute.created",
            "charge.dispute.funds_reinstated",
            "charge.refunded",
            "checkout.session.async_payment_failed",
            "checkout.session.completed",
            "checkout.session.expired",
            "invoice.finalized",
            "invoice.paid",
            "payment_intent.payment_failed",
            "payment_intent.succeeded",
            "payment_method.attached",
            "payment_method.automatically_updated",
            "payment_method.detached",
            "setup_intent.succeeded",
        ]
    );
    for received in stack.receiver.events() {
        let event = received.json();
        let parsed = parses::<stripe_shared::Event>("event", &event);
        assert_eq!(parsed.account.as_deref(), Some(ACCOUNT));
        assert!(!parsed.livemode);
        event_object_parses(&event);
    }
    assert_eq!(json!(stack.fake.events().len()), json!(stack.receiver.events().len()));
}

/// Plans billed in money: products, prices, subscriptions (and their items), their invoices, and
/// every event of a subscription's life, as async-stripe parses them.
#[tokio::test]
async fn subscription_objects_parse_with_async_stripe_types() {
    let stack = Stack::start().await;
    let api = |method: &'static str, path: String, key: Option<&'static str>, form: String| {
        let http = stack.http.clone();
        async move { http.api(method, &path, Some(ACCOUNT), key, &form).await }
    };
    let cus = api("POST", "/v1/customers".into(), Some("c1"), "description=ws".into()).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let product = api("POST", "/v1/products".into(), Some("p1"), "id=plan_starter&name=Starter".into()).await;
    assert_eq!(product.status, 200, "{}", product.text());
    parses::<stripe_shared::Product>("product", &product.json());
    let price_form = "product=plan_starter&unit_amount=1500&currency=usd&recurring[interval]=month".to_owned();
    let price = parses::<stripe_shared::Price>(
        "price",
        &api("POST", "/v1/prices".into(), Some("pr1"), price_form).await.json(),
    );
    let form = format!(
        "mode=subscription&customer={cus}&line_items[0][price]={}&line_items[0][quantity]=1\
         &subscription_data[metadata][workspace_id]=ws-1&success_url=https://x.example/ok",
        price.id
    );
    let session = api("POST", "/v1/checkout/sessions".into(), Some("s1"), form).await;
    assert_eq!(session.status, 200, "{}", session.text());
    parses::<stripe_shared::CheckoutSession>("subscription session", &session.json());
    let completed = stack.fake.pay(session.json()["id"].as_str().unwrap()).await.unwrap();
    let session = parses::<stripe_shared::CheckoutSession>("completed subscription session", &completed);
    let sub = session.subscription.expect("it names its subscription").id().as_str().to_owned();
    let subscription = parses::<stripe_shared::Subscription>(
        "subscription",
        &api("GET", format!("/v1/subscriptions/{sub}"), None, String::new()).await.json(),
    );
    let (start, end) = (subscription.items.data[0].current_period_start, subscription.items.data[0].current_period_end);
    assert!((28 * 86_400..=31 * 86_400).contains(&(end - start)), "a month: {start} to {end}");
    assert_eq!(subscription.status.as_str(), "active");
    stack
        .fake
        .set_subscription_payment_outcome(&sub, Some(NextPaymentIntent::Decline("card_declined".into())))
        .unwrap();
    stack.fake.set_clock(end).await.unwrap();
    let listed = api("GET", format!("/v1/invoices?customer={cus}"), None, String::new()).await.json();
    for invoice in listed["data"].as_array().unwrap() {
        parses::<stripe_shared::Invoice>("listed invoice", invoice);
    }
    let invoice_form = format!("customer={cus}&subscription={sub}&currency=usd");
    let draft = api("POST", "/v1/invoices".into(), Some("i1"), invoice_form).await.json();
    parses::<stripe_shared::Invoice>("draft invoice", &draft);
    let item_form =
        format!("customer={cus}&invoice={}&amount=700&currency=usd&description=x", draft["id"].as_str().unwrap());
    assert_eq!(api("POST", "/v1/invoiceitems".into(), Some("ii1"), item_form).await.status, 200);
    let declined =
        api("POST", format!("/v1/invoices/{}/pay", draft["id"].as_str().unwrap()), Some("pay1"), String::new()).await;
    assert_eq!(declined.status, 402);
    parses::<stripe_shared::Error>("declined invoice payment", &declined.json());
    let void =
        api("POST", format!("/v1/invoices/{}/void", draft["id"].as_str().unwrap()), Some("v1"), String::new()).await;
    parses::<stripe_shared::Invoice>("void invoice", &void.json());
    let cancelled = api("DELETE", format!("/v1/subscriptions/{sub}"), None, String::new()).await;
    parses::<stripe_shared::Subscription>("cancelled subscription", &cancelled.json());
    for event in stack.fake.events() {
        event_object_parses(&serde_json::from_str(&event.payload).unwrap());
    }
}

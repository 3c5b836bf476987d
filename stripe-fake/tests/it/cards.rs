//! Saved cards: Checkout in setup mode and its SetupIntent, a card's details on its
//! PaymentMethod, reading it through its customer, detaching it, expired cards, the card updater,
//! and the pay page's test cards.

use serde_json::{Value, json};
use stripe_fake::{Card, FaultKind, NextPaymentIntent};
use stripe_gateway::gateway::{Account, GatewayError, Metadata, OffSessionCharge, OffSessionOutcome, PaymentGateway};
use stripe_gateway::ids::{CheckoutId, CustomerId, PaymentMethodId};

use crate::support::*;

/// Stripe's words for a payment method charged without being saved on the customer.
const NOT_ATTACHED: &str = "The provided PaymentMethod was previously used with a PaymentIntent without Customer attachment, shared with a connected account without Customer attachment, or was detached from a Customer. It may not be used again. To use a PaymentMethod multiple times, you must attach it to a Customer first.";

/// A customer of [`ACCOUNT`], through the raw API.
async fn customer(stack: &Stack, workspace: &str) -> String {
    let created =
        stack.http.api("POST", "/v1/customers", Some(ACCOUNT), None, &format!("description={workspace}")).await;
    assert_eq!(created.status, 200, "{}", created.text());
    created.json()["id"].as_str().unwrap().to_owned()
}

fn setup_form(customer: &str) -> String {
    format!(
        "mode=setup&customer={customer}&currency=usd&setup_intent_data[metadata][workspace_id]=ws-1\
         &setup_intent_data[description]=Card+for+ws-1&metadata[workspace_id]=ws-1&client_reference_id=ws-1:card:1\
         &success_url=https://partner.example/card/done?session={{CHECKOUT_SESSION_ID}}&cancel_url=https://partner.example/card"
    )
}

/// An open setup-mode session saving a card on `customer`.
async fn setup_session(stack: &Stack, customer: &str) -> Value {
    let created = stack.http.api("POST", "/v1/checkout/sessions", Some(ACCOUNT), None, &setup_form(customer)).await;
    assert_eq!(created.status, 200, "{}", created.text());
    created.json()
}

/// A card saved on `customer` through a setup session paid with `card` (null: the default):
/// its payment method.
async fn saved_card(stack: &Stack, customer: &str, card: Value) -> String {
    let session = setup_session(stack, customer).await;
    let path = format!("/checkout/sessions/{}/pay", session["id"].as_str().unwrap());
    let body = if card.is_null() { Value::Null } else { json!({ "card": card }) };
    let saved = stack.http.control("POST", &path, body).await;
    assert_eq!(saved.status, 200, "{}", saved.text());
    let view = stack.fake.session(session["id"].as_str().unwrap()).unwrap();
    view["fake"]["payment_method"].as_str().unwrap().to_owned()
}

/// The received events of these types, in arrival order.
fn received(stack: &Stack, types: &[&str]) -> Vec<Value> {
    stack.receiver.events().iter().map(|e| e.json()).filter(|e| types.contains(&e["type"].as_str().unwrap())).collect()
}

fn card_of(pm: &Value) -> (Value, Value, Value, Value) {
    let c = &pm["card"];
    (c["brand"].clone(), c["last4"].clone(), c["exp_month"].clone(), c["exp_year"].clone())
}

fn this_year() -> u32 {
    u32::try_from(time::OffsetDateTime::now_utc().year()).unwrap()
}

#[tokio::test]
async fn a_setup_session_saves_a_card_on_its_customer_and_says_so_in_order() {
    let stack = Stack::start().await;
    let cus = customer(&stack, "ws-1").await;
    let session = setup_session(&stack, &cus).await;
    let cs = session["id"].as_str().unwrap().to_owned();
    let summary = |s: &Value| {
        (
            s["mode"].clone(),
            s["status"].clone(),
            s["payment_status"].clone(),
            s["amount_total"].clone(),
            s["currency"].clone(),
            s["customer"].clone(),
            s["payment_intent"].clone(),
        )
    };
    assert_eq!(
        summary(&session),
        (
            json!("setup"),
            json!("open"),
            json!("no_payment_required"),
            json!(null),
            json!("usd"),
            json!(cus),
            json!(null)
        )
    );
    assert_eq!(session["amount_subtotal"], json!(null));
    assert_eq!(session["url"], format!("{}/pay/{cs}", stack.fake.url));
    let seti = session["setup_intent"].as_str().unwrap().to_owned();
    assert!(seti.starts_with("seti_") && seti.len() == 29, "{seti}");

    let read_si = |expand: &'static str| {
        let (http, path) = (stack.http.clone(), format!("/v1/setup_intents/{seti}{expand}"));
        async move { http.api("GET", &path, Some(ACCOUNT), None, "").await.json() }
    };
    let waiting = read_si("").await;
    assert_eq!(
        (&waiting["status"], &waiting["usage"], &waiting["customer"], &waiting["payment_method"]),
        (&json!("requires_payment_method"), &json!("off_session"), &json!(cus), &json!(null))
    );
    assert_eq!(
        (&waiting["metadata"], &waiting["description"]),
        (&json!({ "workspace_id": "ws-1" }), &json!("Card for ws-1"))
    );
    // Nothing to pay later: no asynchronous payment.
    let refused = stack.http.control("POST", &format!("/checkout/sessions/{cs}/async"), Value::Null).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(stack.fake.make_async(&cs).is_err());

    let card = json!({ "brand": "mastercard", "last4": "4444", "exp_month": 3, "exp_year": 2031 });
    let paid = stack.http.control("POST", &format!("/checkout/sessions/{cs}/pay"), json!({ "card": card })).await;
    assert_eq!(paid.status, 200, "{}", paid.text());
    assert_eq!(
        (&paid.json()["status"], &paid.json()["payment_status"]),
        (&json!("complete"), &json!("no_payment_required"))
    );

    assert_eq!(
        stack.receiver.types(),
        ["payment_method.attached", "setup_intent.succeeded", "checkout.session.completed"]
    );
    let events: Vec<Value> = stack.receiver.events().iter().map(|e| e.json()).collect();
    assert!(events.iter().all(|e| e["account"] == ACCOUNT));
    let pm = &events[0]["data"]["object"];
    let pm_id = pm["id"].as_str().unwrap();
    assert!(pm_id.starts_with("pm_"));
    assert_eq!((&pm["customer"], &pm["type"]), (&json!(cus), &json!("card")));
    assert_eq!(card_of(pm), (json!("mastercard"), json!("4444"), json!(3), json!(2031)));
    let si = &events[1]["data"]["object"];
    assert_eq!((&si["id"], &si["status"], &si["payment_method"]), (&json!(seti), &json!("succeeded"), &json!(pm_id)));
    assert_eq!(si["metadata"], json!({ "workspace_id": "ws-1" }));
    let completed = &events[2]["data"]["object"];
    assert_eq!(summary(completed), summary(&paid.json()));
    assert_eq!((&completed["setup_intent"], &completed["url"]), (&json!(seti), &json!(null)));

    // Read back, expanded as asked.
    assert_eq!(read_si("?expand[]=payment_method").await["payment_method"]["card"]["last4"], "4444");
    let get = |query: &'static str| {
        let (http, path) = (stack.http.clone(), format!("/v1/checkout/sessions/{cs}{query}"));
        async move { http.api("GET", &path, Some(ACCOUNT), None, "").await.json() }
    };
    assert_eq!(get("").await["setup_intent"], json!(seti));
    let expanded = get("?expand[]=setup_intent").await;
    assert_eq!(
        (&expanded["setup_intent"]["id"], &expanded["setup_intent"]["payment_method"]),
        (&json!(seti), &json!(pm_id))
    );
    let deeper = get("?expand[]=setup_intent.payment_method").await;
    assert_eq!(deeper["setup_intent"]["payment_method"]["customer"], json!(cus));
    let view = stack.http.control("GET", &format!("/checkout/sessions/{cs}"), Value::Null).await.json();
    assert_eq!((&view["fake"]["setup_intent"], &view["fake"]["payment_method"]), (&json!(seti), &json!(pm_id)));
    assert_eq!(view["fake"]["charge"], json!(null));
    assert!(stack.fake.charges(Some(ACCOUNT)).is_empty(), "nothing was charged");

    // Saved once.
    assert_eq!(stack.http.control("POST", &format!("/checkout/sessions/{cs}/pay"), Value::Null).await.status, 409);
    assert_eq!(stack.receiver.events().len(), 3);
}

#[tokio::test]
async fn without_a_customer_the_card_is_saved_on_nobody() {
    let stack = Stack::start().await;
    let form = "mode=setup&currency=eur&success_url=https://partner.example/ok";
    let session = stack.http.api("POST", "/v1/checkout/sessions", Some(ACCOUNT), None, form).await.json();
    let cs = session["id"].as_str().unwrap();
    stack.fake.pay(cs).await.unwrap();
    assert_eq!(stack.receiver.types(), ["setup_intent.succeeded", "checkout.session.completed"]);
    let pm = stack.fake.session(cs).unwrap()["fake"]["payment_method"].clone();
    assert_eq!(
        stack.fake.payment_methods(Some(ACCOUNT)),
        [stack
            .http
            .api("GET", &format!("/v1/payment_methods/{}", pm.as_str().unwrap()), Some(ACCOUNT), None, "")
            .await
            .json()]
    );
    assert_eq!(stack.fake.payment_methods(Some(ACCOUNT))[0]["customer"], json!(null));
}

#[tokio::test]
async fn setup_mode_refuses_what_it_can_not_take() {
    let stack = Stack::start().await;
    let cus = customer(&stack, "ws-1").await;
    let create = |form: String| {
        let http = stack.http.clone();
        async move { http.api("POST", "/v1/checkout/sessions", Some(ACCOUNT), None, &form).await }
    };
    let error = |r: &HttpResponse| {
        let e = &r.json()["error"];
        (r.status, e["type"].clone(), e["code"].clone(), e["param"].clone(), e["message"].clone())
    };
    let items = "&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=1000\
                 &line_items[0][price_data][product_data][name]=Points";
    assert_eq!(
        error(&create(format!("{}{items}", setup_form(&cus))).await),
        (
            400,
            json!("invalid_request_error"),
            json!(null),
            json!("line_items"),
            json!("You can not pass `line_items` in `setup` mode.")
        )
    );
    let pi_data = create(format!("{}&payment_intent_data[description]=x", setup_form(&cus))).await;
    assert_eq!((pi_data.status, pi_data.json()["error"]["param"].clone()), (400, json!("payment_intent_data")));
    let no_currency = setup_form(&cus).replace("&currency=usd", "");
    assert_eq!(
        error(&create(no_currency.clone()).await),
        (
            400,
            json!("invalid_request_error"),
            json!("parameter_missing"),
            json!("currency"),
            json!("Missing required param: currency.")
        )
    );
    let unknown = create(format!("{}&setup_intent_data[usage]=on_session", setup_form(&cus))).await;
    assert_eq!(
        (unknown.status, unknown.json()["error"]["code"].clone(), unknown.json()["error"]["param"].clone()),
        (400, json!("parameter_unknown"), json!("setup_intent_data[usage]"))
    );
    let in_payment_mode = create(format!("mode=payment{items}&customer={cus}&setup_intent_data[description]=x")).await;
    assert_eq!(
        (in_payment_mode.status, in_payment_mode.json()["error"]["message"].clone()),
        (400, json!("You can not pass `setup_intent_data` in `payment` mode."))
    );
    assert!(stack.fake.sessions(Some(ACCOUNT)).is_empty(), "nothing refused was made");

    // Stripe wants a currency only to know what to offer: payment_method_types says it too.
    let by_types = create(format!("{no_currency}&payment_method_types[]=card")).await;
    assert_eq!(by_types.status, 200, "{}", by_types.text());
    assert_eq!((&by_types.json()["mode"], &by_types.json()["currency"]), (&json!("setup"), &json!(null)));
}

#[tokio::test]
async fn a_saved_card_is_read_through_its_own_customer_only_and_detached_once() {
    let stack = Stack::start().await;
    let cus = customer(&stack, "ws-1").await;
    let other = customer(&stack, "ws-2").await;
    let pm = saved_card(&stack, &cus, Value::Null).await;
    let get = |path: String| {
        let http = stack.http.clone();
        async move { http.api("GET", &path, Some(ACCOUNT), None, "").await }
    };
    let through = |c: &str| format!("/v1/customers/{c}/payment_methods/{pm}");
    let missing = |r: &HttpResponse| {
        let e = &r.json()["error"];
        (r.status, e["code"].clone(), e["param"].clone(), e["message"].clone())
    };
    let no_such_pm = (404, json!("resource_missing"), json!(null), json!(format!("No such PaymentMethod: '{pm}'")));

    let read = get(through(&cus)).await;
    assert_eq!(read.status, 200, "{}", read.text());
    let year = this_year();
    assert_eq!(card_of(&read.json()), (json!("visa"), json!("4242"), json!(12), json!(year + 3)));
    assert_eq!((&read.json()["id"], &read.json()["customer"]), (&json!(pm), &json!(cus)));
    assert_eq!(get(format!("/v1/payment_methods/{pm}")).await.json(), read.json());
    assert_eq!(missing(&get(through(&other)).await), no_such_pm, "another customer's card");
    let stranger = stack.fake.create_account(None, false);
    let elsewhere = stack.http.api("GET", &through(&cus), Some(&stranger), None, "").await;
    assert_eq!(
        missing(&elsewhere),
        (404, json!("resource_missing"), json!(null), json!(format!("No such customer: '{cus}'")))
    );

    let detach = |k: &'static str| {
        let (http, path) = (stack.http.clone(), format!("/v1/payment_methods/{pm}/detach"));
        async move { http.api("POST", &path, Some(ACCOUNT), Some(k), "").await }
    };
    let detached = detach("d1").await;
    assert_eq!(detached.status, 200, "{}", detached.text());
    assert_eq!((&detached.json()["id"], &detached.json()["customer"]), (&json!(pm), &json!(null)));
    let replayed = detach("d1").await;
    assert_eq!((replayed.status, replayed.header("idempotent-replayed")), (200, Some("true")));
    let again = detach("d2").await;
    assert_eq!(
        (again.status, again.json()["error"].clone()),
        (
            400,
            json!({
                "type": "invalid_request_error",
                "message": "The payment method you provided is not attached to a customer so detachment is impossible.",
            })
        )
    );
    assert_eq!(missing(&get(through(&cus)).await), no_such_pm, "detached");
    assert_eq!(get(format!("/v1/payment_methods/{pm}")).await.json()["customer"], json!(null));
    let detached_events = received(&stack, &["payment_method.detached"]);
    assert_eq!(detached_events.len(), 1);
    assert_eq!(detached_events[0]["data"]["object"]["customer"], json!(null));
    assert_eq!(detached_events[0]["data"]["previous_attributes"], json!({ "customer": cus }));

    // A detached card is never charged again.
    let charge = format!("amount=700&currency=usd&customer={cus}&payment_method={pm}&off_session=true&confirm=true");
    let refused = stack.http.api("POST", "/v1/payment_intents", Some(ACCOUNT), Some("p1"), &charge).await;
    assert_eq!(
        (refused.status, refused.json()["error"]["param"].clone(), refused.json()["error"]["message"].clone()),
        (400, json!("payment_method"), json!(NOT_ATTACHED))
    );
    assert!(stack.fake.charges(Some(ACCOUNT)).is_empty());

    // The request log and faults name the new calls.
    let names: Vec<usize> = ["customers.retrieve_payment_method", "payment_methods.retrieve", "payment_methods.detach"]
        .iter()
        .map(|op| stack.requests(op).len())
        .collect();
    assert_eq!(names, [4, 2, 3]);
    stack.fake.fail_next("payment_methods.detach", FaultKind::ServerError, 1, 0);
    assert_eq!(detach("d3").await.status, 500);
    let listed = stack.http.control("GET", "", Value::Null).await.json();
    assert!(listed["operations"].as_array().unwrap().contains(&json!("setup_intents.retrieve")));
}

/// An off-session charge of 20.00 USD through the gateway.
async fn charge(
    stack: &Stack,
    customer: &str,
    payment_method: &str,
    k: &str,
) -> Result<OffSessionOutcome, GatewayError> {
    let charge = OffSessionCharge {
        customer: CustomerId::parse(customer).unwrap(),
        payment_method: PaymentMethodId::parse(payment_method).unwrap(),
        amount: usd(2000),
        description: "Auto top-up".into(),
        metadata: Metadata::new(),
    };
    stack.gateway.charge_off_session(Account::Connected(&account()), &key(k), &charge).await
}

/// An open payment-mode session of 10.00 USD on `customer`, through the gateway.
async fn payment_session(stack: &Stack, customer: &CustomerId, n: u32) -> CheckoutId {
    stack
        .gateway
        .create_checkout_session(
            Account::Connected(&account()),
            &key(&format!("s{n}")),
            &new_session(customer, usd(1000)),
        )
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn an_expired_card_is_declined_off_session_until_the_card_updater_renews_it() {
    let stack = Stack::start().await;
    let cus = customer(&stack, "ws-1").await;
    let pm =
        saved_card(&stack, &cus, json!({ "brand": "visa", "last4": "0069", "exp_month": 1, "exp_year": 2020 })).await;
    let declined = charge(&stack, &cus, &pm, "t1").await.unwrap();
    let OffSessionOutcome::Declined { payment_intent: Some(pi), code } = &declined else { panic!("{declined:?}") };
    assert_eq!(code, "expired_card");
    let raw = stack.requests("payment_intents.create");
    assert_eq!(raw.last().unwrap().status, 402);
    let failed = received(&stack, &["payment_intent.payment_failed"]);
    assert_eq!(failed[0]["data"]["object"]["id"], pi.as_str());
    assert_eq!(
        failed[0]["data"]["object"]["last_payment_error"],
        json!({
            "type": "card_error",
            "code": "expired_card",
            "message": "Your card has expired.",
            "param": "exp_month",
            "doc_url": "https://stripe.com/docs/error-codes/expired-card",
        })
    );
    // A queued outcome decides over the expiry.
    stack.fake.next_payment_intents(NextPaymentIntent::Succeed, 1);
    assert!(matches!(charge(&stack, &cus, &pm, "t2").await, Ok(OffSessionOutcome::Succeeded { .. })));

    // The bank renews the card; the card updater tells.
    let year = this_year();
    let renewed = stack
        .http
        .control("POST", &format!("/payment_methods/{pm}/card"), json!({ "exp_month": 5, "exp_year": year + 4 }))
        .await;
    assert_eq!(renewed.status, 200, "{}", renewed.text());
    assert_eq!(card_of(&renewed.json()), (json!("visa"), json!("0069"), json!(5), json!(year + 4)));
    let updated = received(&stack, &["payment_method.automatically_updated"]);
    assert_eq!(updated.len(), 1);
    assert_eq!((&updated[0]["account"], &updated[0]["data"]["object"]["id"]), (&json!(ACCOUNT), &json!(pm)));
    assert_eq!(updated[0]["data"]["previous_attributes"], json!({ "card": { "exp_month": 1, "exp_year": 2020 } }));
    assert!(matches!(charge(&stack, &cus, &pm, "t3").await, Ok(OffSessionOutcome::Succeeded { .. })));

    for bad in [
        json!({ "exp_month": 13, "exp_year": 2030 }),
        json!({ "exp_month": 1 }),
        json!({ "exp_month": 1, "exp_year": 30 }),
    ] {
        let r = stack.http.control("POST", &format!("/payment_methods/{pm}/card"), bad.clone()).await;
        assert_eq!(r.status, 400, "{bad} {}", r.text());
    }
    assert_eq!(
        stack
            .http
            .control("POST", "/payment_methods/pm_nonesuch/card", json!({ "exp_month": 1, "exp_year": 2030 }))
            .await
            .status,
        404
    );
    assert_eq!(
        stack.fake.update_card_expiry(&pm, 0, 2030).await.map(|_| ()),
        Err("exp_month is 1 to 12, not 0".into())
    );
    assert_eq!(received(&stack, &["payment_method.automatically_updated"]).len(), 1, "nothing refused was sent");
}

#[tokio::test]
async fn a_card_expiring_this_month_is_still_charged() {
    let stack = Stack::start().await;
    let cus = customer(&stack, "ws-1").await;
    let session = setup_session(&stack, &cus).await;
    let cs = session["id"].as_str().unwrap();
    let saved = stack
        .http
        .send(
            "POST",
            &format!("/pay/{cs}"),
            &[("content-type", "application/x-www-form-urlencoded")],
            "card=visa_expiring",
        )
        .await;
    assert_eq!(saved.status, 303);
    assert_eq!(saved.header("location"), Some(format!("https://partner.example/card/done?session={cs}").as_str()));
    let pm = stack.fake.session(cs).unwrap()["fake"]["payment_method"].as_str().unwrap().to_owned();
    let now = time::OffsetDateTime::now_utc();
    let read = stack.http.api("GET", &format!("/v1/payment_methods/{pm}"), Some(ACCOUNT), None, "").await.json();
    assert_eq!(card_of(&read), (json!("visa"), json!("0341"), json!(u8::from(now.month())), json!(now.year())));
    let charged = charge(&stack, &cus, &pm, "t1").await;
    assert!(matches!(charged, Ok(OffSessionOutcome::Succeeded { .. })), "{charged:?}");
}

#[tokio::test]
async fn paying_with_a_chosen_card_puts_its_details_on_the_payment_method() {
    let stack = Stack::start().await;
    let cus = CustomerId::parse(&customer(&stack, "ws-1").await).unwrap();
    let cs = payment_session(&stack, &cus, 1).await;
    let pay_path = format!("/checkout/sessions/{cs}/pay");
    for bad in [
        json!({ "card": { "brand": "visa", "last4": "42", "exp_month": 1, "exp_year": 2030 } }),
        json!({ "card": { "brand": "", "last4": "4242", "exp_month": 1, "exp_year": 2030 } }),
        json!({ "card": { "brand": "visa", "last4": "4242", "exp_month": 13, "exp_year": 2030 } }),
        json!({ "card": { "brand": "visa", "last4": "4242", "exp_month": 1 } }),
        json!({ "card": { "brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2030, "cvc": "123" } }),
    ] {
        let r = stack.http.control("POST", &pay_path, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad} {}", r.text());
    }
    let bad = Card { exp_month: 0, ..Card::default() };
    assert!(stack.fake.pay_with_card(cs.as_str(), Some(bad)).await.is_err());
    assert!(stack.receiver.events().is_empty(), "nothing refused was paid");

    let card = Card { brand: "mastercard".into(), last4: "4444".into(), exp_month: 3, exp_year: 2031 };
    let paid = stack.fake.pay_with_card(cs.as_str(), Some(card)).await.unwrap();
    assert_eq!((&paid["mode"], &paid["payment_status"]), (&json!("payment"), &json!("paid")));
    let pm = stack.fake.session(cs.as_str()).unwrap()["fake"]["payment_method"].as_str().unwrap().to_owned();
    let read =
        stack.http.api("GET", &format!("/v1/customers/{cus}/payment_methods/{pm}"), Some(ACCOUNT), None, "").await;
    assert_eq!(read.status, 200, "saved for off-session use: {}", read.text());
    assert_eq!(card_of(&read.json()), (json!("mastercard"), json!("4444"), json!(3), json!(2031)));
    let created = read.json()["created"].as_i64().unwrap();
    assert!((time::OffsetDateTime::now_utc().unix_timestamp() - created).abs() < 60, "{created}");
    assert_eq!(
        stack.receiver.types(),
        [
            "payment_method.attached",
            "payment_intent.succeeded",
            "invoice.finalized",
            "invoice.paid",
            "checkout.session.completed"
        ],
        "the card saved for later, then paid"
    );

    // The control endpoint and the pay page's form, each with a card of its own.
    let cs2 = payment_session(&stack, &cus, 2).await;
    let body = json!({ "card": { "brand": "amex", "last4": "0005", "exp_month": 7, "exp_year": 2032 } });
    assert_eq!(stack.http.control("POST", &format!("/checkout/sessions/{cs2}/pay"), body).await.status, 200);
    let cs3 = payment_session(&stack, &cus, 3).await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    assert_eq!(stack.http.send("POST", &format!("/pay/{cs3}"), &form, "card=mastercard").await.status, 303);
    let listed = stack.http.control("GET", &format!("/payment_methods?account={ACCOUNT}"), Value::Null).await.json();
    let year = this_year();
    let cards: Vec<_> = listed["data"].as_array().unwrap().iter().map(card_of).collect();
    assert_eq!(
        cards,
        [
            (json!("mastercard"), json!("4444"), json!(3), json!(2031)),
            (json!("amex"), json!("0005"), json!(7), json!(2032)),
            (json!("mastercard"), json!("4444"), json!(12), json!(year + 2)),
        ]
    );
    assert!(listed["data"].as_array().unwrap().iter().all(|pm| pm["customer"] == json!(cus.as_str())));
    assert_eq!(listed["data"][1]["card"]["display_brand"], "american_express");
    assert_eq!(listed["data"][0]["card"]["fingerprint"], listed["data"][2]["card"]["fingerprint"], "the same card");
    assert_eq!(json!(stack.fake.payment_methods(Some(ACCOUNT))), listed["data"]);
    assert!(stack.fake.payment_methods(None).is_empty());
}

#[tokio::test]
async fn the_pay_page_offers_three_test_cards_and_says_what_a_setup_session_does() {
    let stack = Stack::start().await;
    let cus = customer(&stack, "ws-1").await;
    let setup = setup_session(&stack, &cus).await;
    let path = format!("/pay/{}", setup["id"].as_str().unwrap());
    let page = stack.http.send("GET", &path, &[], "").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    let year = this_year();
    for expected in [
        "<title>Save a card</title>",
        "Save a card for later payments",
        "<label for=\"card\">Test card</label><select name=\"card\" id=\"card\">",
        &format!("<option value=\"visa\" selected>Visa 4242, expires 12/{}</option>", year + 3),
        &format!("<option value=\"mastercard\">Mastercard 4444, expires 12/{}</option>", year + 2),
        "<option value=\"visa_expiring\">Visa 0341, expires this month, ",
        "<button type=\"submit\" id=\"pay\">Save card</button>",
    ] {
        assert!(html.contains(expected), "{expected} in {html}");
    }
    assert!(!html.contains("id=\"amount\""), "{html}");

    // An unknown card is refused, and the session stays open.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    assert_eq!(stack.http.send("POST", &path, &form, "card=diners").await.status, 400);
    assert!(stack.http.send("GET", &path, &[], "").await.text().contains("id=\"pay\""));
    // No card chosen: the default.
    assert_eq!(stack.http.send("POST", &path, &form, "").await.status, 303);
    let pm = &stack.fake.payment_methods(Some(ACCOUNT))[0];
    assert_eq!(card_of(pm), (json!("visa"), json!("4242"), json!(12), json!(year + 3)));
    assert!(stack.http.send("GET", &path, &[], "").await.text().contains("This checkout session is complete"));
}

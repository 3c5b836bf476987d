//! Receipts: the paid invoice a Checkout payment gets when its session asked for one
//! (`invoice_creation[enabled]`), a charge's `receipt_url`, both read on their own account only,
//! through the gateway and by hand, and the pages their URLs open.

use serde_json::{Value, json};
use stripe_fake::FaultKind;
use stripe_gateway::gateway::{
    Account, GatewayError, MAX_ATTEMPTS, Metadata, OffSessionCharge, OffSessionOutcome, PaymentGateway,
};
use stripe_gateway::ids::{AccountId, ChargeId, CheckoutId, CustomerId, InvoiceId, ReceiptId};

use crate::support::*;

async fn customer(stack: &Stack) -> CustomerId {
    stack
        .gateway
        .create_customer(Account::Connected(&account()), &key("customer:ws-1"), &new_customer("ws-1"))
        .await
        .unwrap()
}

/// The gateway's Checkout Session (10.00 USD), paid on the pay page: its id and its invoice.
async fn paid_session(stack: &Stack, cus: &CustomerId, k: &str) -> (String, String) {
    let created = stack
        .gateway
        .create_checkout_session(Account::Connected(&account()), &key(k), &new_session(cus, usd(1000)))
        .await
        .unwrap();
    stack.fake.pay(created.id.as_str()).await.unwrap();
    let session = stack.fake.session(created.id.as_str()).unwrap();
    let invoice = session["invoice"].as_str().expect("the paid session names its invoice").to_owned();
    (created.id.as_str().to_owned(), invoice)
}

fn event<'a>(events: &'a [Value], t: &str) -> &'a Value {
    events.iter().find(|e| e["type"] == t).unwrap_or_else(|| panic!("no {t} in {events:?}"))
}

#[tokio::test]
async fn a_paid_checkout_is_invoiced_on_its_own_account() {
    let stack = Stack::start().await;
    let cus = customer(&stack).await;
    let (cs, invoice) = paid_session(&stack, &cus, "checkout:1").await;
    // The gateway asks for the invoice.
    let sent = stack.requests("checkout.sessions.create").pop().unwrap();
    assert_eq!(sent.params["invoice_creation"], json!({ "enabled": "true" }), "{}", sent.params);
    assert!(invoice.starts_with("in_"), "{invoice}");

    // Stripe's events, in the order the fake sends them: the invoice's two before the session's.
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
    let events: Vec<Value> = stack.receiver.events().iter().map(Received::json).collect();
    let finalized = &event(&events, "invoice.finalized")["data"]["object"];
    assert_eq!(
        (&finalized["id"], &finalized["status"], &finalized["amount_paid"]),
        (&json!(invoice), &json!("open"), &json!(0))
    );
    let paid = &event(&events, "invoice.paid")["data"]["object"];
    assert_eq!(
        (&paid["status"], &paid["amount_paid"], &paid["currency"], &paid["customer"]),
        (&json!("paid"), &json!(1000), &json!("usd"), &json!(cus.as_str()))
    );
    let completed = &event(&events, "checkout.session.completed")["data"]["object"];
    assert_eq!((&completed["id"], &completed["invoice"]), (&json!(cs), &json!(invoice)));
    assert_eq!(completed["invoice_creation"]["enabled"], true);

    // Read on its own account, and as missing anywhere else.
    let got = stack.http.api("GET", &format!("/v1/invoices/{invoice}"), Some(ACCOUNT), None, "").await;
    assert_eq!(got.status, 200, "{}", got.text());
    let got = got.json();
    assert_eq!((&got["status"], &got["amount_paid"], &got["total"]), (&json!("paid"), &json!(1000), &json!(1000)));
    let url = got["hosted_invoice_url"].as_str().unwrap().to_owned();
    let pdf = got["invoice_pdf"].as_str().unwrap().to_owned();
    assert_eq!((url.clone(), pdf.clone()), (format!("{}/i/{invoice}", stack.fake.url), format!("{url}/pdf")));
    let other = stack.fake.create_account(None, false);
    for account in [None, Some(other.as_str())] {
        let missing = stack.http.api("GET", &format!("/v1/invoices/{invoice}"), account, None, "").await;
        assert_eq!(missing.status, 404, "{account:?}");
        assert_eq!(missing.json()["error"]["code"], "resource_missing");
    }
    assert_eq!(stack.fake.invoices(Some(ACCOUNT)).len(), 1);
    assert!(stack.fake.invoices(None).is_empty());

    // Through the gateway.
    let id = ReceiptId::Invoice(InvoiceId::parse(&invoice).unwrap());
    let links = stack.gateway.retrieve_receipt(Account::Connected(&account()), &id).await.unwrap().unwrap();
    assert_eq!((links.url.as_str(), links.pdf.as_deref()), (url.as_str(), Some(pdf.as_str())));
    let elsewhere = stack.gateway.retrieve_receipt(Account::Platform, &id).await;
    assert!(
        matches!(&elsewhere, Err(GatewayError::InvalidRequest { code: Some(c), .. }) if c == "resource_missing"),
        "{elsewhere:?}"
    );

    // The pages the customer opens: no key needed, as Stripe's.
    let page = stack.http.send("GET", &format!("/i/{invoice}"), &[], "").await;
    assert_eq!((page.status, page.header("content-type")), (200, Some("text/html; charset=utf-8")));
    let html = page.text();
    assert!(html.contains("<p id=\"status\">Paid</p>") && html.contains("10.00 USD"), "{html}");
    assert!(html.contains("1,000 points &times; 1"), "{html}");
    let document = stack.http.send("GET", &format!("/i/{invoice}/pdf"), &[], "").await;
    assert_eq!((document.status, document.header("content-type")), (200, Some("application/pdf")));
    assert!(document.text().starts_with("%PDF-") && document.text().contains("Amount paid: 10.00 USD"));
    assert_eq!(stack.http.send("GET", "/i/in_nonesuch", &[], "").await.status, 404);
}

#[tokio::test]
async fn an_off_session_charge_has_its_receipt() {
    let stack = Stack::start().await;
    let cus = customer(&stack).await;
    let (cs, _) = paid_session(&stack, &cus, "checkout:1").await;
    let paid = stack
        .gateway
        .retrieve_checkout_session(Account::Connected(&account()), &CheckoutId::parse(&cs).unwrap())
        .await
        .unwrap();
    let charge = OffSessionCharge {
        customer: cus.clone(),
        payment_method: paid.payment_method.unwrap(),
        amount: usd(2500),
        description: "Auto top-up".into(),
        metadata: Metadata::new(),
    };
    let outcome = stack.gateway.charge_off_session(Account::Connected(&account()), &key("topup:1"), &charge).await;
    let Ok(OffSessionOutcome::Succeeded { charge: Some(ch), .. }) = outcome else { panic!("{outcome:?}") };
    let got = stack.http.api("GET", &format!("/v1/charges/{ch}"), Some(ACCOUNT), None, "").await.json();
    let url = got["receipt_url"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("{}/receipts/payment/{ch}", stack.fake.url));
    let id = ReceiptId::Charge(ch.clone());
    let links = stack.gateway.retrieve_receipt(Account::Connected(&account()), &id).await.unwrap().unwrap();
    assert_eq!((links.url.as_str(), links.pdf), (url.as_str(), None));
    let other = stack.fake.create_account(None, false);
    let elsewhere = stack.gateway.retrieve_receipt(Account::Connected(&AccountId::parse(&other).unwrap()), &id).await;
    assert!(matches!(&elsewhere, Err(GatewayError::InvalidRequest { code: Some(c), .. }) if c == "resource_missing"));
    let unknown = ReceiptId::Charge(ChargeId::parse("ch_nonesuch").unwrap());
    assert!(stack.gateway.retrieve_receipt(Account::Connected(&account()), &unknown).await.is_err());

    let page = stack.http.send("GET", &format!("/receipts/payment/{ch}"), &[], "").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<p class=\"amount\" id=\"amount\">25.00 USD</p>"), "{}", page.text());
    stack.fake.refund(ch.as_str(), Some(500)).await.unwrap();
    let page = stack.http.send("GET", &format!("/receipts/payment/{ch}"), &[], "").await.text();
    assert!(page.contains("<p id=\"refunded\">Refunded 5.00 USD</p>"), "{page}");
    assert_eq!(stack.http.send("GET", "/receipts/payment/ch_nonesuch", &[], "").await.status, 404);
}

/// Reads are retried as every other call is: a failure worth retrying, then the answer; or
/// the error once the attempts are spent.
#[tokio::test]
async fn receipt_reads_are_retried_like_every_call() {
    let stack = Stack::start().await;
    let cus = customer(&stack).await;
    let (_, invoice) = paid_session(&stack, &cus, "checkout:1").await;
    let id = ReceiptId::Invoice(InvoiceId::parse(&invoice).unwrap());
    stack.fake.fail_next("invoices.retrieve", FaultKind::ServerError, 2, 0);
    assert!(stack.gateway.retrieve_receipt(Account::Connected(&account()), &id).await.unwrap().is_some());
    assert_eq!(stack.requests("invoices.retrieve").len(), 3);
    stack.fake.fail_next("invoices.retrieve", FaultKind::RateLimited, MAX_ATTEMPTS, 0);
    let limited = stack.gateway.retrieve_receipt(Account::Connected(&account()), &id).await;
    assert_eq!(limited, Err(GatewayError::RateLimited));
    stack.fake.fail_next("charges.retrieve", FaultKind::BadGateway, MAX_ATTEMPTS, 0);
    let ch = ReceiptId::Charge(ChargeId::parse("ch_any").unwrap());
    assert_eq!(
        stack.gateway.retrieve_receipt(Account::Connected(&account()), &ch).await,
        Err(GatewayError::Unavailable)
    );
}

#[tokio::test]
async fn invoices_only_where_stripe_makes_them() {
    let stack = Stack::start().await;
    let cus = customer(&stack).await;
    let payment = format!(
        "mode=payment&customer={cus}&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=700\
         &line_items[0][price_data][product_data][name]=Points&success_url=https://x.example/ok"
    );
    let refused = [
        (format!("mode=setup&customer={cus}&currency=usd&invoice_creation[enabled]=true"), "invoice_creation"),
        (format!("{payment}&invoice_creation[enabled]=maybe"), "invoice_creation[enabled]"),
        (format!("{payment}&invoice_creation[invoice_data][footer]=x"), "invoice_creation[invoice_data]"),
    ];
    for (form, param) in refused {
        let r = stack.http.api("POST", "/v1/checkout/sessions", Some(ACCOUNT), None, &form).await;
        assert_eq!((r.status, r.json()["error"]["param"].as_str()), (400, Some(param)), "{form}: {}", r.text());
    }
    let setup = stack
        .http
        .api("POST", "/v1/checkout/sessions", Some(ACCOUNT), None, &format!("mode=setup&customer={cus}&currency=usd"))
        .await
        .json();
    assert_eq!((&setup["invoice"], &setup["invoice_creation"]), (&Value::Null, &Value::Null));

    // Not asked for: none made.
    let plain = stack.http.api("POST", "/v1/checkout/sessions", Some(ACCOUNT), None, &payment).await.json();
    assert_eq!(plain["invoice_creation"]["enabled"], false);
    stack.fake.pay(plain["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(stack.fake.session(plain["id"].as_str().unwrap()).unwrap()["invoice"], Value::Null);
    assert!(stack.fake.invoices(Some(ACCOUNT)).is_empty());
    assert!(!stack.receiver.types().iter().any(|t| t.starts_with("invoice.")));

    // An asynchronous payment is invoiced when it succeeds, and its event names the invoice.
    let asked = stack
        .http
        .api("POST", "/v1/checkout/sessions", Some(ACCOUNT), None, &format!("{payment}&invoice_creation[enabled]=true"))
        .await
        .json();
    let cs = asked["id"].as_str().unwrap();
    stack.fake.make_async(cs).unwrap();
    stack.fake.pay(cs).await.unwrap();
    assert_eq!(stack.fake.session(cs).unwrap()["invoice"], Value::Null, "not paid yet");
    let succeeded = stack.fake.finish_async(cs, true).await.unwrap();
    let invoice = succeeded["invoice"].as_str().expect("invoiced once paid");
    assert_eq!(stack.fake.invoices(Some(ACCOUNT))[0]["id"], invoice);
    let types = stack.receiver.types();
    let tail: Vec<&str> = types.iter().rev().take(4).rev().map(String::as_str).collect();
    assert_eq!(
        tail,
        ["payment_intent.succeeded", "invoice.finalized", "invoice.paid", "checkout.session.async_payment_succeeded"]
    );
}

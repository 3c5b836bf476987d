//! Plans billed in money: the gateway's six calls (`create_price`, `create_subscription_checkout`,
//! `retrieve_subscription`, `update_subscription`, `charge_invoice`, `list_invoices`) against the
//! fake over HTTP, its events as the webhook parses them, the clock's renewals, and idempotent
//! replays of the raw API.

use serde_json::{Value, json};
use stripe_fake::NextPaymentIntent;
use stripe_gateway::event::{Event, EventObject};
use stripe_gateway::gateway::{Account, GatewayError, Metadata, PaymentGateway};
use stripe_gateway::ids::{CustomerId, InvoiceId, PriceId, SubscriptionId};
use stripe_gateway::subscription::{
    InvoiceCharge, InvoiceOutcome, InvoiceStatus, ItemChange, NewSubscriptionCheckout, PriceSpec, SubscriptionChange,
    SubscriptionStatus,
};

use crate::support::*;

fn acct() -> Account<'static> {
    // The fake's one account, for the life of the test binary.
    static ID: std::sync::OnceLock<stripe_gateway::ids::AccountId> = std::sync::OnceLock::new();
    Account::Connected(ID.get_or_init(account))
}

fn spec(product: &str, name: &str, minor: i64) -> PriceSpec {
    PriceSpec {
        product: product.into(),
        product_name: name.into(),
        unit_amount: usd(minor),
        metadata: Metadata::new().with("plan", product).unwrap(),
    }
}

async fn customer(stack: &Stack) -> CustomerId {
    stack.gateway.create_customer(acct(), &key("customer:ws-1"), &new_customer("ws-1")).await.unwrap()
}

/// A customer subscribed to `plan_starter` at 1,500 cents a month, through Checkout paid on the
/// fake's pay page: the customer, the price and the subscription.
async fn subscribed(stack: &Stack) -> (CustomerId, PriceId, SubscriptionId) {
    let cus = customer(stack).await;
    let price = stack
        .gateway
        .create_price(acct(), &key("price:starter:1"), &spec("plan_starter", "Starter", 1500))
        .await
        .unwrap();
    let session = NewSubscriptionCheckout {
        customer: cus.clone(),
        price: price.clone(),
        client_reference_id: "ws-1:plan:1".into(),
        metadata: Metadata::new().with("workspace_id", "ws-1").unwrap(),
        success_url: "https://partner.example/plan/done?session={CHECKOUT_SESSION_ID}".into(),
        cancel_url: "https://partner.example/plan".into(),
    };
    let created =
        stack.gateway.create_subscription_checkout(acct(), &key("plan-checkout:ws-1:1"), &session).await.unwrap();
    let completed = stack.fake.pay(created.id.as_str()).await.unwrap();
    let sub =
        SubscriptionId::parse(completed["subscription"].as_str().expect("the session names its subscription")).unwrap();
    (cus, price, sub)
}

fn charge(cus: &CustomerId, sub: &SubscriptionId, minor: i64) -> InvoiceCharge {
    InvoiceCharge {
        customer: cus.clone(),
        subscription: sub.clone(),
        amount: usd(minor),
        description: "Extra member x1, 15 of 30 days".into(),
        metadata: Metadata::new().with("workspace_id", "ws-1").unwrap(),
    }
}

fn parsed(received: &[Received], type_: &str) -> Vec<Event> {
    received.iter().filter(|r| r.json()["type"] == type_).map(|r| Event::parse(&r.body).unwrap()).collect()
}

#[tokio::test]
async fn a_price_is_created_once_with_its_product_renamed_as_asked() {
    let stack = Stack::start().await;
    let k = key("price:starter:1");
    let first = stack.gateway.create_price(acct(), &k, &spec("plan_starter", "Starter", 1500)).await.unwrap();
    let again = stack.gateway.create_price(acct(), &k, &spec("plan_starter", "Starter", 1500)).await.unwrap();
    assert_eq!(first, again, "a replay with the same key makes no second price");
    assert_eq!(stack.requests("products.create").len(), 1, "created once, after the rename found it missing");
    assert_eq!(stack.requests("products.update").iter().map(|r| r.status).collect::<Vec<_>>(), [404, 200]);
    let prices = stack.requests("prices.create");
    assert_eq!(prices.iter().map(|r| (r.status, r.replayed)).collect::<Vec<_>>(), [(200, false), (200, true)]);
    assert_eq!(prices[0].idempotency_key.as_deref(), Some("price:starter:1/price"));
    assert_eq!(prices[0].params["recurring"]["interval"], "month");
    assert_eq!(
        (&prices[0].params["unit_amount"], &prices[0].params["metadata"]["plan"]),
        (&json!("1500"), &json!("plan_starter"))
    );

    // A new amount is a new price on the same product, renamed.
    let second = stack
        .gateway
        .create_price(acct(), &key("price:starter:2"), &spec("plan_starter", "Starter plus", 1900))
        .await
        .unwrap();
    assert_ne!(second, first);
    let product = stack.http.api("GET", "/v1/products/plan_starter", Some(ACCOUNT), None, "").await.json();
    assert_eq!(product["name"], "Starter plus");
    assert_eq!(stack.requests("products.create").len(), 1);
}

#[tokio::test]
async fn a_subscription_checkout_starts_a_subscription_the_webhook_can_follow() {
    let stack = Stack::start().await;
    let (cus, price, sub) = subscribed(&stack).await;
    let s = stack.gateway.retrieve_subscription(acct(), &sub).await.unwrap();
    assert_eq!(
        (s.status, &s.customer, s.cancel_at_period_end, s.ended_at),
        (SubscriptionStatus::Active, &cus, false, None)
    );
    assert_eq!(s.items.len(), 1);
    let item = &s.items[0];
    assert_eq!(
        (&item.price, item.product.as_str(), item.unit_amount, item.quantity),
        (&price, "plan_starter", usd(1500), 1)
    );
    assert_eq!(s.billing_cycle_anchor, s.current_period_start);
    let month_s = (s.current_period_end - s.current_period_start).whole_seconds();
    assert!((28 * 86_400..=31 * 86_400).contains(&month_s), "one month: {month_s} s");
    assert_eq!(s.metadata, Metadata::new().with("workspace_id", "ws-1").unwrap());
    assert!(s.default_payment_method.is_some());
    let first_invoice = s.latest_invoice.clone().expect("its first invoice");

    let types = stack.receiver.types();
    let at = |t: &str| types.iter().position(|x| x == t).unwrap_or_else(|| panic!("no {t} in {types:?}"));
    assert!(at("customer.subscription.created") < at("invoice.paid"));
    assert!(at("invoice.paid") < at("checkout.session.completed"));
    let received = stack.receiver.events();
    let [completed] = &parsed(&received, "checkout.session.completed")[..] else { panic!("one completed session") };
    let EventObject::CheckoutSession(session) = &completed.object else { panic!("a session: {completed:?}") };
    assert_eq!((session.mode.as_deref(), session.subscription.as_ref()), (Some("subscription"), Some(&sub)));
    let [created] = &parsed(&received, "customer.subscription.created")[..] else { panic!("one created") };
    let EventObject::Subscription(object) = &created.object else { panic!("a subscription: {created:?}") };
    assert_eq!((&object.id, object.metadata.get("workspace_id").map(String::as_str)), (&sub, Some("ws-1")));
    let [paid] = &parsed(&received, "invoice.paid")[..] else { panic!("one paid invoice") };
    let EventObject::Invoice(invoice) = &paid.object else { panic!("an invoice: {paid:?}") };
    assert_eq!(
        (&invoice.id, invoice.subscription(), invoice.billing_reason.as_deref()),
        (&first_invoice, Some(&sub), Some("subscription_create"))
    );

    let page = stack.gateway.list_invoices(acct(), &cus, 10, None).await.unwrap();
    assert_eq!(page.invoices.len(), 1);
    let listed = &page.invoices[0];
    assert_eq!(
        (&listed.id, listed.status, listed.amount_paid, listed.subscription.as_ref()),
        (&first_invoice, InvoiceStatus::Paid, usd(1500), Some(&sub))
    );
    assert!(listed.hosted_invoice_url.is_some() && listed.number.is_some());
}

#[tokio::test]
async fn a_subscription_is_changed_without_proration_once_per_key() {
    let stack = Stack::start().await;
    let (_, _, sub) = subscribed(&stack).await;
    let seat = stack
        .gateway
        .create_price(acct(), &key("price:seat:1"), &spec("addon_seat", "Extra member", 500))
        .await
        .unwrap();
    let before = stack.gateway.retrieve_subscription(acct(), &sub).await.unwrap();
    let plan_item = before.items[0].id.clone();
    let change = SubscriptionChange {
        items: vec![
            ItemChange::Add {
                price: seat.clone(),
                quantity: 2,
                metadata: Metadata::new().with("addon", "seat").unwrap(),
            },
            ItemChange::Set { item: plan_item.clone(), price: Some(before.items[0].price.clone()), quantity: 3 },
        ],
        cancel_at_period_end: None,
    };
    let k = key("plan-change:ws-1:1");
    let after = stack.gateway.update_subscription(acct(), &k, &sub, &change).await.unwrap();
    let again = stack.gateway.update_subscription(acct(), &k, &sub, &change).await.unwrap();
    assert_eq!(after, again);
    assert_eq!(
        after.items.iter().map(|i| (i.price.clone(), i.quantity)).collect::<Vec<_>>(),
        [(before.items[0].price.clone(), 3), (seat.clone(), 2)]
    );
    assert_eq!(after.items[1].metadata, Metadata::new().with("addon", "seat").unwrap());
    assert_eq!(
        (after.current_period_start, after.current_period_end),
        (before.current_period_start, before.current_period_end)
    );
    let updates = stack.requests("subscriptions.update");
    assert_eq!(updates.iter().map(|r| r.replayed).collect::<Vec<_>>(), [false, true]);
    assert_eq!(updates[0].params["proration_behavior"], "none");
    assert_eq!(stack.receiver.types().iter().filter(|t| *t == "customer.subscription.updated").count(), 1);

    let seat_item = after.items[1].id.clone();
    let remove =
        SubscriptionChange { items: vec![ItemChange::Remove { item: seat_item }], cancel_at_period_end: Some(true) };
    let ending = stack.gateway.update_subscription(acct(), &key("plan-change:ws-1:2"), &sub, &remove).await.unwrap();
    assert_eq!((ending.items.len(), ending.cancel_at_period_end, ending.status), (1, true, SubscriptionStatus::Active));

    // The clock passes the period's end: it ends, as the webhook and a read both see.
    stack.fake.set_clock(ending.current_period_end.unix_timestamp() + 1).await.unwrap();
    let ended = stack.gateway.retrieve_subscription(acct(), &sub).await.unwrap();
    assert_eq!((ended.status, ended.ended_at), (SubscriptionStatus::Canceled, Some(ending.current_period_end)));
    assert_eq!(stack.receiver.types().last().map(String::as_str), Some("customer.subscription.deleted"));
    let refused = stack
        .gateway
        .update_subscription(
            acct(),
            &key("plan-change:ws-1:3"),
            &sub,
            &SubscriptionChange { items: vec![], cancel_at_period_end: Some(false) },
        )
        .await;
    assert!(matches!(refused, Err(GatewayError::InvalidRequest { .. })), "{refused:?}");
}

#[tokio::test]
async fn a_charge_now_is_paid_on_its_own_invoice_once_per_key() {
    let stack = Stack::start().await;
    let (cus, _, sub) = subscribed(&stack).await;
    let k = key("prorate:ws-1:seat:1");
    let first = stack.gateway.charge_invoice(acct(), &k, &charge(&cus, &sub, 750)).await.unwrap();
    let again = stack.gateway.charge_invoice(acct(), &k, &charge(&cus, &sub, 750)).await.unwrap();
    assert_eq!(first, again);
    let InvoiceOutcome::Paid { invoice } = first else { panic!("paid: {first:?}") };
    assert_eq!(stack.fake.invoices(Some(ACCOUNT)).len(), 2, "the first invoice and this one, not a third");
    for (op, key_) in [("invoices.create", "invoice"), ("invoiceitems.create", "item"), ("invoices.pay", "pay")] {
        let requests = stack.requests(op);
        assert_eq!(requests.iter().map(|r| r.replayed).collect::<Vec<_>>(), [false, true], "{op}");
        assert_eq!(requests[0].idempotency_key, Some(format!("prorate:ws-1:seat:1/{key_}")));
    }
    let created = &stack.requests("invoices.create")[0].params;
    assert_eq!(
        (
            &created["collection_method"],
            &created["auto_advance"],
            &created["pending_invoice_items_behavior"],
            &created["subscription"]
        ),
        (&json!("charge_automatically"), &json!("false"), &json!("exclude"), &json!(sub.as_str()))
    );
    let raw = stack.http.api("GET", &format!("/v1/invoices/{invoice}"), Some(ACCOUNT), None, "").await.json();
    assert_eq!(
        (&raw["status"], &raw["amount_paid"], &raw["billing_reason"]),
        (&json!("paid"), &json!(750), &json!("manual"))
    );
    assert_eq!(raw["lines"]["data"][0]["description"], "Extra member x1, 15 of 30 days");
    assert_eq!(raw["parent"]["subscription_details"]["subscription"], sub.as_str());
}

#[tokio::test]
async fn a_declined_charge_now_is_declined_with_its_invoice_voided() {
    let stack = Stack::start().await;
    let (cus, _, sub) = subscribed(&stack).await;
    stack
        .fake
        .set_subscription_payment_outcome(sub.as_str(), Some(NextPaymentIntent::Decline("insufficient_funds".into())))
        .unwrap();
    let k = key("prorate:ws-1:seat:2");
    let outcome = stack.gateway.charge_invoice(acct(), &k, &charge(&cus, &sub, 750)).await.unwrap();
    let InvoiceOutcome::Declined { invoice, code } = &outcome else { panic!("declined: {outcome:?}") };
    assert_eq!(code, "insufficient_funds");
    let raw = stack.http.api("GET", &format!("/v1/invoices/{invoice}"), Some(ACCOUNT), None, "").await.json();
    assert_eq!((&raw["status"], &raw["amount_due"], &raw["amount_paid"]), (&json!("void"), &json!(0), &json!(0)));
    assert_eq!(stack.requests("invoices.pay")[0].status, 402);
    assert_eq!(stack.requests("invoices.void")[0].idempotency_key.as_deref(), Some("prorate:ws-1:seat:2/void"));
    // A replay makes nothing new and says the same.
    let invoices = stack.fake.invoices(Some(ACCOUNT)).len();
    assert_eq!(stack.gateway.charge_invoice(acct(), &k, &charge(&cus, &sub, 750)).await.unwrap(), outcome);
    assert_eq!(stack.fake.invoices(Some(ACCOUNT)).len(), invoices);
    assert!(stack.requests("invoices.void").iter().skip(1).all(|r| r.replayed));
    // The subscription itself is untouched by a charge now's decline.
    let s = stack.gateway.retrieve_subscription(acct(), &sub).await.unwrap();
    assert_eq!(s.status, SubscriptionStatus::Active);

    stack.fake.set_subscription_payment_outcome(sub.as_str(), Some(NextPaymentIntent::AuthenticationRequired)).unwrap();
    let outcome =
        stack.gateway.charge_invoice(acct(), &key("prorate:ws-1:seat:3"), &charge(&cus, &sub, 750)).await.unwrap();
    assert!(
        matches!(&outcome, InvoiceOutcome::Declined { code, .. } if code == "authentication_required"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn renewals_follow_the_clock_and_a_late_payment_makes_it_active_again() {
    let stack = Stack::start().await;
    let (cus, _, sub) = subscribed(&stack).await;
    let first = stack.gateway.retrieve_subscription(acct(), &sub).await.unwrap();
    stack
        .fake
        .set_subscription_payment_outcome(sub.as_str(), Some(NextPaymentIntent::Decline("card_declined".into())))
        .unwrap();
    let moved = stack.fake.set_clock(first.current_period_end.unix_timestamp()).await.unwrap();
    assert_eq!(moved["subscriptions"][0]["status"], "past_due");
    let late = stack.gateway.retrieve_subscription(acct(), &sub).await.unwrap();
    assert_eq!((late.status, late.current_period_start), (SubscriptionStatus::PastDue, first.current_period_end));
    let open = late.latest_invoice.clone().unwrap();
    let failed = parsed(&stack.receiver.events(), "invoice.payment_failed");
    let EventObject::Invoice(failed) = &failed[0].object else { panic!("an invoice") };
    assert_eq!((&failed.id, failed.billing_reason.as_deref()), (&open, Some("subscription_cycle")));

    let paid = stack.http.control("POST", &format!("/invoices/{open}/pay"), Value::Null).await;
    assert_eq!((paid.status, &paid.json()["status"]), (200, &json!("paid")));
    let again = stack.gateway.retrieve_subscription(acct(), &sub).await.unwrap();
    assert_eq!(again.status, SubscriptionStatus::Active);
    assert_eq!(stack.receiver.types().last().map(String::as_str), Some("customer.subscription.updated"));

    // Pages of the customer's invoices, newest first.
    let page = stack.gateway.list_invoices(acct(), &cus, 1, None).await.unwrap();
    assert_eq!((page.invoices.len(), page.has_more, &page.invoices[0].id), (1, true, &open));
    let next = stack.gateway.list_invoices(acct(), &cus, 1, Some(&open)).await.unwrap();
    assert_eq!((next.invoices[0].billing_reason.as_deref(), next.has_more), (Some("subscription_create"), false));
    let unknown = InvoiceId::parse("in_nope").unwrap();
    let refused = stack.gateway.list_invoices(acct(), &cus, 1, Some(&unknown)).await;
    assert!(matches!(refused, Err(GatewayError::InvalidRequest { .. })), "{refused:?}");

    // The clock control: never back, and its answer is the fake's time.
    let back = stack.http.control("POST", "/clock", json!({ "now": 1 })).await;
    assert_eq!(back.status, 400);
    let now = stack.http.control("GET", "/clock", Value::Null).await.json();
    assert_eq!(now["now"], json!(stack.fake.clock_now()));
}

#[tokio::test]
async fn the_raw_api_replays_its_creates_and_refuses_what_stripe_refuses() {
    let stack = Stack::start().await;
    let (cus, price, sub) = subscribed(&stack).await;
    let api = |method: &'static str, path: String, k: Option<&'static str>, form: String| {
        let http = stack.http.clone();
        async move { http.api(method, &path, Some(ACCOUNT), k, &form).await }
    };
    let form = format!("customer={cus}&subscription={sub}&currency=usd&auto_advance=false");
    let draft = api("POST", "/v1/invoices".into(), Some("inv-1"), form.clone()).await;
    let replay = api("POST", "/v1/invoices".into(), Some("inv-1"), form.clone()).await;
    assert_eq!(
        (draft.status, &draft.json()["status"], replay.header("idempotent-replayed")),
        (200, &json!("draft"), Some("true"))
    );
    assert_eq!(draft.json()["id"], replay.json()["id"]);
    let other = api("POST", "/v1/invoices".into(), Some("inv-1"), format!("{form}&description=x")).await;
    assert_eq!((other.status, &other.json()["error"]["type"]), (400, &json!("idempotency_error")));
    let id = draft.json()["id"].as_str().unwrap().to_owned();
    // A void of a draft is refused (Stripe deletes drafts); a pending item waits for the next renewal.
    assert_eq!(api("POST", format!("/v1/invoices/{id}/void"), None, String::new()).await.status, 400);
    let pending = api(
        "POST",
        "/v1/invoiceitems".into(),
        Some("ii-1"),
        format!("customer={cus}&subscription={sub}&amount=300&currency=usd&description=later"),
    )
    .await;
    assert_eq!((pending.status, &pending.json()["invoice"]), (200, &Value::Null));
    let s = stack.gateway.retrieve_subscription(acct(), &sub).await.unwrap();
    stack.fake.set_clock(s.current_period_end.unix_timestamp()).await.unwrap();
    let renewed = stack.gateway.retrieve_subscription(acct(), &sub).await.unwrap();
    let invoice =
        api("GET", format!("/v1/invoices/{}", renewed.latest_invoice.unwrap()), None, String::new()).await.json();
    assert_eq!((&invoice["total"], &invoice["status"]), (&json!(1800), &json!("paid")));
    // Another account sees none of it; a subscription can be cancelled now, once.
    let elsewhere = stack.http.api("GET", &format!("/v1/subscriptions/{sub}"), None, None, "").await;
    assert_eq!((elsewhere.status, &elsewhere.json()["error"]["code"]), (404, &json!("resource_missing")));
    let cancelled = api("DELETE", format!("/v1/subscriptions/{sub}"), None, String::new()).await;
    assert_eq!((cancelled.status, &cancelled.json()["status"]), (200, &json!("canceled")));
    assert_eq!(api("DELETE", format!("/v1/subscriptions/{sub}"), None, String::new()).await.status, 400);
    let checkout = api(
        "POST",
        "/v1/checkout/sessions".into(),
        None,
        format!("mode=subscription&customer={cus}&line_items[0][price]={price}&payment_intent_data[description]=x"),
    )
    .await;
    assert_eq!(checkout.status, 400);
}

//! What the logs say, and what they never say. Every line a request writes carries its request
//! id and operation (and the tenant, once known); no line carries a secret, card data or a
//! webhook's body. The logs of a whole money-in flow (connect, checkout, pay, every webhook
//! delivery, a refund, refused deliveries) are captured and searched.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use stripe_gateway::signature;
use time::OffsetDateTime;

use crate::api::checkout::{events_of, seller, session};
use crate::api::{Api, P, W, req};

/// The log lines written on this thread while it captures (a test's current-thread runtime
/// runs everything it starts on its own thread, the fake Stripe included).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

/// Writes to the capture of the thread it writes on.
struct ThreadCapture;

impl Write for ThreadCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(captured) = c.borrow().as_ref() {
                captured.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One process-wide subscriber in the production format, enabled only on a capturing thread.
/// (A thread-local default subscriber would race the other tests over tracing's per-callsite
/// cache and miss lines; a filter asked at every event doesn't.)
fn capture_this_thread() -> Captured {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        use tracing_subscriber::prelude::*;
        let only_while_capturing = tracing_subscriber::filter::filter_fn(|_| CAPTURE.with(|c| c.borrow().is_some()));
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(|| ThreadCapture)
            .with_filter(only_while_capturing);
        tracing_subscriber::registry().with(layer).init();
    });
    let captured = Captured::default();
    CAPTURE.with(|c| *c.borrow_mut() = Some(captured.clone()));
    captured
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("a JSON log line: {l}"))).collect()
    }
}

/// Alone in its process (`scripts/test` runs it so): tracing caches per call site whether
/// anyone listens, and the other tests of this binary hit the same call sites with nobody
/// listening, so among them this capture misses lines.
#[tokio::test]
#[ignore = "owns the process's tracing subscriber: scripts/test runs it alone"]
async fn webhook_logs_name_the_request_and_never_a_secret_or_a_body() {
    let logs = capture_this_thread();
    let api = Api::memory().await;
    api.tenants().await;
    let option = seller(&api, P).await;
    let id = session(&api, P, W, &option).await;
    api.stripe.pay(&id).await.unwrap();
    let events = events_of(&api, W);
    for (_, payload) in &events {
        api.deliver(payload).await.ok(200);
    }
    let charge = api.stripe.session(&id).unwrap()["payment_intent"]["latest_charge"].as_str().unwrap().to_owned();
    api.stripe.refund(&charge, Some(100)).await.unwrap();
    for (kind, payload) in events_of(&api, W) {
        if kind == "charge.refunded" {
            api.deliver(&payload).await.ok(200);
        }
    }
    // Refused: a wrong signature, and another partner's account.
    let (_, completed) = events.iter().find(|(t, _)| t == "checkout.session.completed").unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let forged = signature::sign(completed.as_bytes(), &["whsec_forged"], now);
    api.call(req("POST /stripe/webhook").no_key().header("stripe-signature", &forged).raw(completed)).await;
    let mut elsewhere: Value = serde_json::from_str(completed).unwrap();
    elsewhere["account"] = json!("acct_elsewhere");
    api.deliver(&elsewhere.to_string()).await.invalid("account");

    let lines = logs.lines();
    let text: String = lines.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
    let card = api.stripe.session(&id).unwrap()["fake"]["payment_method"].as_str().unwrap().to_owned();
    for secret in [
        local::stripe::FAKE_WEBHOOK_SECRET,
        local::stripe::FAKE_SECRET_KEY,
        "whsec_forged",
        "v1=",
        card.as_str(),
        // A body: Stripe's event envelope or the object inside it.
        "\\\"object\\\":\\\"event\\\"",
        "\"object\":\"event\"",
        "payment_method_types",
        "amount_total",
    ] {
        assert!(!text.contains(secret), "the logs contain {secret:?}:\n{text}");
    }
    // Every line a webhook request wrote names it; those about the payment name the tenant.
    let webhook: Vec<&Value> = lines.iter().filter(|l| l["span"]["operation"] == "POST /stripe/webhook").collect();
    assert!(webhook.len() >= 6, "{} webhook lines of {}", webhook.len(), lines.len());
    for l in &webhook {
        assert!(l["span"]["request_id"].as_str().is_some_and(|r| r.starts_with("req-")), "{l}");
    }
    let credited = webhook
        .iter()
        .find(|l| l["fields"]["outcome"] == "credited")
        .unwrap_or_else(|| panic!("a line for the credit: {webhook:?}"));
    assert_eq!((&credited["span"]["partner"], &credited["span"]["workspace"]), (&json!(P), &json!(W)), "{credited}");
    // The checkout's lines name the workspace from the token.
    let checkout = lines.iter().find(|l| l["span"]["operation"] == "POST /workspace/checkout").unwrap();
    assert_eq!((&checkout["span"]["partner"], &checkout["span"]["workspace"]), (&json!(P), &json!(W)));
}

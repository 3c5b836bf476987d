//! Sending events: signed with the webhook secret (`stripe_gateway::signature::sign`), POSTed to
//! the configured URL, each delivery recorded. By default an event leaves before the call that
//! caused it answers; [`crate::DeliveryMode`] holds them, sends them twice or late.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::Fake;
use crate::state::{Delivery, Hold, now_ms, now_s};

/// How long a receiver gets to answer (Stripe's own limit is in this range).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client events leave through (plain HTTP: receivers are local).
#[derive(Clone)]
pub struct Sender {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Sender {
    pub fn new() -> Self {
        Self { client: Client::builder(TokioExecutor::new()).build_http() }
    }
}

impl Default for Sender {
    fn default() -> Self {
        Self::new()
    }
}

/// Sends (or holds) the events queued since the last call, as the delivery mode says.
pub async fn dispatch(fake: &Fake) {
    let (ids, mode) = {
        let mut state = fake.state();
        let ids: Vec<String> = state.outbox.drain(..).collect();
        if state.delivery.hold {
            for id in &ids {
                if let Some(e) = state.event_mut(id) {
                    e.hold = Hold::Held;
                }
            }
            return;
        }
        (ids, state.delivery)
    };
    let copies = if mode.duplicate { 2 } else { 1 };
    if mode.delay_ms > 0 {
        let fake = fake.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(mode.delay_ms)).await;
            for id in &ids {
                for _ in 0..copies {
                    deliver(&fake, id).await;
                }
            }
        });
        return;
    }
    for id in &ids {
        for _ in 0..copies {
            deliver(&fake.clone(), id).await;
        }
    }
}

/// Sends one event now (again, if it was sent before), signed at the current time. A held event
/// is held no more; a dropped one stays dropped, its automatic delivery still lost.
pub async fn deliver(fake: &Fake, id: &str) -> Option<Delivery> {
    let (payload, platform) = {
        let mut state = fake.state();
        let event = state.event_mut(id)?;
        if event.hold == Hold::Held {
            event.hold = Hold::NotHeld;
        }
        (event.payload.clone(), event.account.is_none())
    };
    let config = fake.config();
    let (url, secret) = if platform {
        (&config.platform_webhook_url, &config.platform_webhook_secret)
    } else {
        (&config.webhook_url, &config.webhook_secret)
    };
    let delivery = match url {
        None => Delivery { at_ms: now_ms(), status: None, error: Some("no webhook URL configured".into()) },
        Some(url) => post(fake, url, secret, payload).await,
    };
    tracing::info!(event = id, status = ?delivery.status, error = ?delivery.error, "event delivered");
    if let Some(event) = fake.state().event_mut(id) {
        event.deliveries.push(delivery.clone());
    }
    Some(delivery)
}

async fn post(fake: &Fake, url: &str, secret: &str, payload: String) -> Delivery {
    let at_ms = now_ms();
    let signature = stripe_gateway::signature::sign(payload.as_bytes(), &[secret], now_s());
    let request = hyper::Request::post(url)
        .header(hyper::header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(hyper::header::USER_AGENT, "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
        .header("stripe-signature", signature)
        .body(Full::new(Bytes::from(payload)));
    let request = match request {
        Ok(r) => r,
        Err(e) => return Delivery { at_ms, status: None, error: Some(format!("bad webhook URL: {e}")) },
    };
    let sent = async {
        let response = fake.inner.webhooks.client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        // Read the answer so the connection closes cleanly; its content doesn't matter.
        let _ = response.into_body().collect().await;
        Ok::<_, String>(status)
    };
    match tokio::time::timeout(DELIVERY_TIMEOUT, sent).await {
        Ok(Ok(status)) => Delivery { at_ms, status: Some(status), error: None },
        Ok(Err(e)) => Delivery { at_ms, status: None, error: Some(e) },
        Err(_) => Delivery { at_ms, status: None, error: Some("the receiver did not answer in time".into()) },
    }
}

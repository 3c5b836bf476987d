//! A fake Stripe that the gateway's client can talk to (`StripeConfig::with_base`), for tests and the
//! local runner. It keeps state in memory, checks the secret key, `Stripe-Account` and idempotency
//! keys as Stripe does, fails on demand, serves a pay page per Checkout Session and an OAuth
//! consent page, and sends signed webhooks as Stripe does: connected accounts' events (with the
//! Connect `account` set) to one endpoint, the platform account's own to another, each signed
//! with its endpoint's secret.
//!
//! Endpoints (`/v1` answers Stripe-shaped JSON; see `api.rs` for each operation's name):
//! - `POST /v1/customers`, `GET /v1/customers/{id}`,
//!   `GET /v1/customers/{id}/payment_methods/{pm}` (only a card saved on that customer)
//! - `POST /v1/checkout/sessions` (`mode=payment`, or `mode=setup` to save a card),
//!   `GET /v1/checkout/sessions/{id}` (`expand[]=payment_intent`, `expand[]=setup_intent`),
//!   `POST /v1/checkout/sessions/{id}/expire`
//! - `POST /v1/payment_intents`, `GET /v1/payment_intents/{id}`
//! - `GET /v1/payment_methods/{pm}`, `POST /v1/payment_methods/{pm}/detach`
//! - `GET /v1/setup_intents/{id}` (`expand[]=payment_method`)
//! - `GET /v1/charges/{id}` (its `receipt_url`), `POST /v1/refunds`, `GET /v1/refunds/{id}`
//! - `POST /v1/checkout/sessions` with `mode=subscription` (`line_items[n][price]`, `quantity`,
//!   `subscription_data[metadata]`, `customer`): paying it starts a subscription
//! - `POST /v1/products` (with an `id` of the caller's), `POST|GET /v1/products/{id}`,
//!   `POST /v1/prices`, `GET /v1/prices/{id}`
//! - `GET|POST|DELETE /v1/subscriptions/{id}` (items, `cancel_at_period_end`, metadata; cancel
//!   now); renewals as the fake's clock passes a period's end (`/_fake/clock`)
//! - `GET /v1/invoices/{id}` (the paid invoice of a `payment` session created with
//!   `invoice_creation[enabled]=true`, a subscription's invoices, drafts made through the API),
//!   `GET /v1/invoices` (`customer`, `subscription`, `status`, `limit`, `starting_after`),
//!   `POST /v1/invoices` (a draft), `POST /v1/invoices/{id}/pay`, `POST /v1/invoices/{id}/void`,
//!   `POST /v1/invoiceitems`
//! - `GET /v1/events` (the List Events API: the calling account's events, newest first, each as
//!   its webhook's body, delivered or not; `created[gt|gte|lt|lte]`, `types[]`, `type` with `*`
//!   wildcards, `limit`, `starting_after`, `ending_before`)
//! - `POST /oauth/token` (Connect's code exchange, on connect.stripe.com in production)
//! - `GET|POST /oauth/authorize` (the consent page: "Connect" redirects with a code)
//! - `GET /pay/{session}`, `POST /pay/{session}` (the pay page: pay, or save a card, with one of
//!   three test cards)
//! - `GET /i/{invoice}`, `GET /i/{invoice}/pdf` (an invoice's `hosted_invoice_url` and
//!   `invoice_pdf`), `GET /receipts/payment/{charge}` (a charge's `receipt_url`)
//! - `/_fake/...`: control, see `control.rs`.

// serde_json's `json!` recurses once per field, and Stripe objects have many.
#![recursion_limit = "256"]

pub mod api;
pub mod control;
pub mod form;
pub mod pages;
pub mod state;
pub mod webhooks;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use state::State;
pub use state::{Card, DeliveryMode, Fault, FaultKind, NextPaymentIntent, TestCard};

/// Largest request body read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the fake is told at start.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// The only secret key accepted (`Authorization: Bearer ...`); must start with `sk_test_`.
    pub secret_key: String,
    /// Where connected accounts' events are POSTed (the Connect endpoint); none: they are only
    /// recorded.
    pub webhook_url: Option<String>,
    /// Signs them (`Stripe-Signature`).
    pub webhook_secret: String,
    /// Where the platform account's own events are POSTed (an account endpoint); none: they
    /// are only recorded.
    pub platform_webhook_url: Option<String>,
    /// Signs those.
    pub platform_webhook_secret: String,
    /// The base of the URLs the fake hands out (the pay page). Default: its own address.
    pub public_url: Option<String>,
    /// Connected accounts that exist from the start (`acct_...`).
    pub accounts: Vec<String>,
}

impl FakeConfig {
    pub fn new(secret_key: &str, webhook_secret: &str) -> Self {
        assert!(secret_key.starts_with("sk_test_"), "the fake takes test-mode keys only");
        Self {
            secret_key: secret_key.to_owned(),
            webhook_url: None,
            webhook_secret: webhook_secret.to_owned(),
            platform_webhook_url: None,
            platform_webhook_secret: format!("{webhook_secret}_platform"),
            public_url: None,
            accounts: Vec::new(),
        }
    }
}

/// A running fake's shared state; cheap to clone.
#[derive(Clone)]
pub struct Fake {
    inner: Arc<Inner>,
}

struct Inner {
    config: FakeConfig,
    state: Mutex<State>,
    webhooks: webhooks::Sender,
}

impl Fake {
    fn new(config: FakeConfig, base_url: String) -> Self {
        let state = State::new(base_url, &config.accounts);
        Self { inner: Arc::new(Inner { config, state: Mutex::new(state), webhooks: webhooks::Sender::new() }) }
    }

    pub fn config(&self) -> &FakeConfig {
        &self.inner.config
    }

    /// The state, for the handlers. A handler panicking mid-change poisons nothing we rely on:
    /// the fake is a test tool, so carry on with what is there.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve(self, listener: TcpListener, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                () = &mut shutdown => return,
            };
            let fake = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let fake = fake.clone();
                    async move { Ok::<_, Infallible>(fake.respond(req).await) }
                });
                if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                    tracing::debug!(error = %e, "connection closed with an error");
                }
            });
        }
    }

    /// Binds `addr` (port 0: any free port) and serves in the background until the returned
    /// handle is dropped.
    pub async fn start(mut config: FakeConfig, addr: SocketAddr) -> std::io::Result<RunningFake> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let url = format!("http://{local}");
        let base = config.public_url.get_or_insert_with(|| url.clone()).trim_end_matches('/').to_owned();
        let fake = Fake::new(config, base);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = fake.clone();
        let task = tokio::spawn(async move {
            server
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(RunningFake { fake, url, addr: local, stop: Some(stop), task })
    }

    async fn respond(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                let reply = state::error(413, "invalid_request_error", None, "The request body is too large.", None);
                return api::json_response(reply.status, &reply.body, &[]);
            }
        };
        let path = parts.uri.path().to_owned();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let response = match (&parts.method, segments.as_slice()) {
            (&Method::GET, ["pay", id]) => pages::pay_page(self, id),
            (&Method::GET, ["i", id]) => pages::invoice_page(self, id),
            (&Method::GET, ["i", id, "pdf"]) => pages::invoice_pdf(self, id),
            (&Method::GET, ["receipts", "payment", id]) => pages::receipt_page(self, id),
            (&Method::POST, ["pay", id]) => pages::pay(self, id, &body).await,
            (&Method::GET, ["oauth", "authorize"]) => pages::authorize_page(self, parts.uri.query().unwrap_or("")),
            (&Method::POST, ["oauth", "authorize"]) => pages::authorize(self, &body),
            (_, ["_fake", rest @ ..]) => control::handle(self, &parts.method, rest, parts.uri.query(), &body).await,
            _ => api::handle(self, &parts, &segments, &body).await,
        };
        tracing::debug!(method = %parts.method, %path, status = response.status().as_u16(), "request");
        response
    }
}

/// A fake serving in the background; stops when dropped. Derefs to [`Fake`].
pub struct RunningFake {
    pub fake: Fake,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub url: String,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::ops::Deref for RunningFake {
    type Target = Fake;
    fn deref(&self) -> &Fake {
        &self.fake
    }
}

impl Drop for RunningFake {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

pub(crate) fn text_response(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    response
}

//! A fake with a webhook receiver, the gateway pointed at it, and a small HTTP client for raw
//! calls (the pay page, control endpoints, requests async-stripe would never send).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::{Currency, Money};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use stripe_fake::{Fake, FakeConfig, RunningFake};
use stripe_gateway::client::{StripeConfig, StripeGateway};
use stripe_gateway::gateway::{Metadata, NewCheckoutSession, NewCustomer, RetryPolicy};
use stripe_gateway::ids::{AccountId, CustomerId, IdempotencyKey};
use tokio::net::TcpListener;

pub const SECRET_KEY: &str = "sk_test_fake_4242";
pub const WEBHOOK_SECRET: &str = "whsec_test_secret";
pub const ACCOUNT: &str = "acct_1PartnerA";
/// The client's per-attempt timeout in these tests; timeout faults sleep well past it.
pub const CLIENT_TIMEOUT: Duration = Duration::from_millis(1_000);
pub const FAULT_DELAY_MS: u64 = 2_500;

/// One webhook delivery as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub signature: Option<String>,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("events are JSON")
    }
}

/// A webhook endpoint that records what arrives and answers `status`.
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub status: Arc<Mutex<u16>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self._task.abort();
    }
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.unwrap();
        let url = format!("http://{}/stripe/webhook", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(Mutex::new(200u16));
        let (r, s) = (received.clone(), status.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (r, s) = (r.clone(), s.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<Incoming>| {
                        let (r, s) = (r.clone(), s.clone());
                        async move {
                            let signature =
                                req.headers().get("stripe-signature").and_then(|v| v.to_str().ok()).map(str::to_owned);
                            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            r.lock().unwrap().push(Received { signature, body });
                            let mut response = hyper::Response::new(Full::new(Bytes::from_static(b"{}")));
                            *response.status_mut() = hyper::StatusCode::from_u16(*s.lock().unwrap()).unwrap();
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Self { url, received, status, _task: task }
    }

    pub fn events(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The types of the events received, in arrival order.
    pub fn types(&self) -> Vec<String> {
        self.events().iter().map(|r| r.json()["type"].as_str().unwrap().to_owned()).collect()
    }
}

/// A fake with one connected account ([`ACCOUNT`]) sending its events to a fresh receiver.
pub struct Stack {
    pub fake: RunningFake,
    pub receiver: Receiver,
    pub gateway: StripeGateway,
    pub http: Http,
}

impl Stack {
    pub async fn start() -> Self {
        let receiver = Receiver::start().await;
        let mut config = FakeConfig::new(SECRET_KEY, WEBHOOK_SECRET);
        config.webhook_url = Some(receiver.url.clone());
        config.accounts = vec![ACCOUNT.to_owned()];
        let fake = Fake::start(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.unwrap();
        let gateway = gateway(&fake.url, SECRET_KEY);
        let http = Http::new(&fake.url);
        Self { fake, receiver, gateway, http }
    }

    /// The request log entries of one operation.
    pub fn requests(&self, operation: &str) -> Vec<stripe_fake::state::LoggedRequest> {
        self.fake.requests().into_iter().filter(|r| r.operation.as_deref() == Some(operation)).collect()
    }
}

pub fn gateway(base: &str, secret_key: &str) -> StripeGateway {
    let mut config = StripeConfig::new(secret_key).with_base(base);
    config.timeout = CLIENT_TIMEOUT;
    // Short waits keep the tests quick; the attempts are the production number.
    config.retry = RetryPolicy {
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(80),
        ..RetryPolicy::default()
    };
    StripeGateway::new(config).expect("gateway")
}

pub fn account() -> AccountId {
    AccountId::parse(ACCOUNT).unwrap()
}

pub fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}

pub fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::USD).unwrap()
}

pub fn new_customer(workspace: &str) -> NewCustomer {
    NewCustomer {
        description: format!("workspace {workspace}"),
        metadata: Metadata::new().with("workspace_id", workspace).unwrap(),
    }
}

pub fn new_session(customer: &CustomerId, amount: Money) -> NewCheckoutSession {
    NewCheckoutSession {
        customer: customer.clone(),
        amount,
        label: "1,000 points".into(),
        client_reference_id: "ws-1:topup:1".into(),
        metadata: Metadata::new()
            .with("workspace_id", "ws-1")
            .unwrap()
            .with("option_id", "opt_1")
            .unwrap()
            .with("points", "1000")
            .unwrap(),
        success_url: "https://partner.example/topup/done?session={CHECKOUT_SESSION_ID}".into(),
        cancel_url: "https://partner.example/topup".into(),
    }
}

/// A plain HTTP/1 client.
#[derive(Clone)]
pub struct Http {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Http {
    pub fn new(base: &str) -> Self {
        Self { base: base.to_owned(), client: Client::builder(TokioExecutor::new()).build_http() }
    }

    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        let mut request = hyper::Request::builder().method(method).uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        let response = self.client.request(request).await.expect("the fake answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        HttpResponse { status, headers, body }
    }

    /// A Stripe API call with the test key, form-encoded as Stripe takes it.
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        account: Option<&str>,
        key: Option<&str>,
        form: &str,
    ) -> HttpResponse {
        let auth = format!("Bearer {SECRET_KEY}");
        let mut headers = vec![("authorization", auth.as_str()), ("content-type", "application/x-www-form-urlencoded")];
        if let Some(a) = account {
            headers.push(("stripe-account", a));
        }
        if let Some(k) = key {
            headers.push(("idempotency-key", k));
        }
        self.send(method, path, &headers, form).await
    }

    /// A control call with a JSON body.
    pub async fn control(&self, method: &str, path: &str, body: Value) -> HttpResponse {
        let body = if body.is_null() { String::new() } else { body.to_string() };
        self.send(method, &format!("/_fake{path}"), &[("content-type", "application/json")], &body).await
    }
}

//! The whole stack over HTTP, as a newcomer runs it: the local runner (routing from
//! template.yaml, local JWTs, each function's IAM policy) on DynamoDB Local, and the fake Stripe
//! delivering its signed events to the runner's `/stripe/webhook` over HTTP. The top-up is paid
//! the way a customer pays: the checkout URL's pay page, "Pay now".

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use billing::Billing;
use domain::SystemClock;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use integration_tests::fresh_table;
use local::{App, PolicyTable, Router, TokenRequest, Verifier};
use serde_json::{Value, json};
use store::Store;
use store::dynamodb::DynamoTable;
use stripe_fake::RunningFake;
use tokio::sync::oneshot;

pub const JWT_SECRET: &str = "stack-test-secret";

/// A running runner and fake; both stop when this is dropped.
pub struct Stack {
    /// `http://127.0.0.1:PORT` of the runner.
    pub url: String,
    pub fake: RunningFake,
    pub app: Arc<App<PolicyTable<DynamoTable>>>,
    verifier: Verifier,
    client: Client<HttpConnector, Full<Bytes>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Stack {
    /// The runner on a fresh DynamoDB Local table, seeded like `cargo run -p local`.
    pub async fn start() -> Stack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fake = local::stripe::start_fake(([127, 0, 0, 1], 0).into(), &url).await.unwrap();
        let billing = Billing::new(Store::new(PolicyTable::new(fresh_table().await)), Arc::new(SystemClock))
            .with_payments(local::stripe::payments(&fake.url));
        local::seed::seed(&billing, &url, &fake).await.unwrap();
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("template.yaml");
        let router = Router::from_template(&template).unwrap();
        let app =
            Arc::new(App { router, billing, verifier: Verifier::new(JWT_SECRET), web_root: local::web::web_root() });
        let (stop, stopped) = oneshot::channel::<()>();
        let served = app.clone();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            local::server::serve(served, listener, shutdown).await.unwrap();
        });
        let client = Client::builder(TokioExecutor::new()).build_http();
        Stack { url, fake, app, verifier: Verifier::new(JWT_SECRET), client, stop: Some(stop) }
    }

    pub fn token(&self, partner: &str, workspace: Option<&str>, role: &str) -> String {
        TokenRequest {
            sub: format!("{role}@stack"),
            partner_id: Some(partner.to_owned()),
            workspace_id: workspace.map(str::to_owned),
            roles: vec![role.to_owned()],
            ttl_s: 600,
        }
        .mint(&self.verifier, local::server::now_epoch_s())
    }

    /// Any HTTP request; the body as text.
    pub async fn raw(&self, method: Method, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = self.client.request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A JSON request to the runner's API with a bearer token.
    pub async fn api(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let auth = format!("Bearer {token}");
        let key = format!("stack-{:016x}", fastrand::u64(..));
        let mut headers = vec![("authorization", auth.as_str()), ("content-type", "application/json")];
        if method != Method::GET {
            headers.push(("idempotency-key", &key));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, text) = self.raw(method, &format!("{}{path}", self.url), &headers, &body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Polls the workspace's balance until it is `expected` (webhooks arrive a moment after the
    /// payment), or fails after a few seconds with the last balance seen.
    pub async fn wait_for_balance(&self, token: &str, expected: &str) {
        let mut last = Value::Null;
        for _ in 0..100 {
            let (_, ws) = self.api(Method::GET, "/workspace", token, None).await;
            last = ws["balance"].clone();
            if last == json!(expected) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the balance stayed at {last}, not {expected}");
    }
}

/// The walk-through's top-up (docs/walkthrough.md): pick an option, create the checkout, open the
/// URL, "Pay now", and the points are there, credited through the real webhook path.
#[tokio::test]
async fn a_top_up_paid_on_the_pay_page_arrives_through_the_webhook() {
    let stack = Stack::start().await;
    let admin = stack.token(local::seed::DEMO_PARTNER, Some("demo-ws-1"), "workspace_admin");
    let (status, offers) = stack.api(Method::GET, "/workspace/topup-options", &admin, None).await;
    assert_eq!(status, 200, "{offers}");
    let option = offers["data"][1]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (&offers["data"][1]["amount_major"], &offers["data"][1]["points"]),
        (&json!("25.00"), &json!("2750.00"))
    );
    let (status, created) =
        stack.api(Method::POST, "/workspace/checkout", &admin, Some(json!({ "topup_option_id": option }))).await;
    assert_eq!(status, 201, "{created}");
    let url = created["url"].as_str().unwrap();
    // The pay page shows what is paid for, then "Pay now" posts the form.
    let (status, page) = stack.raw(Method::GET, url, &[], "").await;
    assert_eq!(status, 200);
    assert!(page.contains("25.00 USD") && page.contains("id=\"pay\""), "{page}");
    let (status, _) = stack.raw(Method::POST, url, &[("content-type", "application/x-www-form-urlencoded")], "").await;
    assert_eq!(status, 303, "paid, and sent to the partner's success URL");
    stack.wait_for_balance(&admin, "2850.00").await;
    let (_, ledger) = stack.api(Method::GET, "/workspace/ledger?limit=1", &admin, None).await;
    assert_eq!((&ledger["data"][0]["kind"], &ledger["data"][0]["amount"]), (&json!("top_up"), &json!("2750.00")));
    // Every event reached the webhook once and was answered 200.
    let events = stack.fake.events();
    assert!(events.len() >= 2, "{events:?}");
    for e in events.iter().filter(|e| e.type_.starts_with("checkout.") || e.type_.starts_with("payment_intent.")) {
        let statuses: Vec<_> = e.deliveries.iter().map(|d| d.status).collect();
        assert_eq!(statuses, [Some(200)], "{} {}", e.type_, e.id);
    }
    let w = domain::WalletId::Workspace(domain::WorkspaceId::parse("demo-ws-1").unwrap());
    let verified = stack.app.billing.store.verify(&w).await.unwrap();
    assert_eq!((verified.entries, verified.balance.to_string()), (2, "2850.00".to_owned()));
}

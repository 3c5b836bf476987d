//! The post-deploy smoke test: opt-in, against a deployed stack's API. It runs only when
//! `SMOKE_API_URL` is set (the stack's `ApiUrl` output), and is skipped, saying so, otherwise.
//!
//! It only reads, and checks the doors: nothing it sends moves money or changes a setting, so it
//! is safe against a live stack.
//!
//! - `SMOKE_API_URL`: `https://<api-id>.execute-api.<region>.amazonaws.com`
//! - `SMOKE_PARTNER_TOKEN` (optional): a JWT of the stack's issuer with `roles` partner_admin;
//!   with it, the partner's settings, add-ons, plans, wallet and ledger are read.
//! - `SMOKE_PLATFORM_TOKEN` (optional): a JWT with `roles` platform_service and
//!   `SMOKE_WORKSPACE_ID`: the workspace's entitlements and access are read.
//!
//! `SMOKE_API_URL=https://... SMOKE_PARTNER_TOKEN=... cargo test -p integration-tests -- smoke --nocapture`

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

type HttpsClient =
    Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Full<Bytes>>;

struct Stack {
    base: String,
    client: HttpsClient,
}

impl Stack {
    fn from_env() -> Option<Self> {
        let base = std::env::var("SMOKE_API_URL").ok().filter(|u| !u.trim().is_empty())?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .expect("the machine's root certificates")
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Some(Self { base: base.trim_end_matches('/').to_owned(), client })
    }

    async fn send(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        let mut req = hyper::Request::builder().method(method).uri(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req.header("content-type", "application/json").body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        let resp = self.client.request(req).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.expect("the body").to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let (status, body) = self.send("GET", path, Some(token), "").await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[tokio::test]
async fn a_deployed_stack_answers() {
    let Some(stack) = Stack::from_env() else {
        eprintln!("smoke: skipped (set SMOKE_API_URL to a deployed stack's ApiUrl to run it)");
        return;
    };
    // The doors: no token is API Gateway's 401; the webhook without a signature is refused.
    let (status, _) = stack.send("GET", "/partner/settings", None, "").await;
    assert_eq!(status, 401, "a route without a token");
    let (status, body) = stack.send("POST", "/stripe/webhook", None, "{}").await;
    assert_eq!(status, 400, "the webhook without a Stripe-Signature: {body}");
    assert_eq!(body["error"]["param"], "Stripe-Signature", "{body}");
    let mut checked = 2;

    if let Some(token) = var("SMOKE_PARTNER_TOKEN") {
        let addons = stack.get("/partner/addons", &token).await;
        assert_eq!(addons["data"].as_array().map(Vec::len), Some(6), "the platform's six add-ons: {addons}");
        assert_eq!(stack.get("/partner/plans", &token).await["data"].as_array().map(Vec::len), Some(3));
        stack.get("/partner/settings", &token).await;
        let wallet = stack.get("/partner/wallet?limit=1", &token).await;
        assert!(wallet["balance"].is_string(), "{wallet}");
        stack.get("/partner/ledger?limit=1", &token).await;
        stack.get("/partner/workspaces?limit=1", &token).await;
        checked += 6;
    }
    if let (Some(token), Some(w)) = (var("SMOKE_PLATFORM_TOKEN"), var("SMOKE_WORKSPACE_ID")) {
        stack.get(&format!("/platform/workspaces/{w}/entitlements"), &token).await;
        let (status, body) =
            stack.send("GET", &format!("/platform/workspaces/{w}/access?meter=voice_minutes"), Some(&token), "").await;
        assert!(status == 200 || status == 403, "access: {status} {body}");
        checked += 2;
    }
    eprintln!("smoke: {} answered {checked} checks", stack.base);
}

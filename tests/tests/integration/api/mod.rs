//! The HTTP API through its handlers: requests built as API Gateway HTTP API (v2) events, sent
//! to the function whose `ROUTES` own the route key, answers read back as (status, JSON).
//!
//! Every scenario is a generic async fn over the table, run by [`api_suite!`] against the
//! memory store and again against DynamoDB Local (a fresh table per test).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use billing::{Billing, Mutation, NewWorkspace, Payments};
use domain::{AnchorDay, FixedClock, PartnerId, PartnerSettings, PlanId, WalletId, WorkspaceId};
use integration_tests::fresh_table;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use store::dynamodb::DynamoTable;
use store::memory::MemoryTable;
use store::{IdempotencyKey, Item, Store, Table, keys};
use stripe_fake::{Fake, FakeConfig, RunningFake};
use stripe_gateway::client::{StripeConfig, StripeGateway};
use stripe_gateway::gateway::RetryPolicy;
use time::OffsetDateTime;
use time::macros::datetime;

/// Runs each named scenario against both stores, as `memory::name` and `dynamodb::name`.
macro_rules! api_suite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test] async fn $name() { super::$name(crate::api::Api::memory().await).await } )*
        }
        mod dynamodb {
            $( #[tokio::test] async fn $name() { super::$name(crate::api::Api::dynamodb().await).await } )*
        }
    };
}

pub(crate) mod access;
mod addons;
pub(crate) mod autotopup;
pub(crate) mod cards;
pub(crate) mod checkout;
mod cursors;
mod disputes;
mod events;
mod forged;
mod idempotency;
mod input;
mod labels;
mod managers;
mod onboarding;
mod partner;
pub(crate) mod partner_wallet;
mod plan_edits;
pub(crate) mod plans;
mod points;
mod prepaid;
mod receipts;
mod refill_points;
mod renewal;
mod schedules;
mod spec;
mod statements;
mod status;
mod subscription_schedules;
mod sweep;
mod topup;
pub(crate) mod usage;
mod webhooks;
mod workspace_list;

/// The clock every scenario starts at: mid-April, in a cycle 1-30 April for anchor day 1.
pub const T0: OffsetDateTime = datetime!(2026-04-15 10:00 UTC);

/// Two tenants, so that every scenario can try the other one's ids.
pub const P: &str = "p-acme";
pub const W: &str = "ws-acme-1";
pub const Q: &str = "p-rival";
pub const X: &str = "ws-rival-1";

/// Every route behind the JWT authorizer, as API Gateway names them.
pub const ALL_ROUTES: [&str; 79] = [
    "GET /partner/addons",
    "PUT /partner/addons/{code}",
    "GET /partner/plans",
    "GET /partner/plans/{id}",
    "PUT /partner/plans/{id}",
    "GET /partner/settings",
    "PUT /partner/settings",
    "GET /partner/topup-options",
    "PUT /partner/topup-options",
    "PUT /partner/credit-rate",
    "GET /partner/workspaces",
    "POST /partner/workspaces",
    "GET /partner/workspaces/{id}",
    "PUT /partner/workspaces/{id}/plan",
    "GET /partner/ledger",
    "GET /partner/statements/{month}",
    "GET /partner/workspaces/{id}/statements/{month}",
    "GET /partner/wallet/statements/{month}",
    "GET /partner/stripe",
    "GET /partner/events",
    "POST /partner/stripe/connect",
    "POST /partner/workspaces/{id}/points",
    "POST /workspace/addons",
    "DELETE /workspace/addons/{addon_id}",
    "POST /partner/workspace/{id}/add-addon",
    "DELETE /partner/workspaces/{id}/addons/{addon_id}",
    "GET /workspace",
    "GET /workspace/addons",
    "GET /workspace/addons/quote",
    "GET /workspace/topup-options",
    "GET /workspace/ledger",
    "GET /workspace/statements/{month}",
    "POST /workspace/checkout",
    "PUT /workspace/auto-topup",
    "GET /workspace/card",
    "POST /workspace/card",
    "DELETE /workspace/card",
    "GET /workspace/receipts/{id}",
    "GET /partner/wallet/receipts/{id}",
    "PUT /platform/workspaces/{id}/usage-counts",
    "GET /platform/workspaces/{id}/entitlements",
    "POST /platform/usage",
    "GET /platform/workspaces/{id}/access",
    "PUT /platform/partners/{id}/billing",
    "POST /platform/partners/{id}/wallet/adjustments",
    "PUT /partner/workspaces/{id}/rebilling",
    "GET /partner/workspaces/{id}/billing-managers",
    "POST /partner/workspaces/{id}/billing-managers",
    "POST /partner/workspaces/{id}/billing-managers/revoke",
    "GET /partner/wallet",
    "POST /partner/wallet/checkout",
    "PUT /partner/wallet/auto-refill",
    "GET /partner/wallet/card",
    "POST /partner/wallet/card",
    "DELETE /partner/wallet/card",
    "GET /partner/webhook",
    "PUT /partner/webhook",
    "POST /partner/webhook/secret",
    "GET /partner/webhook/deliveries",
    "POST /partner/webhook/deliveries/{id}/replay",
    "GET /partner/balance-alerts",
    "PUT /partner/balance-alerts",
    "POST /platform/partners",
    "GET /platform/partners",
    "GET /platform/partners/{id}",
    "PUT /platform/partners/{id}/terms",
    "POST /platform/partners/{id}/suspend",
    "POST /platform/partners/{id}/reinstate",
    "GET /workspace/plans",
    "GET /workspace/subscription",
    "POST /workspace/subscription",
    "POST /workspace/plan",
    "POST /workspace/subscription/addons",
    "DELETE /workspace/subscription/addons/{addon_id}",
    "GET /workspace/invoices",
    "DELETE /workspace/subscription",
    "GET /partner/workspaces/{id}/subscription",
    "GET /partner/workspaces/{id}/invoices",
    "DELETE /partner/workspaces/{id}/subscription/addons/{addon_id}",
];

/// The routes without a JWT: Stripe's webhooks (the Connect endpoint and the platform account's),
/// authenticated by their signatures.
pub const OPEN_ROUTES: [&str; 2] = ["POST /stripe/webhook", "POST /stripe/platform-webhook"];

/// Which function serves a route key: the one whose `ROUTES` lists it.
pub fn functions_serving(route: &str) -> Vec<&'static str> {
    let table: [(&'static str, &[&str]); 7] = [
        ("purchase-addon", purchase_addon::ROUTES),
        ("create-checkout", create_checkout::ROUTES),
        ("stripe-webhook", stripe_webhook::ROUTES),
        ("adjust-points", adjust_points::ROUTES),
        ("partner-api", partner_api::ROUTES),
        ("workspace-api", workspace_api::ROUTES),
        ("platform-api", platform_api::ROUTES),
    ];
    table.iter().filter(|(_, routes)| routes.contains(&route)).map(|(name, _)| *name).collect()
}

/// Sends `req` to the function that owns its route key, as API Gateway would.
pub async fn dispatch<T: Table>(billing: &Billing<T>, req: Request) -> Response<Body> {
    let route = api::route_key(&req).expect("the test request has a route key");
    // Each invocation's future on the heap, as the Lambda runtime holds it: a test's own future
    // (on the test thread's stack) stays small however many calls it makes.
    match functions_serving(&route).as_slice() {
        ["purchase-addon"] => Box::pin(purchase_addon::handle(billing, req)).await,
        ["create-checkout"] => Box::pin(create_checkout::handle(billing, req)).await,
        ["stripe-webhook"] => Box::pin(stripe_webhook::handle(billing, req)).await,
        ["adjust-points"] => Box::pin(adjust_points::handle(billing, req)).await,
        ["partner-api"] => Box::pin(partner_api::handle(billing, req)).await,
        ["workspace-api"] => Box::pin(workspace_api::handle(billing, req)).await,
        ["platform-api"] => Box::pin(platform_api::handle(billing, req)).await,
        other => panic!("route {route} is served by {other:?}, not by exactly one function"),
    }
}

// ---- who is calling ------------------------------------------------------------------------

/// The JWT claims API Gateway's authorizer hands the function (all values are strings).
pub type Claims = BTreeMap<String, String>;

pub fn claims(pairs: &[(&str, &str)]) -> Claims {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The `sub` of a partner's admin, as it appears as the actor of the ledger entries it makes.
pub fn admin_sub(p: &str) -> String {
    format!("admin@{p}")
}

pub fn owner_sub(w: &str) -> String {
    format!("owner@{w}")
}

/// A partner admin; `roles` in API Gateway's flattened form of an array claim.
pub fn partner_admin(p: &str) -> Claims {
    claims(&[("sub", &admin_sub(p)), ("partner_id", p), ("roles", "[partner_admin]")])
}

/// A workspace admin; `roles` as the token's JSON array (the other form the edge accepts).
pub fn workspace_admin(p: &str, w: &str) -> Claims {
    claims(&[("sub", &owner_sub(w)), ("partner_id", p), ("workspace_id", w), ("roles", r#"["workspace_admin"]"#)])
}

pub fn workspace_member(p: &str, w: &str) -> Claims {
    claims(&[("sub", &format!("member@{w}")), ("partner_id", p), ("workspace_id", w), ("roles", "[workspace_member]")])
}

pub fn platform() -> Claims {
    claims(&[("sub", "svc-platform"), ("roles", "[platform_service]")])
}

// ---- requests ------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum KeyHeader {
    /// A fresh random key on a mutation, none on a read.
    Auto,
    None,
    Fixed(String),
}

/// One request, built up and turned into the event API Gateway would send.
#[derive(Debug, Clone)]
pub struct Req {
    route: &'static str,
    params: Vec<(&'static str, String)>,
    query: Vec<(&'static str, String)>,
    claims: Option<Claims>,
    key: KeyHeader,
    body: Option<String>,
    headers: Vec<(&'static str, String)>,
}

/// A request for `route` ("POST /workspace/addons"); fill in the path parameters with `param`.
pub fn req(route: &'static str) -> Req {
    assert!(ALL_ROUTES.contains(&route) || OPEN_ROUTES.contains(&route), "not a route of the API: {route}");
    Req { route, params: vec![], query: vec![], claims: None, key: KeyHeader::Auto, body: None, headers: vec![] }
}

impl Req {
    pub fn param(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.params.push((name, value.into()));
        self
    }

    pub fn query(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }

    pub fn by(mut self, claims: Claims) -> Self {
        self.claims = Some(claims);
        self
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = KeyHeader::Fixed(key.into());
        self
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn no_key(mut self) -> Self {
        self.key = KeyHeader::None;
        self
    }

    /// The body, with any [`lit`] spliced in as raw JSON.
    pub fn json(self, body: Value) -> Self {
        self.raw(&splice_literals(&body.to_string()))
    }

    pub fn raw(mut self, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self
    }

    fn method(&self) -> &'static str {
        self.route.split_once(' ').expect("a route key is 'METHOD /path'").0
    }

    /// The concrete path: the route's template with the parameters filled in.
    pub fn path(&self) -> String {
        let template = self.route.split_once(' ').expect("a route key is 'METHOD /path'").1;
        let mut path = template.to_owned();
        for (name, value) in &self.params {
            let slot = format!("{{{name}}}");
            assert!(path.contains(&slot), "{} has no parameter {name}", self.route);
            path = path.replace(&slot, &percent_encode(value));
        }
        assert!(!path.contains('{'), "{} needs all its path parameters: {path}", self.route);
        path
    }

    /// The API Gateway HTTP API (payload 2.0) event for this request.
    pub fn event(&self) -> Value {
        let path = self.path();
        let raw_query =
            self.query.iter().map(|(k, v)| format!("{k}={}", percent_encode(v))).collect::<Vec<_>>().join("&");
        let mut headers = json!({
            "accept": "application/json",
            "host": "api.example.com",
            "user-agent": "api-tests",
            "x-forwarded-proto": "https",
        });
        if self.body.is_some() {
            headers["content-type"] = json!("application/json");
        }
        let key = match &self.key {
            KeyHeader::Auto if self.method() != "GET" => Some(format!("key-{:016x}", fastrand::u64(..))),
            KeyHeader::Auto | KeyHeader::None => None,
            KeyHeader::Fixed(k) => Some(k.clone()),
        };
        if let Some(k) = key {
            headers["idempotency-key"] = json!(k);
        }
        for (name, value) in &self.headers {
            headers[*name] = json!(value);
        }
        let mut context = json!({
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": self.method(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "api-tests",
            },
            "requestId": format!("req-{:016x}", fastrand::u64(..)),
            "routeKey": self.route,
            "stage": "$default",
            "time": "15/Apr/2026:10:00:00 +0000",
            "timeEpoch": 1_776_247_200_000_i64,
        });
        if let Some(c) = &self.claims {
            context["authorizer"] = json!({ "jwt": { "claims": c, "scopes": null } });
        }
        let mut event = json!({
            "version": "2.0",
            "routeKey": self.route,
            "rawPath": path,
            "rawQueryString": raw_query,
            "headers": headers,
            "requestContext": context,
            "isBase64Encoded": false,
        });
        if !self.params.is_empty() {
            let params: BTreeMap<_, _> = self.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            event["pathParameters"] = json!(params);
        }
        if !self.query.is_empty() {
            let query: BTreeMap<_, _> = self.query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            event["queryStringParameters"] = json!(query);
        }
        if let Some(b) = &self.body {
            event["body"] = json!(b);
        }
        event
    }

    pub fn build(&self) -> Request {
        lambda_http::request::from_str(&self.event().to_string()).expect("an API Gateway v2 event")
    }
}

/// Marks a string that [`Req::json`] sends as raw JSON text.
const LITERAL_MARK: &str = "\u{1}lit:";

/// A JSON value written as text, such as the fractional number `1.5` a client might send where
/// an integer belongs: the test builds the body without ever holding a float.
pub fn lit(text: &str) -> Value {
    Value::String(format!("{LITERAL_MARK}{text}"))
}

fn splice_literals(json: &str) -> String {
    // serde_json writes the mark's control character as \u0001.
    let marker = "\"\\u0001lit:";
    let mut out = String::with_capacity(json.len());
    let mut rest = json;
    while let Some(i) = rest.find(marker) {
        out.push_str(&rest[..i]);
        let after = &rest[i + marker.len()..];
        let end = after.find('"').expect("a literal ends with a quote");
        out.push_str(&after[..end]);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---- responses -----------------------------------------------------------------------------

/// A response as a client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
}

impl Resp {
    fn from_response(r: Response<Body>) -> Self {
        let status = r.status().as_u16();
        let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(content_type.as_deref(), Some("application/json"), "every answer is JSON ({status})");
        let body = match r.body() {
            Body::Text(t) => serde_json::from_str(t).expect("the body is JSON"),
            Body::Binary(b) => serde_json::from_slice(b).expect("the body is JSON"),
            _ => Value::Null,
        };
        Self { status, body }
    }

    /// Asserts a success with `status` and returns the body.
    #[track_caller]
    pub fn ok(self, status: u16) -> Value {
        assert_eq!(self.status, status, "expected {status}, got {}: {}", self.status, self.body);
        self.body
    }

    /// Asserts the one error shape: `{"error": {"type", "message", "param"?}}`.
    #[track_caller]
    pub fn err(&self, status: u16, kind: &str, param: Option<&str>) {
        assert_eq!(self.status, status, "expected {status} {kind}, got {}: {}", self.status, self.body);
        let error = self.body.get("error").and_then(Value::as_object).expect("an error body");
        assert_eq!(error.get("type").and_then(Value::as_str), Some(kind), "{}", self.body);
        assert!(error.get("message").and_then(Value::as_str).is_some_and(|m| !m.is_empty()), "{}", self.body);
        assert_eq!(error.get("param").and_then(Value::as_str), param, "{}", self.body);
        let allowed = ["type", "message", "param"];
        assert!(error.keys().all(|k| allowed.contains(&k.as_str())), "{}", self.body);
        assert_eq!(self.body.as_object().map(|o| o.len()), Some(1), "{}", self.body);
    }

    #[track_caller]
    pub fn invalid(&self, param: &str) {
        self.err(400, "invalid_request", Some(param));
    }
}

// ---- the system under test -----------------------------------------------------------------

/// The billing operations over one table, a clock the test sets, and the tenants created so far
/// (whose partitions [`Api::state`] reads to prove that a refused request wrote nothing).
pub struct Api<T> {
    pub billing: Billing<T>,
    pub clock: Arc<FixedClock>,
    partitions: Mutex<Vec<String>>,
    /// The fake Stripe the partners' accounts live on. Its events are only recorded: a test
    /// delivers them to the webhook route itself ([`Api::deliver`]).
    pub stripe: RunningFake,
}

impl Api<MemoryTable> {
    pub async fn memory() -> Self {
        Self::new(MemoryTable::new()).await
    }
}

impl Api<DynamoTable> {
    pub async fn dynamodb() -> Self {
        Self::new(fresh_table().await).await
    }
}

/// Every sort-key prefix an item of a partner or workspace partition has (keys.rs).
const SK_PREFIXES: [&str; 13] = [
    "BILLING",
    "CUSTOMER",
    "REFILL",
    keys::PROFILE_SK,
    keys::WALLET_SK,
    keys::LEDGER_PREFIX,
    keys::ADDON_PREFIX,
    keys::PLAN_PREFIX,
    "WS#",
    keys::TOPUPS_SK,
    keys::RATE_SK,
    keys::STRIPE_SK,
    keys::AUTO_TOPUP_SK,
];

impl<T: Table> Api<T> {
    /// Over any table (a faulty one, say).
    pub async fn over(table: T) -> Self {
        Self::new(table).await
    }

    async fn new(table: T) -> Self {
        let clock = Arc::new(FixedClock::new(T0));
        let mut config = FakeConfig::new(local::stripe::FAKE_SECRET_KEY, local::stripe::FAKE_WEBHOOK_SECRET);
        config.webhook_url = None;
        let stripe = Fake::start(config, ([127, 0, 0, 1], 0).into()).await.expect("start the fake Stripe");
        // The production client, tuned for tests: a short timeout (the fake's timeout faults
        // sleep past it) and short waits between its attempts.
        let gateway = StripeConfig {
            timeout: Duration::from_millis(400),
            retry: RetryPolicy {
                max_attempts: 4,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
            },
            ..StripeConfig::new(local::stripe::FAKE_SECRET_KEY).with_base(&stripe.url)
        };
        let payments = Payments::new(false)
            .with_gateway(Arc::new(StripeGateway::new(gateway).expect("a test-mode client")))
            .with_webhook_secrets(vec![local::stripe::FAKE_WEBHOOK_SECRET.to_owned()])
            .with_platform_webhook_secrets(vec![local::stripe::FAKE_PLATFORM_WEBHOOK_SECRET.to_owned()]);
        let billing = Billing::new(Store::new(table), clock.clone()).with_payments(payments);
        Self { billing, clock, partitions: Mutex::new(vec![]), stripe }
    }

    pub async fn call(&self, r: Req) -> Resp {
        Resp::from_response(dispatch(&self.billing, r.build()).await)
    }

    /// The charging pass, as charge-refills sweeps: the refills that debits and renewals asked
    /// for are charged (a renewal's then renewed).
    pub async fn charge_refills(&self) -> billing::RefillRun {
        self.billing.charge_refills(|| false).await.expect("the charging pass")
    }

    pub fn set_clock(&self, at: OffsetDateTime) {
        self.clock.set(at);
    }

    fn track(&self, pk: String) {
        let mut all = self.partitions.lock().unwrap();
        if !all.contains(&pk) {
            all.push(pk);
        }
    }

    /// Provisions a partner through the operation the local runner's demo uses (the platform's
    /// own route is tested in `onboarding`) with its own Stripe account connected on the fake
    /// (`POST /partner/stripe/connect`).
    pub async fn partner(&self, p: &str, credit_billing: bool) {
        let id = PartnerId::parse(p).unwrap();
        let settings = PartnerSettings { credit_billing, ..Default::default() };
        let key = IdempotencyKey::new("platform", &format!("create-{p}"), p.as_bytes()).unwrap();
        let reply = self
            .billing
            .create_partner(&id, &settings, Mutation::new(&key, &api::answers::partner_created))
            .await
            .expect("create the partner");
        assert_eq!(reply.status, 201);
        self.track(keys::partner_pk(&id));
        let (code, _) = self.stripe.issue_oauth_code(None, false);
        self.call(req("POST /partner/stripe/connect").by(partner_admin(p)).json(json!({ "code": code }))).await.ok(200);
    }

    /// Delivers `payload` to the webhook route as Stripe would, signed now with the secret.
    pub async fn deliver(&self, payload: &str) -> Resp {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let signature = stripe_gateway::signature::sign(payload.as_bytes(), &[local::stripe::FAKE_WEBHOOK_SECRET], now);
        self.call(req("POST /stripe/webhook").no_key().header("stripe-signature", &signature).raw(payload)).await
    }

    /// Delivers `payload` to the platform account's webhook route, signed now with its secret.
    pub async fn deliver_platform(&self, payload: &str) -> Resp {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let secret = local::stripe::FAKE_PLATFORM_WEBHOOK_SECRET;
        let signature = stripe_gateway::signature::sign(payload.as_bytes(), &[secret], now);
        self.call(req("POST /stripe/platform-webhook").no_key().header("stripe-signature", &signature).raw(payload))
            .await
    }

    /// The partner's connected account on the fake.
    pub async fn account(&self, p: &str) -> String {
        let got = self.call(req("GET /partner/stripe").by(partner_admin(p))).await.ok(200);
        got["connection"]["account"].as_str().expect("a connected account").to_owned()
    }

    /// Creates a workspace of `p` under the fixed id `w`, cycles anchored on day 1.
    pub async fn workspace(&self, p: &str, w: &str, plan: &str) -> Value {
        self.provision(p, w, &format!("Workspace {w}"), plan, Some(1)).await
    }

    /// Creates a workspace of `p` under the fixed id `w` through the provisioning operation
    /// (`POST /partner/workspaces` assigns ids itself; `partner.rs` tests it); answers what
    /// the route would.
    pub async fn provision(&self, p: &str, w: &str, name: &str, plan: &str, anchor: Option<u8>) -> Value {
        let new = NewWorkspace {
            id: WorkspaceId::parse(w).unwrap(),
            name: name.to_owned(),
            plan: PlanId::parse(plan).unwrap(),
            anchor: anchor.map(|d| AnchorDay::new(d).unwrap()),
        };
        let key = IdempotencyKey::new(&format!("partner:{p}"), &format!("provision-{w}"), w.as_bytes()).unwrap();
        let id = PartnerId::parse(p).unwrap();
        let reply = self
            .billing
            .create_workspace(&id, new, Mutation::new(&key, &api::answers::workspace_created))
            .await
            .expect("provision the workspace");
        assert_eq!(reply.status, 201, "{}", reply.body);
        self.track(keys::workspace_pk(&WorkspaceId::parse(w).unwrap()));
        reply.body
    }

    /// Remembers a workspace the route created, for [`Api::state`].
    pub fn track_workspace(&self, w: &str) {
        self.track(keys::workspace_pk(&WorkspaceId::parse(w).unwrap()));
    }

    /// Two partners with credit billing on, one starter workspace each.
    pub async fn tenants(&self) {
        self.partner(P, true).await;
        self.partner(Q, true).await;
        self.workspace(P, W, "starter").await;
        self.workspace(Q, X, "starter").await;
    }

    /// Credits `amount` points to `w` through the partner's adjustment route.
    pub async fn fund(&self, p: &str, w: &str, amount: &str) -> Value {
        let body = json!({ "amount": amount, "reason": "test funding" });
        self.call(req("POST /partner/workspaces/{id}/points").param("id", w).by(partner_admin(p)).json(body))
            .await
            .ok(201)
    }

    /// Sets a partner's price, label and availability of one add-on.
    pub async fn price(&self, p: &str, code: &str, label: &str, points: &str, enabled: bool) -> Value {
        let body = json!({ "label": label, "points": points, "enabled": enabled });
        self.call(req("PUT /partner/addons/{code}").param("code", code).by(partner_admin(p)).json(body)).await.ok(200)
    }

    /// The workspace buys an add-on; returns the whole response.
    pub async fn buy(&self, p: &str, w: &str, code: &str, quantity: u32) -> Resp {
        let body = json!({ "addon": code, "quantity": quantity });
        self.call(req("POST /workspace/addons").by(workspace_admin(p, w)).json(body)).await
    }

    /// The platform reports usage counts.
    pub async fn usage(&self, w: &str, bots: u32, members: u32, bot_users: u32) -> Resp {
        let body = json!({ "bots": bots, "members": members, "bot_users": bot_users });
        self.call(req("PUT /platform/workspaces/{id}/usage-counts").param("id", w).by(platform()).json(body)).await
    }

    /// `GET /workspace` as the workspace's admin.
    pub async fn view(&self, p: &str, w: &str) -> Value {
        self.call(req("GET /workspace").by(workspace_admin(p, w))).await.ok(200)
    }

    /// The workspace's balance as `GET /workspace` shows it.
    pub async fn balance(&self, p: &str, w: &str) -> String {
        self.view(p, w).await["balance"].as_str().expect("a balance string").to_owned()
    }

    /// The workspace's ledger, newest first, as `GET /workspace/ledger` shows it.
    pub async fn ledger(&self, p: &str, w: &str) -> Vec<Value> {
        let page = self.call(req("GET /workspace/ledger").by(workspace_admin(p, w)).query("limit", "100")).await;
        page.ok(200)["data"].as_array().expect("a list of entries").clone()
    }

    /// Every item of every tenant partition created so far, in key order.
    pub async fn state(&self) -> Vec<Item> {
        let partitions = self.partitions.lock().unwrap().clone();
        let mut items = Vec::new();
        for pk in &partitions {
            for prefix in SK_PREFIXES {
                items.extend(self.billing.store.query_prefix(pk, prefix, None, 1000).await.expect("read a partition"));
            }
        }
        items
    }

    /// Whether an idempotency record was written for `key` in `scope` ("ws:w", "partner:p").
    pub async fn key_recorded(&self, scope: &str, key: &str) -> bool {
        self.billing.store.get(&keys::idempotency(scope, key)).await.expect("read the record").is_some()
    }

    /// Proves the workspace wallet's invariants (gapless ledger, sum of amounts = balance).
    pub async fn verify(&self, w: &str) -> u64 {
        let wallet = WalletId::Workspace(WorkspaceId::parse(w).unwrap());
        self.billing.store.verify(&wallet).await.expect("the ledger is consistent").entries
    }
}

/// Every object key anywhere in `v`.
pub fn all_keys(v: &Value) -> Vec<String> {
    match v {
        Value::Object(m) => m.iter().flat_map(|(k, v)| std::iter::once(k.clone()).chain(all_keys(v))).collect(),
        Value::Array(a) => a.iter().flat_map(all_keys).collect(),
        _ => vec![],
    }
}

/// The default limits of the starter plan with `bots` and `members` raised by add-ons.
pub fn starter_limits(bots: u32, members: u32) -> Value {
    json!({
        "bots": bots,
        "members": members,
        "bot_users": 1000,
        "inbound_webhook_requests_per_month": 1000,
        "external_request_timeout_s": 10,
    })
}

pub fn usage_json(bots: u32, members: u32, bot_users: u32) -> Value {
    json!({ "bots": bots, "members": members, "bot_users": bot_users })
}

// ---- the harness checks itself: a check that can't fail proves nothing ----------------------

#[test]
fn literals_are_spliced_as_raw_json() {
    let r = req("POST /workspace/addons").json(json!({ "addon": "extra_bot", "quantity": lit("1.5") }));
    assert_eq!(r.event()["body"], r#"{"addon":"extra_bot","quantity":1.5}"#);
}

#[test]
fn events_carry_what_api_gateway_sends() {
    let r = req("DELETE /partner/workspaces/{id}/addons/{addon_id}")
        .param("id", W)
        .param("addon_id", "ad_1")
        .query("note", "a b&c")
        .by(partner_admin(P))
        .key("k1");
    let e = r.event();
    assert_eq!(
        (&e["rawPath"], &e["rawQueryString"]),
        (&json!("/partner/workspaces/ws-acme-1/addons/ad_1"), &json!("note=a%20b%26c"))
    );
    let built = r.build();
    assert_eq!(api::route_key(&built).as_deref(), Some("DELETE /partner/workspaces/{id}/addons/{addon_id}"));
    assert_eq!(api::path_param(&built, "addon_id").unwrap(), "ad_1");
    assert_eq!(api::query_param(&built, "note").as_deref(), Some("a b&c"));
    assert_eq!(built.method(), "DELETE");
    assert_eq!(built.headers()["idempotency-key"], "k1");
    let caller = api::Caller::from_request(&built).unwrap();
    assert_eq!((caller.sub.as_str(), caller.partner.as_ref().map(|p| p.as_str())), ("admin@p-acme", Some(P)));
    assert!(api::Caller::from_request(&req("GET /workspace").build()).is_err(), "no claims, no caller");
}

async fn the_state_snapshot_sees_every_write<T: Table>(api: Api<T>) {
    api.tenants().await;
    let before = api.state().await;
    assert!(before.len() >= 4, "profiles and workspace refs: {before:?}");
    let body = json!({ "amount": "1", "reason": "r" });
    let adjust = req("POST /partner/workspaces/{id}/points").param("id", W).by(partner_admin(P)).json(body);
    api.call(adjust.key("seen")).await.ok(201);
    let after = api.state().await;
    assert_eq!(after.len(), before.len() + 2, "a wallet and a ledger entry");
    assert!(api.key_recorded("partner:p-acme", "seen").await);
    api.usage(W, 1, 0, 0).await.ok(200);
    assert_ne!(api.state().await, after, "a profile change is seen too");
}

api_suite!(the_state_snapshot_sees_every_write);

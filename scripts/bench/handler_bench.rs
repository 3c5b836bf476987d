//! Handler benchmark: every HTTP route of template.yaml called in-process through its function's
//! `handle(&billing, request)` on the memory store, as API Gateway v2 events, warm.
//!
//! 1. CPU per request: many requests per route after a warm-up, timed on the handler's own
//!    thread (a current-thread runtime, CPU read from `/proc/thread-self/schedstat` in ns), next
//!    to the whole process (which also holds the Stripe fake's thread) and the wall time.
//! 2. DynamoDB calls per request of every mutating route (POST/PUT/DELETE): the same requests
//!    over `CountingTable<MemoryTable>`, each request counted on its own.
//!
//! It prints two Markdown tables for BENCHMARKS.md (`scripts/benchmarks`) and asserts nothing:
//! a route whose answers were not all 2xx says so in its row. Knobs: `HANDLER_BENCH_REQUESTS`
//! (timed requests per route, default 2,000), `HANDLER_BENCH_WARMUP` (default 100),
//! `HANDLER_BENCH_COUNT_REQUESTS` (requests per route counted for DynamoDB calls, default 20).
//!
//! An example of the tests crate, not a bin: it calls the function crates, which are that
//! crate's dev-dependencies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use billing::{Billing, Mutation, NewWorkspace, Payments};
use domain::{AnchorDay, FixedClock, PartnerId, PartnerSettings, PlanId, WorkspaceId};
use integration_tests::CountingTable;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use store::memory::MemoryTable;
use store::{IdempotencyKey, Store, Table};
use stripe_fake::{Fake, FakeConfig, RunningFake};
use stripe_gateway::client::{StripeConfig, StripeGateway};
use time::OffsetDateTime;
use time::macros::datetime;

const P: &str = "p-bench";
const W: &str = "ws-bench-1";
const SECRET_KEY: &str = local::stripe::FAKE_SECRET_KEY;
const WEBHOOK_SECRET: &str = local::stripe::FAKE_WEBHOOK_SECRET;
const PLATFORM_WEBHOOK_SECRET: &str = local::stripe::FAKE_PLATFORM_WEBHOOK_SECRET;
/// The clock the handlers see: mid-cycle, as in the API tests.
const T0: OffsetDateTime = datetime!(2026-04-15 10:00 UTC);
/// The tenant each route starts from: W's ledger entries beyond its funding, the partner's
/// workspaces beyond W.
const SEED_LEDGER_ENTRIES: usize = 20;
const SEED_WORKSPACES: usize = 10;
/// Add-ons bought or cancelled by the requests of one route on one workspace, at most.
const ADDONS_PER_WORKSPACE: usize = 5;
/// A bound on any knob, so a typo cannot start a run of hours.
const MAX_REQUESTS: usize = 100_000;

fn knob(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            let n: usize = v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number"));
            assert!((1..=MAX_REQUESTS).contains(&n), "{name} must be 1 to {MAX_REQUESTS}");
            n
        }
        _ => default,
    }
}

// ---- CPU clocks ----------------------------------------------------------------------------

/// CPU time of the calling thread, in ns (the scheduler's own account, not 10 ms ticks).
/// std has no CPU clock and the workspace forbids `unsafe` (so no `clock_gettime` through libc).
/// The kernel brings a running thread's account up to date only when it schedules, so yield
/// first: `sched_yield` updates it (a thread that sleeps, like the fake's, is always current).
fn thread_cpu() -> Duration {
    std::thread::yield_now();
    schedstat_ns("/proc/thread-self/schedstat")
}

/// CPU time of every thread of the process, in ns.
fn process_cpu() -> Duration {
    std::thread::yield_now();
    let tasks = std::fs::read_dir("/proc/self/task").expect("read /proc/self/task");
    tasks.filter_map(Result::ok).map(|t| schedstat_ns(&format!("{}/schedstat", t.path().display()))).sum()
}

fn schedstat_ns(path: &str) -> Duration {
    // "<ns on cpu> <ns waiting> <timeslices>"; a thread that ended meanwhile counts as 0.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let ns = text.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_nanos(ns)
}

// ---- requests ------------------------------------------------------------------------------

/// The callers, as API Gateway's JWT authorizer hands over their claims.
fn caller_for(path: &str, workspace: &str) -> Option<BTreeMap<&'static str, String>> {
    let claims = |pairs: &[(&'static str, &str)]| Some(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect());
    if path.starts_with("/partner") {
        claims(&[("sub", "admin@p-bench"), ("partner_id", P), ("roles", "[partner_admin]")])
    } else if path.starts_with("/workspace") {
        let sub = format!("owner@{workspace}");
        claims(&[("sub", &sub), ("partner_id", P), ("workspace_id", workspace), ("roles", "[workspace_admin]")])
    } else if path.starts_with("/platform") {
        claims(&[("sub", "svc-platform"), ("roles", "[platform_service]")])
    } else {
        None
    }
}

/// One request to `route` as the API Gateway HTTP API (payload 2.0) event, built the way the
/// API tests build theirs (tests/tests/integration/api/mod.rs), by the route's rightful caller.
#[derive(Debug, Clone, Default)]
struct Req {
    route: String,
    params: Vec<(&'static str, String)>,
    query: Vec<(&'static str, String)>,
    body: Option<String>,
    headers: Vec<(&'static str, String)>,
    /// The workspace of a workspace admin's token; default W.
    workspace: Option<String>,
}

fn req(route: &str) -> Req {
    Req { route: route.to_owned(), ..Req::default() }
}

impl Req {
    fn param(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.params.push((name, value.into()));
        self
    }

    fn query(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }

    fn json(mut self, body: Value) -> Self {
        self.body = Some(body.to_string());
        self
    }

    fn raw(mut self, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self
    }

    fn by_admin_of(mut self, workspace: &str) -> Self {
        self.workspace = Some(workspace.to_owned());
        self
    }

    fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    fn build(&self) -> Request {
        let (method, template) = self.route.split_once(' ').expect("a route key is 'METHOD /path'");
        let mut path = template.to_owned();
        for (name, value) in &self.params {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        assert!(!path.contains('{'), "{} needs all its path parameters", self.route);
        let raw_query = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        let mut headers = json!({
            "accept": "application/json",
            "host": "api.example.com",
            "user-agent": "handler-bench",
            "x-forwarded-proto": "https",
        });
        if self.body.is_some() {
            headers["content-type"] = json!("application/json");
        }
        let caller = caller_for(&path, self.workspace.as_deref().unwrap_or(W));
        if method != "GET" && caller.is_some() {
            headers["idempotency-key"] = json!(format!("key-{:016x}", fastrand::u64(..)));
        }
        for (name, value) in &self.headers {
            headers[*name] = json!(value);
        }
        let mut context = json!({
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "handler-bench" },
            "requestId": format!("req-{:016x}", fastrand::u64(..)),
            "routeKey": self.route,
            "stage": "$default",
            "time": "15/Apr/2026:10:00:00 +0000",
            "timeEpoch": 1_776_247_200_000_i64,
        });
        if let Some(c) = caller {
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
        lambda_http::request::from_str(&event.to_string()).expect("an API Gateway v2 event")
    }
}

fn body_json(r: &Response<Body>) -> Value {
    match r.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        Body::Binary(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

// ---- the system under test -----------------------------------------------------------------

/// The function that serves each route, from template.yaml (as `local/` reads it).
struct Routes {
    /// (route key, function crate name), in the template's order.
    all: Vec<(String, String)>,
}

impl Routes {
    fn load() -> Self {
        let path = local::template::repo_root().join("template.yaml");
        let template = local::template::Template::load(&path).expect("read template.yaml");
        let mut all = Vec::new();
        for f in &template.functions {
            let name = f.code_uri.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_owned();
            for r in &f.routes {
                all.push((r.key(), name.clone()));
            }
        }
        Self { all }
    }
}

async fn dispatch<T: Table>(function: &str, billing: &Billing<T>, req: Request) -> Response<Body> {
    match function {
        "purchase-addon" => purchase_addon::handle(billing, req).await,
        "create-checkout" => create_checkout::handle(billing, req).await,
        "stripe-webhook" => stripe_webhook::handle(billing, req).await,
        "adjust-points" => adjust_points::handle(billing, req).await,
        "partner-api" => partner_api::handle(billing, req).await,
        "workspace-api" => workspace_api::handle(billing, req).await,
        "platform-api" => platform_api::handle(billing, req).await,
        other => panic!("no handler for function {other} (add it to handler-bench's dispatch)"),
    }
}

/// One tenant on one table: partner P (credit billing, Stripe connected on the fake, a credit
/// rate, top-up options, success and cancel URLs), its workspace W funded with a million points
/// and holding one add-on.
struct Bench<'f, T> {
    billing: Billing<T>,
    stripe: &'f RunningFake,
    /// Route key to function crate.
    functions: BTreeMap<String, String>,
    /// Add-ons bought so far on pool workspaces (see [`Bench::pool_workspace`]).
    pool_slots: AtomicUsize,
}

impl<'f, T: Table> Bench<'f, T> {
    async fn new(table: T, stripe: &'f RunningFake, routes: &Routes) -> Self {
        let gateway = StripeConfig::new(SECRET_KEY).with_base(&stripe.url);
        let payments = Payments::new(false)
            .with_gateway(Arc::new(StripeGateway::new(gateway).expect("a test-mode client")))
            .with_webhook_secrets(vec![WEBHOOK_SECRET.to_owned()])
            .with_platform_webhook_secrets(vec![PLATFORM_WEBHOOK_SECRET.to_owned()]);
        let clock = Arc::new(FixedClock::new(T0));
        let billing = Billing::new(Store::new(table), clock).with_payments(payments);
        let functions = routes.all.iter().cloned().collect();
        let bench = Self { billing, stripe, functions, pool_slots: AtomicUsize::new(0) };
        bench.tenant().await;
        bench
    }

    async fn call(&self, r: Req) -> (u16, Value) {
        let function = self.function_of(&r.route);
        let answer = dispatch(&function, &self.billing, r.build()).await;
        (answer.status().as_u16(), body_json(&answer))
    }

    /// A setup call that must succeed.
    async fn must(&self, r: Req) -> Value {
        let route = r.route.clone();
        let (status, body) = self.call(r).await;
        assert!((200..300).contains(&status), "setup {route}: {status} {body}");
        body
    }

    fn function_of(&self, route: &str) -> String {
        self.functions.get(route).cloned().unwrap_or_else(|| panic!("{route} is not in template.yaml"))
    }

    async fn tenant(&self) {
        let id = PartnerId::parse(P).unwrap();
        let settings = PartnerSettings { credit_billing: true, ..Default::default() };
        let key = IdempotencyKey::new("platform", "create-bench", P.as_bytes()).unwrap();
        self.billing
            .create_partner(&id, &settings, Mutation::new(&key, &api::answers::partner_created))
            .await
            .expect("create the partner");
        let (code, _) = self.stripe.issue_oauth_code(None, false);
        self.must(req("POST /partner/stripe/connect").json(json!({ "code": code }))).await;
        self.must(req("PUT /partner/settings").json(json!({
            "credit_billing": true,
            "success_url": "https://agency.example/paid",
            "cancel_url": "https://agency.example/back",
            "grace_days": 0,
        })))
        .await;
        let options =
            json!({ "options": [{ "label": "Pack", "currency": "usd", "amount_minor": 1000, "points": "1000" }] });
        self.must(req("PUT /partner/topup-options").json(options)).await;
        self.must(req("PUT /partner/credit-rate").json(json!({ "currency": "usd", "price_per_point": "0.05" }))).await;
        self.provision(W, "Bench").await;
        let fund = json!({ "amount": "1000000", "reason": "bench funding" });
        self.must(req("POST /partner/workspaces/{id}/points").param("id", W).json(fund)).await;
        self.buy(W).await;
        // A small tenant's history: some ledger entries on W, some other workspaces.
        for i in 0..SEED_LEDGER_ENTRIES {
            let body = json!({ "amount": "1", "reason": format!("seed {i}") });
            self.must(req("POST /partner/workspaces/{id}/points").param("id", W).json(body)).await;
        }
        for i in 0..SEED_WORKSPACES {
            self.provision(&format!("ws-seed-{i}"), "Seed").await;
        }
    }

    /// A workspace under a fixed id, through the provisioning operation (the route assigns
    /// ids itself), so that the timed requests can name it.
    async fn provision(&self, w: &str, name: &str) {
        let new = NewWorkspace {
            id: WorkspaceId::parse(w).unwrap(),
            name: name.to_owned(),
            plan: PlanId::Starter,
            anchor: Some(AnchorDay::new(1).unwrap()),
        };
        let key = IdempotencyKey::new(&format!("partner:{P}"), &format!("provision-{w}"), w.as_bytes()).unwrap();
        let p = PartnerId::parse(P).unwrap();
        let reply = self
            .billing
            .create_workspace(&p, new, Mutation::new(&key, &api::answers::workspace_created))
            .await
            .expect("provision a workspace");
        assert_eq!(reply.status, 201, "{}", reply.body);
    }

    /// Buys one extra bot for `w` and returns the add-on's id.
    async fn buy(&self, w: &str) -> String {
        let body = json!({ "addon": "extra_bot", "quantity": 1 });
        let bought = self.must(req("POST /workspace/addons").by_admin_of(w).json(body)).await;
        bought["addon"]["id"].as_str().expect("an add-on id").to_owned()
    }

    /// A funded workspace for the next add-on a request buys or cancels: a new one every
    /// [`ADDONS_PER_WORKSPACE`], so that thousands of requests do not pile their add-ons onto
    /// one workspace (whose every read lists its add-ons) and time a workspace no one has.
    async fn pool_workspace(&self) -> String {
        let slot = self.pool_slots.fetch_add(1, Ordering::Relaxed);
        let w = format!("ws-pool-{}", slot / ADDONS_PER_WORKSPACE);
        if slot.is_multiple_of(ADDONS_PER_WORKSPACE) {
            self.provision(&w, "Pool").await;
            let fund = json!({ "amount": "1000000", "reason": "bench funding" });
            self.must(req("POST /partner/workspaces/{id}/points").param("id", &w).json(fund)).await;
        }
        w
    }

    /// A partner of its own for a request that suspends or reinstates one, so that the bench
    /// partner every other route uses stays active.
    async fn new_partner(&self, suspended: bool) -> String {
        let p = format!("p-alone-{:08x}", fastrand::u32(..));
        self.must(req("POST /platform/partners").json(json!({ "id": p, "name": "Alone" }))).await;
        if suspended {
            let body = json!({ "reason": "bench" });
            self.must(req("POST /platform/partners/{id}/suspend").param("id", &p).json(body)).await;
        }
        p
    }

    /// `n` requests to `route` that its rightful caller may send, each valid on its own (fresh
    /// ids where a route creates something, one add-on per cancellation, one paid Checkout
    /// Session per webhook delivery); `None` for a route this bench has no request for.
    async fn requests(&self, route: &str, n: usize) -> Option<Vec<Request>> {
        if route == "POST /stripe/webhook" {
            return Some(self.webhook_deliveries(n, false).await);
        }
        if route == "POST /stripe/platform-webhook" {
            return Some(self.webhook_deliveries(n, true).await);
        }
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let r = req(route);
            let r = match route {
                "PUT /partner/addons/{code}" => {
                    r.param("code", "extra_bot").json(json!({ "label": "Bot", "points": "10", "enabled": true }))
                }
                "GET /partner/plans/{id}" => r.param("id", "starter"),
                "PUT /partner/plans/{id}" => r.param("id", "growth").json(json!({
                    "label": "Growth",
                    "limits": { "bots": 5, "members": 10, "bot_users": 10000,
                                "inbound_webhook_requests_per_month": 10000, "external_request_timeout_s": 10 },
                    "monthly_price": { "amount_minor": 9900, "currency": "usd" },
                })),
                "PUT /partner/settings" => r.json(json!({
                    "credit_billing": true,
                    "success_url": "https://agency.example/paid",
                    "cancel_url": "https://agency.example/back",
                    "grace_days": 0,
                })),
                "POST /partner/stripe/connect" => {
                    r.json(json!({ "code": self.stripe.issue_oauth_code(None, false).0 }))
                }
                "POST /workspace/checkout" => r.json(json!({ "points": "100" })),
                "PUT /workspace/auto-topup" => r.json(json!({ "enabled": false })),
                "POST /partner/wallet/checkout" => r.json(json!({
                    "amount": "100.00",
                    "success_url": "https://agency.example/paid",
                    "cancel_url": "https://agency.example/back",
                })),
                "PUT /partner/wallet/auto-refill" => r.json(json!({ "enabled": false })),
                "PUT /partner/topup-options" => r.json(json!({
                    "options": [{ "label": "Pack", "currency": "usd", "amount_minor": 1000, "points": "1000" }],
                })),
                "PUT /partner/credit-rate" => r.json(json!({ "currency": "usd", "price_per_point": "0.05" })),
                "POST /partner/workspaces" => {
                    r.json(json!({ "name": "New", "plan": "starter", "cycle_anchor_day": 1 }))
                }
                "GET /partner/workspaces/{id}" | "GET /platform/workspaces/{id}/entitlements" => r.param("id", W),
                // Back and forth, so that every request is a real change.
                "PUT /partner/workspaces/{id}/plan" => {
                    r.param("id", W).json(json!({ "plan": if i % 2 == 0 { "growth" } else { "starter" } }))
                }
                "GET /partner/ledger" => r.query("workspace_id", W),
                "POST /partner/workspaces/{id}/points" => {
                    r.param("id", W).json(json!({ "amount": "1", "reason": "bench" }))
                }
                "POST /workspace/addons" => {
                    r.by_admin_of(&self.pool_workspace().await).json(json!({ "addon": "extra_bot", "quantity": 1 }))
                }
                "DELETE /workspace/addons/{addon_id}" => {
                    let w = self.pool_workspace().await;
                    let addon = self.buy(&w).await;
                    r.by_admin_of(&w).param("addon_id", addon)
                }
                "POST /partner/workspace/{id}/add-addon" => {
                    let body = json!({ "addon": "extra_bot", "quantity": 1, "charge_points": true });
                    r.param("id", self.pool_workspace().await).json(body)
                }
                "DELETE /partner/workspaces/{id}/addons/{addon_id}" => {
                    let w = self.pool_workspace().await;
                    let addon = self.buy(&w).await;
                    r.param("id", w).param("addon_id", addon)
                }
                "PUT /platform/workspaces/{id}/usage-counts" => {
                    r.param("id", W).json(json!({ "bots": 1, "members": 1, "bot_users": 1 }))
                }
                "POST /platform/usage" => r.json(json!({
                    "workspace_id": W, "meter": "voice_minutes", "quantity": "1",
                    "event_id": format!("evt-bench-{i}-{:08x}", fastrand::u32(..)),
                })),
                "GET /platform/workspaces/{id}/access" => r.param("id", W).query("meter", "voice_minutes"),
                "PUT /platform/partners/{id}/billing" => r.param("id", P).json(json!({ "mode": "postpaid" })),
                "GET /platform/partners/{id}" => r.param("id", P),
                "POST /platform/partners" => {
                    r.json(json!({ "id": format!("p-new-{i}-{:08x}", fastrand::u32(..)), "name": "New Partner" }))
                }
                // Back and forth, ending where it started (postpaid) for the routes measured after.
                "PUT /platform/partners/{id}/terms" => {
                    let mode = if (n - 1 - i).is_multiple_of(2) { "postpaid" } else { "prepaid" };
                    r.param("id", P).json(json!({ "billing_mode": mode }))
                }
                "POST /platform/partners/{id}/suspend" => {
                    r.param("id", self.new_partner(false).await).json(json!({ "reason": "bench" }))
                }
                "POST /platform/partners/{id}/reinstate" => r.param("id", self.new_partner(true).await),
                "POST /platform/partners/{id}/wallet/adjustments" => {
                    r.param("id", P).json(json!({ "amount": "1", "reason": "bench" }))
                }
                "PUT /partner/workspaces/{id}/rebilling" => r.param("id", W).json(json!({ "enabled": false })),
                _ if route.starts_with("GET ") && !route.contains('{') => r,
                _ => return None,
            };
            out.push(r.build());
        }
        Some(out)
    }

    /// `n` Checkout Sessions created through the API and paid on the fake: their
    /// `checkout.session.completed` events, signed as Stripe delivers them. Workspace top-ups on
    /// the partner's account for the Connect endpoint, or (`platform`) partner wallet payments on
    /// the platform's account for its own endpoint.
    async fn webhook_deliveries(&self, n: usize, platform: bool) -> Vec<Request> {
        let (create, route, secret) = if platform {
            let body = json!({
                "amount": "100.00", "success_url": "https://agency.example/paid", "cancel_url": "https://agency.example/back",
            });
            (req("POST /partner/wallet/checkout").json(body), "POST /stripe/platform-webhook", PLATFORM_WEBHOOK_SECRET)
        } else {
            (req("POST /workspace/checkout").json(json!({ "points": "100" })), "POST /stripe/webhook", WEBHOOK_SECRET)
        };
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            let created = self.must(create.clone()).await;
            let id = created["id"].as_str().expect("a session id").to_owned();
            self.stripe.pay(&id).await.expect("pay the session on the fake");
            ids.push(id);
        }
        let mut completed: BTreeMap<String, String> = BTreeMap::new();
        for e in self.stripe.events().into_iter().filter(|e| e.type_ == "checkout.session.completed") {
            let v: Value = serde_json::from_str(&e.payload).expect("an event is JSON");
            if let Some(id) = v["data"]["object"]["id"].as_str() {
                completed.insert(id.to_owned(), e.payload);
            }
        }
        let now = OffsetDateTime::now_utc().unix_timestamp();
        ids.iter()
            .map(|id| {
                let payload = completed.get(id).expect("the fake recorded checkout.session.completed");
                let signature = stripe_gateway::signature::sign(payload.as_bytes(), &[secret], now);
                req(route).header("stripe-signature", signature).raw(payload).build()
            })
            .collect()
    }
}

// ---- the two runs --------------------------------------------------------------------------

struct Timing {
    route: String,
    function: String,
    requests: usize,
    ok: usize,
    statuses: BTreeMap<u16, usize>,
    thread_cpu: Duration,
    process_cpu: Duration,
    wall: Duration,
    stripe_calls: usize,
}

async fn time_route(
    bench: &Bench<'_, MemoryTable>,
    route: &str,
    function: &str,
    warmup: usize,
    n: usize,
) -> Option<Timing> {
    let warm = bench.requests(route, warmup).await?;
    for r in warm {
        dispatch(function, &bench.billing, r).await;
    }
    let timed = bench.requests(route, n).await?;
    let stripe_before = bench.stripe.requests().len();
    let mut statuses = BTreeMap::new();
    let (t0, p0, w0) = (thread_cpu(), process_cpu(), Instant::now());
    for r in timed {
        let answer = dispatch(function, &bench.billing, r).await;
        *statuses.entry(answer.status().as_u16()).or_insert(0) += 1;
    }
    let (wall, t1, p1) = (w0.elapsed(), thread_cpu(), process_cpu());
    let ok = statuses.iter().filter(|(s, _)| (200..300).contains(*s)).map(|(_, c)| c).sum();
    Some(Timing {
        route: route.to_owned(),
        function: function.to_owned(),
        requests: n,
        ok,
        statuses,
        thread_cpu: t1.saturating_sub(t0),
        process_cpu: p1.saturating_sub(p0),
        wall,
        stripe_calls: bench.stripe.requests().len() - stripe_before,
    })
}

/// Calls of one kind per request: the least and the most any one request made.
#[derive(Debug, Clone, Copy)]
struct Range {
    min: u64,
    max: u64,
}

impl Range {
    fn new() -> Self {
        Self { min: u64::MAX, max: 0 }
    }

    fn add(&mut self, v: u64) {
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max { write!(f, "{}", self.min) } else { write!(f, "{}-{}", self.min, self.max) }
    }
}

struct Counts {
    route: String,
    requests: usize,
    ok: usize,
    reads: Range,
    queries: Range,
    transactions: Range,
    stripe: Range,
}

async fn count_route(
    bench: &Bench<'_, CountingTable<MemoryTable>>,
    route: &str,
    function: &str,
    n: usize,
) -> Option<Counts> {
    // One request first, not counted: the same warm state as the timed run.
    for r in bench.requests(route, 1).await? {
        dispatch(function, &bench.billing, r).await;
    }
    let requests = bench.requests(route, n).await?;
    let mut c = Counts {
        route: route.to_owned(),
        requests: n,
        ok: 0,
        reads: Range::new(),
        queries: Range::new(),
        transactions: Range::new(),
        stripe: Range::new(),
    };
    for r in requests {
        let table = bench.billing.store.table();
        let (g0, q0, t0) = table.counts();
        let s0 = bench.stripe.requests().len();
        let answer = dispatch(function, &bench.billing, r).await;
        let (g1, q1, t1) = table.counts();
        if (200..300).contains(&answer.status().as_u16()) {
            c.ok += 1;
        }
        c.reads.add(g1 - g0);
        c.queries.add(q1 - q0);
        c.transactions.add(t1 - t0);
        c.stripe.add((bench.stripe.requests().len() - s0) as u64);
    }
    Some(c)
}

// ---- report --------------------------------------------------------------------------------

/// `d / n` as microseconds with one decimal, from integers.
fn per_request_us(d: Duration, n: usize) -> String {
    let n = u128::try_from(n.max(1)).expect("a count fits u128");
    let tenths = d.as_nanos() / n / 100;
    format!("{}.{}", tenths / 10, tenths % 10)
}

fn statuses(s: &BTreeMap<u16, usize>) -> String {
    s.iter().map(|(status, n)| format!("{n}x{status}")).collect::<Vec<_>>().join(" ")
}

fn main() {
    let n = knob("HANDLER_BENCH_REQUESTS", 2_000);
    let warmup = knob("HANDLER_BENCH_WARMUP", 100);
    let count_n = knob("HANDLER_BENCH_COUNT_REQUESTS", 20);
    let routes = Routes::load();

    // The fake Stripe serves on a runtime (and thread) of its own, so that the handler's thread
    // CPU holds only the handler's side of each Stripe call.
    let fake_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("the fake's runtime");
    let start_fake = || {
        let mut config = FakeConfig::new(SECRET_KEY, WEBHOOK_SECRET);
        config.webhook_url = None;
        fake_rt.block_on(Fake::start(config, ([127, 0, 0, 1], 0).into())).expect("start the fake Stripe")
    };
    // One fake per run: the counting run reads the fake's request log after every request.
    let (stripe, counted_stripe) = (start_fake(), start_fake());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("the bench's runtime");

    let (timings, counts) = rt.block_on(async {
        // Each route from the same fresh tenant: what one route's requests leave behind (a
        // thousand ledger entries, say) never weighs on the next route's figures.
        let mut timings = Vec::new();
        for (route, function) in &routes.all {
            eprintln!("handler-bench: {route} ({function}), {n} requests");
            let bench = Bench::new(MemoryTable::new(), &stripe, &routes).await;
            timings.push((route.clone(), function.clone(), time_route(&bench, route, function, warmup, n).await));
        }
        let mut counts = Vec::new();
        for (route, function) in &routes.all {
            if route.starts_with("GET ") {
                continue;
            }
            let bench = Bench::new(CountingTable::new(MemoryTable::new()), &counted_stripe, &routes).await;
            counts.push((route.clone(), count_route(&bench, route, function, count_n).await));
        }
        (timings, counts)
    });

    println!("## 3. Warm handler CPU per request (memory store)\n");
    println!(
        "{n} timed requests per route after {warmup} warm-up requests, each a valid request of the \
         route's rightful caller, built before the clock starts. Every route starts from the same \
         fresh tenant: a partner with Stripe connected and {} workspaces; W holds one add-on and {} \
         ledger entries; requests that buy or cancel add-ons spread over workspaces of at most {} \
         add-ons each. *Handler CPU* is the handler's \
         thread (a current-thread runtime: routing, JSON, the domain operation, the memory store, \
         and the client side of any Stripe call); *process CPU* adds every other thread, i.e. the \
         in-process Stripe fake answering those calls. Wall time is for reference only.\n",
        SEED_WORKSPACES + 1,
        // Its funding, the add-on's purchase and the seeded adjustments.
        SEED_LEDGER_ENTRIES + 2,
        ADDONS_PER_WORKSPACE
    );
    println!(
        "| route | function | handler CPU µs/req | process CPU µs/req | wall µs/req | Stripe calls/req | answers |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | --- |");
    for (route, function, t) in &timings {
        match t {
            Some(t) => {
                let answers = if t.ok == t.requests {
                    format!("all {}", statuses(&t.statuses))
                } else {
                    format!("**not all 2xx**: {}", statuses(&t.statuses))
                };
                println!(
                    "| `{}` | {} | {} | {} | {} | {} | {} |",
                    t.route,
                    t.function,
                    per_request_us(t.thread_cpu, t.requests),
                    per_request_us(t.process_cpu, t.requests),
                    per_request_us(t.wall, t.requests),
                    t.stripe_calls / t.requests.max(1),
                    answers
                );
            }
            None => println!("| `{route}` | {function} | no sample request in handler-bench | | | | |"),
        }
    }

    println!("\n## 4. DynamoDB calls per request, mutating routes\n");
    println!(
        "Each of {count_n} requests per route counted on its own through `CountingTable` over the \
         memory store: *reads* are GetItem and BatchGetItem (one each), *queries* Query on the table \
         or an index, *transactions* TransactWriteItems. A range is the least and the most one \
         request made. Goal: at most 1 read and 1 transaction.\n"
    );
    println!(
        "| route | reads | queries | transactions | Stripe calls | goal (<= 1 read + 1 transaction) | answers 2xx |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | --- | ---: |");
    for (route, c) in &counts {
        match c {
            Some(c) => {
                let reads = c.reads.max + c.queries.max;
                let goal = if reads <= 1 && c.transactions.max <= 1 {
                    "met".to_owned()
                } else {
                    format!("**over**: {reads} reads+queries, {} transactions", c.transactions.max)
                };
                println!(
                    "| `{}` | {} | {} | {} | {} | {} | {}/{} |",
                    c.route, c.reads, c.queries, c.transactions, c.stripe, goal, c.ok, c.requests
                );
            }
            None => println!("| `{route}` | | | | | no sample request in handler-bench | |"),
        }
    }
    drop(rt);
    drop((stripe, counted_stripe));
}

//! The runner's clock control over HTTP, as a demo uses it: buy an add-on, `POST /_local/clock`
//! a month ahead, and the renewal is in the answer and in the ledger. The runner here is the
//! real one (routing from template.yaml, local JWTs, each function's IAM policy, renewals with
//! renew-addons' policy) on the in-memory store and an `OffsetClock`, as `cargo run -p local`
//! builds it, so it needs no DynamoDB Local.

use std::path::Path;
use std::sync::Arc;

use billing::Billing;
use domain::OffsetClock;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use local::{App, PolicyTable, Router, TokenRequest, Verifier};
use serde_json::{Value, json};
use store::Store;
use store::memory::MemoryTable;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::oneshot;

const SECRET: &str = "local-clock-test-secret";
const DAY_S: i64 = 86_400;

/// The runner on the in-memory store and an `OffsetClock`, seeded; it stops when dropped.
struct Runner {
    url: String,
    token: String,
    /// The demo partner's admin.
    partner_token: String,
    client: Client<HttpConnector, Full<Bytes>>,
    _fake: stripe_fake::RunningFake,
    _stop: oneshot::Sender<()>,
}

impl Runner {
    async fn start() -> Runner {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fake = local::stripe::start_fake(([127, 0, 0, 1], 0).into(), &url).await.unwrap();
        let billing = Billing::new(Store::new(PolicyTable::new(MemoryTable::new())), Arc::new(OffsetClock::new()))
            .with_payments(local::stripe::payments(&fake.url));
        local::seed::seed(&billing, &url, &fake).await.unwrap();
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("template.yaml");
        let router = Router::from_template(&template).unwrap();
        let app = Arc::new(App { router, billing, verifier: Verifier::new(SECRET), web_root: local::web::web_root() });
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            local::server::serve(app, listener, shutdown).await.unwrap();
        });
        let token = TokenRequest {
            sub: "admin@local-clock".into(),
            partner_id: Some(local::seed::DEMO_PARTNER.into()),
            workspace_id: Some("demo-ws-1".into()),
            roles: vec!["workspace_admin".into()],
            ttl_s: 600,
        }
        .mint(&Verifier::new(SECRET), local::server::now_epoch_s());
        let partner_token = TokenRequest {
            sub: "partner@local-clock".into(),
            partner_id: Some(local::seed::DEMO_PARTNER.into()),
            workspace_id: None,
            roles: vec!["partner_admin".into()],
            ttl_s: 600,
        }
        .mint(&Verifier::new(SECRET), local::server::now_epoch_s());
        let client = Client::builder(TokioExecutor::new()).build_http();
        Runner { url, token, partner_token, client, _fake: fake, _stop: stop }
    }

    /// A request with a JSON body (or none), the workspace admin's token on API routes; the
    /// status and the JSON answered.
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send_as(&self.token, method, path, body).await
    }

    async fn send_as(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = Request::builder().method(method.clone()).uri(format!("{}{path}", self.url));
        if !path.starts_with("/_local/") {
            req = req.header("authorization", format!("Bearer {token}"));
            if method != Method::GET {
                req = req.header("idempotency-key", format!("clock-{:016x}", fastrand::u64(..)));
            }
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = req.header("content-type", "application/json").body(Full::new(Bytes::from(body))).unwrap();
        let response = self.client.request(req).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

/// `now` of a clock answer, which must be `offset_s` ahead of the real time (read around it).
fn assert_now(answer: &Value, before: OffsetDateTime, offset_s: i64) {
    assert_eq!(answer["offset_s"], json!(offset_s), "{answer}");
    let now = OffsetDateTime::parse(answer["now"].as_str().unwrap(), &Rfc3339).unwrap();
    let offset = time::Duration::seconds(offset_s);
    assert!(before + offset <= now && now <= OffsetDateTime::now_utc() + offset, "{answer}");
}

#[tokio::test]
async fn a_month_ahead_the_addon_bought_today_is_renewed() {
    let runner = Runner::start().await;
    let before = OffsetDateTime::now_utc();
    let (status, answer) = runner.send(Method::GET, "/_local/clock", None).await;
    assert_eq!(status, 200, "{answer}");
    assert_now(&answer, before, 0);

    let order = json!({ "addon": "extra_bot", "quantity": 1 });
    let (status, bought) = runner.send(Method::POST, "/workspace/addons", Some(order)).await;
    assert_eq!(status, 201, "{bought}");

    // Both demo workspaces are billed by calendar month: 31 days on, each renewal is due.
    let before = OffsetDateTime::now_utc();
    let (status, answer) = runner.send(Method::POST, "/_local/clock", Some(json!({ "advance_days": 31 }))).await;
    assert_eq!(status, 200, "{answer}");
    assert_now(&answer, before, 31 * DAY_S);
    assert_eq!(
        answer["renewal"],
        json!({ "renewed": 2, "lapsed": 0, "in_grace": 0, "awaiting_topup": 0, "skipped": 0, "failed": 0, "finished": true }),
        "demo-ws-1 pays its extra bot again; demo-ws-2, without add-ons, moves to its next cycle"
    );
    let (status, ledger) = runner.send(Method::GET, "/workspace/ledger?limit=2", None).await;
    assert_eq!(status, 200, "{ledger}");
    let (renewal, purchase) = (&ledger["data"][0], &ledger["data"][1]);
    assert_eq!((&renewal["kind"], &renewal["amount"]), (&json!("renewal"), &json!("-10.00")), "{ledger}");
    assert_eq!(renewal["detail"]["lines"][0]["addon_id"], bought["addon"]["id"], "{ledger}");
    assert_eq!(purchase["kind"], "addon_purchase", "{ledger}");

    // Hours add to days; the time stays moved.
    let before = OffsetDateTime::now_utc();
    let (status, answer) = runner.send(Method::POST, "/_local/clock", Some(json!({ "advance_hours": 5 }))).await;
    assert_eq!(status, 200, "{answer}");
    assert_now(&answer, before, 31 * DAY_S + 5 * 3600);
    let (_, answer) = runner.send(Method::GET, "/_local/clock", None).await;
    assert_eq!(answer["offset_s"], json!(31 * DAY_S + 5 * 3600));
}

/// A plan edit leaves its workspaces to the plan edits' pass, which the clock runs before the
/// renewals with renew-addons' policy: its batch read and the edit's deletion are allowed.
#[tokio::test]
async fn the_clock_settles_a_plan_edit_within_renew_addons_policy() {
    let runner = Runner::start().await;
    let plan = json!({
        "label": "Starter",
        "limits": { "bots": 3, "members": 3, "bot_users": 1000, "inbound_webhook_requests_per_month": 1000, "external_request_timeout_s": 10 },
        "monthly_price": { "amount_minor": 4900, "currency": "usd" },
    });
    let (status, answer) =
        runner.send_as(&runner.partner_token, Method::PUT, "/partner/plans/starter", Some(plan)).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = runner.send(Method::POST, "/_local/clock", Some(json!({ "advance_days": 0 }))).await;
    assert_eq!(status, 200, "{answer}");
    let settled = &answer["plan_edits"];
    assert_eq!(
        (&settled["edits"], &settled["failed"], &settled["finished"]),
        (&json!(1), &json!(0), &json!(true)),
        "{answer}"
    );
    let (_, answer) = runner.send(Method::POST, "/_local/clock", Some(json!({ "advance_days": 0 }))).await;
    assert_eq!(answer["plan_edits"]["edits"], 0, "settled once: {answer}");
}

#[tokio::test]
async fn the_clock_control_refuses_what_it_cannot_do() {
    let runner = Runner::start().await;
    for (body, param) in [
        (json!({ "advance_days": -1 }), "advance_days"),
        (json!({ "advance_days": 1.5 }), "advance_days"),
        (json!({ "advance_days": 3661 }), "advance_days"),
        (json!({ "advance_hours": 87_841 }), "advance_hours"),
        (json!({ "advance_months": 1 }), "advance_months"),
        (json!({}), "advance_days"),
    ] {
        let (status, answer) = runner.send(Method::POST, "/_local/clock", Some(body.clone())).await;
        assert_eq!(
            (status, answer["error"]["type"].as_str(), answer["error"]["param"].as_str()),
            (400, Some("invalid_request"), Some(param)),
            "{body}: {answer}"
        );
    }
    let (status, answer) = runner.send(Method::DELETE, "/_local/clock", None).await;
    assert_eq!((status, answer["error"]["type"].as_str()), (404, Some("not_found")), "{answer}");
    let (_, answer) = runner.send(Method::GET, "/_local/clock", None).await;
    assert_eq!(answer["offset_s"], 0, "nothing moved");
}

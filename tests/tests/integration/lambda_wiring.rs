//! Every function's real binary, started as Lambda starts it, handed one recorded event (or
//! two) through a Runtime API stand-in: so each `main.rs` is tested, not only its handler.
//!
//! Each process gets Lambda's environment plus the variables template.yaml gives that function
//! (read from the template, so a variable it forgets fails here), SSM at a stand-in answering
//! the Stripe parameters, and DynamoDB Local with a fresh table that the in-process handlers
//! seeded. The binaries are the ones `scripts/test` builds (`cargo build --bins` of every
//! function, before `cargo test`, which builds another package's bins only as test harnesses)
//! next to this test's executable; a missing one fails the test.
//!
//! The binaries talk to api.stripe.com unless `STRIPE_API_BASE` (a test deployment's only)
//! points them elsewhere: the cases that reach Stripe point them at the in-process Stripe fake.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use integration_tests::lambda::{Answer, Invocation, Outcome, Process, RuntimeApi, Ssm, lambda_environment};
use integration_tests::{ENDPOINT_VAR, fresh_table};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use serde_yaml_ng::Value as Yaml;
use store::dynamodb::DynamoTable;
use time::OffsetDateTime;

use crate::api::{Api, P, Req, Resp, W, X, partner_admin, platform, req, workspace_admin};

/// A debug binary's init (tracing, AWS config, the SSM reads) until its first `/next`.
const INIT_TIMEOUT: Duration = Duration::from_secs(20);
/// From the first `/next` until every queued event is answered.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);
/// The end of a process's log a failure shows.
const LOG_TAIL_BYTES: usize = 4096;

const SECRET_KEY_PARAM: &str = "/billing/stripe/secret-key";
const WEBHOOK_SECRETS_PARAM: &str = "/billing/stripe/webhook-secrets";
const PLATFORM_WEBHOOK_SECRETS_PARAM: &str = "/billing/stripe/platform-webhook-secrets";
/// What the SSM stand-in holds: the Stripe fake's test-mode key (the deployment is
/// `STRIPE_LIVEMODE=false`).
const SECRET_KEY: &str = local::stripe::FAKE_SECRET_KEY;
const WEBHOOK_SECRET: &str = "whsec_lambda_wiring";
const PLATFORM_WEBHOOK_SECRET: &str = "whsec_lambda_wiring_platform";

const SCHEDULED_EVENT: &str = include_str!("../../fixtures/eventbridge-scheduled-event.json");
const CHECKOUT_COMPLETED_EVENT: &str = include_str!("../../fixtures/stripe-checkout-session-completed.json");
/// A batch of the table's stream as the event source mapping hands it to charge-refills: one new
/// refill request, W's.
const REFILL_REQUEST_STREAM_EVENT: &str = include_str!("../../fixtures/dynamodb-stream-refill-request.json");

/// The value template.yaml's `!Ref` of `name` takes in this deployment.
fn parameter(name: &str, table: &str) -> String {
    let value = match name {
        "BillingTable" => table,
        "LogLevel" => "info",
        "StripeLivemode" => "false",
        "PlatformMeters" => "voice_minutes=0.07",
        "WholesaleFloors" => "usd=0.01",
        "StripeSecretKeyParameter" => SECRET_KEY_PARAM,
        "StripeWebhookSecretsParameter" => WEBHOOK_SECRETS_PARAM,
        "StripePlatformWebhookSecretsParameter" => PLATFORM_WEBHOOK_SECRETS_PARAM,
        other => panic!("template.yaml refers to {other}, which this test gives no value: add it here"),
    };
    value.to_owned()
}

fn field<'a>(v: &'a Yaml, key: &str) -> Option<&'a Yaml> {
    v.as_mapping().and_then(|m| m.get(key))
}

/// A variable's value: a literal, or a `!Ref`.
fn resolve(name: &str, v: &Yaml, table: &str) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Tagged(t) if t.tag == "Ref" => parameter(t.value.as_str().expect("a !Ref names a string"), table),
        other => panic!("template.yaml's {name} is {other:?}: this test reads only literals and !Ref"),
    }
}

/// What template.yaml gives the function in `functions/<name>`: its environment (Globals' and
/// its own) and its timeout.
fn template_function(name: &str, table: &str) -> (Vec<(String, String)>, Duration) {
    let doc = local::template::load_yaml(&local::template::repo_root().join("template.yaml")).unwrap();
    let globals = field(&doc, "Globals").and_then(|g| field(g, "Function")).expect("Globals.Function");
    let code_uri = format!("functions/{name}");
    let resources = field(&doc, "Resources").and_then(Yaml::as_mapping).expect("Resources");
    let props = resources
        .values()
        .filter_map(|r| field(r, "Properties"))
        .find(|p| field(p, "CodeUri").and_then(Yaml::as_str) == Some(code_uri.as_str()))
        .unwrap_or_else(|| panic!("template.yaml has no function with CodeUri {code_uri}"));
    let mut env = Vec::new();
    for source in [globals, props] {
        let vars = field(source, "Environment").and_then(|e| field(e, "Variables")).and_then(Yaml::as_mapping);
        for (k, v) in vars.into_iter().flatten() {
            let k = k.as_str().expect("a variable name").to_owned();
            let v = resolve(&k, v, table);
            env.retain(|(name, _): &(String, String)| *name != k);
            env.push((k, v));
        }
    }
    let timeout_s = field(props, "Timeout")
        .or_else(|| field(globals, "Timeout"))
        .and_then(Yaml::as_u64)
        .expect("a literal Timeout in the function or the Globals");
    (env, Duration::from_secs(timeout_s))
}

/// The function's binary, next to this test's executable (`target/<profile>/deps/..`).
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe.parent().and_then(Path::parent).expect("the test executable is in <target>/<profile>/deps");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: build the functions' binaries first (scripts/test runs `cargo build --bins` for every \
         function before the tests; `cargo test` alone builds another package's bins only as test harnesses)",
        path.display()
    );
    path
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let from = text.len().saturating_sub(LOG_TAIL_BYTES);
    String::from_utf8_lossy(&text[from..]).into_owned()
}

/// What one process answered, and what it asked the SSM stand-in.
struct Run {
    outcomes: Vec<Outcome>,
    ssm_calls: u32,
    /// The `GetParameter` calls made by the time each answer came (the process handles one
    /// event at a time, so the difference between two is what the later event asked).
    ssm_calls_by_answer: Vec<u32>,
}

/// What a case changes in the process's world.
#[derive(Default)]
struct Setup<'a> {
    /// `STRIPE_API_BASE`: the Stripe fake's URL.
    stripe: Option<&'a str>,
    /// The Stripe key the SSM stand-in holds, instead of [`SECRET_KEY`].
    secret_key: Option<&'a str>,
}

/// Starts `name`'s binary over `table`, hands it `events` in order through `/next`, and returns
/// its answers once all are in; the process is killed then (or on any failure).
fn invoke(name: &str, table: &str, events: &[Value]) -> Run {
    invoke_in(name, table, events, &Setup::default())
}

fn invoke_in(name: &str, table: &str, events: &[Value], setup: &Setup) -> Run {
    let runtime = RuntimeApi::start().expect("start the Runtime API stand-in");
    let ssm = Ssm::start(BTreeMap::from([
        (SECRET_KEY_PARAM.to_owned(), setup.secret_key.unwrap_or(SECRET_KEY).to_owned()),
        (WEBHOOK_SECRETS_PARAM.to_owned(), WEBHOOK_SECRET.to_owned()),
        (PLATFORM_WEBHOOK_SECRETS_PARAM.to_owned(), PLATFORM_WEBHOOK_SECRET.to_owned()),
    ]))
    .expect("start the SSM stand-in");
    let dynamodb = std::env::var(ENDPOINT_VAR).unwrap_or_else(|_| {
        panic!("{ENDPOINT_VAR} is not set: run the tests with scripts/test, which starts DynamoDB Local")
    });
    let (variables, timeout) = template_function(name, table);
    let ids: Vec<String> =
        (0..events.len()).map(|_| format!("{:08x}-wiring-{:016x}", fastrand::u32(..), fastrand::u64(..))).collect();
    for (id, event) in ids.iter().zip(events) {
        runtime.enqueue(Invocation {
            request_id: id.clone(),
            payload: event.to_string().into_bytes(),
            timeout,
            function_name: name.to_owned(),
        });
    }

    let dir = std::env::temp_dir().join(format!("lambda-wiring-{:016x}", fastrand::u64(..)));
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("create the process's folder");
    let log_path = dir.join(format!("{name}.log"));
    let log = File::create(&log_path).expect("create the process's log");
    let mut env = lambda_environment(name, runtime.address(), ssm.url(), &home);
    env.extend(variables);
    env.push(("AWS_ENDPOINT_URL_DYNAMODB".to_owned(), dynamodb));
    if let Some(url) = setup.stripe {
        env.push((runtime::STRIPE_API_BASE_VAR.to_owned(), url.to_owned()));
    }
    let child = Command::new(binary(name))
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("the log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let mut process = Process(child);

    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        let refused = runtime.seen(|s| s.refused.clone());
        panic!("{name}: {what}: {e}; the Runtime API refused {refused:?}; its log:\n{}", log_tail(&log_path))
    };
    if let Err(e) = runtime.wait_for(&mut process.0, INIT_TIMEOUT, |s| s.first_next_at) {
        fail("no first /next", &e);
    }
    let answered = runtime.wait_for(&mut process.0, ANSWER_TIMEOUT, |s| {
        let found: Option<Vec<Answer>> =
            ids.iter().map(|id| s.answers.iter().find(|a| a.request_id == *id).cloned()).collect();
        found
    });
    let answers = answered.unwrap_or_else(|e| fail("not every event answered", &e));
    let all = runtime.seen(|s| s.answers.len());
    assert_eq!(all, events.len(), "{name}: one answer per event");
    drop(process);
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        ssm_calls_by_answer: answers.iter().map(|a| ssm.calls_before(a.answered_at)).collect(),
        outcomes: answers.into_iter().map(|a| a.outcome).collect(),
        ssm_calls: ssm.calls(),
    }
}

/// [`invoke`] from an async test: its waits block this worker, the runtime's other worker
/// keeps the in-process fakes going.
fn invoke_blocking(name: &str, table: &str, events: &[Value]) -> Run {
    tokio::task::block_in_place(|| invoke(name, table, events))
}

fn invoke_blocking_in(name: &str, table: &str, events: &[Value], setup: &Setup) -> Run {
    tokio::task::block_in_place(|| invoke_in(name, table, events, setup))
}

/// The handler's result of a successful invocation.
fn response(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Response(body) => serde_json::from_slice(body).expect("the response is JSON"),
        Outcome::Error(body) => panic!("the invocation failed: {}", String::from_utf8_lossy(body)),
    }
}

/// An API Gateway v2 (payload 2.0) response as a client sees it.
fn http(outcome: &Outcome) -> Resp {
    let answer = response(outcome);
    assert_eq!(answer["headers"]["content-type"], "application/json", "{answer}");
    assert_eq!(answer["isBase64Encoded"], false, "{answer}");
    let status = answer["statusCode"].as_u64().and_then(|s| u16::try_from(s).ok()).expect("a statusCode");
    let body = answer["body"].as_str().expect("a text body");
    Resp { status, body: serde_json::from_str(body).expect("the body is JSON") }
}

fn decimal(v: &Value) -> Decimal {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a decimal string: {v}"))
}

/// Two tenants seeded through the in-process handlers over a fresh DynamoDB table, on today's
/// date (the binaries run on the real clock), `W` funded with 20 points.
async fn seeded() -> (Api<DynamoTable>, String) {
    let table = fresh_table().await;
    let name = table.table_name().to_owned();
    let api = Api::over(table).await;
    api.set_clock(OffsetDateTime::now_utc());
    api.tenants().await;
    api.fund(P, W, "20").await;
    (api, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_api_binary_answers_as_its_handler() {
    let (api, table) = seeded().await;
    let get = req("GET /workspace").by(workspace_admin(P, W));
    let run = invoke_blocking("workspace-api", &table, &[get.event()]);
    let got = http(&run.outcomes[0]).ok(200);
    assert_eq!(got["balance"], "20.00", "{got}");
    api.set_clock(OffsetDateTime::now_utc());
    assert_eq!(got, api.call(get).await.ok(200));
    assert_eq!(run.ssm_calls, 0, "no Stripe, no parameter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_api_binary_answers_its_workspace_and_not_another_partners() {
    let (api, table) = seeded().await;
    let own = req("GET /partner/workspaces/{id}").param("id", W).by(partner_admin(P));
    let other = req("GET /partner/workspaces/{id}").param("id", X).by(partner_admin(P));
    let run = invoke_blocking("partner-api", &table, &[own.event(), other.event()]);
    let got = http(&run.outcomes[0]).ok(200);
    assert_eq!(got["id"], W, "{got}");
    api.set_clock(OffsetDateTime::now_utc());
    assert_eq!(got, api.call(own).await.ok(200));
    http(&run.outcomes[1]).err(404, "not_found", None);
    assert_eq!(run.ssm_calls, 0, "no Stripe route, no parameter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_api_binary_answers_entitlements_as_its_handler() {
    let (api, table) = seeded().await;
    let get = req("GET /platform/workspaces/{id}/entitlements").param("id", W).by(platform());
    let run = invoke_blocking("platform-api", &table, &[get.event()]);
    let got = http(&run.outcomes[0]).ok(200);
    api.set_clock(OffsetDateTime::now_utc());
    assert_eq!(got, api.call(get).await.ok(200));
    assert_eq!(run.ssm_calls, 0, "no refill due, no Stripe key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjust_points_binary_credits_the_workspace() {
    let (api, table) = seeded().await;
    let credit = req("POST /partner/workspaces/{id}/points")
        .param("id", W)
        .by(partner_admin(P))
        .json(json!({ "amount": "5.25", "reason": "goodwill" }));
    let run = invoke_blocking("adjust-points", &table, &[credit.event()]);
    let got = http(&run.outcomes[0]).ok(201);
    assert_eq!(got["balance"], "25.25", "{got}");
    api.set_clock(OffsetDateTime::now_utc());
    assert_eq!(api.balance(P, W).await, "25.25");
    let ledger = api.ledger(P, W).await;
    assert_eq!(ledger.len(), 2);
    assert_eq!((&ledger[0]["amount"], &ledger[0]["balance_after"]), (&json!("5.25"), &json!("25.25")));
    assert_eq!(api.verify(W).await, 2);
    assert_eq!(run.ssm_calls, 0, "no Stripe, no parameter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchase_addon_binary_buys_a_priced_addon_with_points() {
    let (api, table) = seeded().await;
    api.price(P, "extra_member", "Extra seat", "10", true).await;
    let buy =
        req("POST /workspace/addons").by(workspace_admin(P, W)).json(json!({ "addon": "extra_member", "quantity": 1 }));
    let run = invoke_blocking("purchase-addon", &table, &[buy.event()]);
    let got = http(&run.outcomes[0]).ok(201);
    assert_eq!((&got["addon"]["addon"], &got["addon"]["status"]), (&json!("extra_member"), &json!("active")), "{got}");
    assert_eq!(got["full_price"], "10.00", "{got}");
    // The charge is prorated to today's place in the cycle: whatever it is, the wallet pays it
    // exactly, in one ledger entry.
    let charged = decimal(&got["charged"]);
    assert!(charged > Decimal::ZERO && charged <= Decimal::TEN, "{got}");
    assert_eq!(decimal(&got["balance"]), Decimal::from(20) - charged, "{got}");
    api.set_clock(OffsetDateTime::now_utc());
    assert_eq!(json!(api.balance(P, W).await), got["balance"]);
    let ledger = api.ledger(P, W).await;
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger[0]["kind"], "addon_purchase");
    assert_eq!(decimal(&ledger[0]["amount"]), -charged);
    assert_eq!(api.verify(W).await, 2);
    assert_eq!(run.ssm_calls, 0, "no Stripe, no parameter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_checkout_binary_refuses_a_partner_without_checkout_urls() {
    let (api, table) = seeded().await;
    let before = api.state().await;
    let checkout = req("POST /workspace/checkout").by(workspace_admin(P, W)).json(json!({ "points": "10" }));
    let run = invoke_blocking("create-checkout", &table, &[checkout.event()]);
    http(&run.outcomes[0]).err(403, "forbidden", None);
    assert_eq!(api.state().await, before, "nothing written");
    assert_eq!(run.ssm_calls, 0, "refused before any Stripe call: the key is not read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_webhook_binary_refuses_a_bad_signature_and_takes_a_signed_event() {
    let table = fresh_table().await.table_name().to_owned();
    let payload = CHECKOUT_COMPLETED_EVENT;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let forged = stripe_gateway::signature::sign(payload.as_bytes(), &["whsec_not_the_secret"], now);
    let signed = stripe_gateway::signature::sign(payload.as_bytes(), &[WEBHOOK_SECRET], now);
    let delivery = |signature: &str| {
        req("POST /stripe/webhook").no_key().header("stripe-signature", signature).raw(payload).event()
    };
    let run = invoke_blocking("stripe-webhook", &table, &[delivery(&forged), delivery(&signed)]);
    http(&run.outcomes[0]).invalid("Stripe-Signature");
    // A session the table does not know: not a checkout of ours.
    assert_eq!(http(&run.outcomes[1]).ok(200), json!({ "received": true, "outcome": "ignored" }));
    assert_eq!(run.ssm_calls, 1, "both endpoints' signing secrets, in one call at init");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_addons_binary_runs_a_scheduled_tick_with_nothing_due() {
    let table = fresh_table().await.table_name().to_owned();
    let event: Value = serde_json::from_str(SCHEDULED_EVENT).unwrap();
    let run = invoke_blocking("renew-addons", &table, &[event]);
    assert_eq!(
        response(&run.outcomes[0]),
        json!({ "renewed": 0, "lapsed": 0, "in_grace": 0, "awaiting_topup": 0, "skipped": 0, "failed": 0, "finished": true })
    );
    assert_eq!(run.ssm_calls, 0, "it never reads the Stripe key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fold_usage_binary_runs_a_scheduled_tick_with_nothing_accrued() {
    let table = fresh_table().await.table_name().to_owned();
    let event: Value = serde_json::from_str(SCHEDULED_EVENT).unwrap();
    let run = invoke_blocking("fold-usage", &table, &[event]);
    assert_eq!(response(&run.outcomes[0]), json!({ "batches": 0, "charges": 0, "raced": 0, "finished": true }));
    assert_eq!(run.ssm_calls, 0, "no refill due, no Stripe key");
}

/// A stream batch naming W's refill request: the binary takes it (W has auto top-up off, so
/// nothing is charged and the Stripe key is never read); the same batch again finds it taken.
/// The schedule's event sweeps, and finds nothing left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charge_refills_binary_takes_the_request_a_stream_record_names() {
    let (api, table) = seeded().await;
    let request: Value = serde_json::from_str(REFILL_REQUEST_STREAM_EVENT).unwrap();
    let image = &request["Records"][0]["dynamodb"]["NewImage"];
    let item = store::records::RefillRequest {
        wallet: domain::WalletId::Workspace(domain::WorkspaceId::parse(W).unwrap()),
        renewal_shortfall: None,
        request_id: image["request_id"]["S"].as_str().unwrap().to_owned(),
        requested_at: OffsetDateTime::now_utc(),
    };
    let put =
        store::Write::Put { item: store::records::refill_request_item(&item), condition: store::Condition::Always };
    api.billing.store.write(vec![put]).await.unwrap();
    let scheduled: Value = serde_json::from_str(SCHEDULED_EVENT).unwrap();
    let run = invoke_blocking("charge-refills", &table, &[request.clone(), request, scheduled]);
    let counts = |taken: u64, not_tried: u64| {
        json!({ "taken": taken, "credited": 0, "pending": 0, "failed": 0, "not_tried": not_tried, "errors": 0,
                "renewed": 0, "in_grace": 0, "lapsed": 0, "finished": true })
    };
    assert_eq!(response(&run.outcomes[0]), counts(1, 1), "taken: auto top-up is off");
    assert_eq!(response(&run.outcomes[1]), counts(0, 0), "the same record again: already taken");
    assert_eq!(response(&run.outcomes[2]), counts(0, 0), "the sweep finds nothing left");
    assert_eq!(run.ssm_calls, 0, "nothing charged, no Stripe key");
}

/// `POST /partner/stripe/connect` with a code the fake issued for a new test-mode account.
fn connect(api: &Api<DynamoTable>) -> (Req, String) {
    let (code, account) = api.stripe.issue_oauth_code(None, false);
    (req("POST /partner/stripe/connect").by(partner_admin(P)).json(json!({ "code": code })), account)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_api_binary_reads_the_stripe_key_on_its_first_stripe_route_only() {
    let (api, table) = seeded().await;
    let read = req("GET /partner/workspaces/{id}").param("id", W).by(partner_admin(P));
    let ((first, _), (second, account)) = (connect(&api), connect(&api));
    let setup = Setup { stripe: Some(&api.stripe.url), ..Setup::default() };
    let run = invoke_blocking_in("partner-api", &table, &[read.event(), first.event(), second.event()], &setup);
    assert_eq!(http(&run.outcomes[0]).ok(200)["id"], W);
    http(&run.outcomes[1]).ok(200);
    let got = http(&run.outcomes[2]).ok(200);
    assert_eq!(got["account"], json!(account), "{got}");
    assert_eq!(api.account(P).await, account);
    assert_eq!(run.ssm_calls_by_answer, [0, 1, 1], "none for the read, one for the first Stripe route, none after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_api_binary_refuses_a_live_key_on_a_test_deployment_at_each_stripe_call() {
    let (api, table) = seeded().await;
    let connected = api.account(P).await;
    let stripe_requests = api.stripe.requests().len();
    let ((first, _), (second, _)) = (connect(&api), connect(&api));
    let setup = Setup { stripe: Some(&api.stripe.url), secret_key: Some("sk_live_lambda_wiring") };
    let run = invoke_blocking_in("partner-api", &table, &[first.event(), second.event()], &setup);
    for outcome in &run.outcomes {
        http(outcome).err(503, "stripe_unavailable", None);
    }
    // Not cached: each Stripe call reads the key again (a fixed parameter takes effect at once).
    assert_eq!(run.ssm_calls_by_answer, [1, 2]);
    assert_eq!(api.stripe.requests().len(), stripe_requests, "Stripe never called with the wrong key");
    assert_eq!(api.account(P).await, connected, "the connection unchanged");
}

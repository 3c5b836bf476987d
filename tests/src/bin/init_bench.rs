//! Init benchmark: how long a Lambda process takes from its start until it is ready for its first
//! event, i.e. until it first calls `GET /2018-06-01/runtime/invocation/next` on
//! `AWS_LAMBDA_RUNTIME_API`.
//!
//! It plays Lambda's side locally with `integration_tests::lambda`: a Runtime API stand-in (it
//! notes when `/next` is first hit and, with no event queued, holds that request; `POST
//! .../init/error` is a failed init) and an SSM stand-in answering the Stripe parameters. Each
//! program gets the environment Lambda and template.yaml give a function, with dummy
//! credentials, and nothing else.
//!
//!   init-bench [--runs N] [--warmup N] [--logs DIR] [--first-request] LABEL=PROGRAM [ARGS...]...
//!
//! `--first-request` (with `DYNAMODB_ENDPOINT` set: DynamoDB Local) also counts what a function
//! leaves to its first request (a client built on first use, a secret read then): each function
//! labelled by its crate name is started again, handed one typical request followed by
//! [`WARM_REQUESTS`] more of the same kind, over a seeded table and the Stripe fake on loopback;
//! (process start -> first answer) minus (the median of the later requests' latency) is its
//! init as a caller waiting on a cold start sees it, put next to the empty binary's init. A
//! program labelled `dynamodb-floor` (one GetItem per event, nothing else) is the floor of that
//! figure: each function's cost beyond the floor is printed beside it.
//!
//! Each `LABEL=PROGRAM ARGS` is one word (arguments separated by spaces). Runs go round-robin over
//! the programs, so a noisy moment of the machine hits them alike; the warm-up runs (page cache)
//! are not counted. It prints a Markdown table (p50/p95/min/max) and, when the labels
//! `empty-lambda` and `python` are among them, each program's ratio to those two. It asserts
//! nothing about timing; a program that fails its init is reported, and makes the exit status 1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing::{Billing, Mutation, NewWorkspace, Payments};
use domain::{CreditRate, CreditRateTerms, PartnerId, PartnerSettings, PlanId, SystemClock, WorkspaceId};
use integration_tests::ENDPOINT_VAR;
use integration_tests::lambda::{Invocation, Outcome, Process, RuntimeApi, Ssm, lambda_environment};
use serde_json::{Value, json};
use store::dynamodb::{DynamoTable, create_table, local_client};
use store::{IdempotencyKey, Store};
use stripe_fake::{Fake, FakeConfig, RunningFake};
use stripe_gateway::client::{StripeConfig, StripeGateway};
use stripe_gateway::ids::OAuthCode;

/// A program that has not called `/next` by then has failed.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_RUNS: usize = 10_000;

const SECRET_KEY_PARAM: &str = "/billing/stripe/secret-key";
const WEBHOOK_SECRETS_PARAM: &str = "/billing/stripe/webhook-secrets";
const PLATFORM_WEBHOOK_SECRETS_PARAM: &str = "/billing/stripe/platform-webhook-secrets";
/// The Stripe key in the SSM stand-in, which the Stripe fake accepts.
const SECRET_KEY: &str = "sk_test_init_bench";
const WEBHOOK_SECRET: &str = "whsec_init_bench";
/// The requests after the first one in a first-request run: their median latency is the warm one.
const WARM_REQUESTS: usize = 5;
/// From the first `/next` until every request of a first-request run is answered.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// The program whose first request is the floor of the others': one GetItem, nothing else.
const FLOOR: &str = "dynamodb-floor";
/// The seeded tenant.
const P: &str = "p-bench";
const W: &str = "w-bench";
const SCHEDULED_EVENT: &str = include_str!("../../fixtures/eventbridge-scheduled-event.json");
const REFILL_REQUEST_STREAM_EVENT: &str = include_str!("../../fixtures/dynamodb-stream-refill-request.json");
const CHECKOUT_COMPLETED_EVENT: &str = include_str!("../../fixtures/stripe-checkout-session-completed.json");

struct Program {
    label: String,
    command: Vec<String>,
    init_ms: Vec<Duration>,
    ssm_calls: u32,
    failure: Option<String>,
    first: FirstRequests,
}

/// The first-request runs of one program.
#[derive(Default)]
struct FirstRequests {
    /// Process start -> the first request's answer.
    first_answer: Vec<Duration>,
    /// The median latency of the requests after it, in the same process.
    warm: Vec<Duration>,
    /// `first_answer - warm`, run by run.
    cold_cost: Vec<Duration>,
    ssm_calls: u32,
    failure: Option<String>,
}

/// What Lambda sets for a `provided.al2023` function, plus template.yaml's variables.
fn environment(label: &str, runtime_api: &str, ssm_url: &str, home: &Path) -> Vec<(String, String)> {
    let mut env = lambda_environment(label, runtime_api, ssm_url, home);
    // template.yaml's Globals and the functions' own variables.
    let pairs = [
        ("TABLE_NAME", "billing"),
        ("RUST_LOG", "info"),
        ("STRIPE_LIVEMODE", "false"),
        ("PLATFORM_METERS", "voice_minutes=0.07"),
        ("STRIPE_SECRET_KEY_PARAM", SECRET_KEY_PARAM),
        ("STRIPE_WEBHOOK_SECRETS_PARAM", WEBHOOK_SECRETS_PARAM),
        ("STRIPE_PLATFORM_WEBHOOK_SECRETS_PARAM", PLATFORM_WEBHOOK_SECRETS_PARAM),
    ];
    env.extend(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env
}

/// One start of `program`: the time from spawning it to its first `/next`.
fn run_once(
    program: &Program,
    runtime: &RuntimeApi,
    ssm: &Ssm,
    env: &[(String, String)],
    log: &std::fs::File,
) -> Result<(Duration, u32), String> {
    runtime.reset();
    ssm.reset_calls();
    let out = log.try_clone().map_err(|e| e.to_string())?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let child = Command::new(&program.command[0])
        .args(&program.command[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.command[0]))?;
    // Dropped at the end of this run: it is held in /next and never finishes by itself.
    let mut process = Process(child);
    let ready = runtime.wait_for(&mut process.0, INIT_TIMEOUT, |seen| seen.first_next_at);
    match ready {
        Ok(at) => Ok((at.duration_since(started), ssm.calls())),
        Err(e) => Err(format!("{e} before calling /next")),
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    assert!(!sorted.is_empty() && p <= 100);
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Milliseconds with two decimals, from integers.
fn ms(d: Duration) -> String {
    let us = d.as_micros();
    format!("{}.{:02}", us / 1000, (us % 1000) / 10)
}

/// `a / b` with one decimal, from integers.
fn ratio(a: Duration, b: Duration) -> String {
    let tenths = a.as_micros() * 10 / b.as_micros().max(1);
    format!("{}.{}x", tenths / 10, tenths % 10)
}

fn usage() -> ! {
    eprintln!("usage: init-bench [--runs N] [--warmup N] [--logs DIR] [--first-request] LABEL=PROGRAM [ARGS...]...");
    std::process::exit(2)
}

fn main() {
    let mut runs = 20;
    let mut warmup = 1;
    let mut logs = std::env::temp_dir().join("init-bench");
    let mut programs = Vec::new();
    let mut first_request = false;
    let mut args = std::env::args().skip(1);
    let count = |v: Option<String>, least: usize| -> usize {
        v.and_then(|v| v.parse().ok()).filter(|n| (least..=MAX_RUNS).contains(n)).unwrap_or_else(|| usage())
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = count(args.next(), 1),
            "--warmup" => warmup = count(args.next(), 0),
            "--logs" => logs = PathBuf::from(args.next().unwrap_or_else(|| usage())),
            "--first-request" => first_request = true,
            _ => {
                let Some((label, command)) = a.split_once('=') else { usage() };
                let command: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
                if label.is_empty() || command.is_empty() {
                    usage();
                }
                programs.push(Program {
                    label: label.to_owned(),
                    command,
                    init_ms: vec![],
                    ssm_calls: 0,
                    failure: None,
                    first: FirstRequests::default(),
                });
            }
        }
    }
    if programs.is_empty() {
        usage();
    }

    let runtime = RuntimeApi::start().expect("start the Runtime API stand-in");
    let parameters = BTreeMap::from([
        (SECRET_KEY_PARAM.to_owned(), SECRET_KEY.to_owned()),
        (WEBHOOK_SECRETS_PARAM.to_owned(), WEBHOOK_SECRET.to_owned()),
        (PLATFORM_WEBHOOK_SECRETS_PARAM.to_owned(), "whsec_init_bench_platform".to_owned()),
    ]);
    let ssm = Ssm::start(parameters).expect("start the SSM stand-in");
    let home = logs.join("home");
    std::fs::create_dir_all(&home).expect("create the logs folder");

    let mut files = Vec::new();
    for p in &programs {
        let path = logs.join(format!("{}.log", p.label));
        files.push(std::fs::File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display())));
    }
    for round in 0..warmup + runs {
        for (p, log) in programs.iter_mut().zip(&files) {
            if p.failure.is_some() {
                continue;
            }
            let env = environment(&p.label, runtime.address(), ssm.url(), &home);
            match run_once(p, &runtime, &ssm, &env, log) {
                Ok((init, ssm_calls)) if round >= warmup => {
                    p.init_ms.push(init);
                    p.ssm_calls = p.ssm_calls.max(ssm_calls);
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("init-bench: {}: {e} (its output: {}/{}.log)", p.label, logs.display(), p.label);
                    p.failure = Some(e);
                }
            }
        }
    }

    let world = first_request.then(World::start);
    if let Some(world) = &world {
        for round in 0..warmup + runs {
            for (p, log) in programs.iter_mut().zip(&files) {
                if p.first.failure.is_some() || typical_request(&p.label).is_none() {
                    continue;
                }
                match first_request_run(p, &runtime, &ssm, world, &home, log) {
                    Ok(_) if round < warmup => {}
                    Ok((first, warm, calls)) => {
                        p.first.first_answer.push(first);
                        p.first.warm.push(warm);
                        p.first.cold_cost.push(first.saturating_sub(warm));
                        p.first.ssm_calls = p.first.ssm_calls.max(calls);
                    }
                    Err(e) => {
                        eprintln!(
                            "init-bench: {} (first request): {e} (its output: {}/{}.log)",
                            p.label,
                            logs.display(),
                            p.label
                        );
                        p.first.failure = Some(e);
                    }
                }
            }
        }
    }

    let p50_of = |label: &str| {
        programs.iter().find(|p| p.label == label && !p.init_ms.is_empty()).map(|p| {
            let mut v = p.init_ms.clone();
            v.sort();
            percentile(&v, 50)
        })
    };
    let (empty, python) = (p50_of("empty-lambda"), p50_of("python"));
    println!(
        "| program | runs | p50 ms | p95 ms | min ms | max ms | SSM calls | p50 / empty-lambda (goal <= 2x) | python / p50 (goal >= 10x) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut failed = false;
    for p in &programs {
        if let Some(e) = &p.failure {
            failed = true;
            println!("| {} | failed: {} | | | | | | | |", p.label, e.replace('|', "/").replace('\n', " "));
            continue;
        }
        let mut v = p.init_ms.clone();
        v.sort();
        let p50 = percentile(&v, 50);
        let vs_empty = match empty {
            Some(e) if p.label != "empty-lambda" && p.label != "python" && p.label != FLOOR => {
                let verdict = if p50 <= e * 2 { "met" } else { "**over**" };
                format!("{} ({verdict})", ratio(p50, e))
            }
            Some(e) if p.label == FLOOR => ratio(p50, e),
            _ => String::new(),
        };
        let vs_python = match python {
            Some(py) if p.label != "python" => {
                let verdict = if py >= p50 * 10 { "met" } else { "**not met**" };
                format!("{} ({verdict})", ratio(py, p50))
            }
            _ => String::new(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.label,
            v.len(),
            ms(p50),
            ms(percentile(&v, 95)),
            ms(v[0]),
            ms(v[v.len() - 1]),
            p.ssm_calls,
            vs_empty,
            vs_python
        );
    }
    if world.is_some() {
        failed |= print_first_requests(&programs, empty);
    }
    std::process::exit(i32::from(failed));
}

fn p50(values: &[Duration]) -> Duration {
    let mut v = values.to_vec();
    v.sort();
    percentile(&v, 50)
}

/// The second table: what each function leaves to its first request.
fn print_first_requests(programs: &[Program], empty: Option<Duration>) -> bool {
    // What a program that only reads DynamoDB pays on its first request: the SDK's first call.
    let floor = programs
        .iter()
        .find(|p| p.label == FLOOR && p.first.failure.is_none() && !p.first.cold_cost.is_empty())
        .map(|p| p50(&p.first.cold_cost));
    println!();
    println!(
        "| program | typical request | runs | first answer p50 ms | warm answer p50 ms | first answer - warm, p50 ms | / empty-lambda init (goal <= 2x) | beyond the floor, ms | beyond the floor / empty-lambda init | SSM calls |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut failed = false;
    for p in programs {
        let Some((what, _)) = typical_request(&p.label) else { continue };
        if let Some(e) = &p.first.failure {
            failed = true;
            println!("| {} | {what} | failed: {} | | | | | | | |", p.label, e.replace('|', "/").replace('\n', " "));
            continue;
        }
        let cost = p50(&p.first.cold_cost);
        let vs_empty = match empty {
            Some(e) if p.label != FLOOR => {
                format!("{} ({})", ratio(cost, e), if cost <= e * 2 { "met" } else { "**over**" })
            }
            Some(e) => ratio(cost, e),
            None => String::new(),
        };
        let (beyond, beyond_vs_empty) = match (floor, empty) {
            (Some(f), Some(e)) if p.label != FLOOR => (ms(cost.saturating_sub(f)), ratio(cost.saturating_sub(f), e)),
            _ => (String::new(), String::new()),
        };
        println!(
            "| {} | {what} | {} | {} | {} | {} | {vs_empty} | {beyond} | {beyond_vs_empty} | {} |",
            p.label,
            p.first.cold_cost.len(),
            ms(p50(&p.first.first_answer)),
            ms(p50(&p.first.warm)),
            ms(cost),
            p.first.ssm_calls
        );
    }
    failed
}

/// DynamoDB Local with a seeded table, and the Stripe fake, both on loopback.
struct World {
    endpoint: String,
    table: String,
    stripe_url: String,
    /// Runs the fake; dropped last.
    _stripe: RunningFake,
    _runtime: tokio::runtime::Runtime,
}

impl World {
    fn start() -> Self {
        let endpoint = std::env::var(ENDPOINT_VAR)
            .unwrap_or_else(|_| panic!("--first-request needs DynamoDB Local: set {ENDPOINT_VAR}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let config = FakeConfig::new(SECRET_KEY, WEBHOOK_SECRET);
        let stripe = runtime.block_on(Fake::start(config, ([127, 0, 0, 1], 0).into())).expect("start the Stripe fake");
        let table = runtime.block_on(seed(&endpoint, &stripe));
        Self { endpoint, table, stripe_url: stripe.url.clone(), _stripe: stripe, _runtime: runtime }
    }
}

/// Partner P with credit billing, checkout URLs, a credit rate and its account connected on the
/// fake; its workspace W.
async fn seed(endpoint: &str, stripe: &RunningFake) -> String {
    let client = local_client(endpoint).await;
    let table = format!("init-bench-{:016x}", fastrand::u64(..));
    create_table(&client, &table).await.expect("create the table");
    let gateway = StripeGateway::new(StripeConfig::new(SECRET_KEY).with_base(&stripe.url)).expect("a Stripe client");
    let billing = Billing::new(Store::new(DynamoTable::new(client, table.clone())), Arc::new(SystemClock))
        .with_payments(Payments::new(false).with_gateway(Arc::new(gateway)));
    let key = |k: &str| IdempotencyKey::new("init-bench", k, k.as_bytes()).expect("a key");
    let p = PartnerId::parse(P).expect("a partner id");
    let settings = PartnerSettings {
        credit_billing: true,
        success_url: Some("https://agency.example/paid".into()),
        cancel_url: Some("https://agency.example/back".into()),
        ..Default::default()
    };
    let replies = [
        billing.create_partner(&p, &settings, Mutation::new(&key("partner"), &api::answers::partner_created)).await,
        billing
            .connect_stripe(
                &p,
                &OAuthCode::parse(&stripe.issue_oauth_code(None, false).0).expect("a code"),
                Mutation::new(&key("connect"), &api::answers::stripe_connected),
            )
            .await,
        billing
            .put_credit_rate(
                &p,
                &CreditRateTerms::unbounded(CreditRate::parse("usd", "0.05").expect("a rate")),
                Mutation::new(&key("rate"), &api::answers::credit_rate_set),
            )
            .await,
        billing
            .create_workspace(
                &p,
                NewWorkspace {
                    id: WorkspaceId::parse(W).expect("a workspace id"),
                    name: "Bench".into(),
                    plan: PlanId::parse("starter").expect("a plan id"),
                    anchor: None,
                },
                Mutation::new(&key("workspace"), &api::answers::workspace_created),
            )
            .await,
    ];
    for reply in replies {
        let reply = reply.expect("seed the table");
        assert!((200..300).contains(&reply.status), "seeding: {} {}", reply.status, reply.body);
    }
    table
}

/// An API Gateway HTTP API (payload 2.0) event, as the edge's authorizer passes it on.
fn http_event(
    route: &str,
    params: &[(&str, &str)],
    claims: Option<Value>,
    body: Option<String>,
    headers: &[(&str, String)],
) -> Value {
    let (method, template) = route.split_once(' ').expect("METHOD /path");
    let path = params.iter().fold(template.to_owned(), |path, (k, v)| path.replace(&format!("{{{k}}}"), v));
    let mut all_headers =
        json!({ "accept": "application/json", "host": "api.example.com", "x-forwarded-proto": "https" });
    if body.is_some() {
        all_headers["content-type"] = json!("application/json");
    }
    if method != "GET" && claims.is_some() {
        all_headers["idempotency-key"] = json!(format!("bench-{:016x}", fastrand::u64(..)));
    }
    for (k, v) in headers {
        all_headers[*k] = json!(v);
    }
    let mut context = json!({
        "accountId": "123456789012", "apiId": "abc123", "domainName": "api.example.com", "domainPrefix": "api",
        "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "init-bench" },
        "requestId": format!("req-{:016x}", fastrand::u64(..)), "routeKey": route, "stage": "$default",
        "time": "15/Apr/2026:10:00:00 +0000", "timeEpoch": 1_776_247_200_000_i64,
    });
    if let Some(claims) = claims {
        context["authorizer"] = json!({ "jwt": { "claims": claims, "scopes": null } });
    }
    let mut event = json!({
        "version": "2.0", "routeKey": route, "rawPath": path, "rawQueryString": "", "headers": all_headers,
        "requestContext": context, "isBase64Encoded": false,
    });
    if !params.is_empty() {
        event["pathParameters"] = params.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    }
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    event
}

type MakeEvent = Box<dyn Fn() -> Value>;

/// What the function `label` answers most: a description and a maker of fresh events (a new
/// Idempotency-Key, a fresh signature each).
fn typical_request(label: &str) -> Option<(&'static str, MakeEvent)> {
    let partner = || Some(json!({ "sub": "admin@p-bench", "partner_id": P, "roles": "[partner_admin]" }));
    let workspace = || {
        Some(json!({ "sub": "owner@w-bench", "partner_id": P, "workspace_id": W, "roles": "[\"workspace_admin\"]" }))
    };
    let made: (&'static str, MakeEvent) = match label {
        "workspace-api" => {
            ("GET /workspace", Box::new(move || http_event("GET /workspace", &[], workspace(), None, &[])))
        }
        "partner-api" => (
            "GET /partner/workspaces/{id}",
            Box::new(move || http_event("GET /partner/workspaces/{id}", &[("id", W)], partner(), None, &[])),
        ),
        "platform-api" => (
            "GET /platform/workspaces/{id}/entitlements",
            Box::new(|| {
                let platform = json!({ "sub": "svc-platform", "roles": "[platform_service]" });
                http_event("GET /platform/workspaces/{id}/entitlements", &[("id", W)], Some(platform), None, &[])
            }),
        ),
        "adjust-points" => (
            "POST /partner/workspaces/{id}/points (1 point)",
            Box::new(move || {
                let body = json!({ "amount": "1", "reason": "init bench" }).to_string();
                http_event("POST /partner/workspaces/{id}/points", &[("id", W)], partner(), Some(body), &[])
            }),
        ),
        "purchase-addon" => (
            "POST /workspace/addons (an add-on not on sale: refused after its reads)",
            Box::new(move || {
                let body = json!({ "addon": "extra_member", "quantity": 1 }).to_string();
                http_event("POST /workspace/addons", &[], workspace(), Some(body), &[])
            }),
        ),
        "create-checkout" => (
            "POST /workspace/checkout (a Checkout Session on the Stripe fake)",
            Box::new(move || {
                let body = json!({ "points": "100" }).to_string();
                http_event("POST /workspace/checkout", &[], workspace(), Some(body), &[])
            }),
        ),
        "stripe-webhook" => (
            "POST /stripe/webhook (a signed event of an unknown session)",
            Box::new(|| {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let signature =
                    stripe_gateway::signature::sign(CHECKOUT_COMPLETED_EVENT.as_bytes(), &[WEBHOOK_SECRET], now);
                let headers = [("stripe-signature", signature)];
                http_event("POST /stripe/webhook", &[], None, Some(CHECKOUT_COMPLETED_EVENT.to_owned()), &headers)
            }),
        ),
        "dynamodb-floor" => (
            "one GetItem, and nothing else (the floor)",
            Box::new(|| serde_json::from_str(SCHEDULED_EVENT).expect("the fixture is JSON")),
        ),
        "renew-addons" | "fold-usage" => (
            "a scheduled tick with nothing due",
            Box::new(|| serde_json::from_str(SCHEDULED_EVENT).expect("the fixture is JSON")),
        ),
        "charge-refills" => (
            "a stream batch naming a refill request no longer pending",
            Box::new(|| serde_json::from_str(REFILL_REQUEST_STREAM_EVENT).expect("the fixture is JSON")),
        ),
        _ => return None,
    };
    Some(made)
}

/// An answer that is a failure: an invocation error, or an HTTP 5xx.
fn failed_answer(outcome: &Outcome) -> Option<String> {
    let body = match outcome {
        Outcome::Error(body) => return Some(String::from_utf8_lossy(body).into_owned()),
        Outcome::Response(body) => body,
    };
    let answer: Value = serde_json::from_slice(body).ok()?;
    let status = answer["statusCode"].as_u64()?;
    (status >= 500).then(|| format!("HTTP {status}: {}", answer["body"]))
}

/// One start of `program` over the seeded world, handed its typical request and
/// [`WARM_REQUESTS`] more: (start -> first answer, the later ones' median latency, SSM calls).
fn first_request_run(
    program: &Program,
    runtime: &RuntimeApi,
    ssm: &Ssm,
    world: &World,
    home: &Path,
    log: &std::fs::File,
) -> Result<(Duration, Duration, u32), String> {
    let (_, make) = typical_request(&program.label).expect("a function with a typical request");
    runtime.reset();
    ssm.reset_calls();
    let ids: Vec<String> = (0..=WARM_REQUESTS).map(|i| format!("bench-{i}-{:016x}", fastrand::u64(..))).collect();
    for id in &ids {
        runtime.enqueue(Invocation {
            request_id: id.clone(),
            payload: make().to_string().into_bytes(),
            timeout: Duration::from_secs(30),
            function_name: program.label.clone(),
        });
    }
    let mut env = environment(&program.label, runtime.address(), ssm.url(), home);
    env.retain(|(k, _)| k != "TABLE_NAME");
    env.extend([
        ("TABLE_NAME".to_owned(), world.table.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB".to_owned(), world.endpoint.clone()),
        ("STRIPE_API_BASE".to_owned(), world.stripe_url.clone()),
    ]);
    let out = log.try_clone().map_err(|e| e.to_string())?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let child = Command::new(&program.command[0])
        .args(&program.command[1..])
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.command[0]))?;
    let mut process = Process(child);
    let answers = runtime
        .wait_for(&mut process.0, INIT_TIMEOUT + ANSWER_TIMEOUT, |seen| {
            (seen.answers.len() == ids.len()).then(|| seen.answers.clone())
        })
        .map_err(|e| format!("{e} before answering every request"))?;
    for a in &answers {
        if let Some(why) = failed_answer(&a.outcome) {
            return Err(format!("request {} failed: {why}", a.request_id));
        }
    }
    let first = answers[0].answered_at.duration_since(started);
    let warm: Vec<Duration> = answers[1..].iter().map(|a| a.answered_at.duration_since(a.handed_out_at)).collect();
    Ok((first, p50(&warm), ssm.calls()))
}

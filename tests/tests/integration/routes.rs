//! One set of routes: template.yaml's HttpApi events, openapi.yaml's operations, the function
//! crates' `ROUTES` and what the local runner serves are the same set, each route in the
//! function that answers it. template.yaml's table is the one `store::schema` defines.
//! And every route answers through the runner within the DynamoDB permissions template.yaml
//! gives its function. None of this needs DynamoDB Local.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use billing::Billing;
use domain::FixedClock;
use local::http::{Method, Request, header};
use local::policy::PolicyTable;
use local::registry::FUNCTIONS;
use local::template::{Template, openapi_route_keys};
use local::{Body, Router, TokenRequest, Verifier};
use serde_json::{Value, json};
use store::Store;
use store::memory::MemoryTable;
use store::schema::TABLE;
use time::macros::datetime;

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join(name)
}

/// What is in `a` and not in `b`, for a failure message that says where a route is missing.
fn missing(a: &BTreeSet<String>, b: &BTreeSet<String>) -> Vec<String> {
    a.difference(b).cloned().collect()
}

#[test]
fn template_openapi_crates_and_runner_have_the_same_routes() {
    let template = Template::load(&repo_file("template.yaml")).unwrap();
    let in_template = template.route_keys();
    let in_openapi = openapi_route_keys(&repo_file("openapi.yaml")).unwrap();
    let in_crates: BTreeSet<String> = FUNCTIONS.iter().flat_map(|f| f.routes.iter().map(|r| r.to_string())).collect();
    // The runner refuses a template that disagrees with the crates; say so, and compare the rest.
    let mut problems = Vec::new();
    let in_runner = match Router::<MemoryTable>::from_template(&repo_file("template.yaml")) {
        Ok(router) => router.routes(),
        Err(e) => {
            problems.push(format!("the runner refuses template.yaml: {e}"));
            in_template.clone()
        }
    };

    let sets = [
        ("template.yaml", &in_template),
        ("openapi.yaml", &in_openapi),
        ("the crates' ROUTES", &in_crates),
        ("the runner", &in_runner),
    ];
    for (name_a, a) in sets {
        for (name_b, b) in sets {
            for route in missing(a, b) {
                problems.push(format!("{route} is in {name_a} but not in {name_b}"));
            }
        }
    }
    assert!(problems.is_empty(), "the route sets differ:\n{}", problems.join("\n"));
    assert_eq!(in_template.len(), FUNCTIONS.iter().map(|f| f.routes.len()).sum::<usize>(), "a route is declared twice");

    // Each route is in the function whose crate answers it.
    for f in &template.functions {
        let entry = local::registry::entry(&f.code_uri).unwrap_or_else(|| panic!("{} has no crate", f.code_uri));
        let routes: BTreeSet<String> = f.routes.iter().map(|r| r.key()).collect();
        let expected: BTreeSet<String> = entry.routes.iter().map(|r| r.to_string()).collect();
        assert_eq!(routes, expected, "{}'s events are not {}'s ROUTES", f.logical_id, entry.package);
        assert_eq!(f.binary.as_deref(), Some(entry.package), "{}: BuildProperties.Binary", f.logical_id);
        for r in &f.routes {
            // Stripe can't send our JWT: its signature authenticates the webhook instead.
            let open = ["POST /stripe/webhook", "POST /stripe/platform-webhook"].contains(&r.key().as_str());
            assert_eq!(
                r.jwt,
                !open,
                "{}: {} must be {}",
                f.logical_id,
                r.key(),
                if open { "open" } else { "behind the JWT authorizer" }
            );
        }
    }
}

#[test]
fn template_table_is_the_schema() {
    let template = Template::load(&repo_file("template.yaml")).unwrap();
    let [table] = template.tables.as_slice() else { panic!("one table expected, found {}", template.tables.len()) };
    let pair = |p: &str, s: &str| (p.to_owned(), s.to_owned());
    assert_eq!(table.primary, pair(TABLE.primary.partition, TABLE.primary.sort), "primary key");
    let expected: Vec<_> = TABLE
        .global_indexes
        .iter()
        .map(|g| (g.name.to_owned(), g.partition.to_owned(), g.sort.to_owned(), "ALL".to_owned()))
        .collect();
    assert_eq!(table.global_indexes, expected, "global secondary indexes (name, partition, sort, projection)");
    let mut key_attributes: Vec<_> = std::iter::once(&TABLE.primary)
        .chain(TABLE.global_indexes)
        .flat_map(|k| [k.partition, k.sort])
        .map(|a| (a.to_owned(), "S".to_owned()))
        .collect();
    key_attributes.sort();
    let mut declared = table.attributes.clone();
    declared.sort();
    assert_eq!(declared, key_attributes, "AttributeDefinitions: every key attribute, a string, and nothing else");
    assert_eq!(table.ttl_attribute.as_deref(), Some(TABLE.ttl_attribute), "TTL attribute");
    assert_eq!(table.billing_mode.as_deref(), Some("PAY_PER_REQUEST"));
    assert!(table.point_in_time_recovery, "point-in-time recovery");
    assert!(table.deletion_protection, "deletion protection");
}

#[test]
fn template_functions_are_arm64_rust_lambdas() {
    let doc = local::template::load_yaml(&repo_file("template.yaml")).unwrap();
    let globals = &doc["Globals"]["Function"];
    for (id, resource) in doc["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().unwrap();
        let prop = |name: &str| {
            let own = &resource["Properties"][name];
            if own.is_null() { globals[name].clone() } else { own.clone() }
        };
        assert_eq!(prop("Runtime").as_str(), Some("provided.al2023"), "{id}");
        assert_eq!(prop("Handler").as_str(), Some("bootstrap"), "{id}");
        assert_eq!(prop("Architectures")[0].as_str(), Some("arm64"), "{id}");
        assert_eq!(resource["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{id}");
        // SAM merges a function's own variables over the global ones.
        let var = |name: &str| {
            let own = &resource["Properties"]["Environment"]["Variables"][name];
            if own.is_null() { globals["Environment"]["Variables"][name].clone() } else { own.clone() }
        };
        for name in ["TABLE_NAME", "RUST_LOG", "STRIPE_LIVEMODE"] {
            assert!(!var(name).is_null(), "{id}: {name}");
        }
        let code_uri = resource["Properties"]["CodeUri"].as_str().unwrap();
        assert!(repo_file(code_uri).join("Cargo.toml").is_file(), "{id}: CodeUri {code_uri} is not a crate");
    }
}

// ---- Every route through the runner, as API Gateway and IAM would let it run ----

const PARTNER: &str = "demo-partner";

struct Runner {
    router: Router<PolicyTable<MemoryTable>>,
    billing: Billing<PolicyTable<MemoryTable>>,
    verifier: Verifier,
    served: BTreeSet<String>,
    /// The fake Stripe the runner's top-ups go to (its events go nowhere here).
    fake: stripe_fake::RunningFake,
}

fn now_s() -> u64 {
    local::server::now_epoch_s()
}

impl Runner {
    async fn new() -> Runner {
        let router = Router::from_template(&repo_file("template.yaml")).unwrap();
        // 15 April: the seeded workspaces are billed by calendar month, so a purchase today
        // has 15 of the cycle's 30 days remaining (the published proration example).
        let clock = Arc::new(FixedClock::new(datetime!(2026-04-15 10:00 UTC)));
        let fake = local::stripe::start_fake(([127, 0, 0, 1], 0).into(), "http://127.0.0.1:9").await.unwrap();
        let billing = Billing::new(Store::new(PolicyTable::new(MemoryTable::new())), clock)
            .with_payments(local::stripe::payments(&fake.url));
        local::seed::seed(&billing, "http://localhost:3000", &fake).await.unwrap();
        Runner { router, billing, verifier: Verifier::new("test-secret"), served: BTreeSet::new(), fake }
    }

    fn token(&self, partner: Option<&str>, workspace: Option<&str>, role: &str) -> String {
        let request = TokenRequest {
            sub: format!("{role}-user"),
            partner_id: partner.map(str::to_owned),
            workspace_id: workspace.map(str::to_owned),
            roles: vec![role.to_owned()],
            ttl_s: 600,
        };
        request.mint(&self.verifier, now_s())
    }

    /// Sends a request the way a client does, through routing, the JWT check and the handler.
    async fn send(&mut self, token: Option<&str>, method: Method, uri: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = Request::builder().method(method.clone()).uri(uri).header(header::HOST, "localhost:3000");
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if method != Method::GET {
            req = req.header("idempotency-key", format!("key-{:x}", fastrand::u64(..)));
        }
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let req = req.body(body).unwrap();
        if let Some(m) = self.router.resolve(req.method(), req.uri().path()) {
            self.served.insert(m.route.key());
        }
        let response = self.router.handle(&self.billing, &self.verifier, req).await;
        let status = response.status().as_u16();
        let json = match response.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap(),
            Body::Binary(b) => serde_json::from_slice(b).unwrap(),
            _ => Value::Null,
        };
        assert_ne!(status, 500, "{method} {uri} failed inside (denied by its template policy?): {json}");
        (status, json)
    }

    /// Delivers a Stripe event as Stripe does: no token, the signature header, the raw body.
    async fn webhook(&mut self, uri: &str, payload: &str, signature: &str) -> (u16, Value) {
        let req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::HOST, "localhost:3000")
            .header("stripe-signature", signature)
            .header(header::CONTENT_TYPE, "application/json")
            .body(payload.as_bytes().to_vec())
            .unwrap();
        if let Some(m) = self.router.resolve(req.method(), req.uri().path()) {
            self.served.insert(m.route.key());
        }
        let response = self.router.handle(&self.billing, &self.verifier, req).await;
        let json = match response.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap(),
            Body::Binary(b) => serde_json::from_slice(b).unwrap(),
            _ => Value::Null,
        };
        (response.status().as_u16(), json)
    }

    /// Like `send`, asserting the status.
    async fn ok(&mut self, token: &str, method: Method, uri: &str, body: Option<Value>, status: u16) -> Value {
        let (got, json) = self.send(Some(token), method.clone(), uri, body).await;
        assert_eq!(got, status, "{method} {uri}: {json}");
        json
    }
}

#[tokio::test]
async fn every_route_answers_through_the_runner_within_its_template_policy() {
    walk_every_route(&mut Runner::new().await).await;
}

/// The same walk over workspaces stored in the earlier shapes (a profile without its add-ons,
/// its add-ons and Stripe customer under keys of their own): the reads that bring them to
/// today's shape stay within each function's policy too.
#[tokio::test]
async fn earlier_shapes_answer_through_the_runner_within_the_template_policies() {
    let mut r = Runner::new().await;
    for w in ["demo-ws-1", "demo-ws-2"] {
        store_in_earlier_shapes(&r.billing, w).await;
    }
    walk_every_route(&mut r).await;
}

/// Rewrites workspace `w` as it was stored before its add-ons and customer moved: the profile
/// without `addons`, each add-on it holds an item of its own, and its customer (if any) under
/// its account's key, with no customer slot.
async fn store_in_earlier_shapes(billing: &Billing<PolicyTable<MemoryTable>>, w: &str) {
    use store::{Condition, Item, Table, Write, keys, records};
    let w = domain::WorkspaceId::parse(w).unwrap();
    let table = billing.store.table();
    let profile = table.get(&keys::workspace_profile(&w)).await.unwrap().expect("a seeded workspace");
    let ws = records::workspace_from(&profile).unwrap();
    let put = |item: Item| Write::Put { item, condition: Condition::Always };
    let mut writes: Vec<Write> = ws.addons.iter().map(|a| put(records::workspace_addon_item(&w, a))).collect();
    let mut earlier = profile.clone();
    earlier.0.remove("addons");
    writes.push(put(earlier));
    writes.push(Write::Delete { key: keys::workspace_customer(&w), condition: Condition::Always });
    if let Some(slot) = table.get(&keys::workspace_customer(&w)).await.unwrap()
        && let Some(customer) = records::customer_slot_from(&slot).unwrap().customer
    {
        let mut moved = slot.clone();
        moved.0.extend(Item::new(&keys::earlier_workspace_customer(&w, &customer.account), "stripe_customer").0);
        writes.push(put(moved));
    }
    table.transact(writes).await.unwrap();
    assert!(!records::holds_addons(&table.get(&keys::workspace_profile(&w)).await.unwrap().unwrap()));
}

/// Delivers the fake's events on connected accounts sent since the `since`th through the
/// runner's webhook, each answered 200.
async fn deliver_since(r: &mut Runner, since: usize) {
    let events: Vec<_> = r.fake.events().into_iter().skip(since).filter(|e| e.account.is_some()).collect();
    for event in events {
        let signature = stripe_gateway::signature::sign(
            event.payload.as_bytes(),
            &[local::stripe::FAKE_WEBHOOK_SECRET],
            i64::try_from(now_s()).unwrap(),
        );
        let (status, answer) = r.webhook("/stripe/webhook", &event.payload, &signature).await;
        assert_eq!(status, 200, "{}: {answer}", event.type_);
    }
}

async fn walk_every_route(r: &mut Runner) {
    use Method as M;
    let partner = r.token(Some(PARTNER), None, "partner_admin");
    let admin = r.token(Some(PARTNER), Some("demo-ws-1"), "workspace_admin");
    let platform = r.token(None, None, "platform_service");

    // The partner's catalog, plans and settings.
    let addons = r.ok(&partner, M::GET, "/partner/addons", None, 200).await;
    assert_eq!(addons["data"].as_array().unwrap().len(), 6);
    let seat = json!({ "label": "Seat", "points": "8.00", "enabled": true });
    assert_eq!(r.ok(&partner, M::PUT, "/partner/addons/extra_member", Some(seat), 200).await["points"], "8.00");
    assert_eq!(r.ok(&partner, M::GET, "/partner/plans", None, 200).await["data"].as_array().unwrap().len(), 3);
    assert_eq!(r.ok(&partner, M::GET, "/partner/plans/growth", None, 200).await["id"], "growth");
    let starter = json!({
        "label": "Starter",
        "limits": { "bots": 1, "members": 2, "bot_users": 1000, "inbound_webhook_requests_per_month": 1000,
                    "external_request_timeout_s": 10 },
        "monthly_price": { "amount_minor": 4900, "currency": "usd" }
    });
    r.ok(&partner, M::PUT, "/partner/plans/starter", Some(starter), 200).await;
    let settings = r.ok(&partner, M::GET, "/partner/settings", None, 200).await;
    assert_eq!(settings["credit_billing"], true, "the demo partner sells add-ons");
    r.ok(&partner, M::PUT, "/partner/settings", Some(settings), 200).await;

    // Top-up options and the credit rate.
    let options = json!({ "options": [{ "label": "Pack", "currency": "usd", "amount_minor": 1000, "points": "10" }] });
    let saved = r.ok(&partner, M::PUT, "/partner/topup-options", Some(options), 200).await;
    let option_id = saved["data"][0]["id"].as_str().unwrap().to_owned();
    let rate = json!({ "currency": "usd", "price_per_point": "0.05", "min_points": "100.00", "max_points": null });
    r.ok(&partner, M::PUT, "/partner/credit-rate", Some(rate.clone()), 200).await;
    let topups = r.ok(&partner, M::GET, "/partner/topup-options", None, 200).await;
    assert_eq!((topups["data"][0]["id"].as_str(), &topups["credit_rate"]), (Some(option_id.as_str()), &rate));

    // Workspaces.
    let listed = r.ok(&partner, M::GET, "/partner/workspaces", None, 200).await;
    let ids: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["demo-ws-1", "demo-ws-2"]);
    let new = json!({ "name": "Third", "plan": "starter" });
    let third = r.ok(&partner, M::POST, "/partner/workspaces", Some(new), 201).await;
    let third = third["id"].as_str().expect("an assigned id").to_owned();
    assert!(third.starts_with("ws_"), "{third}");
    assert_eq!(r.ok(&partner, M::GET, "/partner/workspaces/demo-ws-2", None, 200).await["balance"], "25.00");
    let plan = json!({ "plan": "growth" });
    assert_eq!(
        r.ok(&partner, M::PUT, &format!("/partner/workspaces/{third}/plan"), Some(plan), 200).await["workspace"]["plan"],
        "growth"
    );
    let bonus = json!({ "amount": "5", "reason": "welcome bonus" });
    assert_eq!(
        r.ok(&partner, M::POST, "/partner/workspaces/demo-ws-1/points", Some(bonus), 201).await["balance"],
        "105.00"
    );

    // The workspace's side: 10 points x 15/30 days = 5.00.
    assert_eq!(r.ok(&admin, M::GET, "/workspace", None, 200).await["balance"], "105.00");
    let offers = r.ok(&admin, M::GET, "/workspace/addons", None, 200).await;
    assert!(!offers.to_string().contains("cost_price"), "a workspace never sees cost prices");
    let topups = r.ok(&admin, M::GET, "/workspace/topup-options", None, 200).await;
    assert_eq!((topups["data"][0]["amount_major"].as_str(), &topups["credit_rate"]), (Some("10.00"), &rate));
    let quote = r.ok(&admin, M::GET, "/workspace/addons/quote?addon=extra_bot&quantity=1", None, 200).await;
    assert_eq!((quote["now"].as_str(), quote["per_month"].as_str()), (Some("5.00"), Some("10.00")));
    let bought =
        r.ok(&admin, M::POST, "/workspace/addons", Some(json!({ "addon": "extra_bot", "quantity": 1 })), 201).await;
    assert_eq!((bought["charged"].as_str(), bought["balance"].as_str()), (Some("5.00"), Some("100.00")));
    let id = bought["addon"]["id"].as_str().unwrap().to_owned();
    let cancelled = r.ok(&admin, M::DELETE, &format!("/workspace/addons/{id}"), None, 200).await;
    assert_eq!(cancelled["addon"]["status"], "cancelling");
    assert_eq!(r.ok(&admin, M::GET, "/workspace/ledger?limit=2", None, 200).await["data"][0]["amount"], "-5.00");

    // The partner gives and removes an add-on.
    let given = json!({ "addon": "extra_member", "quantity": 2 });
    let given = r.ok(&partner, M::POST, "/partner/workspace/demo-ws-1/add-addon", Some(given), 201).await;
    assert_eq!(given["charged"], "0.00");
    let id = given["addon"]["id"].as_str().unwrap().to_owned();
    r.ok(&partner, M::DELETE, &format!("/partner/workspaces/demo-ws-1/addons/{id}"), None, 200).await;
    let ledger = r.ok(&partner, M::GET, "/partner/ledger?workspace_id=demo-ws-1", None, 200).await;
    assert_eq!(ledger["data"].as_array().unwrap().len(), 4, "seed, bonus, purchase, grant: {ledger}");
    r.ok(&partner, M::GET, "/partner/ledger", None, 200).await;
    // This month's statements: the workspace's own (read by it and by its partner), the
    // partner wallet's, and the partner's across its workspaces.
    let month = "2026-04";
    let statement = r.ok(&admin, M::GET, &format!("/workspace/statements/{month}"), None, 200).await;
    let theirs = format!("/partner/workspaces/demo-ws-1/statements/{month}");
    assert_eq!(r.ok(&partner, M::GET, &theirs, None, 200).await, statement);
    assert_eq!(statement["entries"].as_array().unwrap().len(), 4, "{statement}");
    r.ok(&partner, M::GET, &format!("/partner/wallet/statements/{month}"), None, 200).await;
    let across = r.ok(&partner, M::GET, &format!("/partner/statements/{month}"), None, 200).await;
    assert_eq!(across["workspaces"][0]["closing_balance"], statement["closing_balance"], "{across}");

    // The platform: over the starter plan's one bot (plus the cancelling extra bot) pauses it.
    let usage = json!({ "bots": 3, "members": 1, "bot_users": 10 });
    let paused = r.ok(&platform, M::PUT, "/platform/workspaces/demo-ws-1/usage-counts", Some(usage), 200).await;
    assert_eq!(
        (paused["workspace"]["status"].as_str(), paused["workspace"]["exceeded"].clone()),
        (Some("paused"), json!(["bots"]))
    );
    let entitlements = r.ok(&platform, M::GET, "/platform/workspaces/demo-ws-1/entitlements", None, 200).await;
    assert_eq!(entitlements["paused"], true);

    // Stripe: the partner's account, a top-up paid on the fake, and its webhook.
    let connection = r.ok(&partner, M::GET, "/partner/stripe", None, 200).await;
    assert_eq!(connection["connection"]["account"], local::stripe::DEMO_ACCOUNT);
    let (code, _) = r.fake.issue_oauth_code(Some(local::stripe::DEMO_ACCOUNT), false);
    r.ok(&partner, M::POST, "/partner/stripe/connect", Some(json!({ "code": code })), 200).await;
    let checkout = json!({ "topup_option_id": option_id });
    let session = r.ok(&admin, M::POST, "/workspace/checkout", Some(checkout), 201).await;
    let session = session["id"].as_str().unwrap().to_owned();
    r.fake.pay(&session).await.unwrap();
    let completed = r.fake.events().into_iter().find(|e| e.type_ == "checkout.session.completed").unwrap();
    let signature = stripe_gateway::signature::sign(
        completed.payload.as_bytes(),
        &[local::stripe::FAKE_WEBHOOK_SECRET],
        i64::try_from(now_s()).unwrap(),
    );
    let (status, answer) = r.webhook("/stripe/webhook", &completed.payload, &signature).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("credited")), "{answer}");
    assert_eq!(r.ok(&admin, M::GET, "/workspace", None, 200).await["balance"], "110.00");
    // Its receipt: the invoice Stripe made for it, linked from the fake.
    let ledger = r.ok(&admin, M::GET, "/workspace/ledger?limit=1", None, 200).await;
    let invoice = ledger["data"][0]["detail"]["receipt"].as_str().expect("the top-up names its invoice").to_owned();
    let receipt = r.ok(&admin, M::GET, &format!("/workspace/receipts/{invoice}"), None, 200).await;
    assert!(receipt["receipt"]["url"].as_str().unwrap().ends_with(&format!("/i/{invoice}")), "{receipt}");
    let events = r.ok(&partner, M::GET, "/partner/events?limit=5", None, 200).await;
    assert_eq!(events["data"][0]["type"], "topup.succeeded", "{events}");
    let off = r.ok(&admin, M::PUT, "/workspace/auto-topup", Some(json!({ "enabled": false })), 200).await;
    assert_eq!(off["enabled"], false);
    // A card saved without paying, then replaced (its events delivered); shown, then removed.
    for _ in 0..2 {
        let since = r.fake.events().len();
        let saving = r.ok(&admin, M::POST, "/workspace/card", None, 201).await;
        r.fake.pay(saving["id"].as_str().unwrap()).await.unwrap();
        let saved = ["payment_method.attached", "setup_intent.succeeded"];
        for event in r.fake.events().into_iter().skip(since).filter(|e| saved.contains(&e.type_.as_str())) {
            let signature = stripe_gateway::signature::sign(
                event.payload.as_bytes(),
                &[local::stripe::FAKE_WEBHOOK_SECRET],
                i64::try_from(now_s()).unwrap(),
            );
            let (status, answer) = r.webhook("/stripe/webhook", &event.payload, &signature).await;
            assert_eq!(status, 200, "{answer}");
        }
    }
    let card = r.ok(&admin, M::GET, "/workspace/card", None, 200).await;
    assert_eq!((&card["card"]["brand"], &card["card"]["last4"]), (&json!("visa"), &json!("4242")), "{card}");
    let removed = r.ok(&admin, M::DELETE, "/workspace/card", None, 200).await;
    assert_eq!(removed["removed"]["last4"], "4242");

    // Metered usage, re-billed at 10 points a minute (0.12 USD at the demo's 0.012 a point, above
    // the 0.07 wholesale cost); the platform makes the partner prepaid and credits its wallet.
    let rebill = json!({ "enabled": true, "rates": { "voice_minutes": "10" } });
    r.ok(&partner, M::PUT, "/partner/workspaces/demo-ws-2/rebilling", Some(rebill), 200).await;
    // Billing access for a user of demo-ws-2: granted, listed, revoked.
    let managers = "/partner/workspaces/demo-ws-2/billing-managers";
    let user = json!({ "sub": "dana" });
    r.ok(&partner, M::POST, managers, Some(user.clone()), 201).await;
    assert_eq!(r.ok(&partner, M::GET, managers, None, 200).await["managers"][0]["sub"], "dana");
    let revoked = r.ok(&partner, M::POST, &format!("{managers}/revoke"), Some(user), 200).await;
    assert_eq!(revoked["managers"], json!([]));
    let call =
        json!({ "workspace_id": "demo-ws-2", "meter": "voice_minutes", "quantity": "1.5", "event_id": "call-1" });
    let used = r.ok(&platform, M::POST, "/platform/usage", Some(call), 200).await;
    assert_eq!(
        (&used["wholesale"]["amount"], &used["workspace_charge"]["balance"]),
        (&json!("0.105"), &json!("10.00"))
    );
    let access = "/platform/workspaces/demo-ws-2/access?meter=voice_minutes";
    assert_eq!(r.ok(&platform, M::GET, access, None, 200).await["allowed"], true);
    let prepaid = json!({ "mode": "prepaid" });
    r.ok(&platform, M::PUT, "/platform/partners/demo-partner/billing", Some(prepaid), 200).await;
    let credit = json!({ "amount": "50", "reason": "invoice paid" });
    let credited =
        r.ok(&platform, M::POST, "/platform/partners/demo-partner/wallet/adjustments", Some(credit), 201).await;
    assert_eq!(credited["balance"], "50.00");
    let wallet = r.ok(&partner, M::GET, "/partner/wallet", None, 200).await;
    assert_eq!((&wallet["mode"], &wallet["balance"]), (&json!("prepaid"), &json!("50.00")));
    // The platform signs a partner up, reads and lists it, changes its terms, suspends and
    // reinstates it; its own token works on its routes.
    let new =
        json!({ "id": "runner-agency", "name": "Runner Agency", "terms": { "wholesale_floors": { "usd": "0.12" } } });
    r.ok(&platform, M::POST, "/platform/partners", Some(new), 201).await;
    let got = r.ok(&platform, M::GET, "/platform/partners/runner-agency", None, 200).await;
    assert_eq!(got["terms"]["wholesale_floors"], json!({ "usd": "0.12" }));
    let listed = r.ok(&platform, M::GET, "/platform/partners?limit=100", None, 200).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(2), "{listed}");
    let terms = json!({ "wholesale_floors": { "usd": "0.20" }, "billing_mode": "postpaid" });
    r.ok(&platform, M::PUT, "/platform/partners/runner-agency/terms", Some(terms), 200).await;
    let agency = r.token(Some("runner-agency"), None, "partner_admin");
    let rate = json!({ "currency": "usd", "price_per_point": "0.25" });
    r.ok(&agency, M::PUT, "/partner/credit-rate", Some(rate.clone()), 200).await;
    let reason = json!({ "reason": "runner check" });
    r.ok(&platform, M::POST, "/platform/partners/runner-agency/suspend", Some(reason), 200).await;
    r.ok(&agency, M::PUT, "/partner/credit-rate", Some(rate.clone()), 403).await;
    r.ok(&platform, M::POST, "/platform/partners/runner-agency/reinstate", None, 200).await;
    r.ok(&agency, M::PUT, "/partner/credit-rate", Some(rate), 200).await;
    // The partner pays into its wallet on the platform's own account; that account's endpoint
    // credits it, and the saved card allows the auto-refill.
    let pay = json!({ "amount": "25.00", "success_url": "https://agency.example/paid", "cancel_url": "https://agency.example/back" });
    let session = r.ok(&partner, M::POST, "/partner/wallet/checkout", Some(pay), 201).await;
    r.fake.pay(session["id"].as_str().unwrap()).await.unwrap();
    let platform_secret = [local::stripe::FAKE_PLATFORM_WEBHOOK_SECRET];
    for (t, outcome) in [("payment_intent.succeeded", "card_saved"), ("checkout.session.completed", "credited")] {
        let event = r.fake.events().into_iter().find(|e| e.account.is_none() && e.type_ == t).unwrap();
        let signature = stripe_gateway::signature::sign(
            event.payload.as_bytes(),
            &platform_secret,
            i64::try_from(now_s()).unwrap(),
        );
        let (status, answer) = r.webhook("/stripe/platform-webhook", &event.payload, &signature).await;
        assert_eq!((status, answer["outcome"].as_str()), (200, Some(outcome)), "{answer}");
    }
    let wallet = r.ok(&partner, M::GET, "/partner/wallet", None, 200).await;
    assert_eq!(wallet["balance"], "75.00");
    let invoice = wallet["ledger"]["data"][0]["detail"]["receipt"].as_str().expect("an invoice").to_owned();
    let receipt = r.ok(&partner, M::GET, &format!("/partner/wallet/receipts/{invoice}"), None, 200).await;
    assert_eq!(receipt["receipt"]["id"], invoice.as_str());
    let refill = json!({ "enabled": true, "threshold": "20.00", "amount": "50.00" });
    let refill = r.ok(&partner, M::PUT, "/partner/wallet/auto-refill", Some(refill), 200).await;
    assert_eq!((&refill["enabled"], &refill["card_saved"]), (&json!(true), &json!(true)));
    // The wallet checkout's card, replaced on a page of its own, then removed: the refill stops.
    let card = r.ok(&partner, M::GET, "/partner/wallet/card", None, 200).await;
    assert!(card["card"].is_object(), "{card}");
    let urls = json!({ "success_url": "https://agency.example/saved", "cancel_url": "https://agency.example/back" });
    let saving = r.ok(&partner, M::POST, "/partner/wallet/card", Some(urls), 201).await;
    assert!(saving["url"].as_str().unwrap().contains("/pay/"), "{saving}");
    let removed = r.ok(&partner, M::DELETE, "/partner/wallet/card", None, 200).await;
    assert_eq!(removed["auto_topup_turned_off"], true);
    // Its webhook endpoint (the runner has no stream, so nothing is delivered) and its alerts.
    let hook = json!({ "url": "https://hooks.agency.example/billing" });
    let hook = r.ok(&partner, M::PUT, "/partner/webhook", Some(hook), 201).await;
    assert!(hook["secret"].as_str().unwrap().starts_with("whsec_"), "{hook}");
    let rolled = r.ok(&partner, M::POST, "/partner/webhook/secret", None, 200).await;
    assert_eq!(rolled["endpoint"]["secrets"].as_array().unwrap().len(), 2, "{rolled}");
    assert_eq!(r.ok(&partner, M::GET, "/partner/webhook", None, 200).await["endpoint"]["enabled"], true);
    assert_eq!(r.ok(&partner, M::GET, "/partner/webhook/deliveries", None, 200).await["data"], json!([]));
    let nobody = "/partner/webhook/deliveries/dlv_000000000000000000010000000001_ab/replay";
    r.ok(&partner, M::POST, nobody, None, 404).await;
    let alerts = json!({ "workspace": ["100"], "wallet": ["20"] });
    r.ok(&partner, M::PUT, "/partner/balance-alerts", Some(alerts), 200).await;
    assert_eq!(r.ok(&partner, M::GET, "/partner/balance-alerts", None, 200).await["wallet"], json!(["20.00"]));

    // Plans billed in money: demo-ws-2 subscribes on the fake's Checkout page (its events
    // through the webhook), puts add-ons on the plan's bill while its partner sells in money,
    // changes its plan, and cancels; its partner reads its subscription and invoices.
    let other = r.token(Some(PARTNER), Some("demo-ws-2"), "workspace_admin");
    let plans = r.ok(&other, M::GET, "/workspace/plans", None, 200).await;
    assert!(plans["subscription"].is_null(), "{plans}");
    let since = r.fake.events().len();
    r.ok(&other, M::POST, "/workspace/subscription", Some(json!({ "plan": "growth" })), 201).await;
    let session = r.fake.sessions(Some(local::stripe::DEMO_ACCOUNT)).last().unwrap()["id"].clone();
    r.fake.pay(session.as_str().unwrap()).await.unwrap();
    deliver_since(r, since).await;
    assert_eq!(r.ok(&other, M::GET, "/workspace/subscription", None, 200).await["plan"], "growth");
    let in_money = json!({
        "credit_billing": false, "success_url": "http://localhost:3000/checkout/success",
        "cancel_url": "http://localhost:3000/checkout/cancel", "grace_days": 0,
    });
    r.ok(&partner, M::PUT, "/partner/settings", Some(in_money), 200).await;
    let priced =
        json!({ "label": "Bot", "points": "10", "enabled": true, "price": { "amount_minor": 900, "currency": "usd" } });
    r.ok(&partner, M::PUT, "/partner/addons/extra_bot", Some(priced), 200).await;
    let mut billed = vec![];
    for _ in 0..2 {
        let since = r.fake.events().len();
        let body = json!({ "addon": "extra_bot", "quantity": 1 });
        let bought = r.ok(&other, M::POST, "/workspace/subscription/addons", Some(body), 201).await;
        billed.push(bought["addon"]["id"].as_str().unwrap().to_owned());
        deliver_since(r, since).await;
    }
    let upgraded = r.ok(&other, M::POST, "/workspace/plan", Some(json!({ "plan": "agency" })), 200).await;
    assert_eq!(upgraded["workspace"]["plan"], "agency", "{upgraded}");
    assert!(!r.ok(&other, M::GET, "/workspace/invoices", None, 200).await["data"].as_array().unwrap().is_empty());
    r.ok(&partner, M::GET, "/partner/workspaces/demo-ws-2/subscription", None, 200).await;
    r.ok(&partner, M::GET, "/partner/workspaces/demo-ws-2/invoices?limit=2", None, 200).await;
    r.ok(&other, M::DELETE, &format!("/workspace/subscription/addons/{}", billed[0]), None, 200).await;
    let removed = format!("/partner/workspaces/demo-ws-2/subscription/addons/{}", billed[1]);
    r.ok(&partner, M::DELETE, &removed, None, 200).await;
    let cancelled = r.ok(&other, M::DELETE, "/workspace/subscription", None, 200).await;
    assert_eq!(cancelled["subscription"]["cancel_at_cycle_end"], true, "{cancelled}");

    let all = r.router.routes();
    assert_eq!(
        r.served,
        all,
        "this test must call every route once (routes not called: {:?})",
        all.difference(&r.served).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_runner_answers_like_api_gateway_before_any_function() {
    use Method as M;
    let mut r = Runner::new().await;
    let partner = r.token(Some(PARTNER), None, "partner_admin");

    // Unknown route (or method): 404 in the API's error shape, token or not.
    for (token, method, uri) in [
        (None, M::GET, "/nowhere"),
        (Some(partner.as_str()), M::DELETE, "/partner/addons"),
        (None, M::GET, "/partner/plans/"),
    ] {
        let (status, body) = r.send(token, method, uri, None).await;
        assert_eq!((status, body["error"]["type"].as_str()), (404, Some("not_found")), "{uri}");
    }

    // A JWT route without a valid token: 401.
    let expired = TokenRequest {
        sub: "u".into(),
        partner_id: Some(PARTNER.into()),
        roles: vec!["partner_admin".into()],
        ttl_s: 60,
        ..Default::default()
    }
    .mint(&r.verifier, now_s() - 120);
    let forged = TokenRequest {
        sub: "u".into(),
        partner_id: Some(PARTNER.into()),
        roles: vec!["partner_admin".into()],
        ttl_s: 60,
        ..Default::default()
    }
    .mint(&Verifier::new("another-secret"), now_s());
    for token in [None, Some("not-a-jwt"), Some(expired.as_str()), Some(forged.as_str())] {
        let (status, body) = r.send(token, M::GET, "/partner/addons", None).await;
        assert_eq!((status, body["error"]["type"].as_str()), (401, Some("unauthorized")), "{token:?}");
    }

    // The claims reach the handler as API Gateway passes them: roles flattened to "[a b]".
    let member = TokenRequest {
        sub: "carol".into(),
        partner_id: Some(PARTNER.into()),
        workspace_id: Some("demo-ws-2".into()),
        roles: vec!["workspace_member".into(), "something_else".into()],
        ttl_s: 60,
    }
    .mint(&r.verifier, now_s());
    let (status, ws) = r.send(Some(&member), M::GET, "/workspace", None).await;
    assert_eq!((status, ws["id"].as_str(), ws["balance"].as_str()), (200, Some("demo-ws-2"), Some("25.00")));
    let (status, _) =
        r.send(Some(&member), M::POST, "/workspace/addons", Some(json!({"addon": "extra_bot", "quantity": 1}))).await;
    assert_eq!(status, 403, "a member may read, not buy");
}

#[tokio::test]
async fn seeding_twice_changes_nothing() {
    let r = Runner::new().await;
    local::seed::seed(&r.billing, "http://localhost:4000", &r.fake).await.unwrap();
    let w = domain::WorkspaceId::parse("demo-ws-1").unwrap();
    let wallet = r.billing.store.wallet(&domain::WalletId::Workspace(w)).await.unwrap();
    assert_eq!((wallet.balance.to_string(), wallet.version), ("100.00".to_owned(), 1));
}

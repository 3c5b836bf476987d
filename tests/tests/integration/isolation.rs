//! The tenant isolation matrix. Every route of template.yaml, read through the local runner
//! (routing and the JWT check as API Gateway does them, so a route added later is in the
//! matrix without anyone listing it), is called by every identity that has no business with
//! the victim's data: the other partner, a workspace of the other partner or of the same
//! partner, each wrong role, and tokens that are missing, expired, forged or meant for someone
//! else. The victim is partner Q with workspaces X and X2, each holding points and add-ons,
//! and a paid checkout Stripe has not told us about yet.
//!
//! Each refusal is exact (401 no valid token, 403 wrong role, 404 another tenant's id, 400 for
//! a webhook whose signature doesn't verify), in the one error shape, with a 404 that is the
//! same as for an id that does not exist. Nothing is written (no transaction reaches the
//! table, and the whole table is the same after), and no answer carries the victim's ids,
//! names, labels or balances. Then the same requests from their rightful callers go through:
//! the refusals were about the caller, not the request.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{CountingTable, fresh_table};
use local::http::{Method, Request, header};
use local::{Body, Router, TokenRequest, Verifier};
use serde_json::{Value, json};
use store::Table;
use store::dynamodb::DynamoTable;
use store::memory::MemoryTable;
use stripe_gateway::signature;

use crate::api::checkout::{events_of, session};
use crate::api::{Api, P, Q, W, X, partner_admin, req, starter_limits};

/// Each partner's second workspace.
const W2: &str = "ws-acme-2";
const X2: &str = "ws-rival-2";
const X2_NAME: &str = "Rival Second Office";
/// Ids that exist nowhere: a 404 for the victim's id must be this one's 404.
const NOBODY: &str = "ws-nobody";
const NO_PARTNER: &str = "p-nobody";
const NO_ADDON: &str = "ad_000000000000000000000000";
const NO_RECEIPT: &str = "in_000000000000000000000000";
const JWT_SECRET: &str = "isolation-secret";
/// The base64url of `{"alg":"none","typ":"JWT"}`: an unsigned token's header.
const ALG_NONE_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
/// Stripe's tolerance is 300 s; this is well past it.
const STALE_S: u64 = 3600;
/// Pages of a DynamoDB scan of the test table, at most (a few hundred items fit in one).
const MAX_SCAN_PAGES: usize = 100;

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join(name)
}

fn now_s() -> u64 {
    local::server::now_epoch_s()
}

// ---- who calls -----------------------------------------------------------------------------

/// What a valid, correctly signed token says.
#[derive(Debug, Clone, Copy)]
struct Claims {
    partner: Option<&'static str>,
    workspace: Option<&'static str>,
    roles: &'static [&'static str],
}

impl Claims {
    fn has(&self, role: &str) -> bool {
        self.roles.contains(&role)
    }
}

/// A token for the route's rightful caller, spoiled one way.
#[derive(Debug, Clone, Copy)]
enum Defect {
    /// No Authorization header (and, on the webhook, no Stripe-Signature either).
    Missing,
    NotAJwt,
    /// A valid token under the `Basic` scheme.
    BasicScheme,
    Expired,
    OtherKey,
    WrongIssuer,
    WrongAudience,
    /// `alg: none`, no signature.
    Unsigned,
    NotYetValid,
    NoExpiry,
}

/// No token, a `Stripe-Signature` header instead.
#[derive(Debug, Clone, Copy)]
enum Sig {
    /// Signed now with the endpoint's secret, over the exact body.
    Valid,
    Garbage,
    OtherSecret,
    Stale,
    /// Signed now with the endpoint's secret, over another body.
    OtherPayload,
}

#[derive(Debug, Clone, Copy)]
enum Cred {
    Token(Claims),
    Defect(Defect),
    Signature(Sig),
}

struct Identity {
    label: &'static str,
    cred: Cred,
}

fn token(
    label: &'static str,
    partner: Option<&'static str>,
    workspace: Option<&'static str>,
    roles: &'static [&'static str],
) -> Identity {
    Identity { label, cred: Cred::Token(Claims { partner, workspace, roles }) }
}

/// Everyone who is not the victim's rightful caller on at least some route.
fn identities() -> Vec<Identity> {
    let defect = |label, d| Identity { label, cred: Cred::Defect(d) };
    let sig = |label, s| Identity { label, cred: Cred::Signature(s) };
    vec![
        token("the other partner's partner_admin", Some(P), None, &["partner_admin"]),
        token("workspace_admin of the other partner's workspace", Some(P), Some(W), &["workspace_admin"]),
        token("workspace_member of the other partner's workspace", Some(P), Some(W), &["workspace_member"]),
        token("workspace_admin of the victim partner's other workspace", Some(Q), Some(X2), &["workspace_admin"]),
        token("workspace_member of the victim partner's other workspace", Some(Q), Some(X2), &["workspace_member"]),
        token(
            "workspace_admin claiming the victim workspace under the other partner",
            Some(P),
            Some(X),
            &["workspace_admin"],
        ),
        token(
            "workspace_member claiming the victim workspace under the other partner",
            Some(P),
            Some(X),
            &["workspace_member"],
        ),
        token("the victim's own partner_admin", Some(Q), None, &["partner_admin"]),
        token("the victim workspace's own workspace_admin", Some(Q), Some(X), &["workspace_admin"]),
        token("the victim workspace's own workspace_member", Some(Q), Some(X), &["workspace_member"]),
        token("platform_service", None, None, &["platform_service"]),
        token("the victim's tenant with an unknown role", Some(Q), Some(X), &["superuser"]),
        token("the victim's tenant with no roles", Some(Q), Some(X), &[]),
        defect("no token", Defect::Missing),
        defect("not a JWT", Defect::NotAJwt),
        defect("a valid token under the Basic scheme", Defect::BasicScheme),
        defect("an expired token", Defect::Expired),
        defect("a token signed with another key", Defect::OtherKey),
        defect("a token from another issuer", Defect::WrongIssuer),
        defect("a token for another audience", Defect::WrongAudience),
        defect("an unsigned token (alg none)", Defect::Unsigned),
        defect("a token not valid yet", Defect::NotYetValid),
        defect("a token without exp", Defect::NoExpiry),
        sig("a valid Stripe signature", Sig::Valid),
        sig("a garbage Stripe signature", Sig::Garbage),
        sig("a Stripe signature with another secret", Sig::OtherSecret),
        sig("a stale Stripe signature", Sig::Stale),
        sig("a Stripe signature of another body", Sig::OtherPayload),
    ]
}

// ---- what is called ------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Partner,
    Workspace,
    Platform,
    /// `POST /stripe/webhook`: no JWT, its signature authenticates it.
    Stripe,
}

/// One route of template.yaml, as the runner serves it.
struct Case {
    key: String,
    method: Method,
    path: String,
    family: Family,
    /// Whether the request names a tenant's resource (a workspace, an add-on), so that a
    /// caller of the right role but another tenant is refused with 404.
    names_tenant: bool,
    /// Query parameters naming a workspace (openapi.yaml's `workspace_id`).
    workspace_query: bool,
}

/// The ids a request is filled with.
#[derive(Debug, Clone, Copy)]
struct Ids<'a> {
    partner: &'a str,
    workspace: &'a str,
    /// The add-on a workspace route names (one the workspace bought).
    bought: &'a str,
    /// The add-on a partner route names (one the partner gave).
    given: &'a str,
    /// The receipt of one of the workspace's top-ups, and of one of the partner wallet's.
    receipt: &'a str,
    wallet_receipt: &'a str,
    /// One of the partner's webhook deliveries.
    delivery: &'a str,
    /// The workspace's add-ons on its plan's bill: the one a workspace route names, and the one
    /// a partner route names.
    billed: &'a str,
    billed_by_partner: &'a str,
}

impl Ids<'static> {
    fn nowhere() -> Self {
        Ids {
            partner: NO_PARTNER,
            workspace: NOBODY,
            bought: NO_ADDON,
            given: NO_ADDON,
            receipt: NO_RECEIPT,
            wallet_receipt: NO_RECEIPT,
            delivery: crate::api::access::NO_DELIVERY,
            billed: NO_ADDON,
            billed_by_partner: NO_ADDON,
        }
    }
}

/// What a path parameter names, by the segment before it and its name.
enum Slot {
    Partner,
    Workspace,
    Addon,
    /// A receipt (a tenant's: of its workspace's top-ups, or of its partner wallet's).
    Receipt,
    /// A partner's webhook delivery.
    Delivery,
    /// An add-on on a workspace's plan's bill.
    BilledAddon,
    /// A name that names no tenant: one of the platform's catalog (a plan, an add-on code: each
    /// partner has its own copy) or a statement's month.
    Catalog(&'static str),
}

fn slot(route: &str, before: &str, name: &str) -> Slot {
    match (before, name) {
        ("partners", "id") => Slot::Partner,
        ("workspaces" | "workspace", "id") => Slot::Workspace,
        (_, "addon_id") if route.contains("/subscription/addons/") => Slot::BilledAddon,
        (_, "addon_id") => Slot::Addon,
        ("receipts", "id") => Slot::Receipt,
        ("plans", "id") => Slot::Catalog("starter"),
        ("addons", "code") => Slot::Catalog("extra_bot"),
        ("statements", "month") => Slot::Catalog("2020-01"),
        ("deliveries", "id") => Slot::Delivery,
        _ => panic!(
            "{route}: isolation.rs doesn't know what {{{name}}} names; teach `slot` (a tenant's id, filled with the \
             victim's, or a catalog name)"
        ),
    }
}

fn param_slots(c: &str, path: &str) -> Vec<(String, Slot)> {
    let segments: Vec<&str> = path.split('/').collect();
    segments
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')).map(|name| (i, name)))
        .map(|(i, name)| (name.to_owned(), slot(c, segments[i - 1], name)))
        .collect()
}

/// Every route the runner serves from template.yaml, each with its family and slots.
fn cases() -> Vec<Case> {
    let router =
        Router::<MemoryTable>::from_template(&repo_file("template.yaml")).expect("the runner takes template.yaml");
    let openapi = local::template::load_yaml(&repo_file("openapi.yaml")).expect("openapi.yaml");
    let mut cases: Vec<Case> = router
        .iter()
        .map(|r| {
            let spec = &r.spec;
            let family = if !spec.jwt {
                assert!(
                    ["POST /stripe/webhook", "POST /stripe/platform-webhook"].contains(&spec.key().as_str()),
                    "{}: a new route without the JWT authorizer: how is it authenticated? teach isolation.rs",
                    spec.key()
                );
                Family::Stripe
            } else {
                match spec.path.split('/').nth(1) {
                    Some("partner") => Family::Partner,
                    Some("workspace") => Family::Workspace,
                    Some("platform") => Family::Platform,
                    _ => panic!(
                        "{}: a route family isolation.rs doesn't know; teach `expect` who may call it",
                        spec.key()
                    ),
                }
            };
            let parameters =
                &openapi["paths"][spec.path.as_str()][spec.method.to_ascii_lowercase().as_str()]["parameters"];
            let workspace_query = parameters.as_sequence().is_some_and(|ps| {
                ps.iter().any(|p| p["in"].as_str() == Some("query") && p["name"].as_str() == Some("workspace_id"))
            });
            let slots = param_slots(&spec.key(), &spec.path);
            let names_tenant = workspace_query
                || slots.iter().any(|(_, s)| {
                    matches!(s, Slot::Partner | Slot::Workspace | Slot::Addon | Slot::BilledAddon | Slot::Receipt)
                });
            Case {
                key: spec.key(),
                method: Method::from_bytes(spec.method.as_bytes()).expect("an HTTP method"),
                path: spec.path.clone(),
                family,
                names_tenant,
                workspace_query,
            }
        })
        .collect();
    cases.sort_by(|a, b| a.key.cmp(&b.key));
    let in_template = local::template::Template::load(&repo_file("template.yaml")).unwrap().route_keys();
    assert_eq!(cases.iter().map(|c| c.key.clone()).collect::<std::collections::BTreeSet<_>>(), in_template);
    cases
}

impl Case {
    /// The concrete path and query for `ids`.
    fn uri(&self, ids: &Ids<'_>, with_query: bool) -> String {
        let mut path = self.path.clone();
        for (name, slot) in param_slots(&self.key, &self.path) {
            let value = match slot {
                Slot::Partner => ids.partner,
                Slot::Workspace => ids.workspace,
                Slot::Addon if self.family == Family::Workspace => ids.bought,
                Slot::Addon => ids.given,
                Slot::Receipt if self.family == Family::Workspace => ids.receipt,
                Slot::Receipt => ids.wallet_receipt,
                Slot::Delivery => ids.delivery,
                Slot::BilledAddon if self.family == Family::Workspace => ids.billed,
                Slot::BilledAddon => ids.billed_by_partner,
                Slot::Catalog(catalog) => catalog,
            };
            path = path.replace(&format!("{{{name}}}"), value);
        }
        let mut query: Vec<String> = self.required_query().iter().map(|q| (*q).to_owned()).collect();
        if self.workspace_query && with_query {
            query.push(format!("workspace_id={}", ids.workspace));
        }
        if query.is_empty() { path } else { format!("{path}?{}", query.join("&")) }
    }

    /// The query parameters a route can't answer without (a 400 would hide who was refused).
    fn required_query(&self) -> &'static [&'static str] {
        match self.key.as_str() {
            "GET /platform/workspaces/{id}/access" => &["meter=voice_minutes"],
            "GET /workspace/addons/quote" => &["addon=extra_bot", "quantity=1"],
            _ => &[],
        }
    }

    fn mutates(&self) -> bool {
        self.method != Method::GET
    }

    /// A body the route's rightful caller may send, so that a refusal is about the caller.
    fn body(&self, t: &Tenants) -> Option<String> {
        let settings = json!({
            "credit_billing": true, "success_url": SUCCESS, "cancel_url": CANCEL, "grace_days": 0,
        });
        let body = match self.key.as_str() {
            "POST /stripe/webhook" => return Some(t.completed.clone()),
            "POST /stripe/platform-webhook" => return Some(t.platform_completed.clone()),
            "POST /partner/wallet/checkout" => {
                json!({ "amount": "10.00", "success_url": SUCCESS, "cancel_url": CANCEL })
            }
            "PUT /partner/wallet/auto-refill" => json!({ "enabled": false }),
            "POST /partner/wallet/card" => json!({ "success_url": SUCCESS, "cancel_url": CANCEL }),
            "POST /workspace/card" => return None,
            "PUT /partner/webhook" => json!({ "url": "https://hooks.agency.example/billing" }),
            "PUT /partner/balance-alerts" => json!({ "workspace": ["100"], "wallet": ["50"] }),
            "POST /partner/webhook/secret" | "POST /partner/webhook/deliveries/{id}/replay" => return None,
            "PUT /partner/addons/{code}" => json!({ "label": "Rival Bot", "points": "10", "enabled": true }),
            "PUT /partner/plans/{id}" => json!({
                "label": "Rival Starter",
                "limits": starter_limits(1, 2),
                "monthly_price": { "amount_minor": 4900, "currency": "usd" },
            }),
            "PUT /partner/settings" => settings,
            "POST /partner/stripe/connect" => json!({ "code": t.code }),
            "PUT /partner/topup-options" => json!({
                "options": [{ "label": "Rival Pack", "currency": "usd", "amount_minor": 1000, "points": "1000" }],
            }),
            "PUT /partner/credit-rate" => json!({ "currency": "usd", "price_per_point": "0.012" }),
            "POST /partner/workspaces" => {
                json!({ "name": "New", "plan": "starter", "cycle_anchor_day": 1 })
            }
            "PUT /partner/workspaces/{id}/plan" => json!({ "plan": "growth" }),
            // Sent before the partner's (in key order), on the starter plan: an upgrade.
            "POST /workspace/plan" => json!({ "plan": "agency" }),
            "POST /workspace/subscription" => json!({ "plan": "growth" }),
            "POST /workspace/subscription/addons" => json!({ "addon": "extra_member", "quantity": 1 }),
            "POST /partner/workspaces/{id}/points" => json!({ "amount": "-1", "reason": "isolation probe" }),
            "POST /partner/workspace/{id}/add-addon" => {
                json!({ "addon": "extra_bot", "quantity": 1, "charge_points": true })
            }
            "POST /workspace/addons" => json!({ "addon": "extra_bot", "quantity": 1 }),
            "POST /workspace/checkout" => json!({ "points": "100" }),
            "PUT /workspace/auto-topup" => json!({ "enabled": false }),
            "PUT /platform/workspaces/{id}/usage-counts" => json!({ "bots": 1, "members": 1, "bot_users": 1 }),
            // 10 points a minute at 0.012 USD a point resell a minute at 0.12 USD, above its cost.
            "PUT /partner/workspaces/{id}/rebilling" => json!({ "enabled": true, "rates": { "voice_minutes": "10" } }),
            "POST /platform/usage" => json!({
                "workspace_id": X, "meter": "voice_minutes", "quantity": "3", "event_id": "evt-isolation-1",
            }),
            "POST /partner/workspaces/{id}/billing-managers"
            | "POST /partner/workspaces/{id}/billing-managers/revoke" => json!({ "sub": "isolation-user" }),
            "PUT /platform/partners/{id}/billing" => json!({ "mode": "postpaid" }),
            "POST /platform/partners/{id}/wallet/adjustments" => json!({ "amount": "10", "reason": "isolation probe" }),
            "POST /platform/partners" => json!({ "id": "p-isolation-new", "name": "New Agency" }),
            "PUT /platform/partners/{id}/terms" => {
                json!({ "wholesale_floors": { "usd": "0.01" }, "billing_mode": "postpaid" })
            }
            "POST /platform/partners/{id}/suspend" => json!({ "reason": "isolation probe" }),
            "POST /platform/partners/{id}/reinstate" => return None,
            _ if !self.mutates() || self.method == Method::DELETE => return None,
            other => panic!(
                "{other} is new: give it a valid body in isolation.rs's `Case::body`, so that its refusals are about \
                 the caller, not the body"
            ),
        };
        Some(body.to_string())
    }
}

// ---- the data to leak ----------------------------------------------------------------------

const SUCCESS: &str = "https://agency.example/paid";
const CANCEL: &str = "https://agency.example/back";

struct Tenants {
    /// The victim X's add-on its admin bought, and the one Q gave it.
    bought: String,
    given: String,
    /// P's own: W's add-on.
    own_addon: String,
    /// X's paid checkout's `checkout.session.completed`, not delivered yet: the webhook's
    /// payload, which would credit X if it were let through.
    completed: String,
    /// Q's paid wallet checkout's `checkout.session.completed` on the platform's account, not
    /// delivered yet: it would credit Q's partner wallet.
    platform_completed: String,
    /// A Connect code for Q's own account (single use; the rightful control spends it).
    code: String,
    /// Receipts of credited top-ups: X's and Q's wallet's (the victim's), W's and P's wallet's.
    x_receipt: String,
    q_receipt: String,
    w_receipt: String,
    p_receipt: String,
    /// A webhook delivery of each partner's: Q's (the victim's) and P's.
    q_delivery: String,
    p_delivery: String,
    /// Each workspace's two add-ons on its plan's bill: X's (the victim's) and W's.
    x_billed: String,
    x_billed_2: String,
    w_billed: String,
    w_billed_2: String,
    /// Strings that are the victim's alone: no answer to anyone else may carry them.
    markers: Vec<String>,
}

/// A partner sells: return URLs, a pack, a rate; and labels its extra bot and starter plan.
async fn sell<T: Table>(api: &Api<T>, p: &str, brand: &str) -> String {
    let settings = json!({ "credit_billing": true, "success_url": SUCCESS, "cancel_url": CANCEL, "grace_days": 0 });
    api.call(req("PUT /partner/settings").by(partner_admin(p)).json(settings)).await.ok(200);
    let options = json!({
        "options": [{ "label": format!("{brand} Pack"), "currency": "usd", "amount_minor": 1000, "points": "1000" }],
    });
    let saved = api.call(req("PUT /partner/topup-options").by(partner_admin(p)).json(options)).await.ok(200);
    let rate = json!({ "currency": "usd", "price_per_point": "0.012" });
    api.call(req("PUT /partner/credit-rate").by(partner_admin(p)).json(rate)).await.ok(200);
    api.price(p, "extra_bot", &format!("{brand} Bot"), "10", true).await;
    let plan = json!({
        "label": format!("{brand} Starter"),
        "limits": starter_limits(1, 2),
        "monthly_price": { "amount_minor": 4900, "currency": "usd" },
    });
    api.call(req("PUT /partner/plans/{id}").param("id", "starter").by(partner_admin(p)).json(plan)).await.ok(200);
    saved["data"][0]["id"].as_str().unwrap().to_owned()
}

/// Two partners, two workspaces each, points, add-ons, events, and a paid checkout of X.
async fn setup<T: Table>(api: &Api<T>) -> Tenants {
    api.tenants().await;
    for (p, w, name) in [(P, W2, "Acme Second Office"), (Q, X2, X2_NAME)] {
        api.provision(p, w, name, "starter", Some(1)).await;
    }
    // W and X pay for their plans in money, each with an add-on on the plan's bill (while their
    // partners sell in money; they sell for points again below).
    let mut billed = vec![];
    for (p, w) in [(P, W), (Q, X)] {
        crate::api::plans::subscribe_with_billed_addon(api, p, w).await;
        billed.push(crate::api::plans::billed_addon_of(api, p, w).await);
        // A second one, for the partner's route to remove while the workspace cancels the first.
        let body = json!({ "addon": "extra_member", "quantity": 2 });
        let more = req("POST /workspace/subscription/addons").by(crate::api::workspace_admin(p, w)).json(body);
        billed.push(api.call(more).await.ok(201)["addon"]["id"].as_str().unwrap().to_owned());
    }
    let [w_billed, w_billed_2, x_billed, x_billed_2] = billed.try_into().unwrap();
    let own_option = sell(api, P, "Acme").await;
    let option = sell(api, Q, "Rival").await;
    for (p, w, amount) in [(P, W, "100"), (P, W2, "50"), (Q, X, "7777"), (Q, X2, "3333")] {
        api.fund(p, w, amount).await;
    }
    let id = |v: Value| v["addon"]["id"].as_str().unwrap().to_owned();
    let own_addon = id(api.buy(P, W, "extra_bot", 1).await.ok(201));
    let bought = id(api.buy(Q, X, "extra_bot", 1).await.ok(201));
    let give = req("POST /partner/workspace/{id}/add-addon").param("id", X).by(partner_admin(Q));
    let given = id(api.call(give.json(json!({ "addon": "extra_member", "quantity": 1 }))).await.ok(201));
    // Over the starter plan's one bot: paused, an event on each partner's list.
    for w in [W2, X2] {
        api.usage(w, 5, 0, 0).await.ok(200);
    }
    let checkout = session(api, Q, X, &option).await;
    api.stripe.pay(&checkout).await.unwrap();
    let completed = events_of(api, X)
        .into_iter()
        .find(|(t, payload)| t == "checkout.session.completed" && payload.contains(&checkout))
        .expect("the fake says the checkout is paid")
        .1;
    let wallet = json!({ "amount": "25.00", "success_url": SUCCESS, "cancel_url": CANCEL });
    let wallet = api.call(req("POST /partner/wallet/checkout").by(partner_admin(Q)).json(wallet)).await.ok(201);
    let wallet_checkout = wallet["id"].as_str().unwrap().to_owned();
    api.stripe.pay(&wallet_checkout).await.unwrap();
    let platform_completed = api
        .stripe
        .events()
        .into_iter()
        .find(|e| e.account.is_none() && e.type_ == "checkout.session.completed")
        .expect("the fake says the wallet checkout is paid")
        .payload;
    // Top-ups credited with their receipts, for each wallet's own reader (after the payments
    // above, whose events the finds above take as the first of their kind).
    let x_receipt = credited_receipt(api, Q, X, &option).await;
    let w_receipt = credited_receipt(api, P, W, &own_option).await;
    let (q_receipt, p_receipt) = (wallet_receipt(api, Q).await, wallet_receipt(api, P).await);
    let q_delivery = crate::api::access::delivery_of(api, Q, X).await;
    let p_delivery = crate::api::access::delivery_of(api, P, W).await;
    // X and Q save a card each, for their rightful callers to remove.
    crate::api::cards::save_workspace_card(api, Q, X, None).await;
    crate::api::cards::save_partner_card(api, Q, None).await;
    let account = api.account(Q).await;
    let (code, _) = api.stripe.issue_oauth_code(Some(&account), false);
    let x_subscription = api.call(req("GET /workspace/subscription").by(crate::api::workspace_admin(Q, X))).await;
    let x_subscription = x_subscription.ok(200)["subscription"]["id"].as_str().unwrap().to_owned();
    let markers = vec![
        x_billed.clone(),
        x_billed_2.clone(),
        x_subscription,
        Q.to_owned(),
        X.to_owned(),
        X2.to_owned(),
        X2_NAME.to_owned(),
        "Rival Pack".to_owned(),
        "Rival Bot".to_owned(),
        "Rival Starter".to_owned(),
        bought.clone(),
        given.clone(),
        api.balance(Q, X).await,
        api.balance(Q, X2).await,
        account,
        checkout,
        wallet_checkout,
        option,
        x_receipt.clone(),
        q_receipt.clone(),
        q_delivery.clone(),
    ];
    Tenants {
        bought,
        given,
        own_addon,
        completed,
        platform_completed,
        code,
        markers,
        x_receipt,
        q_receipt,
        w_receipt,
        p_receipt,
        q_delivery,
        p_delivery,
        x_billed,
        x_billed_2,
        w_billed,
        w_billed_2,
    }
}

/// `w` pays for `option` and the payment is credited: the receipt its ledger entry names.
async fn credited_receipt<T: Table>(api: &Api<T>, p: &str, w: &str, option: &str) -> String {
    let id = session(api, p, w, option).await;
    api.stripe.pay(&id).await.unwrap();
    let completed = events_of(api, w)
        .into_iter()
        .find(|(t, payload)| t == "checkout.session.completed" && payload.contains(&id))
        .expect("the fake says it is paid")
        .1;
    assert_eq!(api.deliver(&completed).await.ok(200)["outcome"], "credited");
    let entry = api.ledger(p, w).await[0].clone();
    entry["detail"]["receipt"].as_str().expect("a receipt").to_owned()
}

/// Partner `p` pays into its wallet: the receipt its ledger entry names.
async fn wallet_receipt<T: Table>(api: &Api<T>, p: &str) -> String {
    api.pay_into_wallet(p, "5.00").await;
    let wallet = api.partner_wallet(p).await;
    wallet["ledger"]["data"][0]["detail"]["receipt"].as_str().expect("a receipt").to_owned()
}

// ---- the whole table -----------------------------------------------------------------------

/// Every item of the table, as lines that compare equal exactly when the table is the same.
trait WholeTable: Table {
    async fn snapshot(&self) -> Vec<String>;
}

impl WholeTable for CountingTable<MemoryTable> {
    async fn snapshot(&self) -> Vec<String> {
        // The embedded table's Debug prints every item in key order (BTreeMaps all the way down).
        format!("{:#?}", self.inner).lines().map(str::to_owned).collect()
    }
}

impl WholeTable for CountingTable<DynamoTable> {
    async fn snapshot(&self) -> Vec<String> {
        let table = &self.inner;
        let mut rows = Vec::new();
        let mut start = None;
        for _ in 0..MAX_SCAN_PAGES {
            let page = table
                .client()
                .scan()
                .table_name(table.table_name())
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan the table");
            rows.extend(page.items().iter().map(canonical_item));
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                rows.sort();
                return rows;
            }
        }
        panic!("the table has more than {MAX_SCAN_PAGES} pages");
    }
}

/// An item as text with every map's keys in order (the SDK's maps are HashMaps).
fn canonical_item(item: &HashMap<String, AttributeValue>) -> String {
    let sorted: BTreeMap<&String, String> = item.iter().map(|(k, v)| (k, canonical(v))).collect();
    format!("{sorted:?}")
}

fn canonical(v: &AttributeValue) -> String {
    match v {
        AttributeValue::M(m) => canonical_item(m),
        AttributeValue::L(l) => format!("L{:?}", l.iter().map(canonical).collect::<Vec<_>>()),
        other => format!("{other:?}"),
    }
}

#[track_caller]
fn assert_same_table(before: &[String], after: &[String], when: &str) {
    if before != after {
        let gone: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
        let new: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
        panic!("{when}: the table changed\n  gone: {gone:#?}\n  new: {new:#?}");
    }
}

// ---- sending -------------------------------------------------------------------------------

struct Matrix<T> {
    api: Api<CountingTable<T>>,
    router: Router<CountingTable<T>>,
    verifier: Verifier,
}

struct Answer {
    status: u16,
    body: Value,
    /// The request's path, query and body, to tell an echo of what the caller sent from a leak.
    sent: String,
}

/// The token the route's rightful (victim-side) caller would hold.
fn rightful(family: Family) -> Claims {
    match family {
        Family::Partner | Family::Stripe => Claims { partner: Some(Q), workspace: None, roles: &["partner_admin"] },
        Family::Workspace => Claims { partner: Some(Q), workspace: Some(X), roles: &["workspace_admin"] },
        Family::Platform => Claims { partner: None, workspace: None, roles: &["platform_service"] },
    }
}

impl<T: Table> Matrix<T>
where
    CountingTable<T>: WholeTable,
{
    fn new(api: Api<CountingTable<T>>) -> Self {
        let router = Router::from_template(&repo_file("template.yaml")).expect("the runner takes template.yaml");
        Matrix { api, router, verifier: Verifier::new(JWT_SECRET) }
    }

    fn request(c: &Claims) -> TokenRequest {
        TokenRequest {
            sub: "isolation-prober".into(),
            partner_id: c.partner.map(str::to_owned),
            workspace_id: c.workspace.map(str::to_owned),
            roles: c.roles.iter().map(|r| (*r).to_owned()).collect(),
            ttl_s: 600,
        }
    }

    /// The Authorization header for `cred` on a route of `family`.
    fn authorization(&self, cred: Cred, family: Family) -> Option<String> {
        let now = now_s();
        let v = &self.verifier;
        let bearer = |t: String| Some(format!("Bearer {t}"));
        let spoiled = |edit: &dyn Fn(&mut serde_json::Map<String, Value>)| {
            let mut claims = Self::request(&rightful(family)).claims(v, now);
            edit(&mut claims);
            bearer(v.sign(&claims))
        };
        let good = || Self::request(&rightful(family)).mint(v, now);
        match cred {
            Cred::Token(c) => bearer(Self::request(&c).mint(v, now)),
            Cred::Signature(_) | Cred::Defect(Defect::Missing) => None,
            Cred::Defect(Defect::NotAJwt) => bearer("not-a-jwt".into()),
            Cred::Defect(Defect::BasicScheme) => Some(format!("Basic {}", good())),
            Cred::Defect(Defect::Expired) => {
                bearer(TokenRequest { ttl_s: 60, ..Self::request(&rightful(family)) }.mint(v, now - 120))
            }
            Cred::Defect(Defect::OtherKey) => {
                bearer(Self::request(&rightful(family)).mint(&Verifier::new("not-ours"), now))
            }
            Cred::Defect(Defect::WrongIssuer) => spoiled(&|c| drop(c.insert("iss".into(), json!("someone-else")))),
            Cred::Defect(Defect::WrongAudience) => spoiled(&|c| drop(c.insert("aud".into(), json!("another-api")))),
            Cred::Defect(Defect::Unsigned) => {
                let payload = good().split('.').nth(1).expect("a JWT has a payload").to_owned();
                bearer(format!("{ALG_NONE_HEADER}.{payload}."))
            }
            Cred::Defect(Defect::NotYetValid) => spoiled(&|c| drop(c.insert("nbf".into(), json!(now + 3600)))),
            Cred::Defect(Defect::NoExpiry) => spoiled(&|c| drop(c.remove("exp"))),
        }
    }

    fn stripe_signature(c: &Case, cred: Cred, body: &[u8]) -> Option<String> {
        let Cred::Signature(s) = cred else { return None };
        let now = i64::try_from(now_s()).unwrap();
        let secret = if c.key == "POST /stripe/platform-webhook" {
            local::stripe::FAKE_PLATFORM_WEBHOOK_SECRET
        } else {
            local::stripe::FAKE_WEBHOOK_SECRET
        };
        Some(match s {
            Sig::Valid => signature::sign(body, &[secret], now),
            Sig::Garbage => "t=garbage,v1=zz".into(),
            Sig::OtherSecret => signature::sign(body, &["whsec_not_ours"], now),
            Sig::Stale => signature::sign(body, &[secret], now - i64::try_from(STALE_S).unwrap()),
            Sig::OtherPayload => signature::sign(b"{}", &[secret], now),
        })
    }

    /// Sends `c` filled with `ids` as `cred`, through routing, the JWT check and the handler.
    async fn send(&self, c: &Case, cred: Cred, ids: &Ids<'_>, t: &Tenants, with_query: bool) -> Answer {
        let uri = c.uri(ids, with_query);
        let body = c.body(t).unwrap_or_default();
        let mut r = Request::builder().method(c.method.clone()).uri(&uri).header(header::HOST, "localhost:3000");
        if let Some(a) = self.authorization(cred, c.family) {
            r = r.header(header::AUTHORIZATION, a);
        }
        if let Some(s) = Self::stripe_signature(c, cred, body.as_bytes()) {
            r = r.header("stripe-signature", s);
        }
        if !body.is_empty() {
            r = r.header(header::CONTENT_TYPE, "application/json");
        }
        if c.mutates() && c.family != Family::Stripe {
            r = r.header("idempotency-key", format!("key-{:016x}", fastrand::u64(..)));
        }
        let response =
            self.router.handle(&self.api.billing, &self.verifier, r.body(body.clone().into_bytes()).unwrap()).await;
        let status = response.status().as_u16();
        let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        assert_eq!(content_type, Some("application/json"), "{} {uri}: every answer is JSON ({status})", c.method);
        let body_json = match response.body() {
            Body::Text(t) => serde_json::from_str(t).expect("a JSON body"),
            Body::Binary(b) => serde_json::from_slice(b).expect("a JSON body"),
            _ => Value::Null,
        };
        Answer { status, body: body_json, sent: format!("{uri} {body}") }
    }

    fn transactions(&self) -> u64 {
        self.api.billing.store.table().transactions.load(Ordering::Relaxed)
    }

    async fn snapshot(&self) -> Vec<String> {
        self.api.billing.store.table().snapshot().await
    }
}

// ---- what must happen ----------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Refused(u16, &'static str),
    /// Not a probe: the caller's own business (the victim's rightful caller, or another tenant
    /// acting on its own data through a route that names no tenant).
    Allowed,
}

fn expect(c: &Case, cred: Cred) -> Expect {
    use Expect::{Allowed, Refused};
    let (unauthorized, forbidden, not_found) =
        (Refused(401, "unauthorized"), Refused(403, "forbidden"), Refused(404, "not_found"));
    if c.family == Family::Stripe {
        // Only a signature authenticates Stripe; a token is no substitute (a refused
        // event is a 400 with nothing written, and Stripe delivers it again).
        return match cred {
            Cred::Signature(Sig::Valid) => Allowed,
            _ => Refused(400, "invalid_request"),
        };
    }
    let Cred::Token(claims) = cred else { return unauthorized };
    match c.family {
        Family::Partner => match claims.partner {
            Some(p) if claims.has("partner_admin") => {
                if p == Q || !c.names_tenant {
                    Allowed
                } else {
                    not_found
                }
            }
            _ => forbidden,
        },
        Family::Workspace => {
            let role = claims.has("workspace_admin") || (!c.mutates() && claims.has("workspace_member"));
            // A member may pay once its partner grants it billing access; none here holds a
            // grant, so its own workspace refuses it after the tenant checks any caller meets.
            let payer = !role && c.mutates() && claims.has("workspace_member");
            let own = if payer { forbidden } else { Allowed };
            match claims.workspace {
                Some(w) if role || payer => {
                    if w == X {
                        // The workspace is the victim's: only under its own partner.
                        if claims.partner.is_none_or(|p| p == Q) { own } else { not_found }
                    } else if c.names_tenant && !payer {
                        not_found
                    } else {
                        own
                    }
                }
                _ => forbidden,
            }
        }
        Family::Platform => {
            if claims.has("platform_service") {
                Allowed
            } else {
                forbidden
            }
        }
        Family::Stripe => unreachable!("handled above"),
    }
}

/// The same credential with the victim's workspace, where it names one, swapped for one that
/// doesn't exist.
fn nowhere(cred: Cred) -> Cred {
    match cred {
        Cred::Token(c) if c.workspace == Some(X) => Cred::Token(Claims { workspace: Some(NOBODY), ..c }),
        other => other,
    }
}

/// What is wrong with a refusal: its status, or the one error shape
/// `{"error": {"type", "message"}}` (with `param` where the refusal names a field).
fn refusal_problems(a: &Answer, status: u16, kind: &str, param: Option<&str>) -> Option<String> {
    if a.status != status {
        return Some(format!("expected {status} {kind}, got {}", a.status));
    }
    let error = a.body.as_object().filter(|top| top.len() == 1).and_then(|top| top.get("error")?.as_object());
    let Some(error) = error else { return Some("not the error shape".into()) };
    let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let expected: &[&str] = if param.is_some() { &["message", "param", "type"] } else { &["message", "type"] };
    let message = error.get("message").and_then(Value::as_str).is_some_and(|m| !m.trim().is_empty());
    let fits = keys == expected
        && error.get("type").and_then(Value::as_str) == Some(kind)
        && message
        && error.get("param").and_then(Value::as_str) == param;
    (!fits).then(|| format!("not the error shape of a {status} {kind} (param {param:?})"))
}

/// The victim's strings in an answer that the request did not itself send.
fn leaks(a: &Answer, markers: &[String]) -> Vec<String> {
    let text = a.body.to_string();
    markers.iter().filter(|m| text.contains(m.as_str()) && !a.sent.contains(m.as_str())).cloned().collect()
}

#[derive(Default, Debug)]
struct Tally {
    by_status: BTreeMap<u16, usize>,
    allowed: usize,
    twins: usize,
}

async fn every_route_refuses_every_wrong_identity<T: Table>(api: Api<CountingTable<T>>, store: &str)
where
    CountingTable<T>: WholeTable,
{
    let t = setup(&api).await;
    let m = Matrix::new(api);
    let cases = cases();
    let who = identities();
    let victim = Ids {
        partner: Q,
        workspace: X,
        bought: &t.bought,
        given: &t.given,
        receipt: &t.x_receipt,
        wallet_receipt: &t.q_receipt,
        delivery: &t.q_delivery,
        billed: &t.x_billed,
        billed_by_partner: &t.x_billed_2,
    };
    let unauthorized = {
        let r = api::ApiError::unauthorized().into_response();
        match r.body() {
            Body::Text(s) => serde_json::from_str::<Value>(s).unwrap(),
            other => panic!("{other:?}"),
        }
    };

    let before = m.snapshot().await;
    let writes_before = m.transactions();
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for c in &cases {
        for i in &who {
            let (status, kind) = match expect(c, i.cred) {
                Expect::Allowed => {
                    tally.allowed += 1;
                    continue;
                }
                Expect::Refused(status, kind) => (status, kind),
            };
            let a = m.send(c, i.cred, &victim, &t, true).await;
            let mut wrong = Vec::new();
            let param = (c.family == Family::Stripe).then_some("Stripe-Signature");
            wrong.extend(refusal_problems(&a, status, kind, param));
            if status == 401 && a.body != unauthorized {
                wrong.push(format!("not the runner's 401 body {unauthorized}"));
            }
            if status == 404 {
                // Another tenant's id answers exactly like an id that does not exist.
                let twin = m.send(c, nowhere(i.cred), &Ids::nowhere(), &t, true).await;
                if (twin.status, &twin.body) != (a.status, &a.body) {
                    wrong.push(format!(
                        "an existence oracle: ids that don't exist answer {} {}",
                        twin.status, twin.body
                    ));
                }
                tally.twins += 1;
            }
            let leaked = leaks(&a, &t.markers);
            if !leaked.is_empty() {
                wrong.push(format!("leaks the victim's {leaked:?}"));
            }
            if !wrong.is_empty() {
                failures.push(format!(
                    "{} ({}) by {}: {}: {} {}",
                    c.key,
                    a.sent.trim(),
                    i.label,
                    wrong.join("; "),
                    a.status,
                    a.body
                ));
            }
            *tally.by_status.entry(status).or_default() += 1;
        }
    }
    // The matrix's failures are reported last, after what else they might have done is known.
    assert_eq!(m.transactions(), writes_before, "a refused request reached the table with a write");
    assert_same_table(&before, &m.snapshot().await, "after the refused requests");

    let probes: usize = tally.by_status.values().sum();
    assert_eq!(probes + tally.allowed, cases.len() * who.len());
    let outcome =
        if failures.is_empty() { "all refused".to_owned() } else { format!("{} NOT refused", failures.len()) };
    let by_status: Vec<String> = tally.by_status.iter().map(|(s, n)| format!("{n} x {s}")).collect();
    println!(
        "isolation ({store}): {} routes x {} identities = {} requests, {outcome} ({}; plus {} twin requests on ids \
         that don't exist); {} pairs not probes (the caller's own business)",
        cases.len(),
        who.len(),
        probes,
        by_status.join(", "),
        tally.twins,
        tally.allowed,
    );
    // Each kind of refusal happened: a matrix that refused nothing for a reason proves nothing.
    for status in [400, 401, 403, 404] {
        assert!(tally.by_status.get(&status).is_some_and(|n| *n > 0), "no {status} in the matrix: {tally:?}");
    }

    // The other tenant's own reads: every GET of its partner and workspace routes, with its
    // own ids (and the partner-wide listings without any), show nothing of the victim.
    let own = Ids {
        partner: P,
        workspace: W,
        bought: &t.own_addon,
        given: &t.own_addon,
        receipt: &t.w_receipt,
        wallet_receipt: &t.p_receipt,
        delivery: &t.p_delivery,
        billed: &t.w_billed,
        billed_by_partner: &t.w_billed_2,
    };
    let readers: [(Family, Claims); 3] = [
        (Family::Partner, Claims { partner: Some(P), workspace: None, roles: &["partner_admin"] }),
        (Family::Workspace, Claims { partner: Some(P), workspace: Some(W), roles: &["workspace_admin"] }),
        (Family::Workspace, Claims { partner: Some(P), workspace: Some(W), roles: &["workspace_member"] }),
    ];
    let mut reads = 0;
    for c in cases.iter().filter(|c| !c.mutates()) {
        for (family, claims) in readers.iter().filter(|(f, _)| *f == c.family) {
            for with_query in if c.workspace_query { vec![true, false] } else { vec![true] } {
                let a = m.send(c, Cred::Token(*claims), &own, &t, with_query).await;
                let what = format!("{} ({}) by {family:?} {claims:?}", c.key, a.sent);
                assert_eq!(a.status, 200, "{what}: {}", a.body);
                let text = a.body.to_string();
                let seen: Vec<&String> = t.markers.iter().filter(|m| text.contains(m.as_str())).collect();
                assert!(seen.is_empty(), "{what} shows the victim's {seen:?}: {}", a.body);
                reads += 1;
            }
        }
    }
    assert!(reads > 0);
    assert_eq!(m.transactions(), writes_before, "a read wrote");
    assert_same_table(&before, &m.snapshot().await, "after the other tenant's reads");
    println!("isolation ({store}): {reads} reads by the other tenant of its own data show nothing of the victim");

    // The same requests from their rightful callers go through.
    for c in &cases {
        let cred =
            if c.family == Family::Stripe { Cred::Signature(Sig::Valid) } else { Cred::Token(rightful(c.family)) };
        assert_eq!(expect(c, cred), Expect::Allowed, "{}", c.key);
        let a = m.send(c, cred, &victim, &t, true).await;
        crate::api::access::rightful(&c.key, a.status, &a.body)
            .unwrap_or_else(|e| panic!("by its rightful caller: {e}"));
        if c.key == "POST /platform/partners/{id}/suspend" {
            // The routes after it act as the victim's rightful callers again.
            let reinstate = cases.iter().find(|c| c.key == "POST /platform/partners/{id}/reinstate").unwrap();
            let back = m.send(reinstate, cred, &victim, &t, true).await;
            assert_eq!((back.status, &back.body["status"]), (200, &json!("active")), "{}", back.body);
        }
        if c.family == Family::Stripe {
            assert_eq!(a.body["outcome"], "credited", "the refused event was the real thing: {}", a.body);
        }
    }
    // The snapshot and the count see writes: the rightful requests made some.
    assert!(m.transactions() > writes_before, "the rightful requests wrote nothing?");
    assert_ne!(m.snapshot().await, before, "the snapshot did not see the rightful requests' writes");
    assert!(
        failures.is_empty(),
        "{} of the matrix's {probes} requests were not refused as they must be:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn memory_every_route_refuses_every_wrong_identity() {
    let api = Api::over(CountingTable::new(MemoryTable::new())).await;
    every_route_refuses_every_wrong_identity(api, "memory").await;
}

#[tokio::test]
async fn dynamodb_every_route_refuses_every_wrong_identity() {
    let api = Api::over(CountingTable::new(fresh_table().await)).await;
    every_route_refuses_every_wrong_identity(api, "dynamodb").await;
}

/// The matrix's expectations are not vacuous: the rules refuse where the design says, and let
/// the rightful caller through.
#[test]
fn the_expectations_follow_the_design() {
    let cases = cases();
    let case = |key: &str| cases.iter().find(|c| c.key == key).unwrap_or_else(|| panic!("{key} is not a route"));
    let tok = |partner: Option<&'static str>, workspace: Option<&'static str>, roles: &'static [&'static str]| {
        Cred::Token(Claims { partner, workspace, roles })
    };
    let ws = case("GET /partner/workspaces/{id}");
    assert!(ws.names_tenant);
    assert_eq!(expect(ws, tok(Some(P), None, &["partner_admin"])), Expect::Refused(404, "not_found"));
    assert_eq!(expect(ws, tok(Some(Q), None, &["partner_admin"])), Expect::Allowed);
    assert_eq!(expect(ws, tok(Some(Q), Some(X), &["workspace_admin"])), Expect::Refused(403, "forbidden"));
    assert_eq!(expect(ws, Cred::Defect(Defect::Expired)), Expect::Refused(401, "unauthorized"));
    let ledger = case("GET /partner/ledger");
    assert!(ledger.workspace_query && ledger.names_tenant, "openapi.yaml's workspace_id query is read");
    let cancel = case("DELETE /workspace/addons/{addon_id}");
    assert_eq!(expect(cancel, tok(Some(Q), Some(X2), &["workspace_admin"])), Expect::Refused(404, "not_found"));
    assert_eq!(expect(cancel, tok(Some(Q), Some(X), &["workspace_member"])), Expect::Refused(403, "forbidden"));
    let me = case("GET /workspace");
    assert!(!me.names_tenant);
    assert_eq!(expect(me, tok(Some(P), Some(W), &["workspace_member"])), Expect::Allowed);
    assert_eq!(expect(me, tok(Some(P), Some(X), &["workspace_member"])), Expect::Refused(404, "not_found"));
    let webhook = case("POST /stripe/webhook");
    assert_eq!(expect(webhook, tok(Some(Q), None, &["partner_admin"])), Expect::Refused(400, "invalid_request"));
    assert_eq!(expect(webhook, Cred::Signature(Sig::Valid)), Expect::Allowed);
    let usage = case("PUT /platform/workspaces/{id}/usage-counts");
    assert_eq!(expect(usage, tok(Some(Q), None, &["partner_admin"])), Expect::Refused(403, "forbidden"));
    assert_eq!(expect(usage, Cred::Signature(Sig::Valid)), Expect::Refused(401, "unauthorized"));
    assert_eq!(
        case("PUT /partner/workspaces/{id}/plan").uri(&Ids::nowhere(), true),
        "/partner/workspaces/ws-nobody/plan"
    );
    assert_eq!(
        case("DELETE /partner/workspaces/{id}/addons/{addon_id}")
            .uri(&Ids { partner: Q, workspace: X, bought: "ad_b", given: "ad_g", ..Ids::nowhere() }, true),
        "/partner/workspaces/ws-rival-1/addons/ad_g"
    );
    // A receipt is a tenant's: the workspace's own, or the partner wallet's.
    let ids = Ids { receipt: "in_w", wallet_receipt: "in_p", ..Ids::nowhere() };
    for (key, uri) in [
        ("GET /workspace/receipts/{id}", "/workspace/receipts/in_w"),
        ("GET /partner/wallet/receipts/{id}", "/partner/wallet/receipts/in_p"),
    ] {
        let receipt = case(key);
        assert!(receipt.names_tenant, "{key}");
        assert_eq!(receipt.uri(&ids, true), uri);
    }
    let receipt = case("GET /workspace/receipts/{id}");
    assert_eq!(expect(receipt, tok(Some(P), Some(W), &["workspace_admin"])), Expect::Refused(404, "not_found"));
    assert_eq!(expect(receipt, tok(Some(Q), Some(X), &["workspace_member"])), Expect::Allowed);
}

//! Who may call what: no claims is 401, the wrong role 403 and another tenant's ids 404, on
//! every route, and none of them writes anything.

use integration_tests::CountingTable;
use serde_json::{Value, json};
use store::Table;
use store::memory::MemoryTable;

use super::{
    ALL_ROUTES, Api, Claims, P, Q, Req, W, X, claims, dispatch, functions_serving, partner_admin, platform, req,
    workspace_admin, workspace_member,
};

/// The ids a sample request names.
pub(super) struct Target<'a> {
    pub workspace: &'a str,
    pub addon: &'a str,
    /// A Connect OAuth code for `POST /partner/stripe/connect` (single use).
    pub code: &'a str,
    /// A receipt of the workspace's top-ups, and one of its partner's own wallet ([`receipts`]).
    pub receipt: &'a str,
    pub wallet_receipt: &'a str,
    /// One of the partner's webhook deliveries ([`delivery`]).
    pub delivery: &'a str,
    /// W's add-on on its plan's bill ([`setup`] puts one there).
    pub billed: &'a str,
}

/// A request to `route` that its rightful caller may send (only the caller is missing).
pub(super) fn sample(route: &'static str, t: &Target<'_>) -> Req {
    let r = req(route);
    match route {
        "PUT /partner/addons/{code}" => r.param("code", "extra_bot").json(json!({
            "label": "Bot", "points": "10", "enabled": true, "price": { "amount_minor": 500, "currency": "usd" },
        })),
        "POST /workspace/subscription" => r.json(json!({ "plan": "growth" })),
        // The partner's own sample moved W to growth before.
        "POST /workspace/plan" => r.json(json!({ "plan": "agency" })),
        "POST /workspace/subscription/addons" => r.json(json!({ "addon": "extra_member", "quantity": 1 })),
        "DELETE /workspace/subscription/addons/{addon_id}" => r.param("addon_id", t.billed),
        "GET /partner/workspaces/{id}/subscription" | "GET /partner/workspaces/{id}/invoices" => {
            r.param("id", t.workspace)
        }
        "DELETE /partner/workspaces/{id}/subscription/addons/{addon_id}" => {
            r.param("id", t.workspace).param("addon_id", t.billed)
        }
        "GET /partner/plans/{id}" => r.param("id", "starter"),
        "PUT /partner/plans/{id}" => r.param("id", "starter").json(json!({
            "label": "Starter",
            "limits": super::starter_limits(1, 2),
            "monthly_price": { "amount_minor": 4900, "currency": "usd" },
        })),
        "PUT /partner/settings" => r.json(json!({
            "credit_billing": true,
            "success_url": "https://agency.example/paid",
            "cancel_url": "https://agency.example/back",
            "grace_days": 0,
        })),
        "POST /partner/stripe/connect" => r.json(json!({ "code": t.code })),
        "POST /workspace/checkout" => r.json(json!({ "points": "100" })),
        "PUT /workspace/auto-topup" => r.json(json!({ "enabled": false })),
        "PUT /partner/topup-options" => r.json(json!({
            "options": [{ "label": "Pack", "currency": "usd", "amount_minor": 1000, "points": "10" }],
        })),
        "PUT /partner/credit-rate" => r.json(json!({ "currency": "usd", "price_per_point": "0.05" })),
        "POST /partner/workspaces" => {
            r.json(json!({ "name": "New", "plan": "starter", "cycle_anchor_day": 1 }))
        }
        "GET /partner/workspaces/{id}" | "GET /platform/workspaces/{id}/entitlements" => r.param("id", t.workspace),
        "PUT /partner/workspaces/{id}/plan" => r.param("id", t.workspace).json(json!({ "plan": "growth" })),
        "GET /partner/ledger" => r.query("workspace_id", t.workspace),
        "GET /workspace/receipts/{id}" => r.param("id", t.receipt),
        "GET /partner/wallet/receipts/{id}" => r.param("id", t.wallet_receipt),
        "PUT /partner/balance-alerts" => r.json(json!({ "workspace": ["100.00", "10"], "wallet": ["50"] })),
        "PUT /partner/webhook" => r.json(json!({ "url": "https://hooks.agency.example/billing" })),
        "POST /partner/webhook/deliveries/{id}/replay" => r.param("id", t.delivery),
        "GET /partner/workspaces/{id}/statements/{month}" => r.param("id", t.workspace).param("month", "2020-01"),
        "GET /partner/statements/{month}" | "GET /partner/wallet/statements/{month}" | "GET /workspace/statements/{month}" => {
            r.param("month", "2020-01")
        }
        "POST /partner/workspaces/{id}/points" => {
            r.param("id", t.workspace).json(json!({ "amount": "-1", "reason": "test" }))
        }
        "POST /workspace/addons" => r.json(json!({ "addon": "extra_bot", "quantity": 1 })),
        "GET /workspace/addons/quote" => r.query("addon", "extra_bot").query("quantity", "1"),
        "DELETE /workspace/addons/{addon_id}" => r.param("addon_id", t.addon),
        "POST /partner/workspace/{id}/add-addon" => {
            r.param("id", t.workspace).json(json!({ "addon": "extra_bot", "quantity": 1, "charge_points": true }))
        }
        "DELETE /partner/workspaces/{id}/addons/{addon_id}" => r.param("id", t.workspace).param("addon_id", t.addon),
        "PUT /platform/workspaces/{id}/usage-counts" => {
            r.param("id", t.workspace).json(json!({ "bots": 1, "members": 1, "bot_users": 1 }))
        }
        "POST /platform/usage" => r.json(
            json!({ "workspace_id": t.workspace, "meter": "voice_minutes", "quantity": "1", "event_id": "evt-sample" }),
        ),
        "GET /platform/workspaces/{id}/access" => r.param("id", t.workspace).query("meter", "voice_minutes"),
        "PUT /platform/partners/{id}/billing" => r.param("id", P).json(json!({ "mode": "postpaid" })),
        "POST /platform/partners/{id}/wallet/adjustments" => {
            r.param("id", P).json(json!({ "amount": "1", "reason": "test" }))
        }
        "PUT /partner/workspaces/{id}/rebilling" => r.param("id", t.workspace).json(json!({ "enabled": false })),
        "GET /partner/workspaces/{id}/billing-managers" => r.param("id", t.workspace),
        // Granted, then revoked: in `ALL_ROUTES`' order each finds what it changes.
        "POST /partner/workspaces/{id}/billing-managers" | "POST /partner/workspaces/{id}/billing-managers/revoke" => {
            r.param("id", t.workspace).json(json!({ "sub": "billing-user" }))
        }
        "POST /partner/wallet/checkout" => r.json(json!({
            "amount": "10.00", "success_url": "https://agency.example/paid", "cancel_url": "https://agency.example/back",
        })),
        "PUT /partner/wallet/auto-refill" => r.json(json!({ "enabled": false })),
        "POST /partner/wallet/card" => {
            r.json(json!({ "success_url": "https://agency.example/saved", "cancel_url": "https://agency.example/back" }))
        }
        "POST /platform/partners" => r.json(json!({ "id": "p-new", "name": "New Agency" })),
        "GET /platform/partners/{id}" | "POST /platform/partners/{id}/reinstate" => r.param("id", P),
        "PUT /platform/partners/{id}/terms" => {
            r.param("id", P).json(json!({ "wholesale_floors": { "usd": "0.01" }, "billing_mode": "postpaid" }))
        }
        // Suspends the other tenant: the routes after it in `ALL_ROUTES` act as P.
        "POST /platform/partners/{id}/suspend" => r.param("id", Q).json(json!({ "reason": "test" })),
        _ => r,
    }
}

/// A Connect code for P's own account: connecting it again keeps its customers and saved cards.
pub(super) async fn own_account_code<T: Table>(api: &Api<T>) -> String {
    let account = api.account(P).await;
    api.stripe.issue_oauth_code(Some(&account), false).0
}

/// A sample target with a code that is never exchanged.
pub(super) fn target<'a>(workspace: &'a str, addon: &'a str) -> Target<'a> {
    Target {
        workspace,
        addon,
        code: "ac_unused",
        receipt: NO_RECEIPT,
        wallet_receipt: NO_RECEIPT,
        delivery: NO_DELIVERY,
        billed: addon,
    }
}

/// What the rightful caller's sample request answers: a success, but for the two routes whose
/// success the tenants of [`setup`] rule out (W is subscribed already; P sells its add-ons for
/// points). Their successes, and their one read and one transaction, are in `api::plans`.
pub(crate) fn rightful(route: &str, status: u16, body: &Value) -> Result<(), String> {
    let refused = match route {
        "POST /workspace/subscription" => Some((409, "already_exists")),
        "POST /workspace/subscription/addons" => Some((403, "forbidden")),
        _ => None,
    };
    match refused {
        None if (200..300).contains(&status) => Ok(()),
        Some((s, kind)) if s == status && body["error"]["type"] == kind => Ok(()),
        _ => Err(format!("{route}: {status} {body}")),
    }
}

/// A delivery id that is nobody's.
pub(crate) const NO_DELIVERY: &str = "dlv_000000000000000000010000000001_ab";

/// P registers a webhook endpoint and one of its events is queued for it, as the table's
/// stream has it queued: the delivery's id, for the replay route's sample.
pub(super) async fn delivery<T: Table>(api: &Api<T>) -> String {
    delivery_of(api, P, W).await
}

/// Partner `p` registers a webhook endpoint and an event of its workspace `w` (a billing
/// manager granted) is queued for it: the delivery's id.
pub(crate) async fn delivery_of<T: Table>(api: &Api<T>, p: &str, w: &str) -> String {
    let endpoint = json!({ "url": "https://hooks.agency.example/billing" });
    api.call(req("PUT /partner/webhook").by(partner_admin(p)).json(endpoint)).await.ok(201);
    let grant =
        req("POST /partner/workspaces/{id}/billing-managers").param("id", w).json(json!({ "sub": "manager-1" }));
    api.call(grant.by(partner_admin(p))).await.ok(201);
    let id = domain::PartnerId::parse(p).unwrap();
    let pk = store::keys::partner_pk(&id);
    let events = api.billing.store.query_prefix(&pk, store::keys::EVENT_PREFIX, None, 100).await.unwrap();
    let event = events.last().expect("the grant's event");
    let key = store::Key::new(pk, event.str(store::item::SK).unwrap());
    assert!(api.billing.queue_partner_event(&id, &key).await.unwrap(), "queued");
    let listed = api.call(req("GET /partner/webhook/deliveries").by(partner_admin(p))).await.ok(200);
    listed["data"][0]["id"].as_str().unwrap().to_owned()
}

/// A receipt id that is nobody's.
pub(super) const NO_RECEIPT: &str = "in_unused";

/// W pays a top-up through Checkout and P one into its wallet, each credited by its event:
/// the receipts their ledger entries name, W's and P's, for the receipt routes' samples.
pub(super) async fn receipts<T: Table>(api: &Api<T>) -> (String, String) {
    let checkout = req("POST /workspace/checkout").by(workspace_admin(P, W)).json(json!({ "points": "100" }));
    let id = api.call(checkout).await.ok(201)["id"].as_str().unwrap().to_owned();
    api.stripe.pay(&id).await.unwrap();
    let events = super::checkout::events_of(api, W);
    let completed = events.into_iter().rfind(|(t, _)| t == "checkout.session.completed").expect("paid").1;
    assert_eq!(api.deliver(&completed).await.ok(200)["outcome"], "credited");
    let entry = api.ledger(P, W).await[0].clone();
    let workspace = entry["detail"]["receipt"].as_str().expect("the top-up names its receipt").to_owned();
    api.pay_into_wallet(P, "10.00").await;
    let wallet = api.partner_wallet(P).await;
    let partner = wallet["ledger"]["data"][0]["detail"]["receipt"].as_str().expect("a receipt").to_owned();
    (workspace, partner)
}

/// The callers a route accepts, among partner admin, workspace admin, workspace member, platform.
pub(super) fn allowed(route: &str) -> [bool; 4] {
    let (method, path) = route.split_once(' ').unwrap();
    if path.starts_with("/partner") {
        [true, false, false, false]
    } else if path.starts_with("/workspace") {
        [false, true, method == "GET", false]
    } else {
        assert!(path.starts_with("/platform"), "{route}");
        [false, false, false, true]
    }
}

pub(super) fn callers() -> [Claims; 4] {
    [partner_admin(P), workspace_admin(P, W), workspace_member(P, W), platform()]
}

/// Two tenants, each workspace funded and holding one add-on; W and P with a saved card.
pub(super) async fn setup<T: Table>(api: &Api<T>) -> (String, String) {
    api.tenants().await;
    // P sells points at a rate, so that a checkout by W's admin goes through.
    let rate = json!({ "currency": "usd", "price_per_point": "0.05" });
    api.call(req("PUT /partner/credit-rate").by(partner_admin(P)).json(rate)).await.ok(200);
    let mut ids = vec![];
    for (p, w) in [(P, W), (Q, X)] {
        api.fund(p, w, "100").await;
        ids.push(api.buy(p, w, "extra_bot", 1).await.ok(201)["addon"]["id"].as_str().unwrap().to_owned());
    }
    // W and P have cards to remove (W's page returns to P's checkout URLs).
    let settings = json!({
        "credit_billing": true, "success_url": "https://agency.example/paid", "cancel_url": "https://agency.example/back",
        "grace_days": 0,
    });
    // W pays for its plan in money, with an add-on on the plan's bill (bought while P sold in
    // money; it sells for points again below).
    super::plans::subscribe_with_billed_addon(api, P, W).await;
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(settings)).await.ok(200);
    super::cards::save_workspace_card(api, P, W, None).await;
    super::cards::save_partner_card(api, P, None).await;
    let theirs = ids.pop().unwrap();
    (ids.pop().unwrap(), theirs)
}

#[test]
fn every_route_is_served_by_exactly_one_function() {
    for route in ALL_ROUTES {
        assert_eq!(functions_serving(route).len(), 1, "{route}: {:?}", functions_serving(route));
    }
    for route in super::OPEN_ROUTES {
        assert_eq!(functions_serving(route).len(), 1, "{route}: {:?}", functions_serving(route));
    }
    let served: usize = [
        purchase_addon::ROUTES,
        create_checkout::ROUTES,
        stripe_webhook::ROUTES,
        adjust_points::ROUTES,
        partner_api::ROUTES,
        workspace_api::ROUTES,
        platform_api::ROUTES,
    ]
    .iter()
    .map(|r| r.len())
    .sum();
    assert_eq!(served, ALL_ROUTES.len() + super::OPEN_ROUTES.len(), "a function serves a route these tests don't know");
}

/// A function answers only its own routes: another function's route key is a 404.
#[tokio::test]
async fn functions_refuse_routes_they_do_not_own() {
    let api = Api::memory().await;
    api.tenants().await;
    let foreign = sample("GET /partner/addons", &target(W, "ad_x")).by(partner_admin(P));
    let b = &api.billing;
    let answers = [
        purchase_addon::handle(b, foreign.build()).await,
        adjust_points::handle(b, foreign.build()).await,
        workspace_api::handle(b, foreign.build()).await,
        platform_api::handle(b, foreign.build()).await,
    ];
    for a in answers {
        assert_eq!(a.status().as_u16(), 404);
    }
    assert_eq!(dispatch(b, foreign.build()).await.status().as_u16(), 200);
}

async fn no_claims_is_401_on_every_route<T: Table>(api: Api<T>) {
    let (mine, _) = setup(&api).await;
    let before = api.state().await;
    let target = target(W, &mine);
    let no_sub: Claims = claims(&[
        ("partner_id", P),
        ("workspace_id", W),
        ("roles", "[partner_admin workspace_admin platform_service]"),
    ]);
    let bad_tenant: Claims = claims(&[("sub", "u"), ("partner_id", "P ACME"), ("roles", "[partner_admin]")]);
    for route in ALL_ROUTES {
        api.call(sample(route, &target)).await.err(401, "unauthorized", None);
        api.call(sample(route, &target).by(no_sub.clone())).await.err(401, "unauthorized", None);
        api.call(sample(route, &target).by(bad_tenant.clone())).await.err(401, "unauthorized", None);
    }
    assert_eq!(api.state().await, before);
}

async fn wrong_roles_are_403_on_every_route<T: Table>(api: Api<T>) {
    let (mine, _) = setup(&api).await;
    // The rightful partner admin below connects another account with this code.
    let code = own_account_code(&api).await;
    let (receipt, wallet_receipt) = receipts(&api).await;
    let delivery = delivery(&api).await;
    let billed = super::plans::billed_addon(&api).await;
    let target = Target {
        workspace: W,
        addon: &mine,
        code: &code,
        receipt: &receipt,
        wallet_receipt: &wallet_receipt,
        delivery: &delivery,
        billed: &billed,
    };
    let no_roles: Claims = claims(&[("sub", "u"), ("partner_id", P), ("workspace_id", W)]);
    let unknown_role: Claims =
        claims(&[("sub", "u"), ("partner_id", P), ("workspace_id", W), ("roles", "[superuser]")]);
    // The right role without the tenant it applies to is no better.
    let tenantless: [Claims; 2] = [
        claims(&[("sub", "u"), ("roles", "[partner_admin]")]),
        claims(&[("sub", "u"), ("roles", "[workspace_admin workspace_member]")]),
    ];
    let before = api.state().await;
    for route in ALL_ROUTES {
        let allowed = allowed(route);
        for (caller, ok) in callers().into_iter().zip(allowed) {
            if !ok {
                let r = api.call(sample(route, &target).by(caller.clone())).await;
                assert_eq!(r.status, 403, "{route} by {caller:?}: {}", r.body);
                r.err(403, "forbidden", None);
            }
        }
        for caller in [no_roles.clone(), unknown_role.clone()].into_iter().chain(tenantless.clone()) {
            api.call(sample(route, &target).by(caller)).await.err(403, "forbidden", None);
        }
    }
    assert_eq!(api.state().await, before, "a forbidden request writes nothing");
    // The same requests from their rightful callers go through: the 403s were about the caller.
    for route in ALL_ROUTES {
        for (caller, ok) in callers().into_iter().zip(allowed(route)) {
            if ok {
                let r = api.call(sample(route, &target).by(caller.clone())).await;
                rightful(route, r.status, &r.body).unwrap_or_else(|e| panic!("by {caller:?}: {e}"));
            }
        }
    }
}

/// Every change by its rightful caller makes one read call and one transaction: nothing adds a
/// call unnoticed. Counted on the memory store (the contract suite keeps DynamoDB's behaviour the
/// same).
#[tokio::test]
async fn every_change_makes_one_read_and_one_transaction() {
    let api = Api::over(CountingTable::new(MemoryTable::new())).await;
    let (mine, _) = setup(&api).await;
    let code = own_account_code(&api).await;
    let delivery = delivery(&api).await;
    let billed = super::plans::billed_addon(&api).await;
    let target =
        Target { workspace: W, addon: &mine, code: &code, delivery: &delivery, billed: &billed, ..target(W, &mine) };
    let table = api.billing.store.table();
    for route in ALL_ROUTES.iter().copied().filter(|r| !r.starts_with("GET ")) {
        let (caller, _) = callers().into_iter().zip(allowed(route)).find(|(_, ok)| *ok).expect("a caller");
        // A payer's first checkout also stores its new Stripe customer: the second is counted.
        if route.ends_with("/checkout") {
            assert_eq!(api.call(sample(route, &target).by(caller.clone())).await.status, 201, "{route}");
        }
        let before = table.counts();
        let r = api.call(sample(route, &target).by(caller)).await;
        rightful(route, r.status, &r.body).unwrap();
        if !(200..300).contains(&r.status) {
            continue;
        }
        let after = table.counts();
        let (reads, transactions) = (after.0 - before.0 + after.1 - before.1, after.2 - before.2);
        assert!(
            reads <= 1 && transactions == 1,
            "{route}: {reads} read calls (at most one BatchGetItem with the idempotency record), \
             {transactions} transactions"
        );
    }
}

async fn another_tenants_ids_are_404_on_every_route<T: Table>(api: Api<T>) {
    let (mine, theirs) = setup(&api).await;
    let before = api.state().await;
    let nobody = "ws-nobody";
    let not_found = |what: &str| json!({ "error": { "type": "not_found", "message": format!("{what} not found") } });
    // P's admin with Q's workspace, and with a workspace that doesn't exist: the same answer.
    for route in
        ALL_ROUTES.iter().copied().filter(|r| r.contains("/partner/workspace") || r.contains("/partner/ledger"))
    {
        if route == "GET /partner/workspaces" || route == "POST /partner/workspaces" {
            continue;
        }
        for w in [X, nobody] {
            let r = api.call(sample(route, &target(w, &theirs)).by(partner_admin(P))).await;
            assert_eq!((r.status, &r.body), (404, &not_found("workspace")), "{route} on {w}");
        }
    }
    // P's own workspace with Q's add-on id.
    let remove = sample("DELETE /partner/workspaces/{id}/addons/{addon_id}", &target(W, &theirs));
    let r = api.call(remove.by(partner_admin(P))).await;
    assert_eq!((r.status, &r.body), (404, &not_found("add-on")));
    // W's admin cancelling X's add-on.
    let cancel = sample("DELETE /workspace/addons/{addon_id}", &target(W, &theirs));
    let r = api.call(cancel.by(workspace_admin(P, W))).await;
    assert_eq!((r.status, &r.body), (404, &not_found("add-on")));
    // A workspace token naming a workspace that doesn't exist.
    for route in ALL_ROUTES.iter().copied().filter(|r| r.contains(" /workspace")) {
        for who in [workspace_admin(P, nobody), workspace_admin(P, "ws-gone")] {
            let r = api.call(sample(route, &target(nobody, &mine)).by(who)).await;
            assert_eq!(r.status, 404, "{route}: {}", r.body);
        }
    }
    // The platform naming a workspace that doesn't exist.
    for route in ["PUT /platform/workspaces/{id}/usage-counts", "GET /platform/workspaces/{id}/entitlements"] {
        let r = api.call(sample(route, &target(nobody, &mine)).by(platform())).await;
        assert_eq!((r.status, &r.body), (404, &not_found("workspace")));
    }
    assert_eq!(api.state().await, before, "nothing was written to either tenant");
    // Q's workspace is as it was: its add-on active, its balance whole.
    let theirs_now = api.call(req("GET /workspace/addons").by(workspace_admin(Q, X))).await.ok(200);
    let owned: Vec<_> =
        theirs_now["owned"].as_array().unwrap().iter().map(|a| (a["id"].clone(), a["status"].clone())).collect();
    assert_eq!(owned, [(Value::String(theirs), json!("active"))]);
    assert_eq!(api.balance(Q, X).await, "95.00");
}

api_suite!(
    no_claims_is_401_on_every_route,
    wrong_roles_are_403_on_every_route,
    another_tenants_ids_are_404_on_every_route
);

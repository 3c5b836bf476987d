//! The platform signs a partner up, reads and lists its partners, changes their terms (the
//! wholesale floor per point, per currency) and suspends and reinstates them.

use domain::{PartnerId, WorkspaceId};
use serde_json::{Value, json};
use store::{PartnerCursor, Table, WorkspaceCursor, keys};

use super::access::sample;
use super::{ALL_ROUTES, Api, P, Q, W, X, partner_admin, platform, req, workspace_admin};

const NEW: &str = "p-new";

fn create(body: Value) -> super::Req {
    req("POST /platform/partners").by(platform()).json(body)
}

fn new_partner() -> Value {
    json!({ "id": NEW, "name": " New Agency ", "terms": { "wholesale_floors": { "usd": "0.12" } } })
}

/// The platform's view of a partner created at the test clock, active.
fn view(id: &str, name: &str, floors: Value, default_floors: bool, mode: &str, version: u64) -> Value {
    json!({
        "id": id,
        "name": name,
        "status": "active",
        "suspension": null,
        "terms": { "wholesale_floors": floors, "default_floors": default_floors, "billing_mode": mode },
        "version": version,
        "created_at": "2026-04-15T10:00:00Z",
    })
}

fn put_rate(p: &str, currency: &str, price: &str) -> super::Req {
    req("PUT /partner/credit-rate").by(partner_admin(p)).json(json!({ "currency": currency, "price_per_point": price }))
}

fn put_options(p: &str, options: Value) -> super::Req {
    req("PUT /partner/topup-options").by(partner_admin(p)).json(json!({ "options": options }))
}

fn option(amount_minor: i64, points: &str) -> Value {
    json!({ "label": "Pack", "currency": "usd", "amount_minor": amount_minor, "points": points })
}

async fn partners_page<T: Table>(api: &Api<T>, limit: &str, cursor: Option<&str>) -> Value {
    let mut r = req("GET /platform/partners").by(platform()).query("limit", limit);
    if let Some(c) = cursor {
        r = r.query("cursor", c);
    }
    api.call(r).await.ok(200)
}

async fn a_partner_is_onboarded_and_sells_above_its_floor<T: Table>(api: Api<T>) {
    let created = api.call(create(new_partner()).key("onboard-1")).await.ok(201);
    assert_eq!(created, view(NEW, "New Agency", json!({ "usd": "0.12" }), false, "prepaid", 1));
    // A replay answers the same; the key with another body is refused; the id is taken.
    assert_eq!(api.call(create(new_partner()).key("onboard-1")).await.ok(201), created);
    let other = json!({ "id": NEW, "name": "Other" });
    api.call(create(other.clone()).key("onboard-1")).await.err(422, "idempotency_key_reused", None);
    api.call(create(other).key("onboard-2")).await.err(409, "already_exists", None);
    let got = api.call(req("GET /platform/partners/{id}").param("id", NEW).by(platform())).await.ok(200);
    assert_eq!(got, created);

    // The partner's token, `partner_id` = the id created, works on its routes at once.
    let settings = api.call(req("GET /partner/settings").by(partner_admin(NEW))).await.ok(200);
    assert_eq!(settings["credit_billing"], json!(false));
    let topups = api.call(req("GET /partner/topup-options").by(partner_admin(NEW))).await.ok(200);
    assert_eq!(topups, json!({ "data": [], "credit_rate": null, "wholesale_floors": { "usd": "0.12" } }));

    // 0.10 a point is below the 0.12 floor, 0.25 is fine; no floor in EUR.
    let before = api.call(req("GET /partner/topup-options").by(partner_admin(NEW))).await.ok(200);
    api.call(put_rate(NEW, "usd", "0.10")).await.invalid("price_per_point");
    api.call(put_rate(NEW, "usd", "0.1199")).await.invalid("price_per_point");
    api.call(put_rate(NEW, "eur", "0.50")).await.invalid("currency");
    let below = api.call(put_options(NEW, json!([option(2500, "100"), option(1000, "100")]))).await;
    below.invalid("price_per_point");
    let message = below.body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("options[1]: 10.00 usd for 100.00 points"), "{message}");
    let yen = json!([{ "label": "Yen", "currency": "jpy", "amount_minor": 5000, "points": "10" }]);
    api.call(put_options(NEW, yen)).await.invalid("options[0].currency");
    let after = api.call(req("GET /partner/topup-options").by(partner_admin(NEW))).await.ok(200);
    assert_eq!(after, before, "nothing was written");
    assert_eq!(api.call(put_rate(NEW, "usd", "0.25")).await.ok(200)["price_per_point"], "0.25");
    assert_eq!(api.call(put_rate(NEW, "usd", "0.12")).await.ok(200)["price_per_point"], "0.12");
    // 25.00 for 100 points (0.25), and a bonus tier of 100.00 for 150 (0.6667): both fine.
    let saved = api.call(put_options(NEW, json!([option(2500, "100"), option(10000, "150")]))).await.ok(200);
    assert_eq!(saved["data"].as_array().unwrap().len(), 2);

    // New terms: a 0.30 floor, prepaid. The 0.25 price is refused from now on.
    let terms = json!({ "wholesale_floors": { "usd": "0.30", "EUR": "0.28" }, "billing_mode": "prepaid" });
    let put = req("PUT /platform/partners/{id}/terms").param("id", NEW).by(platform()).json(terms);
    let changed = api.call(put.clone().key("terms-1")).await.ok(200);
    let expected = view(NEW, "New Agency", json!({ "eur": "0.28", "usd": "0.30" }), false, "prepaid", 2);
    assert_eq!(changed, expected);
    assert_eq!(api.call(put.key("terms-1")).await.ok(200), expected, "a replay");
    api.call(put_rate(NEW, "usd", "0.25")).await.invalid("price_per_point");
    assert_eq!(api.call(put_rate(NEW, "eur", "0.28")).await.ok(200)["price_per_point"], "0.28");
    let billing = api.call(req("GET /platform/partners/{id}").param("id", NEW).by(platform())).await.ok(200);
    assert_eq!(billing, expected);
    // Null floors: back on the deployment's default (0.01 USD here).
    let default = json!({ "wholesale_floors": null, "billing_mode": "postpaid" });
    let back = api.call(req("PUT /platform/partners/{id}/terms").param("id", NEW).by(platform()).json(default)).await;
    assert_eq!(back.ok(200), view(NEW, "New Agency", json!({ "usd": "0.01" }), true, "postpaid", 3));
}

async fn partners_are_listed_a_page_at_a_time<T: Table>(api: Api<T>) {
    api.tenants().await;
    for id in ["p-c", "p-a", "p-b"] {
        api.call(create(json!({ "id": id, "name": format!("Agency {id}") }))).await.ok(201);
    }
    let first = partners_page(&api, "2", None).await;
    let entry = |id: &str, name: &str| json!({ "id": id, "name": name, "status": "active", "created_at": "2026-04-15T10:00:00Z" });
    // Cursors are opaque: each page's is the typed position after its last partner.
    let after = |id: &str| PartnerCursor::after(PartnerId::parse(id).unwrap()).encode();
    assert_eq!(
        first,
        json!({ "data": [entry("p-a", "Agency p-a"), entry("p-acme", P)], "next_cursor": after("p-acme") })
    );
    let second = partners_page(&api, "2", first["next_cursor"].as_str()).await;
    assert_eq!(
        second,
        json!({ "data": [entry("p-b", "Agency p-b"), entry("p-c", "Agency p-c")], "next_cursor": after("p-c") })
    );
    let last = partners_page(&api, "2", second["next_cursor"].as_str()).await;
    assert_eq!(last, json!({ "data": [entry("p-rival", Q)], "next_cursor": null }));
    // A bare partner id (what a cursor once was) and another listing's cursor are refused.
    for crafted in [
        "p-acme".to_owned(),
        WorkspaceCursor::after(WorkspaceId::parse("p-acme").unwrap()).encode(&PartnerId::parse(P).unwrap()),
    ] {
        api.call(req("GET /platform/partners").by(platform()).query("cursor", crafted)).await.invalid("cursor");
    }
    assert_eq!(partners_page(&api, "100", None).await["data"].as_array().unwrap().len(), 5);
    let bad = req("GET /platform/partners").by(platform()).query("cursor", "Not A Cursor!");
    api.call(bad).await.invalid("cursor");
    api.call(req("GET /platform/partners").by(platform()).query("limit", "0")).await.invalid("limit");
}

async fn bad_input_is_refused_with_nothing_written<T: Table>(api: Api<T>) {
    let cases = [
        (json!({ "id": "P ACME", "name": "x" }), "id"),
        (json!({ "id": "p-x", "name": "  " }), "name"),
        (
            json!({ "id": "p-x", "name": "x", "terms": { "wholesale_floors": { "usd": "0" } } }),
            "terms.wholesale_floors.usd",
        ),
        (
            json!({ "id": "p-x", "name": "x", "terms": { "wholesale_floors": { "usd": "0.00001" } } }),
            "terms.wholesale_floors.usd",
        ),
        (
            json!({ "id": "p-x", "name": "x", "terms": { "wholesale_floors": { "xyz": "1" } } }),
            "terms.wholesale_floors.xyz",
        ),
        (json!({ "id": "p-x", "name": "x", "terms": { "wholesale_floors": {} } }), "terms.wholesale_floors"),
        (json!({ "id": "p-x", "name": "x", "terms": { "billing_mode": "weekly" } }), "terms.billing_mode"),
        (json!({ "id": "p-x", "name": "x", "terms": { "cost": "1" } }), "terms.cost"),
        (json!({ "id": "p-x", "name": "x", "status": "active" }), "status"),
        (json!({ "id": "p-x" }), "body"),
    ];
    for (body, param) in cases {
        api.call(create(body.clone()).key("bad")).await.invalid(param);
    }
    api.call(create(new_partner()).no_key()).await.invalid("Idempotency-Key");
    assert!(!api.key_recorded("platform", "bad").await);
    assert_eq!(partners_page(&api, "100", None).await, json!({ "data": [], "next_cursor": null }));
    let missing = req("GET /platform/partners/{id}").param("id", "p-x").by(platform());
    api.call(missing).await.err(404, "not_found", None);

    api.call(create(new_partner())).await.ok(201);
    let before = api.call(req("GET /platform/partners/{id}").param("id", NEW).by(platform())).await.ok(200);
    let terms = |body: Value| req("PUT /platform/partners/{id}/terms").param("id", NEW).by(platform()).json(body);
    api.call(terms(json!({ "wholesale_floors": { "usd": "0.2" } }))).await.invalid("billing_mode");
    api.call(terms(json!({ "wholesale_floors": { "usd": "x" }, "billing_mode": "prepaid" })))
        .await
        .invalid("wholesale_floors.usd");
    let suspend = |reason: &str| {
        req("POST /platform/partners/{id}/suspend").param("id", NEW).by(platform()).json(json!({ "reason": reason }))
    };
    api.call(suspend(" ")).await.invalid("reason");
    api.call(suspend(&"r".repeat(501))).await.invalid("reason");
    let after = api.call(req("GET /platform/partners/{id}").param("id", NEW).by(platform())).await.ok(200);
    assert_eq!(after, before);
    // A partner that doesn't exist.
    for r in [
        req("PUT /platform/partners/{id}/terms").json(json!({ "billing_mode": "prepaid" })),
        req("POST /platform/partners/{id}/suspend").json(json!({ "reason": "r" })),
        req("POST /platform/partners/{id}/reinstate"),
    ] {
        api.call(r.param("id", "p-nobody").by(platform())).await.err(404, "not_found", None);
    }
}

async fn a_suspended_partner_keeps_everything_until_reinstated<T: Table>(api: Api<T>) {
    api.tenants().await;
    let settings = json!({
        "credit_billing": true, "success_url": "https://agency.example/paid",
        "cancel_url": "https://agency.example/back", "grace_days": 0,
    });
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(settings)).await.ok(200);
    api.call(put_rate(P, "usd", "0.05")).await.ok(200);
    api.fund(P, W, "100").await;
    let bought = api.buy(P, W, "extra_bot", 1).await.ok(201);
    let addon = bought["addon"]["id"].as_str().unwrap().to_owned();
    let usage = |event: &str| {
        req("POST /platform/usage").by(platform()).json(json!({
            "workspace_id": W, "meter": "voice_minutes", "quantity": "1", "event_id": event,
        }))
    };
    let access = |w: &str| {
        req("GET /platform/workspaces/{id}/access").param("id", w).by(platform()).query("meter", "voice_minutes")
    };
    api.call(usage("call-1")).await.ok(200);
    api.call(access(W)).await.ok(200);
    let before = api.state().await;

    let suspend = req("POST /platform/partners/{id}/suspend")
        .param("id", P)
        .by(platform())
        .json(json!({ "reason": "Invoice 2026-03 unpaid" }))
        .key("suspend-1");
    let suspended = api.call(suspend.clone()).await.ok(200);
    assert_eq!(
        (&suspended["status"], &suspended["suspension"], &suspended["version"]),
        (
            &json!("suspended"),
            &json!({ "reason": "Invoice 2026-03 unpaid", "suspended_at": "2026-04-15T10:00:00Z" }),
            &json!(2)
        )
    );
    assert_eq!(api.call(suspend).await.ok(200), suspended, "a replay");
    let again =
        req("POST /platform/partners/{id}/suspend").param("id", P).by(platform()).json(json!({ "reason": "Other" }));
    assert_eq!(
        api.call(again).await.ok(200)["suspension"]["reason"],
        "Invoice 2026-03 unpaid",
        "the first reason stays"
    );
    // Nothing was deleted: only the profile changed.
    let after = api.state().await;
    let profile = keys::partner_profile(&domain::PartnerId::parse(P).unwrap());
    let others = |items: &[store::Item]| -> Vec<store::Item> {
        items.iter().filter(|i| i.key().as_ref() != Some(&profile)).cloned().collect()
    };
    assert_eq!((after.len(), others(&after)), (before.len(), others(&before)));

    // Every partner route of P answers 403 partner_suspended; Q's are untouched.
    let code = api.stripe.issue_oauth_code(None, false).0;
    let t = super::access::Target { workspace: W, addon: &addon, code: &code, ..super::access::target(W, &addon) };
    for route in ALL_ROUTES.iter().copied().filter(|r| r.split_once(' ').unwrap().1.starts_with("/partner")) {
        api.call(sample(route, &t).by(partner_admin(P))).await.err(403, "partner_suspended", None);
    }
    api.call(req("GET /partner/addons").by(partner_admin(Q))).await.ok(200);
    // Its workspaces: no usage, no access, no purchase, no checkout; reads still answer.
    api.call(usage("call-2")).await.err(403, "partner_suspended", None);
    api.call(access(W)).await.err(403, "partner_suspended", None);
    api.call(access(X)).await.ok(200);
    api.buy(P, W, "extra_bot", 1).await.err(403, "partner_suspended", None);
    let checkout = req("POST /workspace/checkout").by(workspace_admin(P, W)).json(json!({ "points": "100" }));
    api.call(checkout.clone()).await.err(403, "partner_suspended", None);
    let seen = api.view(P, W).await;
    assert_eq!((&seen["balance"], seen["addons"].as_array().unwrap().len()), (&bought["balance"], 1), "{seen}");
    assert_eq!(api.state().await, after, "the refused requests wrote nothing");
    let listed = partners_page(&api, "10", None).await;
    assert_eq!(listed["data"][0]["status"], "suspended");

    // Reinstated: everything as before.
    let reinstate = req("POST /platform/partners/{id}/reinstate").param("id", P).by(platform());
    let back = api.call(reinstate.clone()).await.ok(200);
    assert_eq!((&back["status"], &back["suspension"], &back["version"]), (&json!("active"), &Value::Null, &json!(3)));
    assert_eq!(api.call(reinstate).await.ok(200)["version"], 3, "an active partner stays as it is");
    api.call(req("GET /partner/addons").by(partner_admin(P))).await.ok(200);
    api.call(usage("call-2")).await.ok(200);
    api.call(access(W)).await.ok(200);
    assert_eq!(api.buy(P, W, "extra_bot", 1).await.ok(201)["charged"], bought["charged"]);
    assert_eq!(api.call(checkout).await.ok(201)["amount_minor"], 500);
}

api_suite!(
    a_partner_is_onboarded_and_sells_above_its_floor,
    partners_are_listed_a_page_at_a_time,
    bad_input_is_refused_with_nothing_written,
    a_suspended_partner_keeps_everything_until_reinstated,
);

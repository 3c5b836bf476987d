//! The partner's routes: add-on prices and labels, plans, settings, workspaces and the ledger.

use serde_json::{Value, json};
use shared::store::Table;
use time::macros::datetime;

use super::{Api, P, Q, W, X, lit, partner_admin, req, starter_limits, usage_json, workspace_admin};

fn extra_bot_default() -> Value {
    json!({
        "code": "extra_bot",
        "label": "Extra bot",
        "effect": { "limit": "bots", "amount": 1 },
        "cost_price": { "amount_minor": 500, "currency": "usd" },
        "points": "10.00",
        "enabled": true,
    })
}

fn starter_plan() -> Value {
    json!({
        "id": "starter",
        "label": "Starter",
        "limits": starter_limits(1, 2),
        "monthly_price": { "amount_minor": 4900, "currency": "usd" },
    })
}

async fn addon_prices_are_listed_and_set<T: Table>(api: Api<T>) {
    api.tenants().await;
    let listed = api.call(req("GET /partner/addons").by(partner_admin(P))).await.ok(200);
    let data = listed["data"].as_array().unwrap();
    let codes: Vec<_> = data.iter().map(|a| a["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        [
            "extra_bot",
            "extra_member",
            "extra_1k_bot_users",
            "extra_10k_bot_users",
            "extra_1k_webhook_requests",
            "extra_10s_timeout"
        ]
    );
    assert_eq!(data[0], extra_bot_default());
    let costs: Vec<_> = data.iter().map(|a| a["cost_price"]["amount_minor"].as_i64().unwrap()).collect();
    assert_eq!(costs, [500, 500, 500, 3000, 2000, 2000], "the seed's wholesale prices, in cents");
    let points: Vec<_> = data.iter().map(|a| a["points"].as_str().unwrap()).collect();
    assert_eq!(points, ["10.00", "10.00", "10.00", "60.00", "40.00", "40.00"]);

    let set = api.price(P, "extra_member", "  Extra seat ", "12.5", true).await;
    let expected = json!({
        "code": "extra_member",
        "label": "Extra seat",
        "effect": { "limit": "members", "amount": 1 },
        "cost_price": { "amount_minor": 500, "currency": "usd" },
        "points": "12.50",
        "enabled": true,
    });
    assert_eq!(set, expected);
    let listed = api.call(req("GET /partner/addons").by(partner_admin(P))).await.ok(200);
    assert_eq!(listed["data"][1], expected);

    // The other partner's catalog is its own.
    let theirs = api.call(req("GET /partner/addons").by(partner_admin(Q))).await.ok(200);
    assert_eq!(theirs["data"][1]["label"], "Extra member");
    assert_eq!(theirs["data"][1]["points"], "10.00");

    // The workspace sees the new label and price, and no longer sees a disabled add-on.
    let offers = api.call(req("GET /workspace/addons").by(workspace_admin(P, W))).await.ok(200);
    let member = offers["available"].as_array().unwrap().iter().find(|o| o["code"] == "extra_member").unwrap();
    assert_eq!(
        member,
        &json!({ "code": "extra_member", "label": "Extra seat", "effect": { "limit": "members", "amount": 1 }, "points": "12.50" })
    );
    api.price(P, "extra_member", "Extra seat", "12.5", false).await;
    let offers = api.call(req("GET /workspace/addons").by(workspace_admin(P, W))).await.ok(200);
    let codes: Vec<_> = offers["available"].as_array().unwrap().iter().map(|o| o["code"].clone()).collect();
    assert!(!codes.contains(&json!("extra_member")), "{offers}");
    assert_eq!(codes.len(), 5);
}

async fn addon_price_errors_write_nothing<T: Table>(api: Api<T>) {
    api.tenants().await;
    let before = api.state().await;
    let put = |body: &str| req("PUT /partner/addons/{code}").param("code", "extra_bot").by(partner_admin(P)).raw(body);
    let cases = [
        (r#"{"label":"Bot","points":"10.005","enabled":true}"#, "points"),
        (r#"{"label":"Bot","points":10,"enabled":true}"#, "points"),
        (r#"{"label":"Bot","points":"-1","enabled":true}"#, "points"),
        (r#"{"label":"Bot","points":"1e3","enabled":true}"#, "points"),
        (r#"{"label":"Bot","points":"","enabled":true}"#, "points"),
        (r#"{"label":"","points":"10","enabled":true}"#, "label"),
        (r#"{"label":"Bot","points":"10","enabled":"yes"}"#, "enabled"),
        // A partner sets its selling price, never the platform's cost price.
        (
            r#"{"label":"Bot","points":"10","enabled":true,"cost_price":{"amount_minor":1,"currency":"usd"}}"#,
            "cost_price",
        ),
        ("label=Bot&points=10", "body"),
        ("", "body"),
    ];
    for (body, param) in cases {
        let r = api.call(put(body).key("k-bad")).await;
        assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some(param)), "{body}: {}", r.body);
        r.invalid(param);
    }
    api.call(put(r#"{"label":"Bot","points":"10","enabled":true}"#).no_key()).await.invalid("Idempotency-Key");
    let unknown = req("PUT /partner/addons/{code}").param("code", "extra_unicorn").by(partner_admin(P));
    api.call(unknown.json(json!({"label":"Unicorn","points":"10","enabled":true}))).await.err(404, "not_found", None);
    assert_eq!(api.state().await, before, "a refused request writes nothing");
    assert!(!api.key_recorded("partner:p-acme", "k-bad").await);
    // Nothing was recorded under the key: a corrected request goes through with it.
    api.call(put(r#"{"label":"Bot","points":"10.5","enabled":true}"#).key("k-bad")).await.ok(200);
}

async fn plans_are_listed_and_edited<T: Table>(api: Api<T>) {
    api.tenants().await;
    let plans = api.call(req("GET /partner/plans").by(partner_admin(P))).await.ok(200);
    let ids: Vec<_> = plans["data"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["starter", "growth", "agency"]);
    assert_eq!(plans["data"][0], starter_plan());
    let growth = api.call(req("GET /partner/plans/{id}").param("id", "growth").by(partner_admin(P))).await.ok(200);
    assert_eq!(
        growth,
        json!({
            "id": "growth",
            "label": "Growth",
            "limits": { "bots": 5, "members": 5, "bot_users": 10000, "inbound_webhook_requests_per_month": 10000, "external_request_timeout_s": 20 },
            "monthly_price": { "amount_minor": 9900, "currency": "usd" },
        })
    );

    let edited = json!({
        "label": "Starter+",
        "limits": starter_limits(2, 3),
        "monthly_price": { "amount_minor": 5900, "currency": "usd" },
    });
    let put = req("PUT /partner/plans/{id}").param("id", "starter").by(partner_admin(P)).json(edited.clone());
    let mut expected = edited;
    expected["id"] = json!("starter");
    assert_eq!(api.call(put).await.ok(200), expected);
    let got = api.call(req("GET /partner/plans/{id}").param("id", "starter").by(partner_admin(P))).await.ok(200);
    assert_eq!(got, expected);
    // The workspace's effective limits follow its partner's plan; the other partner's plan is untouched.
    assert_eq!(api.view(P, W).await["limits"], starter_limits(2, 3));
    assert_eq!(api.view(Q, X).await["limits"], starter_limits(1, 2));
    let theirs = api.call(req("GET /partner/plans/{id}").param("id", "starter").by(partner_admin(Q))).await.ok(200);
    assert_eq!(theirs, starter_plan());
}

async fn plan_errors_write_nothing<T: Table>(api: Api<T>) {
    api.tenants().await;
    let before = api.state().await;
    let body = |bots: Value| {
        json!({
            "label": "Starter",
            "limits": { "bots": bots, "members": 2, "bot_users": 1000, "inbound_webhook_requests_per_month": 1000, "external_request_timeout_s": 10 },
            "monthly_price": { "amount_minor": 4900, "currency": "usd" },
        })
    };
    let put = |id: &str, b: Value| req("PUT /partner/plans/{id}").param("id", id).by(partner_admin(P)).json(b);
    api.call(put("starter", body(json!(-1)))).await.invalid("limits.bots");
    api.call(put("starter", body(lit("1.5")))).await.invalid("limits.bots");
    api.call(put("starter", body(json!("2")))).await.invalid("limits.bots");
    // Above a billion: add-ons on top could overflow every later evaluation (found by fuzzing).
    api.call(put("starter", body(json!(1_000_000_001)))).await.invalid("limits.bots");
    api.call(put("starter", body(json!(4_294_967_295_u32)))).await.invalid("limits.bots");
    let mut priced_in_floats = body(json!(1));
    priced_in_floats["monthly_price"]["amount_minor"] = lit("49.5");
    let r = api.call(put("starter", priced_in_floats)).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let mut no_label = body(json!(1));
    no_label["label"] = json!(" ");
    api.call(put("starter", no_label)).await.invalid("label");
    api.call(put("platinum", body(json!(1)))).await.err(404, "not_found", None);
    api.call(req("GET /partner/plans/{id}").param("id", "platinum").by(partner_admin(P))).await.err(
        404,
        "not_found",
        None,
    );
    assert_eq!(api.state().await, before);
}

async fn settings_are_read_and_replaced<T: Table>(api: Api<T>) {
    api.tenants().await;
    let got = api.call(req("GET /partner/settings").by(partner_admin(P))).await.ok(200);
    let off = json!({ "enabled": false, "rates": {} });
    assert_eq!(
        got,
        json!({ "credit_billing": true, "success_url": null, "cancel_url": null, "grace_days": 0, "default_rebilling": off })
    );
    let new = json!({
        "credit_billing": false,
        "success_url": "https://agency.example/paid",
        "cancel_url": "https://agency.example/cancelled",
        "grace_days": 3,
        "default_rebilling": { "enabled": true, "rates": { "voice_minutes": "0.20" } },
    });
    let put = api.call(req("PUT /partner/settings").by(partner_admin(P)).json(new.clone())).await.ok(200);
    assert_eq!(put, new);
    assert_eq!(api.call(req("GET /partner/settings").by(partner_admin(P))).await.ok(200), new);
    let theirs = api.call(req("GET /partner/settings").by(partner_admin(Q))).await.ok(200);
    assert_eq!(theirs["credit_billing"], true);

    let before = api.state().await;
    let bad = |body: Value| req("PUT /partner/settings").by(partner_admin(P)).json(body);
    let mut long_grace = new.clone();
    long_grace["grace_days"] = json!(31);
    api.call(bad(long_grace)).await.invalid("grace_days");
    let mut negative_grace = new.clone();
    negative_grace["grace_days"] = json!(-1);
    api.call(bad(negative_grace)).await.invalid("grace_days");
    let mut ftp = new.clone();
    ftp["success_url"] = json!("ftp://agency.example/paid");
    api.call(bad(ftp)).await.invalid("success_url");
    let mut extra = new.clone();
    extra["stripe_account"] = json!("acct_123");
    api.call(bad(extra)).await.invalid("stripe_account");
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(new).no_key()).await.invalid("Idempotency-Key");
    assert_eq!(api.state().await, before);
}

async fn workspaces_are_created_listed_and_shown<T: Table>(api: Api<T>) {
    api.partner(P, true).await;
    api.partner(Q, true).await;
    let created = api.workspace(P, W, "starter").await;
    let expected = json!({
        "id": W,
        "partner_id": P,
        "name": "Workspace ws-acme-1",
        "plan": "starter",
        "cycle": { "start": "2026-04-01", "end": "2026-04-30" },
        "renews_on": "2026-05-01",
        "limits": starter_limits(1, 2),
        "usage": usage_json(0, 0, 0),
        "balance": "0.00",
        "addons": [],
        "status": "active",
        "exceeded": [],
        "auto_topup": {
            "enabled": false, "topup_option_id": null, "card_saved": false, "consecutive_failures": 0,
            "last_failure": null, "next_attempt_after": null, "disabled_reason": null, "payment_pending": false,
            "threshold": null, "monthly_cap": null, "spent_this_month": null,
        },
    });
    assert_eq!(created, expected);
    let shown = api.call(req("GET /partner/workspaces/{id}").param("id", W).by(partner_admin(P))).await.ok(200);
    assert_eq!(shown, expected);

    // Without an anchor day, cycles start on the day of creation.
    let body = json!({ "id": "ws-acme-2", "name": "Second", "plan": "growth" });
    let second = api.call(req("POST /partner/workspaces").by(partner_admin(P)).json(body)).await.ok(201);
    assert_eq!(second["cycle"], json!({ "start": "2026-04-15", "end": "2026-05-14" }));
    assert_eq!(second["limits"]["bots"], 5);
    api.set_clock(datetime!(2026-04-16 09:00 UTC));
    api.workspace(P, "ws-acme-3", "agency").await;
    api.workspace(Q, X, "starter").await;

    let list = api.call(req("GET /partner/workspaces").by(partner_admin(P))).await.ok(200);
    assert_eq!(
        list,
        json!({
            "data": [
                { "id": W, "name": "Workspace ws-acme-1", "created_at": "2026-04-15T10:00:00Z" },
                { "id": "ws-acme-2", "name": "Second", "created_at": "2026-04-15T10:00:00Z" },
                { "id": "ws-acme-3", "name": "Workspace ws-acme-3", "created_at": "2026-04-16T09:00:00Z" },
            ],
            "next_cursor": null,
        })
    );
    // Pages: two, then the rest.
    let first = api.call(req("GET /partner/workspaces").query("limit", "2").by(partner_admin(P))).await.ok(200);
    let ids: Vec<_> = first["data"].as_array().unwrap().iter().map(|w| w["id"].clone()).collect();
    assert_eq!(ids, [json!(W), json!("ws-acme-2")]);
    let cursor = first["next_cursor"].as_str().expect("a next page").to_owned();
    let rest =
        api.call(req("GET /partner/workspaces").query("limit", "2").query("cursor", cursor).by(partner_admin(P)));
    let rest = rest.await.ok(200);
    let ids: Vec<_> = rest["data"].as_array().unwrap().iter().map(|w| w["id"].clone()).collect();
    assert_eq!(ids, [json!("ws-acme-3")]);
    assert_eq!(rest["next_cursor"], Value::Null);
    let theirs = api.call(req("GET /partner/workspaces").by(partner_admin(Q))).await.ok(200);
    assert_eq!(theirs["data"].as_array().unwrap().len(), 1);
    assert_eq!(theirs["data"][0]["id"], X);
    api.call(req("GET /partner/workspaces").query("limit", "0").by(partner_admin(P))).await.invalid("limit");
    api.call(req("GET /partner/workspaces").query("limit", "101").by(partner_admin(P))).await.invalid("limit");
}

async fn workspace_creation_errors_write_nothing<T: Table>(api: Api<T>) {
    api.tenants().await;
    let before = api.state().await;
    let create = |body: Value| req("POST /partner/workspaces").by(partner_admin(P)).json(body);
    let ok = json!({ "id": "ws-new", "name": "New", "plan": "starter", "cycle_anchor_day": 1 });
    let with = |field: &str, value: Value| {
        let mut b = ok.clone();
        b[field] = value;
        b
    };
    api.call(create(with("id", json!("WS New")))).await.invalid("id");
    api.call(create(with("id", json!("")))).await.invalid("id");
    api.call(create(with("plan", json!("platinum")))).await.invalid("plan");
    api.call(create(with("cycle_anchor_day", json!(0)))).await.invalid("cycle_anchor_day");
    api.call(create(with("cycle_anchor_day", json!(32)))).await.invalid("cycle_anchor_day");
    api.call(create(with("cycle_anchor_day", json!(-1)))).await.invalid("cycle_anchor_day");
    api.call(create(with("cycle_anchor_day", lit("1.5")))).await.invalid("cycle_anchor_day");
    api.call(create(with("name", json!("")))).await.invalid("name");
    api.call(create(with("name", json!(7)))).await.invalid("name");
    // A partner creates workspaces for itself only.
    api.call(create(with("partner_id", json!(Q)))).await.invalid("partner_id");
    api.call(req("POST /partner/workspaces").by(partner_admin(P)).raw("[\"ws-new\"]")).await.invalid("body");
    api.call(create(ok.clone()).no_key()).await.invalid("Idempotency-Key");
    // Ids are global: its own and another partner's existing ids are both taken.
    api.call(create(with("id", json!(W)))).await.err(409, "already_exists", None);
    api.call(create(with("id", json!(X)))).await.err(409, "already_exists", None);
    assert_eq!(api.state().await, before);
    let listed = api.call(req("GET /partner/workspaces").by(partner_admin(P))).await.ok(200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

async fn plan_change_answers_with_the_workspace<T: Table>(api: Api<T>) {
    api.tenants().await;
    let change = |plan: &str| {
        req("PUT /partner/workspaces/{id}/plan").param("id", W).by(partner_admin(P)).json(json!({ "plan": plan }))
    };
    let changed = api.call(change("growth")).await.ok(200);
    assert_eq!(
        changed,
        json!({ "workspace": {
            "id": W,
            "plan": "growth",
            "limits": { "bots": 5, "members": 5, "bot_users": 10000, "inbound_webhook_requests_per_month": 10000, "external_request_timeout_s": 20 },
            "usage": usage_json(0, 0, 0),
            "status": "active",
            "exceeded": [],
        }})
    );
    assert_eq!(api.view(P, W).await["plan"], "growth");
    let before = api.state().await;
    api.call(change("platinum")).await.invalid("plan");
    api.call(change("growth").no_key()).await.invalid("Idempotency-Key");
    let extra = json!({ "plan": "agency", "effective": "now" });
    api.call(req("PUT /partner/workspaces/{id}/plan").param("id", W).by(partner_admin(P)).json(extra))
        .await
        .invalid("effective");
    assert_eq!(api.state().await, before);
}

async fn partner_ledger_lists_entries<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "10").await;
    api.set_clock(datetime!(2026-04-15 11:00 UTC));
    api.fund(P, W, "2.5").await;
    let page = api.call(req("GET /partner/ledger").query("workspace_id", W).by(partner_admin(P))).await.ok(200);
    let entries = page["data"].as_array().unwrap();
    let seen: Vec<_> =
        entries.iter().map(|e| (e["seq"].clone(), e["amount"].clone(), e["balance_after"].clone())).collect();
    assert_eq!(seen, [(json!(2), json!("2.50"), json!("12.50")), (json!(1), json!("10.00"), json!("10.00"))]);
    assert_eq!(
        entries[0],
        json!({
            "id": "ws:ws-acme-1:2",
            "seq": 2,
            "amount": "2.50",
            "balance_after": "12.50",
            "kind": "adjustment",
            "detail": { "reason": "test funding" },
            "actor": { "type": "user", "id": "admin@p-acme" },
            "created_at": "2026-04-15T11:00:00Z",
        })
    );
    assert_eq!(page["next_cursor"], Value::Null);
    let first = req("GET /partner/ledger").query("workspace_id", W).query("limit", "1").by(partner_admin(P));
    let first = api.call(first).await.ok(200);
    assert_eq!(first["data"].as_array().unwrap().len(), 1);
    assert_eq!(first["data"][0]["seq"], 2);
    let cursor = first["next_cursor"].as_str().expect("a next page").to_owned();
    let next = req("GET /partner/ledger").query("workspace_id", W).query("limit", "1").query("cursor", cursor);
    let next = api.call(next.by(partner_admin(P))).await.ok(200);
    assert_eq!(next["data"][0]["seq"], 1);
    api.call(req("GET /partner/ledger").query("workspace_id", W).query("cursor", "garbage!").by(partner_admin(P)))
        .await
        .invalid("cursor");
}

/// DESIGN.md section 7 and the issue: the partner's ledger covers all its workspaces, and may
/// be filtered by one.
async fn partner_ledger_spans_its_workspaces<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.workspace(P, "ws-acme-2", "starter").await;
    api.fund(P, W, "10").await;
    api.set_clock(datetime!(2026-04-15 11:00 UTC));
    api.fund(P, "ws-acme-2", "4").await;
    api.fund(Q, X, "99").await;
    let all = api.call(req("GET /partner/ledger").by(partner_admin(P))).await.ok(200);
    let seen: Vec<_> =
        all["data"].as_array().unwrap().iter().map(|e| (e["workspace_id"].clone(), e["amount"].clone())).collect();
    assert_eq!(seen, [(json!("ws-acme-2"), json!("4.00")), (json!(W), json!("10.00"))], "{all}");
    // Paged, newest first, with the cursor the first page gave.
    let first = api.call(req("GET /partner/ledger").query("limit", "1").by(partner_admin(P))).await.ok(200);
    assert_eq!(first["data"][0]["workspace_id"], "ws-acme-2");
    let cursor = first["next_cursor"].as_str().expect("a second page").to_owned();
    let next = req("GET /partner/ledger").query("limit", "1").query("cursor", cursor).by(partner_admin(P));
    let next = api.call(next).await.ok(200);
    assert_eq!((&next["data"][0]["workspace_id"], &next["data"][0]["amount"]), (&json!(W), &json!("10.00")));
    api.call(req("GET /partner/ledger").query("cursor", "bogus").by(partner_admin(P))).await.invalid("cursor");
    let theirs = api.call(req("GET /partner/ledger").by(partner_admin(Q))).await.ok(200);
    assert_eq!(theirs["data"].as_array().unwrap().len(), 1);
    assert_eq!(theirs["data"][0]["workspace_id"], X);
}

api_suite!(
    addon_prices_are_listed_and_set,
    addon_price_errors_write_nothing,
    plans_are_listed_and_edited,
    plan_errors_write_nothing,
    settings_are_read_and_replaced,
    workspaces_are_created_listed_and_shown,
    workspace_creation_errors_write_nothing,
    plan_change_answers_with_the_workspace,
    partner_ledger_lists_entries,
    partner_ledger_spans_its_workspaces,
);

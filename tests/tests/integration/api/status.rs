//! Pause and resume, the platform's routes and the workspace's own views.

use serde_json::{Value, json};
use store::Table;

use super::{
    Api, P, Q, W, X, all_keys, lit, partner_admin, platform, req, starter_limits, usage_json, workspace_admin,
    workspace_member,
};

fn growth_limits() -> Value {
    json!({ "bots": 5, "members": 5, "bot_users": 10000, "inbound_webhook_requests_per_month": 10000, "external_request_timeout_s": 20 })
}

fn entitlements(w: &str) -> super::Req {
    req("GET /platform/workspaces/{id}/entitlements").param("id", w).by(platform())
}

/// Over the starter plan's one bot: paused; it buys an extra bot and the same response shows it
/// active; the partner removes the add-on: paused again.
async fn over_the_limit_pauses_and_a_purchase_resumes<T: Table>(api: Api<T>) {
    api.tenants().await;
    let paused = api.usage(W, 2, 1, 10).await.ok(200);
    assert_eq!(
        paused,
        json!({ "workspace": {
            "id": W,
            "plan": "starter",
            "limits": starter_limits(1, 2),
            "usage": usage_json(2, 1, 10),
            "status": "paused",
            "exceeded": ["bots"],
        }})
    );
    let view = api.view(P, W).await;
    assert_eq!(
        (&view["status"], &view["exceeded"], &view["usage"]),
        (&json!("paused"), &json!(["bots"]), &usage_json(2, 1, 10))
    );
    assert_eq!(
        api.call(entitlements(W)).await.ok(200),
        json!({
            "workspace_id": W,
            "plan": "starter",
            "limits": starter_limits(1, 2),
            "usage": usage_json(2, 1, 10),
            "paused": true,
            "status": "paused",
            "exceeded": ["bots"],
        })
    );

    api.fund(P, W, "20").await;
    let bought = api.buy(P, W, "extra_bot", 1).await.ok(201);
    assert_eq!(
        bought["workspace"],
        json!({
            "id": W,
            "plan": "starter",
            "limits": starter_limits(2, 2),
            "usage": usage_json(2, 1, 10),
            "status": "active",
            "exceeded": [],
        }),
        "active again in the purchase's own response"
    );
    assert_eq!(api.view(P, W).await["status"], "active");
    let now = api.call(entitlements(W)).await.ok(200);
    assert_eq!((&now["paused"], &now["limits"]["bots"]), (&json!(false), &json!(2)));

    let id = bought["addon"]["id"].as_str().unwrap();
    let remove = req("DELETE /partner/workspaces/{id}/addons/{addon_id}").param("id", W).param("addon_id", id);
    let removed = api.call(remove.by(partner_admin(P))).await.ok(200);
    assert_eq!(
        (&removed["workspace"]["status"], &removed["workspace"]["exceeded"], &removed["workspace"]["limits"]),
        (&json!("paused"), &json!(["bots"]), &starter_limits(1, 2))
    );
    assert_eq!(api.view(P, W).await["status"], "paused");
    assert_eq!(api.call(entitlements(W)).await.ok(200)["paused"], true);
    // The other tenant's workspace was never touched.
    assert_eq!(api.view(Q, X).await["status"], "active");
}

async fn a_plan_upgrade_resumes<T: Table>(api: Api<T>) {
    api.tenants().await;
    let paused = api.usage(W, 3, 4, 5000).await.ok(200);
    assert_eq!(paused["workspace"]["exceeded"], json!(["bots", "members", "bot_users"]));
    let change = |plan: &str| {
        req("PUT /partner/workspaces/{id}/plan").param("id", W).by(partner_admin(P)).json(json!({ "plan": plan }))
    };
    let upgraded = api.call(change("growth")).await.ok(200);
    assert_eq!(
        upgraded["workspace"],
        json!({ "id": W, "plan": "growth", "limits": growth_limits(), "usage": usage_json(3, 4, 5000), "status": "active", "exceeded": [] })
    );
    assert_eq!(api.view(P, W).await["status"], "active");
    // And a downgrade pauses it again.
    let downgraded = api.call(change("starter")).await.ok(200);
    assert_eq!(downgraded["workspace"]["status"], "paused");
    assert_eq!(downgraded["workspace"]["exceeded"], json!(["bots", "members", "bot_users"]));
}

async fn a_usage_decrease_resumes<T: Table>(api: Api<T>) {
    api.tenants().await;
    assert_eq!(api.usage(W, 1, 3, 0).await.ok(200)["workspace"]["exceeded"], json!(["members"]));
    let within = api.usage(W, 1, 2, 1000).await.ok(200);
    assert_eq!(
        within["workspace"],
        json!({ "id": W, "plan": "starter", "limits": starter_limits(1, 2), "usage": usage_json(1, 2, 1000), "status": "active", "exceeded": [] })
    );
    assert_eq!(api.view(P, W).await["status"], "active");
    assert_eq!(api.call(entitlements(W)).await.ok(200)["paused"], false);
    assert_eq!(api.usage(W, 1, 2, 1001).await.ok(200)["workspace"]["exceeded"], json!(["bot_users"]));
}

async fn usage_count_errors_write_nothing<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.usage(W, 1, 1, 1).await.ok(200);
    let before = api.state().await;
    let put = |body: Value| req("PUT /platform/workspaces/{id}/usage-counts").param("id", W).by(platform()).json(body);
    let cases = [
        (json!({ "bots": -1, "members": 1, "bot_users": 1 }), "bots"),
        (json!({ "bots": lit("1.5"), "members": 1, "bot_users": 1 }), "bots"),
        (json!({ "bots": 1, "members": "2", "bot_users": 1 }), "members"),
        (json!({ "bots": 1, "members": 1, "bot_users": 1, "voice_minutes": 3 }), "voice_minutes"),
    ];
    for (body, param) in cases {
        api.call(put(body)).await.invalid(param);
    }
    let missing = api.call(put(json!({ "bots": 1, "members": 1 }))).await;
    assert_eq!(missing.status, 400, "{}", missing.body);
    api.call(put(json!({ "bots": 1, "members": 1, "bot_users": 1 })).no_key()).await.invalid("Idempotency-Key");
    let nowhere = req("PUT /platform/workspaces/{id}/usage-counts").param("id", "ws-nowhere").by(platform());
    api.call(nowhere.json(json!({ "bots": 1, "members": 1, "bot_users": 1 }))).await.err(404, "not_found", None);
    api.call(entitlements("ws-nowhere")).await.err(404, "not_found", None);
    api.call(entitlements("Not An Id")).await.err(404, "not_found", None);
    assert_eq!(api.state().await, before);
}

/// What a workspace sees never includes a cost price; what its partner sees does.
async fn a_workspace_never_sees_cost_prices<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "50").await;
    api.buy(P, W, "extra_bot", 1).await.ok(201);
    let offers = api.call(req("GET /workspace/addons").by(workspace_member(P, W))).await.ok(200);
    assert_eq!(offers["available"].as_array().unwrap().len(), 6);
    assert_eq!(
        offers["available"][0],
        json!({ "code": "extra_bot", "label": "Extra bot", "effect": { "limit": "bots", "amount": 1 }, "points": "10.00" })
    );
    assert_eq!(offers["owned"].as_array().unwrap().len(), 1);
    let views = [
        offers,
        api.call(req("GET /workspace").by(workspace_member(P, W))).await.ok(200),
        api.call(req("GET /workspace/ledger").by(workspace_member(P, W))).await.ok(200),
        api.buy(P, W, "extra_member", 1).await.ok(201),
    ];
    for v in &views {
        let keys = all_keys(v);
        assert!(!keys.iter().any(|k| k.contains("cost")), "a workspace was shown {keys:?}: {v}");
        assert!(!v.to_string().contains("amount_minor"), "{v}");
    }
    let partner = api.call(req("GET /partner/addons").by(partner_admin(P))).await.ok(200);
    let with_cost = partner["data"].as_array().unwrap().iter().filter(|a| a.get("cost_price").is_some()).count();
    assert_eq!(with_cost, 6);
}

async fn workspace_views_for_admins_and_members<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "30").await;
    let bought = api.buy(P, W, "extra_bot", 2).await.ok(201);
    let expected = json!({
        "id": W,
        "partner_id": P,
        "name": "Workspace ws-acme-1",
        "plan": "starter",
        "cycle": { "start": "2026-04-01", "end": "2026-04-30" },
        "renews_on": "2026-05-01",
        "limits": starter_limits(3, 2),
        "usage": usage_json(0, 0, 0),
        "balance": "20.00",
        "addons": [bought["addon"]],
        "status": "active",
        "exceeded": [],
        "auto_topup": {
            "enabled": false, "topup_option_id": null, "points": null, "card_saved": false, "consecutive_failures": 0,
            "last_failure": null, "next_attempt_after": null, "disabled_reason": null, "payment_pending": false,
            "threshold": null, "monthly_cap": null, "spent_this_month": null,
        },
        "unit_name": "points",
        "brand": { "name": P, "logo_url": null, "primary_color": null, "accent_color": null, "embed_origins": [] },
    });
    assert_eq!(api.call(req("GET /workspace").by(workspace_member(P, W))).await.ok(200), expected);
    assert_eq!(api.call(req("GET /workspace").by(workspace_admin(P, W))).await.ok(200), expected);
    // The partner sees the same workspace the same way.
    let partner_view = req("GET /partner/workspaces/{id}").param("id", W).by(partner_admin(P));
    assert_eq!(api.call(partner_view).await.ok(200), expected);

    // The ledger pages newest first.
    let first = api.call(req("GET /workspace/ledger").query("limit", "1").by(workspace_member(P, W))).await.ok(200);
    assert_eq!(first["data"].as_array().unwrap().len(), 1);
    assert_eq!((&first["data"][0]["seq"], &first["data"][0]["amount"]), (&json!(2), &json!("-10.00")));
    let cursor = first["next_cursor"].as_str().expect("a second page").to_owned();
    let second = req("GET /workspace/ledger").query("limit", "1").query("cursor", cursor).by(workspace_member(P, W));
    let second = api.call(second).await.ok(200);
    assert_eq!((&second["data"][0]["seq"], &second["data"][0]["amount"]), (&json!(1), &json!("30.00")));
    let all = api.call(req("GET /workspace/ledger").by(workspace_member(P, W))).await.ok(200);
    assert_eq!((all["data"].as_array().unwrap().len(), &all["next_cursor"]), (2, &Value::Null));
    let bad_limit = req("GET /workspace/ledger").query("limit", "1000").by(workspace_member(P, W));
    api.call(bad_limit).await.invalid("limit");
    let bad_cursor = req("GET /workspace/ledger").query("cursor", "not-a-cursor").by(workspace_member(P, W));
    api.call(bad_cursor).await.invalid("cursor");
    // The other workspace sees only itself.
    let theirs = api.call(req("GET /workspace/ledger").by(workspace_member(Q, X))).await.ok(200);
    assert_eq!(theirs["data"], json!([]));
    assert_eq!(api.call(req("GET /workspace").by(workspace_member(Q, X))).await.ok(200)["balance"], "0.00");
}

/// Over two limits, a purchase that lifts one leaves it paused on the other, in the same response.
async fn a_purchase_that_lifts_one_of_two_limits_stays_paused<T: Table>(api: Api<T>) {
    api.tenants().await;
    let paused = api.usage(W, 2, 3, 0).await.ok(200);
    assert_eq!(paused["workspace"]["exceeded"], json!(["bots", "members"]));
    api.fund(P, W, "50").await;
    let bought = api.buy(P, W, "extra_bot", 1).await.ok(201);
    assert_eq!(
        (&bought["workspace"]["status"], &bought["workspace"]["exceeded"]),
        (&json!("paused"), &json!(["members"]))
    );
    assert_eq!(api.view(P, W).await["exceeded"], json!(["members"]));
    let bought = api.buy(P, W, "extra_member", 1).await.ok(201);
    assert_eq!((&bought["workspace"]["status"], &bought["workspace"]["exceeded"]), (&json!("active"), &json!([])));
    assert_eq!(api.call(entitlements(W)).await.ok(200)["paused"], false);
}

/// A partner raises its plan's limits: every view of a workspace on that plan agrees on whether
/// it is paused (its limits, its status and the platform's entitlements tell one story).
async fn views_agree_after_a_plan_is_edited<T: Table>(api: Api<T>) {
    api.tenants().await;
    assert_eq!(api.usage(W, 2, 1, 0).await.ok(200)["workspace"]["status"], "paused");
    let edited = json!({
        "label": "Starter",
        "limits": starter_limits(2, 2),
        "monthly_price": { "amount_minor": 4900, "currency": "usd" },
    });
    api.call(req("PUT /partner/plans/{id}").param("id", "starter").by(partner_admin(P)).json(edited)).await.ok(200);
    let ent = api.call(entitlements(W)).await.ok(200);
    let view = api.view(P, W).await;
    let partner_view = api.call(req("GET /partner/workspaces/{id}").param("id", W).by(partner_admin(P))).await.ok(200);
    assert_eq!((&ent["limits"], &view["limits"]), (&starter_limits(2, 2), &starter_limits(2, 2)));
    assert_eq!(
        (&view["status"], &view["exceeded"], &partner_view["status"]),
        (&ent["status"], &ent["exceeded"], &ent["status"]),
        "GET /workspace: {view}\nentitlements: {ent}"
    );
}

/// A token naming workspace W of partner P but partner Q is refused like an unknown id, on
/// reads and on a purchase, and the purchase writes nothing.
async fn a_workspace_token_naming_another_partner_is_not_found<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "30").await;
    let before = api.state().await;
    let mixed = workspace_admin(Q, W);
    api.call(req("GET /workspace").by(mixed.clone())).await.err(404, "not_found", None);
    api.call(req("GET /workspace/ledger").by(mixed.clone())).await.err(404, "not_found", None);
    let buy = req("POST /workspace/addons").by(mixed).json(json!({ "addon": "extra_bot", "quantity": 1 }));
    api.call(buy).await.err(404, "not_found", None);
    assert_eq!(api.state().await, before, "nothing written");
    // The right token still works.
    api.call(req("GET /workspace").by(workspace_admin(P, W))).await.ok(200);
}

api_suite!(
    a_workspace_token_naming_another_partner_is_not_found,
    over_the_limit_pauses_and_a_purchase_resumes,
    a_purchase_that_lifts_one_of_two_limits_stays_paused,
    views_agree_after_a_plan_is_edited,
    a_plan_upgrade_resumes,
    a_usage_decrease_resumes,
    usage_count_errors_write_nothing,
    a_workspace_never_sees_cost_prices,
    workspace_views_for_admins_and_members,
);

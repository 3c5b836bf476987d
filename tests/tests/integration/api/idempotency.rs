//! `Idempotency-Key`: a replay answers exactly as the first request did and writes nothing more;
//! the same key with another request is a 422; keys belong to one tenant.

use serde_json::{Value, json};
use store::Table;
use time::macros::datetime;

use super::{Api, P, Q, Req, W, X, partner_admin, platform, req, workspace_admin};

/// Sends `r` twice more after the first time: every answer is identical, and the second and
/// third write nothing.
async fn replays<T: Table>(api: &Api<T>, r: Req, status: u16) -> Value {
    let first = api.call(r.clone()).await;
    assert_eq!(first.status, status, "{}", first.body);
    let after_first = api.state().await;
    for _ in 0..2 {
        let again = api.call(r.clone()).await;
        assert_eq!(again, first, "a replay answers exactly as the first request did");
    }
    assert_eq!(api.state().await, after_first, "a replay writes nothing");
    first.body
}

async fn a_purchase_replays_and_debits_once<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "10").await;
    let buy = |quantity: u32| {
        req("POST /workspace/addons")
            .by(workspace_admin(P, W))
            .json(json!({ "addon": "extra_bot", "quantity": quantity }))
            .key("buy-1")
    };
    let first = replays(&api, buy(1), 201).await;
    assert_eq!((&first["charged"], &first["balance"]), (&json!("5.00"), &json!("5.00")));
    // Even once the balance could no longer pay for it, the replay is the stored success, not a 402.
    api.call(
        req("POST /partner/workspaces/{id}/points")
            .param("id", W)
            .by(partner_admin(P))
            .json(json!({ "amount": "-5", "reason": "spent elsewhere" })),
    )
    .await
    .ok(201);
    let again = api.call(buy(1)).await;
    assert_eq!((again.status, &again.body), (201, &first));
    let before = api.state().await;
    // The same key with a different body, path or method: 422, nothing written.
    api.call(buy(2)).await.err(422, "idempotency_key_reused", None);
    let other_code =
        req("POST /workspace/addons").by(workspace_admin(P, W)).json(json!({ "addon": "extra_member", "quantity": 1 }));
    api.call(other_code.key("buy-1")).await.err(422, "idempotency_key_reused", None);
    let id = first["addon"]["id"].as_str().unwrap();
    let cancel = req("DELETE /workspace/addons/{addon_id}").param("addon_id", id).by(workspace_admin(P, W));
    api.call(cancel.key("buy-1")).await.err(422, "idempotency_key_reused", None);
    assert_eq!(api.state().await, before);
    let ledger = api.ledger(P, W).await;
    let kinds: Vec<_> = ledger.iter().map(|e| (e["kind"].as_str().unwrap(), e["amount"].as_str().unwrap())).collect();
    assert_eq!(kinds, [("adjustment", "-5.00"), ("addon_purchase", "-5.00"), ("adjustment", "10.00")]);
    let owned = api.call(req("GET /workspace/addons").by(workspace_admin(P, W))).await.ok(200);
    assert_eq!(owned["owned"].as_array().unwrap().len(), 1, "one add-on, however often the request came");
    assert_eq!(api.verify(W).await, 3);
}

/// A replay answers as the first request did even when what it checked has changed since:
/// credit billing turned off, the add-on withdrawn and repriced, the cycle over (all within the
/// key's 7 days).
async fn a_purchase_replays_after_the_world_moved_on<T: Table>(api: Api<T>) {
    api.set_clock(datetime!(2026-04-29 10:00 UTC));
    api.tenants().await;
    api.fund(P, W, "10").await;
    let buy = || {
        req("POST /workspace/addons")
            .by(workspace_admin(P, W))
            .json(json!({ "addon": "extra_bot", "quantity": 1 }))
            .key("buy-late")
    };
    let first = api.call(buy()).await;
    assert_eq!((first.status, &first.body["charged"]), (201, &json!("0.33")), "10 x 1/30: {}", first.body);
    api.price(P, "extra_bot", "Bot", "30", false).await;
    let off = json!({ "credit_billing": false, "success_url": null, "cancel_url": null, "grace_days": 0 });
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(off)).await.ok(200);
    api.set_clock(datetime!(2026-05-01 08:00 UTC));
    let before = api.state().await;
    assert_eq!(api.call(buy()).await, first);
    assert_eq!(api.state().await, before);
}

async fn an_adjustment_replays_and_credits_once<T: Table>(api: Api<T>) {
    api.tenants().await;
    let adjust = |amount: &str| {
        req("POST /partner/workspaces/{id}/points")
            .param("id", W)
            .by(partner_admin(P))
            .json(json!({ "amount": amount, "reason": "bonus" }))
            .key("adj-1")
    };
    let first = replays(&api, adjust("25"), 201).await;
    assert_eq!(first["balance"], "25.00");
    api.call(adjust("26")).await.err(422, "idempotency_key_reused", None);
    assert_eq!(api.balance(P, W).await, "25.00");
    assert_eq!(api.verify(W).await, 1);
    // The same key on another workspace's path is another request too.
    api.workspace(P, "ws-acme-2", "starter").await;
    let elsewhere = req("POST /partner/workspaces/{id}/points").param("id", "ws-acme-2").by(partner_admin(P));
    api.call(elsewhere.json(json!({ "amount": "25", "reason": "bonus" })).key("adj-1")).await.err(
        422,
        "idempotency_key_reused",
        None,
    );
}

async fn every_mutation_replays<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "50").await;
    let admin = || partner_admin(P);
    let addon = json!({ "label": "Bot", "points": "8", "enabled": true });
    replays(&api, req("PUT /partner/addons/{code}").param("code", "extra_bot").by(admin()).json(addon).key("a"), 200)
        .await;
    let plan = json!({
        "label": "Starter",
        "limits": super::starter_limits(1, 2),
        "monthly_price": { "amount_minor": 4900, "currency": "usd" },
    });
    replays(&api, req("PUT /partner/plans/{id}").param("id", "starter").by(admin()).json(plan).key("b"), 200).await;
    let settings = json!({ "credit_billing": true, "success_url": null, "cancel_url": null, "grace_days": 2 });
    replays(&api, req("PUT /partner/settings").by(admin()).json(settings).key("c"), 200).await;
    let ws = json!({ "name": "Two", "plan": "starter", "cycle_anchor_day": 1 });
    let created = replays(&api, req("POST /partner/workspaces").by(admin()).json(ws).key("d"), 201).await;
    assert!(created["id"].as_str().is_some_and(|id| id.starts_with("ws_")), "{created}");
    let plan_change =
        req("PUT /partner/workspaces/{id}/plan").param("id", W).by(admin()).json(json!({ "plan": "growth" }));
    replays(&api, plan_change.key("e"), 200).await;
    let usage = req("PUT /platform/workspaces/{id}/usage-counts").param("id", W).by(platform());
    replays(&api, usage.json(json!({ "bots": 6, "members": 1, "bot_users": 1 })).key("f"), 200).await;
    let give = req("POST /partner/workspace/{id}/add-addon").param("id", W).by(admin());
    let given = replays(&api, give.json(json!({ "addon": "extra_bot", "quantity": 1 })).key("g"), 201).await;
    assert_eq!(given["workspace"]["status"], "active");
    let bought = replays(
        &api,
        req("POST /workspace/addons")
            .by(workspace_admin(P, W))
            .json(json!({ "addon": "extra_bot", "quantity": 1 }))
            .key("h"),
        201,
    )
    .await;
    let bought_id = bought["addon"]["id"].as_str().unwrap().to_owned();
    let given_id = given["addon"]["id"].as_str().unwrap().to_owned();

    // Changes whose preconditions the first request used up: the replay must still answer as the first did.
    let cancel = req("DELETE /workspace/addons/{addon_id}").param("addon_id", &bought_id).by(workspace_admin(P, W));
    let cancelled = replays(&api, cancel.key("i"), 200).await;
    assert_eq!(cancelled["addon"]["status"], "cancelling");
    let remove = req("DELETE /partner/workspaces/{id}/addons/{addon_id}").param("id", W).param("addon_id", &given_id);
    let removed = replays(&api, remove.by(admin()).key("j"), 200).await;
    assert_eq!(removed["workspace"]["limits"]["bots"], 6);
}

/// A key belongs to its tenant: two workspaces (and two partners) may use the same key for
/// different requests, each getting its own answer.
async fn keys_are_scoped_to_the_tenant<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "20").await;
    api.fund(Q, X, "20").await;
    let buy = |p: &str, w: &str, code: &str| {
        req("POST /workspace/addons")
            .by(workspace_admin(p, w))
            .json(json!({ "addon": code, "quantity": 1 }))
            .key("same")
    };
    assert_eq!(api.call(buy(P, W, "extra_bot")).await.ok(201)["addon"]["addon"], "extra_bot");
    assert_eq!(api.call(buy(Q, X, "extra_member")).await.ok(201)["addon"]["addon"], "extra_member");
    let adjust = |p: &str, w: &str, amount: &str| {
        req("POST /partner/workspaces/{id}/points")
            .param("id", w)
            .by(partner_admin(p))
            .json(json!({ "amount": amount, "reason": "r" }))
            .key("same")
    };
    assert_eq!(api.call(adjust(P, W, "1")).await.ok(201)["balance"], "16.00");
    assert_eq!(api.call(adjust(Q, X, "2")).await.ok(201)["balance"], "17.00");
    // And a tenant's key is not the platform's.
    let usage = req("PUT /platform/workspaces/{id}/usage-counts").param("id", W).by(platform());
    api.call(usage.json(json!({ "bots": 1, "members": 1, "bot_users": 1 })).key("same")).await.ok(200);
}

/// A key's stored answer belongs to the workspace it was used in: a token that names that
/// workspace under another partner gets "not found", never the answer (the checkout's URL, say).
async fn a_replay_checks_the_caller_first<T: Table>(api: Api<T>) {
    api.tenants().await;
    let option = super::checkout::seller(&api, Q).await;
    let theirs = api.call(super::checkout::checkout(Q, X, json!({ "topup_option_id": option })).key("k-1")).await;
    let theirs = theirs.ok(201);
    let intruder = req("POST /workspace/checkout").by(workspace_admin(P, X)).json(json!({ "topup_option_id": option }));
    let r = api.call(intruder.key("k-1")).await;
    r.err(404, "not_found", None);
    assert!(!r.body.to_string().contains(theirs["id"].as_str().unwrap()));
    let auto = json!({ "enabled": false });
    api.call(req("PUT /workspace/auto-topup").by(workspace_admin(Q, X)).json(auto.clone()).key("k-2")).await.ok(200);
    let r = api.call(req("PUT /workspace/auto-topup").by(workspace_admin(P, X)).json(auto).key("k-2")).await;
    r.err(404, "not_found", None);
}

api_suite!(
    a_replay_checks_the_caller_first,
    a_purchase_replays_and_debits_once,
    a_purchase_replays_after_the_world_moved_on,
    an_adjustment_replays_and_credits_once,
    every_mutation_replays,
    keys_are_scoped_to_the_tenant,
);

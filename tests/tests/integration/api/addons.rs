//! Add-ons through HTTP: bought by the workspace (prorated), given or removed by its partner,
//! cancelled at the cycle end.

use domain::WorkspaceId;
use serde_json::{Value, json};
use store::{Condition, Table, Write, keys, records};
use time::macros::datetime;

use super::{
    Api, P, W, admin_sub, lit, owner_sub, partner_admin, req, starter_limits, usage_json, workspace_admin,
    workspace_member,
};

fn buy_body(code: &str, quantity: Value) -> Value {
    json!({ "addon": code, "quantity": quantity })
}

/// The published proration example, end to end: cycle 1-30 April, a 10-point member add-on bought on 15 April
/// costs 5.00 (15 of 30 days remain), and the add-on keeps 10.00 as its price for the next cycle.
async fn proration_vector_thirty_day_cycle<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.price(P, "extra_member", "Extra seat", "10", true).await;
    api.fund(P, W, "20").await;
    let bought = api.buy(P, W, "extra_member", 1).await.ok(201);
    let id = bought["addon"]["id"].as_str().expect("an add-on id").to_owned();
    assert!(id.starts_with("ad_"), "{id}");
    assert_eq!(
        bought,
        json!({
            "addon": {
                "id": id,
                "addon": "extra_member",
                "label": "Extra seat",
                "quantity": 1,
                "unit_points": "10.00",
                "status": "active",
                "period_end": "2026-04-30",
            },
            "charged": "5.00",
            "full_price": "10.00",
            "days_remaining": 15,
            "days_in_cycle": 30,
            "cycle": { "start": "2026-04-01", "end": "2026-04-30" },
            "balance": "15.00",
            "ledger_entry": "ws:ws-acme-1:2",
            "workspace": {
                "id": W,
                "plan": "starter",
                "limits": starter_limits(1, 3),
                "usage": usage_json(0, 0, 0),
                "status": "active",
                "exceeded": [],
            },
        })
    );
    let ledger = api.ledger(P, W).await;
    assert_eq!(ledger.len(), 2);
    assert_eq!(
        ledger[0],
        json!({
            "id": "ws:ws-acme-1:2",
            "seq": 2,
            "amount": "-5.00",
            "balance_after": "15.00",
            "kind": "addon_purchase",
            "detail": {
                "addon_id": id,
                "addon": "extra_member",
                "quantity": 1,
                "unit_points": "10.00",
                "days_remaining": 15,
                "days_in_cycle": 30,
                "by_partner": false,
            },
            "actor": { "type": "user", "id": owner_sub(W) },
            "created_at": "2026-04-15T10:00:00Z",
        })
    );
    // What renews next cycle is the full price, whatever the partner charges later.
    api.price(P, "extra_member", "Extra seat", "12", true).await;
    let addons = api.call(req("GET /workspace/addons").by(workspace_member(P, W))).await.ok(200);
    assert_eq!(addons["owned"], json!([bought["addon"]]));
    let view = api.view(P, W).await;
    assert_eq!(view["balance"], "15.00");
    assert_eq!(view["limits"], starter_limits(1, 3));
    assert_eq!(view["addons"], json!([bought["addon"]]));
    assert_eq!(api.verify(W).await, 2);
}

/// A 31-day cycle (1-31 May), bought 15 May: 10 x 16/31 = 5.1613 -> 5.16.
async fn proration_vector_thirty_one_day_cycle<T: Table>(api: Api<T>) {
    api.set_clock(datetime!(2026-05-15 10:00 UTC));
    api.tenants().await;
    api.price(P, "extra_member", "Extra seat", "10", true).await;
    api.fund(P, W, "20").await;
    let bought = api.buy(P, W, "extra_member", 1).await.ok(201);
    let facts = (
        &bought["charged"],
        &bought["days_remaining"],
        &bought["days_in_cycle"],
        &bought["cycle"],
        &bought["balance"],
        &bought["addon"]["unit_points"],
        &bought["addon"]["period_end"],
    );
    assert_eq!(
        facts,
        (
            &json!("5.16"),
            &json!(16),
            &json!(31),
            &json!({ "start": "2026-05-01", "end": "2026-05-31" }),
            &json!("14.84"),
            &json!("10.00"),
            &json!("2026-05-31")
        )
    );
    // Quantity multiplies before the single rounding: 3 x 10 x 16/31 = 15.4838 -> 15.48.
    api.fund(P, W, "100").await;
    let three = api.buy(P, W, "extra_member", 3).await.ok(201);
    assert_eq!((&three["charged"], &three["full_price"]), (&json!("15.48"), &json!("30.00")));
    assert_eq!(three["balance"], "99.36");
    // On the cycle's last day the purchase costs 0.00 and is still recorded.
    api.set_clock(datetime!(2026-05-31 23:00 UTC));
    let last = api.buy(P, W, "extra_member", 1).await.ok(201);
    assert_eq!(
        (&last["charged"], &last["days_remaining"], &last["balance"]),
        (&json!("0.00"), &json!(0), &json!("99.36"))
    );
    let ledger = api.ledger(P, W).await;
    assert_eq!((&ledger[0]["amount"], &ledger[0]["kind"]), (&json!("0.00"), &json!("addon_purchase")));
    assert_eq!(api.verify(W).await, 5);
}

/// Anchor day 31 in April: the cycle is 31 March to 29 April (30 days), so a purchase on
/// 15 April has 14 days left: 10 x 14/30 = 4.6667 -> 4.67.
async fn proration_with_a_clamped_anchor<T: Table>(api: Api<T>) {
    api.partner(P, true).await;
    let created = api.provision(P, W, "Late", "starter", Some(31)).await;
    assert_eq!(created["cycle"], json!({ "start": "2026-03-31", "end": "2026-04-29" }));
    api.fund(P, W, "10").await;
    let bought = api.buy(P, W, "extra_member", 1).await.ok(201);
    let facts =
        (&bought["charged"], &bought["days_remaining"], &bought["days_in_cycle"], &bought["addon"]["period_end"]);
    assert_eq!(facts, (&json!("4.67"), &json!(14), &json!(30), &json!("2026-04-29")));
    assert_eq!(bought["balance"], "5.33");
}

async fn purchase_errors_write_nothing<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "100").await;
    api.price(P, "extra_10s_timeout", "Longer timeout", "40", false).await;
    let before = api.state().await;
    let cases = [
        (buy_body("extra_bot", json!(-1)), "quantity"),
        (buy_body("extra_bot", lit("1.5")), "quantity"),
        (buy_body("extra_bot", json!(0)), "quantity"),
        (buy_body("extra_bot", json!(1001)), "quantity"),
        (buy_body("extra_bot", json!("1")), "quantity"),
        (buy_body("extra_bot", json!(null)), "quantity"),
        (buy_body("extra_unicorn", json!(1)), "addon"),
        (buy_body("EXTRA_BOT", json!(1)), "addon"),
        (json!({ "addon": 7, "quantity": 1 }), "addon"),
        // Not on offer from this partner.
        (buy_body("extra_10s_timeout", json!(1)), "addon"),
        (json!({ "addon": "extra_bot", "quantity": 1, "points": "0.01" }), "points"),
    ];
    for (body, param) in cases {
        let r = api.call(req("POST /workspace/addons").by(workspace_admin(P, W)).json(body.clone()).key("k-bad")).await;
        assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some(param)), "{body}: {}", r.body);
        r.invalid(param);
    }
    // (Truncated JSON has its own test: input.rs.)
    for raw in ["not json", "", "[]", "null", "{\"addon\":\"extra_bot\",\"quantity\":1} x"] {
        let r = api.call(req("POST /workspace/addons").by(workspace_admin(P, W)).raw(raw).key("k-bad")).await;
        r.invalid("body");
    }
    let r =
        api.call(req("POST /workspace/addons").by(workspace_admin(P, W)).json(json!({ "addon": "extra_bot" }))).await;
    assert_eq!((r.status, &r.body["error"]["type"]), (400, &json!("invalid_request")), "{}", r.body);
    let no_key = req("POST /workspace/addons").by(workspace_admin(P, W)).json(buy_body("extra_bot", json!(1)));
    api.call(no_key.no_key()).await.invalid("Idempotency-Key");
    let long_key = req("POST /workspace/addons").by(workspace_admin(P, W)).json(buy_body("extra_bot", json!(1)));
    api.call(long_key.key("k".repeat(256))).await.invalid("Idempotency-Key");
    assert_eq!(api.state().await, before, "a refused purchase writes nothing");
    assert!(!api.key_recorded("ws:ws-acme-1", "k-bad").await);
    assert_eq!(api.balance(P, W).await, "100.00");
    // Nothing was recorded under the key: the corrected request goes through with it.
    let fixed = req("POST /workspace/addons").by(workspace_admin(P, W)).json(buy_body("extra_bot", json!(1)));
    assert_eq!(api.call(fixed.key("k-bad")).await.ok(201)["charged"], "5.00");
}

async fn insufficient_points_is_402_and_writes_nothing<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "4.99").await;
    let before = api.state().await;
    let r = api
        .call(req("POST /workspace/addons").by(workspace_admin(P, W)).json(buy_body("extra_bot", json!(1))).key("buy"));
    let r = r.await;
    r.err(402, "insufficient_points", None);
    assert_eq!(api.state().await, before, "no add-on, no ledger entry, no status change, no key");
    assert!(!api.key_recorded("ws:ws-acme-1", "buy").await);
    let addons = api.call(req("GET /workspace/addons").by(workspace_admin(P, W))).await.ok(200);
    assert_eq!(addons["owned"], json!([]));
    // Exactly enough is enough: 5.00 of 5.00.
    api.fund(P, W, "0.01").await;
    let r = api
        .call(req("POST /workspace/addons").by(workspace_admin(P, W)).json(buy_body("extra_bot", json!(1))).key("buy"));
    let bought = r.await.ok(201);
    assert_eq!((&bought["charged"], &bought["balance"]), (&json!("5.00"), &json!("0.00")));
    assert_eq!(api.verify(W).await, 3);
}

async fn credit_billing_off_refuses_purchases<T: Table>(api: Api<T>) {
    api.partner(P, false).await;
    api.workspace(P, W, "starter").await;
    api.fund(P, W, "100").await;
    let before = api.state().await;
    api.buy(P, W, "extra_bot", 1).await.err(403, "forbidden", None);
    assert_eq!(api.state().await, before);
    // The partner turns it on: the same purchase goes through; off again: refused again.
    let settings = |on: bool| json!({ "credit_billing": on, "success_url": null, "cancel_url": null, "grace_days": 0 });
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(settings(true))).await.ok(200);
    assert_eq!(api.buy(P, W, "extra_bot", 1).await.ok(201)["charged"], "5.00");
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(settings(false))).await.ok(200);
    let before = api.state().await;
    api.buy(P, W, "extra_bot", 1).await.err(403, "forbidden", None);
    assert_eq!(api.state().await, before);
    // A partner may still give add-ons.
    let give = req("POST /partner/workspace/{id}/add-addon").param("id", W).by(partner_admin(P));
    api.call(give.json(json!({ "addon": "extra_bot", "quantity": 1 }))).await.ok(201);
}

async fn partner_gives_free_by_default_and_charges_on_request<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "20").await;
    let give =
        |body: Value| req("POST /partner/workspace/{id}/add-addon").param("id", W).by(partner_admin(P)).json(body);
    let free = api.call(give(json!({ "addon": "extra_bot", "quantity": 2 }))).await.ok(201);
    assert_eq!(
        (&free["charged"], &free["full_price"], &free["balance"], &free["addon"]["quantity"]),
        (&json!("0.00"), &json!("20.00"), &json!("20.00"), &json!(2))
    );
    assert_eq!(free["workspace"]["limits"], starter_limits(3, 2));
    assert_eq!(api.balance(P, W).await, "20.00");
    let ledger = api.ledger(P, W).await;
    assert_eq!(
        ledger[0],
        json!({
            "id": "ws:ws-acme-1:2",
            "seq": 2,
            "amount": "0.00",
            "balance_after": "20.00",
            "kind": "addon_purchase",
            "detail": {
                "addon_id": free["addon"]["id"],
                "addon": "extra_bot",
                "quantity": 2,
                "unit_points": "10.00",
                "days_remaining": 15,
                "days_in_cycle": 30,
                "by_partner": true,
            },
            "actor": { "type": "user", "id": admin_sub(P) },
            "created_at": "2026-04-15T10:00:00Z",
        })
    );
    let charged = api.call(give(json!({ "addon": "extra_bot", "quantity": 1, "charge_points": true }))).await.ok(201);
    assert_eq!((&charged["charged"], &charged["balance"]), (&json!("5.00"), &json!("15.00")));
    let ledger = api.ledger(P, W).await;
    assert_eq!((&ledger[0]["amount"], &ledger[0]["detail"]["by_partner"]), (&json!("-5.00"), &json!(true)));
    assert_eq!(api.view(P, W).await["limits"], starter_limits(4, 2));

    // Charging beyond the balance is refused like the workspace's own purchase.
    let before = api.state().await;
    let r = api.call(give(json!({ "addon": "extra_10k_bot_users", "quantity": 1, "charge_points": true }))).await;
    r.err(402, "insufficient_points", None);
    let cases = [
        (json!({ "addon": "extra_bot", "quantity": -1 }), "quantity"),
        (json!({ "addon": "extra_bot", "quantity": lit("0.5") }), "quantity"),
        (json!({ "addon": "extra_unicorn", "quantity": 1 }), "addon"),
        (json!({ "addon": "extra_bot", "quantity": 1, "charge_points": "yes" }), "charge_points"),
        (json!({ "addon": "extra_bot", "quantity": 1, "price": "0" }), "price"),
    ];
    for (body, param) in cases {
        api.call(give(body)).await.invalid(param);
    }
    assert_eq!(api.state().await, before);
    assert_eq!(api.verify(W).await, 3);
}

async fn partner_removal_takes_effect_now<T: Table>(api: Api<T>) {
    api.tenants().await;
    let give = req("POST /partner/workspace/{id}/add-addon").param("id", W).by(partner_admin(P));
    let given = api.call(give.json(json!({ "addon": "extra_bot", "quantity": 1 }))).await.ok(201);
    let id = given["addon"]["id"].as_str().unwrap().to_owned();
    let remove = || req("DELETE /partner/workspaces/{id}/addons/{addon_id}").param("id", W).param("addon_id", &id);
    let removed = api.call(remove().by(partner_admin(P))).await.ok(200);
    assert_eq!(
        removed,
        json!({ "workspace": {
            "id": W,
            "plan": "starter",
            "limits": starter_limits(1, 2),
            "usage": usage_json(0, 0, 0),
            "status": "active",
            "exceeded": [],
        }})
    );
    let view = api.view(P, W).await;
    assert_eq!((&view["limits"], &view["addons"]), (&starter_limits(1, 2), &json!([])));
    let owned = api.call(req("GET /workspace/addons").by(workspace_admin(P, W))).await.ok(200);
    assert_eq!(owned["owned"], json!([]));
    // Removing it again (another key) is refused; so is an id that can't exist.
    let before = api.state().await;
    api.call(remove().by(partner_admin(P))).await.invalid("addon_id");
    let bogus = req("DELETE /partner/workspaces/{id}/addons/{addon_id}").param("id", W).param("addon_id", "ad_nothing");
    api.call(bogus.by(partner_admin(P))).await.err(404, "not_found", None);
    let malformed = req("DELETE /partner/workspaces/{id}/addons/{addon_id}").param("id", W).param("addon_id", "42");
    api.call(malformed.by(partner_admin(P))).await.err(404, "not_found", None);
    api.call(remove().by(partner_admin(P)).no_key()).await.invalid("Idempotency-Key");
    assert_eq!(api.state().await, before);
}

/// The workspace cancels: the add-on stays, and keeps counting, until its period ends.
async fn cancelling_keeps_the_addon_until_the_cycle_ends<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "20").await;
    let bought = api.buy(P, W, "extra_bot", 1).await.ok(201);
    let id = bought["addon"]["id"].as_str().unwrap().to_owned();
    api.usage(W, 2, 1, 10).await.ok(200);
    let cancel = || req("DELETE /workspace/addons/{addon_id}").param("addon_id", &id);
    let cancelled = api.call(cancel().by(workspace_admin(P, W))).await.ok(200);
    let mut expected = bought["addon"].clone();
    expected["status"] = json!("cancelling");
    assert_eq!(cancelled, json!({ "addon": expected }));

    let view = api.view(P, W).await;
    assert_eq!(
        (&view["status"], &view["limits"], &view["addons"], &view["balance"]),
        (&json!("active"), &starter_limits(2, 2), &json!([expected]), &json!("15.00")),
        "no refund, and the bot it pays for still counts"
    );
    // A fresh evaluation (a usage report) still counts it.
    let r = api.usage(W, 2, 1, 11).await.ok(200);
    assert_eq!((&r["workspace"]["status"], &r["workspace"]["limits"]["bots"]), (&json!("active"), &json!(2)));
    let entitlements = req("GET /platform/workspaces/{id}/entitlements").param("id", W).by(super::platform());
    assert_eq!(api.call(entitlements).await.ok(200)["paused"], false);
    let owned = api.call(req("GET /workspace/addons").by(workspace_admin(P, W))).await.ok(200);
    assert_eq!(owned["owned"], json!([expected]));

    // Cancelling twice (another key), a member, or an id that does not exist: refused, nothing written.
    let before = api.state().await;
    api.call(cancel().by(workspace_admin(P, W))).await.invalid("addon_id");
    api.call(cancel().by(workspace_member(P, W))).await.err(403, "forbidden", None);
    let bogus = req("DELETE /workspace/addons/{addon_id}").param("addon_id", "ad_000000000000000000000000");
    api.call(bogus.by(workspace_admin(P, W))).await.err(404, "not_found", None);
    api.call(cancel().by(workspace_admin(P, W)).no_key()).await.invalid("Idempotency-Key");
    assert_eq!(api.state().await, before);
    // The partner can still remove it now; then it stops counting and the workspace pauses.
    let remove = req("DELETE /partner/workspaces/{id}/addons/{addon_id}").param("id", W).param("addon_id", &id);
    let removed = api.call(remove.by(partner_admin(P))).await.ok(200);
    assert_eq!(
        (&removed["workspace"]["status"], &removed["workspace"]["exceeded"]),
        (&json!("paused"), &json!(["bots"]))
    );
}

/// Six purchases at once against a balance that pays for two: never more than two go through,
/// the others are refused (402, or 409 if the workspace kept moving) with nothing written, and
/// the wallet, the ledger, the add-ons and the limits all agree afterwards.
async fn concurrent_purchases_never_overdraw<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "10").await;
    let api = std::sync::Arc::new(api);
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.buy(P, W, "extra_bot", 1).await })
        })
        .collect();
    let mut statuses = vec![];
    for t in tasks {
        let r = t.await.expect("the task ran");
        if r.status != 201 {
            assert!(r.status == 402 || r.status == 409, "{} {}", r.status, r.body);
        }
        statuses.push(r.status);
    }
    let bought = statuses.iter().filter(|s| **s == 201).count();
    assert_eq!(bought, 2, "{statuses:?}");
    let view = api.view(P, W).await;
    assert_eq!((&view["balance"], &view["limits"]["bots"]), (&json!("0.00"), &json!(3)));
    assert_eq!(view["addons"].as_array().unwrap().len(), 2);
    assert_eq!(api.verify(W).await, 3);
}

/// A workspace whose profile was written before add-ons moved into profiles: its add-ons are
/// items of their own (written here straight into the table). Every route sees them as before,
/// the first change stores them in the profile, and they are cancelled, removed and renewed
/// like any.
async fn a_profile_from_before_addons_moved_into_it_keeps_them<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "100").await;
    // A minute apart: an earlier profile's add-ons are read in the order they were bought.
    api.set_clock(datetime!(2026-04-15 10:00 UTC));
    let bot = api.buy(P, W, "extra_bot", 1).await.ok(201)["addon"].clone();
    api.set_clock(datetime!(2026-04-15 10:01 UTC));
    let member = api.buy(P, W, "extra_member", 1).await.ok(201)["addon"].clone();
    let view = api.view(P, W).await;
    let w = WorkspaceId::parse(W).unwrap();
    let table = api.billing.store.table();
    let ws = api.billing.workspace(&w).await.unwrap();
    let mut earlier = records::workspace_item(&ws);
    earlier.0.remove("addons");
    let mut writes: Vec<Write> = ws
        .addons
        .iter()
        .map(|a| Write::Put { item: records::workspace_addon_item(&w, a), condition: Condition::Always })
        .collect();
    writes.push(Write::Put { item: earlier, condition: Condition::Always });
    table.transact(writes).await.unwrap();
    let stored = || async { table.get(&keys::workspace_profile(&w)).await.unwrap().unwrap() };
    assert!(!records::holds_addons(&stored().await));

    assert_eq!(api.view(P, W).await, view, "read as before");
    let owned = api.call(req("GET /workspace/addons").by(workspace_admin(P, W))).await.ok(200);
    assert_eq!(owned["owned"], json!([bot, member]));
    let cancel = req("DELETE /workspace/addons/{addon_id}").param("addon_id", bot["id"].as_str().unwrap());
    api.call(cancel.by(workspace_admin(P, W))).await.ok(200);
    assert!(records::holds_addons(&stored().await), "the first change stores them in the profile");
    let remove = req("DELETE /partner/workspaces/{id}/addons/{addon_id}")
        .param("id", W)
        .param("addon_id", member["id"].as_str().unwrap());
    api.call(remove.by(partner_admin(P))).await.ok(200);
    let view = api.view(P, W).await;
    assert_eq!(view["addons"].as_array().unwrap().len(), 1, "{view}");
    assert_eq!((&view["addons"][0]["status"], &view["limits"]["bots"]), (&json!("cancelling"), &json!(2)));
    // Removed before: refused as removed, from its history item.
    let again = req("DELETE /partner/workspaces/{id}/addons/{addon_id}")
        .param("id", W)
        .param("addon_id", member["id"].as_str().unwrap());
    api.call(again.by(partner_admin(P))).await.invalid("addon_id");
    assert_eq!(api.verify(W).await, 3);
}

/// The quote says before the purchase what the purchase then charges: 5.00 now for the half
/// of April left, 10.00 a month after; for a paused workspace, that the add-on resumes it; and
/// when the points are short, that they are. It writes nothing.
async fn a_quote_is_what_the_purchase_charges<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.price(P, "extra_bot", "Extra bot", "10", true).await;
    api.fund(P, W, "7").await;
    assert_eq!(api.usage(W, 2, 1, 10).await.ok(200)["workspace"]["status"], "paused");
    let quote = |addon: &str, quantity: &str| {
        req("GET /workspace/addons/quote").by(workspace_member(P, W)).query("addon", addon).query("quantity", quantity)
    };
    let before = api.state().await;
    let q = api.call(quote("extra_bot", "1")).await.ok(200);
    assert_eq!(
        q,
        json!({
            "addon": "extra_bot",
            "label": "Extra bot",
            "quantity": 1,
            "unit_points": "10.00",
            "now": "5.00",
            "per_month": "10.00",
            "days_remaining": 15,
            "days_in_cycle": 30,
            "cycle": { "start": "2026-04-01", "end": "2026-04-30" },
            "balance": "7.00",
            "balance_after": "2.00",
            "enough_points": true,
            "limits_after": starter_limits(2, 2),
            "status_after": { "status": "active", "exceeded": [] },
        })
    );
    // Two bots cost 10.00 now, more than the 7.00 there.
    let two = api.call(quote("extra_bot", "2")).await.ok(200);
    assert_eq!(
        (&two["now"], &two["balance_after"], &two["enough_points"]),
        (&json!("10.00"), &Value::Null, &json!(false))
    );
    assert_eq!(api.state().await, before, "a quote writes nothing");
    for (addon, quantity, param) in
        [("extra_nothing", "1", "addon"), ("extra_bot", "0", "quantity"), ("extra_bot", "x", "quantity")]
    {
        let r = api.call(quote(addon, quantity)).await;
        assert_eq!(
            (r.status, r.body["error"]["param"].as_str()),
            (400, Some(param)),
            "{addon} x {quantity}: {}",
            r.body
        );
    }
    let bought = api.buy(P, W, "extra_bot", 1).await.ok(201);
    assert_eq!((&bought["charged"], &bought["balance"]), (&q["now"], &q["balance_after"]));
    assert_eq!(bought["workspace"]["status"], q["status_after"]["status"]);
}

api_suite!(
    a_quote_is_what_the_purchase_charges,
    a_profile_from_before_addons_moved_into_it_keeps_them,
    concurrent_purchases_never_overdraw,
    proration_vector_thirty_day_cycle,
    proration_vector_thirty_one_day_cycle,
    proration_with_a_clamped_anchor,
    purchase_errors_write_nothing,
    insufficient_points_is_402_and_writes_nothing,
    credit_billing_off_refuses_purchases,
    partner_gives_free_by_default_and_charges_on_request,
    partner_removal_takes_effect_now,
    cancelling_keeps_the_addon_until_the_cycle_ends,
);

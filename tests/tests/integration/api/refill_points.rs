//! Auto top-up by the point: a workspace whose partner sells points at a credit rate refills
//! "under X, buy Y points" for any Y the rate sells, not only one of the partner's options, at
//! the rate as it is when each refill starts, within Stripe's charge limits and the rate's bounds.

use serde_json::{Value, json};
use store::Table;

use super::autotopup::with_saved_card;
use super::{Api, P, W, partner_admin, req, workspace_admin};

fn put(body: Value) -> super::Req {
    req("PUT /workspace/auto-topup").by(workspace_admin(P, W)).json(body)
}

async fn rate<T: Table>(api: &Api<T>, price: &str) {
    let body = json!({ "currency": "usd", "price_per_point": price, "min_points": "2" });
    api.call(req("PUT /partner/credit-rate").by(partner_admin(P)).json(body)).await.ok(200);
}

/// What the off-session charges asked Stripe for: amount and description, in order.
fn charges<T>(api: &Api<T>) -> Vec<(i64, String)> {
    api.stripe
        .requests()
        .iter()
        .filter(|r| r.operation.as_deref() == Some("payment_intents.create"))
        .map(|r| {
            let amount = r.params["amount"].as_str().and_then(|a| a.parse().ok()).unwrap_or(-1);
            (amount, r.params["description"].as_str().unwrap_or("(none)").to_owned())
        })
        .collect()
}

/// `count` minutes of voice re-billed at 0.15 points each, and the charging pass after each.
async fn talk<T: Table>(api: &Api<T>, from: usize, count: usize) {
    for i in from..from + count {
        let body =
            json!({ "workspace_id": W, "meter": "voice_minutes", "quantity": "1", "event_id": format!("call-{i}") });
        api.call(req("POST /platform/usage").by(super::platform()).json(body)).await.ok(200);
        assert_eq!(api.charge_refills().await.errors, 0);
    }
}

async fn a_refill_by_points_buys_them_at_the_rate<T: Table>(api: Api<T>) {
    with_saved_card(&api, 0).await;
    api.fund(P, W, "10").await;
    rate(&api, "0.50").await;
    let rebill = json!({ "enabled": true, "rates": { "voice_minutes": "0.15" } });
    api.call(req("PUT /partner/workspaces/{id}/rebilling").param("id", W).by(partner_admin(P)).json(rebill))
        .await
        .ok(200);
    let on = api.call(put(json!({ "enabled": true, "points": "4", "threshold": "5" }))).await.ok(200);
    assert_eq!(
        (&on["points"], &on["topup_option_id"], &on["threshold"]),
        (&json!("4.00"), &Value::Null, &json!("5.00"))
    );
    assert_eq!(api.view(P, W).await["auto_topup"]["points"], "4.00");

    // 10 - 34 x 0.15 = 4.90, under 5: 4 points for 2.00 USD, one charge.
    talk(&api, 0, 34).await;
    assert_eq!(charges(&api), [(200, "Auto top-up: 4 points".to_owned())]);
    assert_eq!(api.balance(P, W).await, "8.90");
    let entry = &api.ledger(P, W).await[0];
    assert_eq!((&entry["kind"], &entry["amount"]), (&json!("top_up"), &json!("4.00")));
    assert_eq!((&entry["detail"]["topup_option_id"], &entry["detail"]["amount"]), (&Value::Null, &json!("2.00")));

    // The partner raises its rate and names its points: the next refill pays the rate of now.
    rate(&api, "0.75").await;
    let settings = json!({
        "credit_billing": true, "success_url": "https://agency.example/ok", "cancel_url": "https://agency.example/back",
        "grace_days": 0, "unit_name": "credits",
    });
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(settings)).await.ok(200);
    // 8.90 - 27 x 0.15 = 4.85.
    talk(&api, 34, 27).await;
    assert_eq!(charges(&api)[1], (300, "Auto top-up: 4 credits".to_owned()));
    assert_eq!(api.balance(P, W).await, "8.85");

    // Its bounds move past the setting: the refill is refused and says why, nothing charged.
    let body = json!({ "currency": "usd", "price_per_point": "0.75", "min_points": "5" });
    api.call(req("PUT /partner/credit-rate").by(partner_admin(P)).json(body)).await.ok(200);
    talk(&api, 61, 27).await;
    assert_eq!(charges(&api).len(), 2);
    assert_eq!(api.view(P, W).await["auto_topup"]["last_failure"]["code"], "points_out_of_bounds");
    assert_eq!(api.verify(W).await, 3 + 88 + 2);
}

async fn settings_by_points_are_checked<T: Table>(api: Api<T>) {
    let option = with_saved_card(&api, 0).await;
    let before = api.state().await;
    // No rate yet: nothing to buy by the point.
    api.call(put(json!({ "enabled": true, "points": "4" }))).await.invalid("points");
    rate(&api, "0.50").await;
    let before_rate = api.state().await;
    for (body, param) in [
        (json!({ "enabled": true, "points": "4", "topup_option_id": option }), "points"),
        (json!({ "enabled": true, "points": "0" }), "points"),
        // Under the rate's 2 points, and 1.5 points = 0.75 USD would pass Stripe's minimum.
        (json!({ "enabled": true, "points": "1.5" }), "points"),
        // 2,000,000 points = 1,000,000.00 USD: over Stripe's largest charge (999,999.99).
        (json!({ "enabled": true, "points": "2000000" }), "points"),
        (json!({ "enabled": true, "points": "4", "monthly_cap_minor": 199 }), "monthly_cap_minor"),
        (json!({ "enabled": false, "points": "4" }), "points"),
        (json!({ "enabled": true, "points": "four" }), "points"),
    ] {
        api.call(put(body.clone())).await.invalid(param);
    }
    assert_eq!(api.state().await, before_rate, "refused settings write nothing");
    assert_ne!(before, before_rate);
    // Back to an option: the points are gone from the setting.
    api.call(put(json!({ "enabled": true, "points": "4", "monthly_cap_minor": 200 }))).await.ok(200);
    let on = api.call(put(json!({ "enabled": true, "topup_option_id": option }))).await.ok(200);
    assert_eq!((&on["points"], &on["topup_option_id"]), (&Value::Null, &json!(option)));
}

api_suite!(a_refill_by_points_buys_them_at_the_rate, settings_by_points_are_checked);

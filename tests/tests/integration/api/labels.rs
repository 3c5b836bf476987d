//! The partner's words in what its customers read: the name it gives its points, and its top-up
//! options' labels, on the Checkout page (the line item) and on an auto top-up's charge.

use serde_json::{Value, json};
use store::Table;
use time::macros::datetime;

use super::autotopup::{run, turn_on, with_saved_card};
use super::checkout::checkout;
use super::{Api, P, W, partner_admin, req, workspace_member};

/// P's settings for selling, with its points named `unit` (none: left out).
fn settings(unit: Option<&str>) -> Value {
    let mut s = json!({
        "credit_billing": true, "success_url": "https://agency.example/ok", "cancel_url": "https://agency.example/back",
        "grace_days": 0,
    });
    if let Some(unit) = unit {
        s["unit_name"] = json!(unit);
    }
    s
}

/// What the requests of `operation` asked Stripe for, at `path` of their parameters, in order.
fn asked<T>(api: &Api<T>, operation: &str, path: &[&str]) -> Vec<String> {
    api.stripe
        .requests()
        .iter()
        .filter(|r| r.operation.as_deref() == Some(operation))
        .map(|r| path.iter().fold(&r.params, |v, k| &v[*k]).as_str().unwrap_or("(none)").to_owned())
        .collect()
}

async fn checkout_names_the_option_and_the_partners_points<T: Table>(api: Api<T>) {
    api.partner(P, true).await;
    api.workspace(P, W, "starter").await;
    let saved =
        api.call(req("PUT /partner/settings").by(partner_admin(P)).json(settings(Some("credits")))).await.ok(200);
    assert_eq!(saved["unit_name"], "credits");
    assert_eq!(api.call(req("GET /partner/settings").by(partner_admin(P))).await.ok(200)["unit_name"], "credits");
    let options =
        json!({ "options": [{ "label": "Starter pack", "currency": "usd", "amount_minor": 1000, "points": "500" }] });
    let saved = api.call(req("PUT /partner/topup-options").by(partner_admin(P)).json(options)).await.ok(200);
    let option = saved["data"][0]["id"].as_str().unwrap().to_owned();
    let rate = json!({ "currency": "usd", "price_per_point": "0.012" });
    api.call(req("PUT /partner/credit-rate").by(partner_admin(P)).json(rate)).await.ok(200);
    let offers = api.call(req("GET /workspace/topup-options").by(workspace_member(P, W))).await.ok(200);
    assert_eq!(offers["unit_name"], "credits", "the page that sells says them too");
    let own = api.call(req("GET /workspace").by(workspace_member(P, W))).await.ok(200);
    assert_eq!((&own["unit_name"], &own["balance"]), (&json!("credits"), &json!("0.00")), "and its balance's");

    api.call(checkout(P, W, json!({ "topup_option_id": option }))).await.ok(201);
    api.call(checkout(P, W, json!({ "points": "1000" }))).await.ok(201);
    let names = asked(&api, "checkout.sessions.create", &["line_items", "0", "price_data", "product_data", "name"]);
    assert_eq!(names, ["Starter pack (500 credits)", "1000 credits"]);

    // Named back to the default when a replacement of the settings leaves the name out.
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(settings(None))).await.ok(200);
    api.call(checkout(P, W, json!({ "points": "1000" }))).await.ok(201);
    let names = asked(&api, "checkout.sessions.create", &["line_items", "0", "price_data", "product_data", "name"]);
    assert_eq!(names.last().map(String::as_str), Some("1000 points"));
}

async fn an_auto_top_up_charge_names_the_option_and_the_partners_points<T: Table>(api: Api<T>) {
    let option = with_saved_card(&api, 0).await;
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(settings(Some("credits")))).await.ok(200);
    turn_on(&api, &option).await;
    api.set_clock(datetime!(2026-05-01 06:00 UTC));
    run(&api).await;
    // 20 credits short of the renewal: two of the option "Small" (10 credits each), one charge.
    assert_eq!(asked(&api, "payment_intents.create", &["description"]), ["Auto top-up: 2 x Small (20 credits)"]);
}

async fn a_bad_unit_name_is_refused_with_nothing_written<T: Table>(api: Api<T>) {
    api.partner(P, true).await;
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(settings(Some("credits")))).await.ok(200);
    let before = api.state().await;
    for bad in [json!(""), json!(" credits"), json!("credits\n"), json!("twenty-one characters"), json!(5)] {
        let mut body = settings(None);
        body["unit_name"] = bad.clone();
        let refused = api.call(req("PUT /partner/settings").by(partner_admin(P)).json(body)).await;
        refused.invalid("unit_name");
    }
    assert_eq!(api.state().await, before, "nothing written");
    assert_eq!(api.call(req("GET /partner/settings").by(partner_admin(P))).await.ok(200)["unit_name"], "credits");
}

api_suite!(
    checkout_names_the_option_and_the_partners_points,
    an_auto_top_up_charge_names_the_option_and_the_partners_points,
    a_bad_unit_name_is_refused_with_nothing_written,
);

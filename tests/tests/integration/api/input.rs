//! Where a body goes wrong: a syntax error is the whole body's fault, a field is named by its path.

use serde_json::json;
use store::Table;

use super::access::{allowed, callers, sample};
use super::{ALL_ROUTES, Api, P, W, partner_admin, platform, req};

/// Every route that takes a body, with JSON cut short in the middle of a value, between
/// fields, or before the closing brace. A syntax error is about the body, not about the field
/// the parser happened to be in (and never the placeholder "?").
async fn truncated_json_names_the_body<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "100").await;
    let target = super::access::target(W, "ad_unused");
    let before = api.state().await;
    let mut wrong = vec![];
    // Reinstating a partner, saving a workspace's card, rolling a webhook secret and replaying
    // a delivery are the mutations without a body.
    let without = ["POST /workspace/card", "POST /partner/webhook/secret"];
    let with_body = |r: &&str| {
        (r.starts_with("POST") || r.starts_with("PUT"))
            && !r.ends_with("/reinstate")
            && !r.ends_with("/replay")
            && !without.contains(r)
    };
    for route in ALL_ROUTES.iter().copied().filter(with_body) {
        let caller = callers().into_iter().zip(allowed(route)).find(|(_, ok)| *ok).map(|(c, _)| c).unwrap();
        let body = sample(route, &target).event()["body"].as_str().expect("a route with a body").to_owned();
        let colon = body.find(':').expect("a body of fields");
        let comma = body.find(',').unwrap_or(colon);
        for cut in [&body[..=colon], &body[..=comma], &body[..body.len() - 1]] {
            let r = api.call(sample(route, &target).by(caller.clone()).raw(cut)).await;
            assert_eq!(r.status, 400, "{route} with {cut}: {}", r.body);
            let param = r.body["error"]["param"].as_str().unwrap_or_default().to_owned();
            if param != "body" {
                wrong.push(format!("{route} with {cut:?} -> param {param:?}"));
            }
        }
    }
    assert_eq!(api.state().await, before);
    assert!(wrong.is_empty(), "truncated JSON must name the body:\n{}", wrong.join("\n"));
}

/// A field inside an object is named by its path, like a wrong value there is ("limits.bots"):
/// an unknown one too, so a client can tell where it went wrong.
async fn unknown_nested_fields_name_their_path<T: Table>(api: Api<T>) {
    api.tenants().await;
    let before = api.state().await;
    let plan = json!({
        "label": "Starter",
        "limits": {
            "bots": 1, "members": 2, "bot_users": 1000, "inbound_webhook_requests_per_month": 1000,
            "external_request_timeout_s": 10, "seats": 3,
        },
        "monthly_price": { "amount_minor": 4900, "currency": "usd" },
    });
    let put = req("PUT /partner/plans/{id}").param("id", "starter").by(partner_admin(P)).json(plan);
    api.call(put).await.invalid("limits.seats");
    assert_eq!(api.state().await, before);
}

/// `Decimal::from_str` rounds past 28 digits: these amounts would become 1.00 points, a 0.00
/// price, a 0.05 rate, 1 minute, a 10.00 USD charge. Each is refused on its text, naming its field,
/// with nothing written and nothing sent to Stripe.
async fn many_decimal_places_are_refused_not_rounded<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "10").await;
    let before = api.state().await;
    let stripe_requests = api.stripe.requests().len();
    let nines = "0.99999999999999999999999999999";
    let tiny = "0.000000000000000000000000000001";
    let by_partner = |route: &'static str| req(route).by(partner_admin(P)).key("k-many");
    let adjust = |amount: String| {
        by_partner("POST /partner/workspaces/{id}/points")
            .param("id", W)
            .json(json!({ "amount": amount, "reason": "r" }))
    };
    let cases = [
        (adjust(nines.into()), "amount"),
        (adjust(format!("-{nines}")), "amount"),
        (adjust(tiny.into()), "amount"),
        (
            by_partner("PUT /partner/addons/{code}").param("code", "extra_bot").json(json!({
                "label": "Bot", "points": tiny, "enabled": true,
            })),
            "points",
        ),
        (
            by_partner("PUT /partner/credit-rate")
                .json(json!({ "currency": "usd", "price_per_point": "0.0499999999999999999999999999999" })),
            "price_per_point",
        ),
        (
            by_partner("PUT /partner/topup-options").json(json!({
                "options": [{ "label": "Pack", "currency": "usd", "amount_minor": 1000, "points": "9.999999999999999999999999999999" }],
            })),
            "options[0].points",
        ),
        (
            by_partner("POST /partner/wallet/checkout").json(json!({
                "amount": "9.999999999999999999999999999999",
                "success_url": "https://agency.example/paid",
                "cancel_url": "https://agency.example/back",
            })),
            "amount",
        ),
        (
            req("POST /platform/usage").by(platform()).key("k-many").json(json!({
                "workspace_id": W, "meter": "voice_minutes", "quantity": nines, "event_id": "evt-nines",
            })),
            "quantity",
        ),
    ];
    for (request, param) in cases {
        let r = api.call(request).await;
        assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some(param)), "{}", r.body);
        r.invalid(param);
    }
    assert_eq!(api.state().await, before, "a refused amount writes nothing");
    assert_eq!(api.stripe.requests().len(), stripe_requests, "no Stripe call");
    assert!(!api.key_recorded("partner:p-acme", "k-many").await);
    assert_eq!(api.balance(P, W).await, "10.00");
    // The same field takes its 2 places exactly, zeros past them included.
    let r = api.call(adjust("0.99000000000000000000000000000000".into()).key("k-ok")).await.ok(201);
    assert_eq!((&r["entry"]["amount"], &r["balance"]), (&json!("0.99"), &json!("10.99")));
    assert_eq!(api.balance(P, W).await, "10.99");
}

/// Every Checkout URL needs a scheme and a host: Stripe would refuse every session on `https://`.
async fn checkout_urls_need_a_host<T: Table>(api: Api<T>) {
    api.tenants().await;
    let before = api.state().await;
    let stripe_requests = api.stripe.requests().len();
    let ok = "https://agency.example/paid";
    for bad in ["https://", "https:///paid", "https://@", "https://agency.example@evil.example/", "https://:443"] {
        for (param, success, cancel) in [("success_url", bad, ok), ("cancel_url", ok, bad)] {
            let settings =
                json!({ "credit_billing": false, "success_url": success, "cancel_url": cancel, "grace_days": 0 });
            let put = req("PUT /partner/settings").by(partner_admin(P)).json(settings).key("k-url");
            api.call(put).await.invalid(param);
            let body = json!({ "amount": "10.00", "success_url": success, "cancel_url": cancel });
            let checkout = req("POST /partner/wallet/checkout").by(partner_admin(P)).json(body).key("k-url");
            api.call(checkout).await.invalid(param);
        }
    }
    assert_eq!(api.state().await, before, "a refused URL writes nothing");
    assert_eq!(api.stripe.requests().len(), stripe_requests, "no Stripe call");
    assert!(!api.key_recorded("partner:p-acme", "k-url").await);
    let settings = json!({ "credit_billing": false, "success_url": ok, "cancel_url": "http://localhost:3000/back", "grace_days": 0 });
    let saved = api.call(req("PUT /partner/settings").by(partner_admin(P)).json(settings).key("k-url")).await.ok(200);
    assert_eq!(
        (&saved["success_url"], &saved["cancel_url"]),
        (&json!(ok), &json!("http://localhost:3000/back")),
        "{saved}"
    );
}

api_suite!(
    truncated_json_names_the_body,
    unknown_nested_fields_name_their_path,
    many_decimal_places_are_refused_not_rounded,
    checkout_urls_need_a_host,
);

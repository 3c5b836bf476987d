//! Where a body goes wrong: a syntax error is the whole body's fault, a field is named by its path.

use serde_json::json;
use shared::store::Table;

use super::access::{allowed, callers, sample};
use super::{ALL_ROUTES, Api, P, W, partner_admin, req};

/// Every route that takes a body, with JSON cut short in the middle of a value, between
/// fields, or before the closing brace. A syntax error is about the body, not about the field
/// the parser happened to be in (and never the placeholder "?").
async fn truncated_json_names_the_body<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "100").await;
    let target = super::access::target(W, "ad_unused");
    let before = api.state().await;
    let mut wrong = vec![];
    // Reinstating a partner is the one mutation without a body.
    let with_body = |r: &&str| (r.starts_with("POST") || r.starts_with("PUT")) && !r.ends_with("/reinstate");
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

api_suite!(truncated_json_names_the_body, unknown_nested_fields_name_their_path);

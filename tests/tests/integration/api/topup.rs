//! Top-up options and the credit rate: the partner sets them (each option checked per currency as
//! Stripe would charge it, both at or above the wholesale floor per point of their currency), the
//! workspace sees what it may pay and never the wholesale floors.

use billing::{MAX_TOPUP_OPTIONS, PlatformConfig};
use domain::{PartnerId, WholesaleFloors};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use store::{Table, keys};

use super::{Api, P, Q, Req, W, X, all_keys, lit, partner_admin, platform, req, workspace_admin, workspace_member};

fn option(label: &str, currency: &str, amount_minor: i64, points: &str) -> Value {
    json!({ "label": label, "currency": currency, "amount_minor": amount_minor, "points": points })
}

fn with_id(mut option: Value, id: &str) -> Value {
    option["id"] = json!(id);
    option
}

fn put_options(p: &str, options: Vec<Value>) -> Req {
    req("PUT /partner/topup-options").by(partner_admin(p)).json(json!({ "options": options }))
}

fn put_rate(p: &str, currency: &str, price_per_point: &str) -> Req {
    req("PUT /partner/credit-rate")
        .by(partner_admin(p))
        .json(json!({ "currency": currency, "price_per_point": price_per_point }))
}

/// A partner's credit rate as the API shows it: every field, a bound not set is `null`.
fn rate_view(currency: &str, price_per_point: &str, min_points: Option<&str>, max_points: Option<&str>) -> Value {
    json!({
        "currency": currency,
        "price_per_point": price_per_point,
        "min_points": min_points,
        "max_points": max_points,
    })
}

fn put_bounded_rate(p: &str, price_per_point: &str, min_points: Value, max_points: Value) -> Req {
    let body = json!({ "currency": "usd", "price_per_point": price_per_point, "min_points": min_points, "max_points": max_points });
    req("PUT /partner/credit-rate").by(partner_admin(p)).json(body)
}

async fn partner_view<T: Table>(api: &Api<T>, p: &str) -> Value {
    api.call(req("GET /partner/topup-options").by(partner_admin(p))).await.ok(200)
}

async fn workspace_view<T: Table>(api: &Api<T>, p: &str, w: &str) -> Value {
    api.call(req("GET /workspace/topup-options").by(workspace_admin(p, w))).await.ok(200)
}

/// The ids of a list of options, in order.
fn ids(data: &Value) -> Vec<String> {
    data.as_array().expect("a list").iter().map(|o| o["id"].as_str().expect("an id").to_owned()).collect()
}

/// `data` without the ids, to compare with what was sent.
fn without_ids(data: &Value) -> Vec<Value> {
    data.as_array()
        .expect("a list")
        .iter()
        .map(|o| {
            let mut o = o.clone();
            o.as_object_mut().unwrap().remove("id");
            o
        })
        .collect()
}

/// Bonus tiers ($10 -> 10 points, $100 -> 150 points), a yen and a dinar option, and
/// a second $10 option: the same currency and amount twice is allowed.
fn tiers() -> Vec<Value> {
    vec![
        option("Starter pack", "usd", 1000, "10"),
        option("Best value", "usd", 10000, "150"),
        option("Yen pack", "JPY", 1000, "12.5"),
        option("Dinar pack", "kwd", 5120, "20"),
        option("Spring promo", "usd", 1000, "15"),
    ]
}

/// The deployment's default floors, as `WHOLESALE_FLOORS` would set them.
fn floors(setting: &str) -> PlatformConfig {
    PlatformConfig { wholesale_floors: WholesaleFloors::parse_setting(setting).unwrap(), ..Default::default() }
}

fn wholesale(price_per_point: &str) -> PlatformConfig {
    floors(&format!("usd={price_per_point}"))
}

/// Floors in the three currencies of [`tiers`]: 80 JPY and 0.256 KWD a point are above them.
const THREE_CURRENCIES: &str = "usd=0.01,jpy=1,kwd=0.01";

async fn options_are_set_and_read_back<T: Table>(mut api: Api<T>) {
    api.billing.platform = floors(THREE_CURRENCIES);
    api.tenants().await;
    let empty = partner_view(&api, P).await;
    assert_eq!(
        empty,
        json!({
            "data": [],
            "credit_rate": null,
            "wholesale_floors": { "jpy": "1", "kwd": "0.010", "usd": "0.01" },
        })
    );
    let before = api.state().await;
    let saved = api.call(put_options(P, tiers())).await.ok(200);
    assert_eq!(api.state().await.len(), before.len() + 1, "one item holds the whole list");
    let expected = vec![
        option("Starter pack", "usd", 1000, "10.00"),
        option("Best value", "usd", 10000, "150.00"),
        option("Yen pack", "jpy", 1000, "12.50"),
        option("Dinar pack", "kwd", 5120, "20.00"),
        option("Spring promo", "usd", 1000, "15.00"),
    ];
    assert_eq!(without_ids(&saved["data"]), expected);
    assert_eq!(saved.as_object().unwrap().len(), 1, "{saved}");
    let ids = ids(&saved["data"]);
    for id in &ids {
        assert!(id.starts_with("to_") && id.len() == 27, "{id}");
    }
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 5, "every option has its own id: {ids:?}");

    let read = partner_view(&api, P).await;
    assert_eq!(read["data"], saved["data"]);
    assert_eq!(read["credit_rate"], Value::Null);
    // What the partner reads it can send back as is: same ids, same options.
    let again = api.call(put_options(P, read["data"].as_array().unwrap().clone())).await.ok(200);
    assert_eq!(again["data"], saved["data"]);

    // The other partner's list is its own.
    assert_eq!(partner_view(&api, Q).await["data"], json!([]));
    assert_eq!(workspace_view(&api, Q, X).await["data"], json!([]));
}

async fn ids_are_kept_across_a_put<T: Table>(mut api: Api<T>) {
    api.billing.platform = floors("usd=0.01,eur=0.01");
    api.tenants().await;
    let first = api
        .call(put_options(P, vec![option("Small", "usd", 500, "5"), option("Large", "usd", 5000, "60")]))
        .await
        .ok(200);
    let [small, large] = <[String; 2]>::try_from(ids(&first["data"])).unwrap();

    // Reordered, one edited, one new: the kept ones keep their ids, the new one gets a fresh id.
    let second = api
        .call(put_options(
            P,
            vec![
                with_id(option("Large, now larger", "usd", 6000, "80"), &large),
                option("Medium", "eur", 2000, "22"),
                with_id(option("Small", "usd", 500, "5"), &small),
            ],
        ))
        .await
        .ok(200);
    let now = ids(&second["data"]);
    assert_eq!((now[0].as_str(), now[2].as_str()), (large.as_str(), small.as_str()));
    assert!(now[1] != small && now[1] != large && now[1].starts_with("to_"), "{now:?}");
    assert_eq!(second["data"][0], with_id(option("Large, now larger", "usd", 6000, "80.00"), &large));
    assert_eq!(partner_view(&api, P).await["data"], second["data"]);

    // Dropped from the list, an option is gone, and its id with it.
    let third = api.call(put_options(P, vec![with_id(option("Small", "usd", 500, "5"), &small)])).await.ok(200);
    assert_eq!(ids(&third["data"]), [small.as_str()]);
    let before = api.state().await;
    api.call(put_options(P, vec![with_id(option("Large", "usd", 5000, "60"), &large)])).await.invalid("options[0].id");
    assert_eq!(api.state().await, before);

    // An empty list removes them all.
    assert_eq!(api.call(put_options(P, vec![])).await.ok(200), json!({ "data": [] }));
    assert_eq!(partner_view(&api, P).await["data"], json!([]));
}

async fn option_errors_name_the_field_and_write_nothing<T: Table>(api: Api<T>) {
    api.tenants().await;
    let kept = api.call(put_options(P, vec![option("Kept", "usd", 1000, "10")])).await.ok(200);
    let kept_id = ids(&kept["data"]).remove(0);
    // Q's option id, which P can't use.
    let theirs = api.call(put_options(Q, vec![option("Theirs", "usd", 1000, "10")])).await.ok(200);
    let theirs_id = ids(&theirs["data"]).remove(0);
    let before = api.state().await;
    let ok = option("Fine", "usd", 1000, "10");
    let set = |field: &str, value: Value| {
        let mut o = ok.clone();
        o[field] = value;
        o
    };
    let mut yen_and_a_half = option("Yen", "jpy", 1000, "10");
    yen_and_a_half["amount_minor"] = lit("1000.5");
    let cases: Vec<(Vec<Value>, &str, &str)> = vec![
        // 1000.5 JPY can't even be said: the amount is an integer count of the minor unit.
        (vec![yen_and_a_half], "options[0].amount_minor", "invalid type: floating point"),
        (
            vec![option("Dinar", "kwd", 5125, "10")],
            "options[0].amount_minor",
            "kwd amounts must be a multiple of 0.010",
        ),
        (vec![option("Krona", "isk", 150, "10")], "options[0].amount_minor", "isk amounts must be a multiple of 1.00"),
        (vec![option("Tiny", "usd", 49, "1")], "options[0].amount_minor", "at least 0.50 usd"),
        (vec![option("Yen", "jpy", 49, "1")], "options[0].amount_minor", "at least 50 jpy"),
        (vec![set("amount_minor", json!(-1000))], "options[0].amount_minor", "negative"),
        (vec![set("amount_minor", json!("1000"))], "options[0].amount_minor", "invalid type: string"),
        (vec![set("currency", json!("xyz"))], "options[0].currency", "currency Stripe supports"),
        (vec![set("currency", json!(""))], "options[0].currency", "currency Stripe supports"),
        (vec![set("points", json!("0"))], "options[0].points", "greater than 0"),
        (vec![set("points", json!("10.125"))], "options[0].points", "2 decimal places"),
        (vec![set("points", json!("-1"))], "options[0].points", "negative"),
        (vec![set("points", json!(10))], "options[0].points", "string"),
        (vec![set("points", lit("10.5"))], "options[0].points", "string"),
        (vec![set("label", json!("  "))], "options[0].label", "label"),
        (vec![set("label", json!("x".repeat(81)))], "options[0].label", "label"),
        (vec![set("cost_price", json!(1))], "options[0].cost_price", "unknown field"),
        // The index of the option at fault, after good ones.
        (vec![ok.clone(), ok.clone(), option("Dinar", "kwd", 5125, "10")], "options[2].amount_minor", "0.010"),
        (vec![ok.clone(), set("currency", json!("usd!"))], "options[1].currency", "currency"),
        // Ids: unknown, another partner's, malformed, or given twice.
        (vec![with_id(ok.clone(), "to_0000000000000000deadbeef")], "options[0].id", "no top-up option with this id"),
        (vec![with_id(ok.clone(), &theirs_id)], "options[0].id", "no top-up option with this id"),
        (vec![with_id(ok.clone(), "ad_0000000000000000deadbeef")], "options[0].id", "'to_'"),
        (vec![with_id(ok.clone(), &kept_id), with_id(ok.clone(), &kept_id)], "options[1].id", "two options"),
        (vec![ok.clone(); MAX_TOPUP_OPTIONS + 1], "options", "at most 20"),
    ];
    for (options, param, message) in cases {
        let r = api.call(put_options(P, options.clone()).key("k-bad")).await;
        assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some(param)), "{options:?}: {}", r.body);
        r.invalid(param);
        let said = r.body["error"]["message"].as_str().unwrap();
        assert!(said.contains(message), "{param}: {said:?} should say {message:?}");
    }
    let bodies = [
        (r#"{"options":{"label":"Fine","currency":"usd","amount_minor":1000,"points":"10"}}"#, "options"),
        (r#"{"options":[],"credit_rate":"0.05"}"#, "credit_rate"),
        (r#"{}"#, "body"),
        (r#"[]"#, "body"),
        ("", "body"),
    ];
    for (body, param) in bodies {
        api.call(req("PUT /partner/topup-options").by(partner_admin(P)).raw(body).key("k-bad")).await.invalid(param);
    }
    api.call(put_options(P, vec![ok.clone()]).no_key()).await.invalid("Idempotency-Key");
    assert_eq!(api.state().await, before, "a refused request writes nothing");
    assert!(!api.key_recorded("partner:p-acme", "k-bad").await);
    assert_eq!(partner_view(&api, P).await["data"], kept["data"]);

    // Exactly the limit is fine, and the corrected request goes through with the same key.
    let twenty = api.call(put_options(P, vec![ok; MAX_TOPUP_OPTIONS]).key("k-bad")).await.ok(200);
    assert_eq!(twenty["data"].as_array().unwrap().len(), 20);
}

async fn credit_rate_is_checked_against_the_wholesale_cost<T: Table>(mut api: Api<T>) {
    api.tenants().await;
    let before = api.state().await;
    let cases = [
        ("usd", json!("0.0099"), "price_per_point", "at least the wholesale cost of 0.01 usd per point"),
        ("usd", json!("0"), "price_per_point", "greater than 0"),
        ("usd", json!("-0.05"), "price_per_point", "greater than 0"),
        ("usd", json!("0.00001"), "price_per_point", "4 decimal places"),
        ("usd", json!("1e-2"), "price_per_point", "decimal number"),
        ("usd", json!("abc"), "price_per_point", "decimal number"),
        ("usd", lit("0.05"), "price_per_point", "string"),
        ("usd", json!(5), "price_per_point", "string"),
        ("eur", json!("1.00"), "currency", "no wholesale floor in eur"),
        ("xyz", json!("0.05"), "currency", "currency Stripe supports"),
    ];
    for (currency, price, param, message) in cases {
        let body = json!({ "currency": currency, "price_per_point": price });
        let r = api.call(req("PUT /partner/credit-rate").by(partner_admin(P)).json(body).key("k-rate")).await;
        r.invalid(param);
        let said = r.body["error"]["message"].as_str().unwrap();
        assert!(said.contains(message), "{currency} {price}: {said:?} should say {message:?}");
    }
    let extra = json!({ "currency": "usd", "price_per_point": "0.05", "enabled": false });
    api.call(req("PUT /partner/credit-rate").by(partner_admin(P)).json(extra)).await.invalid("enabled");
    api.call(req("PUT /partner/credit-rate").by(partner_admin(P)).json(json!({ "currency": "usd" })))
        .await
        .invalid("body");
    api.call(put_rate(P, "usd", "0.05").no_key()).await.invalid("Idempotency-Key");
    assert_eq!(api.state().await, before, "a refused rate writes nothing");
    assert!(!api.key_recorded("partner:p-acme", "k-rate").await);

    // At the wholesale cost is allowed; the rate answers with at least the currency's decimals.
    let at = api.call(put_rate(P, "USD", "0.01").key("k-rate")).await.ok(200);
    assert_eq!(at, rate_view("usd", "0.01", None, None));
    let rate = api.call(put_rate(P, "usd", "0.0333")).await.ok(200);
    assert_eq!(rate, rate_view("usd", "0.0333", None, None));
    assert_eq!(api.call(put_rate(P, "usd", "0.5")).await.ok(200)["price_per_point"], "0.50");
    let view = partner_view(&api, P).await;
    assert_eq!(view["credit_rate"], rate_view("usd", "0.50", None, None));
    assert_eq!(partner_view(&api, Q).await["credit_rate"], Value::Null, "the other partner has none");

    // A platform that charges 12 cents a point: 0.1199 is refused, 0.12 and 25 cents are fine.
    api.billing.platform = wholesale("0.12");
    api.call(put_rate(P, "usd", "0.1199")).await.invalid("price_per_point");
    assert_eq!(api.call(put_rate(P, "usd", "0.12")).await.ok(200)["price_per_point"], "0.12");
    assert_eq!(api.call(put_rate(P, "usd", "0.25")).await.ok(200)["price_per_point"], "0.25");
    assert_eq!(partner_view(&api, P).await["wholesale_floors"], json!({ "usd": "0.12" }));
}

async fn the_workspace_sees_what_it_may_pay_and_no_costs<T: Table>(mut api: Api<T>) {
    api.billing.platform = floors(THREE_CURRENCIES);
    api.tenants().await;
    let saved = api.call(put_options(P, tiers())).await.ok(200);
    let ids = ids(&saved["data"]);
    api.call(put_rate(P, "usd", "0.05")).await.ok(200);
    let expected = json!({
        "credit_billing": true,
        "unit_name": "points",
        "data": [
            { "id": ids[0], "label": "Starter pack", "currency": "usd", "amount_minor": 1000, "amount_major": "10.00", "points": "10.00" },
            { "id": ids[1], "label": "Best value", "currency": "usd", "amount_minor": 10000, "amount_major": "100.00", "points": "150.00" },
            { "id": ids[2], "label": "Yen pack", "currency": "jpy", "amount_minor": 1000, "amount_major": "1000", "points": "12.50" },
            { "id": ids[3], "label": "Dinar pack", "currency": "kwd", "amount_minor": 5120, "amount_major": "5.120", "points": "20.00" },
            { "id": ids[4], "label": "Spring promo", "currency": "usd", "amount_minor": 1000, "amount_major": "10.00", "points": "15.00" },
        ],
        "credit_rate": rate_view("usd", "0.05", None, None),
    });
    let seen = workspace_view(&api, P, W).await;
    assert_eq!(seen, expected);
    let keys = all_keys(&seen);
    for secret in ["wholesale_floors", "cost_price", "wholesale"] {
        assert!(!keys.iter().any(|k| k == secret), "{secret} in {seen}");
    }
    assert!(!seen.to_string().contains("0.01"), "the wholesale figure never reaches a workspace: {seen}");
    // A member reads the same; the other partner's workspace sees its own partner's (none).
    assert_eq!(api.call(req("GET /workspace/topup-options").by(workspace_member(P, W))).await.ok(200), expected);
    let none = json!({ "credit_billing": true, "unit_name": "points", "data": [], "credit_rate": null });
    assert_eq!(workspace_view(&api, Q, X).await, none);

    // Credit billing off: still shown (reading is harmless), and it says so.
    let off = json!({ "credit_billing": false, "success_url": null, "cancel_url": null, "grace_days": 0 });
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(off)).await.ok(200);
    let mut expected_off = expected.clone();
    expected_off["credit_billing"] = json!(false);
    assert_eq!(workspace_view(&api, P, W).await, expected_off);

    // The platform raises its cost above the partner's rate: the rate can't be sold at, so the
    // workspace no longer sees it; the partner still does, next to the new floor.
    api.billing.platform = floors("usd=0.06,jpy=1,kwd=0.01");
    assert_eq!(workspace_view(&api, P, W).await["credit_rate"], Value::Null);
    let partner = partner_view(&api, P).await;
    assert_eq!(
        (&partner["credit_rate"], &partner["wholesale_floors"]["usd"]),
        (&rate_view("usd", "0.05", None, None), &json!("0.06"))
    );
    // The options stay above it (1.00, 10.00 and 0.6667 USD a point) and are still shown.
    assert_eq!(workspace_view(&api, P, W).await["data"], expected["data"]);
}

async fn topup_routes_check_roles_and_tenants<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.call(put_options(P, vec![option("Pack", "usd", 1000, "10")])).await.ok(200);
    api.call(put_rate(P, "usd", "0.05")).await.ok(200);
    let before = api.state().await;
    let partner_routes = || {
        [
            req("GET /partner/topup-options"),
            req("PUT /partner/topup-options").json(json!({ "options": [] })),
            req("PUT /partner/credit-rate").json(json!({ "currency": "usd", "price_per_point": "1" })),
        ]
    };
    for r in partner_routes() {
        for caller in [workspace_admin(P, W), workspace_member(P, W), platform()] {
            api.call(r.clone().by(caller)).await.err(403, "forbidden", None);
        }
        api.call(r.clone()).await.err(401, "unauthorized", None);
    }
    for caller in [partner_admin(P), platform()] {
        api.call(req("GET /workspace/topup-options").by(caller)).await.err(403, "forbidden", None);
    }
    // A workspace that doesn't exist, and a partner that doesn't: 404, nothing written.
    api.call(req("GET /workspace/topup-options").by(workspace_admin(P, "ws-nobody"))).await.err(404, "not_found", None);
    let nobody = "p-nobody";
    for r in partner_routes() {
        let got = api.call(r.by(partner_admin(nobody))).await;
        assert_eq!((got.status, &got.body["error"]["message"]), (404, &json!("partner not found")), "{}", got.body);
    }
    let p = PartnerId::parse(nobody).unwrap();
    for key in [keys::partner_topups(&p), keys::partner_credit_rate(&p)] {
        assert_eq!(api.billing.store.get(&key).await.unwrap(), None, "{key:?}");
    }
    assert_eq!(api.state().await, before);

    // Q's admin changes Q's terms only: the partner comes from the token, never from the body.
    api.call(put_options(Q, vec![])).await.ok(200);
    api.call(put_rate(Q, "usd", "0.02")).await.ok(200);
    let ours = workspace_view(&api, P, W).await;
    assert_eq!(ours["data"].as_array().unwrap().len(), 1);
    assert_eq!(ours["credit_rate"]["price_per_point"], "0.05");
    assert_eq!(workspace_view(&api, Q, X).await["credit_rate"]["price_per_point"], "0.02");
}

async fn topup_puts_replay_and_refuse_a_reused_key<T: Table>(mut api: Api<T>) {
    api.billing.platform = floors(THREE_CURRENCIES);
    api.tenants().await;
    let first = api.call(put_options(P, tiers()).key("topups-1")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let after_first = api.state().await;
    for _ in 0..2 {
        // The same ids again: the stored answer, not a new list with fresh ids.
        assert_eq!(api.call(put_options(P, tiers()).key("topups-1")).await, first);
    }
    assert_eq!(api.state().await, after_first, "a replay writes nothing");
    // After the list moved on, the replay is still the first answer and changes nothing.
    api.call(put_options(P, vec![option("Only", "usd", 700, "7")])).await.ok(200);
    let moved = api.state().await;
    assert_eq!(api.call(put_options(P, tiers()).key("topups-1")).await, first);
    assert_eq!(api.state().await, moved);
    assert_eq!(without_ids(&partner_view(&api, P).await["data"]), [option("Only", "usd", 700, "7.00")]);

    // The same key with another body, or on the other route: 422, nothing written.
    api.call(put_options(P, vec![option("Other", "usd", 1000, "10")]).key("topups-1")).await.err(
        422,
        "idempotency_key_reused",
        None,
    );
    api.call(put_rate(P, "usd", "0.05").key("topups-1")).await.err(422, "idempotency_key_reused", None);
    let rate = api.call(put_rate(P, "usd", "0.05").key("rate-1")).await.ok(200);
    assert_eq!(api.call(put_rate(P, "usd", "0.05").key("rate-1")).await.ok(200), rate);
    api.call(put_rate(P, "usd", "0.06").key("rate-1")).await.err(422, "idempotency_key_reused", None);
    assert_eq!(partner_view(&api, P).await["credit_rate"]["price_per_point"], "0.05");
    // Keys belong to one partner: Q's "topups-1" is its own.
    let theirs = api.call(put_options(Q, vec![option("Q pack", "usd", 1000, "10")]).key("topups-1")).await.ok(200);
    assert_eq!(without_ids(&theirs["data"]), [option("Q pack", "usd", 1000, "10.00")]);
}

/// The partner bounds one purchase at its rate (100 to 5000 points): saved with the rate, shown to
/// the partner and its workspaces, removed by a PUT without them; bad bounds write nothing.
async fn credit_rate_bounds_are_saved_shown_and_checked<T: Table>(api: Api<T>) {
    api.tenants().await;
    let saved = api.call(put_bounded_rate(P, "0.05", json!("100"), json!("5000")).key("rate-b")).await.ok(200);
    let bounded = rate_view("usd", "0.05", Some("100.00"), Some("5000.00"));
    assert_eq!(saved, bounded);
    assert_eq!(partner_view(&api, P).await["credit_rate"], bounded);
    assert_eq!(workspace_view(&api, P, W).await["credit_rate"], bounded);
    assert_eq!(workspace_view(&api, Q, X).await["credit_rate"], Value::Null, "Q's workspace sees Q's (none)");
    let item = api.billing.store.get(&keys::partner_credit_rate(&PartnerId::parse(P).unwrap())).await.unwrap();
    let item = item.expect("the rate is stored");
    assert_eq!(
        (item.num("min_points").unwrap(), item.num("max_points").unwrap()),
        (Decimal::from(100), Decimal::from(5000)),
        "the bounds are on the rate's own item"
    );

    let before = api.state().await;
    let cases = [
        (json!("6000"), json!("5000"), "min_points", "min_points: 6000.00 is more than max_points (5000.00)"),
        (json!("5000.01"), json!("5000"), "min_points", "the minimum must be at most the maximum"),
        (json!("0"), json!(null), "min_points", "greater than 0"),
        (json!("-5"), json!(null), "min_points", "negative"),
        (json!("10.001"), json!(null), "min_points", "2 decimal places"),
        (json!("1e3"), json!(null), "min_points", "decimal number"),
        (json!(100), json!(null), "min_points", "string"),
        (lit("100.5"), json!(null), "min_points", "string"),
        (json!(null), json!("0"), "max_points", "greater than 0"),
        (json!(null), json!("0.00"), "max_points", "greater than 0"),
        (json!(null), json!("5000.005"), "max_points", "2 decimal places"),
        (json!("100"), json!("lots"), "max_points", "decimal number"),
        (json!(null), json!(5000), "max_points", "string"),
        (json!("0"), json!("0"), "min_points", "greater than 0"),
    ];
    for (min, max, param, message) in cases {
        let r = api.call(put_bounded_rate(P, "0.05", min.clone(), max.clone()).key("k-bounds")).await;
        r.invalid(param);
        let said = r.body["error"]["message"].as_str().unwrap();
        assert!(said.contains(message), "{min} {max}: {said:?} should say {message:?}");
    }
    // The rate's own faults come first.
    api.call(put_bounded_rate(P, "0.00001", json!("0"), json!("0")).key("k-bounds")).await.invalid("price_per_point");
    let misnamed = json!({ "currency": "usd", "price_per_point": "0.05", "minimum": "100" });
    api.call(req("PUT /partner/credit-rate").by(partner_admin(P)).json(misnamed).key("k-bounds"))
        .await
        .invalid("minimum");
    assert_eq!(api.state().await, before, "a refused rate writes nothing");
    assert!(!api.key_recorded("partner:p-acme", "k-bounds").await);
    assert_eq!(partner_view(&api, P).await["credit_rate"], bounded);

    // One bound alone, and min = max (exactly one quantity on sale).
    let only_min = api.call(put_bounded_rate(P, "0.05", json!("20"), json!(null))).await.ok(200);
    assert_eq!(only_min, rate_view("usd", "0.05", Some("20.00"), None));
    let exact = api.call(put_bounded_rate(P, "0.05", json!("250.5"), json!("250.50"))).await.ok(200);
    assert_eq!(exact, rate_view("usd", "0.05", Some("250.50"), Some("250.50")));
    // What the partner reads it can send back as is, nulls included.
    let read = partner_view(&api, P).await["credit_rate"].clone();
    let again = req("PUT /partner/credit-rate").by(partner_admin(P)).json(read.clone());
    assert_eq!(api.call(again).await.ok(200), read);
    // A PUT without bounds replaces the rate whole: no bounds any more.
    assert_eq!(api.call(put_rate(P, "usd", "0.05")).await.ok(200), rate_view("usd", "0.05", None, None));
    assert_eq!(workspace_view(&api, P, W).await["credit_rate"], rate_view("usd", "0.05", None, None));
    // The replay of the first PUT is its stored answer, and changes nothing.
    let now = api.state().await;
    let replay = api.call(put_bounded_rate(P, "0.05", json!("100"), json!("5000")).key("rate-b")).await.ok(200);
    assert_eq!((replay, api.state().await), (bounded, now));
}

/// Two PUTs at once: each lands whole (the version check re-reads and retries), never a mix.
async fn concurrent_puts_each_land_whole<T: Table>(mut api: Api<T>) {
    api.billing.platform = floors("usd=0.01,eur=0.01");
    api.tenants().await;
    let a = vec![option("A1", "usd", 1000, "10"), option("A2", "usd", 2000, "20")];
    let b = vec![option("B1", "eur", 1000, "11")];
    let (ra, rb) = tokio::join!(api.call(put_options(P, a)), api.call(put_options(P, b)));
    let (da, db) = (ra.ok(200)["data"].clone(), rb.ok(200)["data"].clone());
    let now = partner_view(&api, P).await["data"].clone();
    assert!(now == da || now == db, "{now} is neither {da} nor {db}");
}

api_suite!(
    options_are_set_and_read_back,
    ids_are_kept_across_a_put,
    option_errors_name_the_field_and_write_nothing,
    credit_rate_is_checked_against_the_wholesale_cost,
    the_workspace_sees_what_it_may_pay_and_no_costs,
    topup_routes_check_roles_and_tenants,
    topup_puts_replay_and_refuse_a_reused_key,
    concurrent_puts_each_land_whole,
    credit_rate_bounds_are_saved_shown_and_checked,
);

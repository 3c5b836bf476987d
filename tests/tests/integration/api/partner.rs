//! The partner's routes: add-on prices and labels, plans, settings, workspaces and the ledger.

use serde_json::{Value, json};
use store::Table;
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
    assert_eq!(costs, [500, 500, 500, 3000, 2000, 2000], "the platform's wholesale prices, in cents");
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
        json!({
            "credit_billing": true, "success_url": null, "cancel_url": null, "grace_days": 0, "default_rebilling": off,
            "unit_name": "points",
            "brand": { "name": null, "logo_url": null, "primary_color": null, "accent_color": null, "embed_origins": [] },
        })
    );
    let new = json!({
        "credit_billing": false,
        "success_url": "https://agency.example/paid",
        "cancel_url": "https://agency.example/cancelled",
        "grace_days": 3,
        "default_rebilling": { "enabled": true, "rates": { "voice_minutes": "0.20" } },
        "unit_name": "credits",
        "brand": {
            "name": "Acme Bots",
            "logo_url": "https://cdn.agency.example/logo.svg",
            "primary_color": "#1d4ed8",
            "accent_color": null,
            "embed_origins": ["https://app.agency.example"],
        },
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
    // The page writes white text on the brand's colours: one too light to read is refused.
    let mut light = new.clone();
    light["brand"]["primary_color"] = json!("#ffcc00");
    api.call(bad(light)).await.invalid("brand.primary_color");
    let mut with_path = new.clone();
    with_path["brand"]["embed_origins"] = json!(["https://app.agency.example/billing"]);
    api.call(bad(with_path)).await.invalid("brand.embed_origins");
    let mut extra = new.clone();
    extra["stripe_account"] = json!("acct_123");
    api.call(bad(extra)).await.invalid("stripe_account");
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(new).no_key()).await.invalid("Idempotency-Key");
    assert_eq!(api.state().await, before);
}

/// `ws_` and 24 lowercase hex digits: the shape of an id the API assigns.
#[track_caller]
fn assigned_id(created: &Value) -> String {
    let id = created["id"].as_str().expect("an id").to_owned();
    let hex = id.strip_prefix("ws_").unwrap_or_else(|| panic!("{id}: not ws_..."));
    assert!(hex.len() == 24 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{id}");
    id
}

fn new_workspace(name: &str) -> Value {
    json!({ "name": name, "plan": "starter", "cycle_anchor_day": 1 })
}

async fn workspaces_are_created_listed_and_shown<T: Table>(api: Api<T>) {
    api.partner(P, true).await;
    api.partner(Q, true).await;
    let created = api.call(req("POST /partner/workspaces").by(partner_admin(P)).json(new_workspace("Front desk")));
    let created = created.await.ok(201);
    let first = assigned_id(&created);
    api.track_workspace(&first);
    let expected = json!({
        "id": first,
        "partner_id": P,
        "name": "Front desk",
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
            "enabled": false, "topup_option_id": null, "points": null, "card_saved": false, "consecutive_failures": 0,
            "last_failure": null, "next_attempt_after": null, "disabled_reason": null, "payment_pending": false,
            "threshold": null, "monthly_cap": null, "spent_this_month": null,
        },
        "unit_name": "points",
        "brand": { "name": P, "logo_url": null, "primary_color": null, "accent_color": null, "embed_origins": [] },
    });
    assert_eq!(created, expected);
    let shown = api.call(req("GET /partner/workspaces/{id}").param("id", &first).by(partner_admin(P))).await.ok(200);
    assert_eq!(shown, expected);
    // The other partner reads it as it reads an id no one has.
    let theirs = api.call(req("GET /partner/workspaces/{id}").param("id", &first).by(partner_admin(Q))).await;
    let nobody =
        api.call(req("GET /partner/workspaces/{id}").param("id", "ws_000000000000000000000000").by(partner_admin(Q)));
    let nobody = nobody.await;
    theirs.err(404, "not_found", None);
    assert_eq!(theirs.body, nobody.body);
    // Its own admin reads it too.
    assert_eq!(api.call(req("GET /workspace").by(workspace_admin(P, &first))).await.ok(200)["id"], json!(first));

    // Without an anchor day, cycles start on the day of creation.
    let body = json!({ "name": "Second", "plan": "growth" });
    let second = api.call(req("POST /partner/workspaces").by(partner_admin(P)).json(body)).await.ok(201);
    let second_id = assigned_id(&second);
    assert_ne!(second_id, first);
    assert_eq!(second["cycle"], json!({ "start": "2026-04-15", "end": "2026-05-14" }));
    assert_eq!(second["limits"]["bots"], 5);
    api.set_clock(datetime!(2026-04-16 09:00 UTC));
    api.workspace(P, "ws-acme-3", "agency").await;
    api.workspace(Q, X, "starter").await;

    // In id order: '-' sorts before '_'. Each as it is shown, with when it was created.
    let show = |id: String| {
        let r = req("GET /partner/workspaces/{id}").param("id", &id).by(partner_admin(P));
        async { api.call(r).await.ok(200) }
    };
    let entry = |shown: Value, created_at: &str| {
        let fields = ["id", "name", "plan", "balance", "status", "exceeded", "renews_on"];
        let mut e: serde_json::Map<String, Value> =
            fields.iter().map(|f| ((*f).to_owned(), shown[f].clone())).collect();
        e.insert("created_at".into(), json!(created_at));
        Value::Object(e)
    };
    let mut listed = vec![
        entry(show(first.clone()).await, "2026-04-15T10:00:00Z"),
        entry(show(second_id.clone()).await, "2026-04-15T10:00:00Z"),
    ];
    listed.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    listed.insert(0, entry(show("ws-acme-3".into()).await, "2026-04-16T09:00:00Z"));
    assert_eq!((&listed[0]["name"], &listed[0]["plan"]), (&json!("Workspace ws-acme-3"), &json!("agency")));
    let list = api.call(req("GET /partner/workspaces").by(partner_admin(P))).await.ok(200);
    assert_eq!(list, json!({ "data": listed, "next_cursor": null }));
    // Pages: two, then the rest.
    let page = api.call(req("GET /partner/workspaces").query("limit", "2").by(partner_admin(P))).await.ok(200);
    let ids: Vec<_> = page["data"].as_array().unwrap().iter().map(|w| w["id"].clone()).collect();
    assert_eq!(ids, [listed[0]["id"].clone(), listed[1]["id"].clone()]);
    let cursor = page["next_cursor"].as_str().expect("a next page").to_owned();
    let rest =
        api.call(req("GET /partner/workspaces").query("limit", "2").query("cursor", cursor).by(partner_admin(P)));
    let rest = rest.await.ok(200);
    let ids: Vec<_> = rest["data"].as_array().unwrap().iter().map(|w| w["id"].clone()).collect();
    assert_eq!(ids, [listed[2]["id"].clone()]);
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
    let ok = new_workspace("New");
    let with = |field: &str, value: Value| {
        let mut b = ok.clone();
        b[field] = value;
        b
    };
    // An id is the API's to give: refused whatever it is, its own, another partner's, or none's,
    // with one answer.
    let refused = json!({ "error": {
        "type": "invalid_request", "param": "id", "message": "workspace ids are assigned by the API",
    } });
    for id in [json!(W), json!(X), json!("ws-nobody"), json!("WS New"), json!(""), json!(null), json!(7)] {
        let r = api.call(create(with("id", id.clone()))).await;
        assert_eq!((r.status, &r.body), (400, &refused), "id {id}");
    }
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
    assert_eq!(api.state().await, before);
    let listed = api.call(req("GET /partner/workspaces").by(partner_admin(P))).await.ok(200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

/// Sends `r` with fastrand's generator on this thread seeded with `seed` (a tokio test runs
/// on one thread), so that the ids the route may draw are known.
async fn call_seeded<T: Table>(api: &Api<T>, r: super::Req, seed: u64) -> super::Resp {
    let built = r.build();
    let resume = fastrand::u64(..);
    fastrand::seed(seed);
    let answer = super::Resp::from_response(super::dispatch(&api.billing, built).await);
    // Random again: the DynamoDB client draws its requests' idempotency tokens from the same
    // generator, and a token must not come back.
    fastrand::seed(resume);
    answer
}

/// The workspace ids the generator seeded with `seed` gives after `skip` other draws, for
/// `skip` in `0..n` (the DynamoDB client draws from the same generator for its requests).
fn seeded_ids(seed: u64, n: usize) -> Vec<String> {
    let resume = fastrand::u64(..);
    let ids = (0..n)
        .map(|skip| {
            fastrand::seed(seed);
            for _ in 0..skip {
                fastrand::u64(..);
            }
            domain::WorkspaceId::generate().to_string()
        })
        .collect();
    fastrand::seed(resume);
    ids
}

/// A partner learns nothing of another's ids by creating workspaces: the answer is a 201 with
/// a fresh id whether or not the other partner has workspaces, even when the id drawn is the
/// other partner's.
async fn creation_answers_alike_whatever_ids_others_hold<T: Table>(api: Api<T>) {
    api.partner(P, true).await;
    api.partner(Q, true).await;
    // Seeds of this run only: the tokens the DynamoDB client draws must differ between runs.
    let (control_seed, seed) = (fastrand::u64(..), fastrand::u64(..));
    let create =
        |p: &str, key: &str| req("POST /partner/workspaces").by(partner_admin(p)).json(new_workspace("Mine")).key(key);
    // Q first, while P has no workspace. Where the route's draw falls in the seeded sequence
    // (after the DynamoDB client's own draws) is the same for every creation.
    let q_first = call_seeded(&api, create(Q, "q-1"), control_seed).await.ok(201);
    let q_id = assigned_id(&q_first);
    api.track_workspace(&q_id);
    let at = seeded_ids(control_seed, 32).iter().position(|id| *id == q_id).expect("Q's id is a seeded draw");
    // Q holds the id P's creation will draw: P gets a later draw, with the same answer.
    let sequence = seeded_ids(seed, 32);
    let drawn = sequence[at].clone();
    api.provision(Q, &drawn, "Taken", "starter", Some(1)).await;
    let p_first = call_seeded(&api, create(P, "p-1"), seed).await.ok(201);
    let p_id = assigned_id(&p_first);
    api.track_workspace(&p_id);
    let p_at = sequence.iter().position(|id| *id == p_id).expect("P's id is a seeded draw");
    assert!(p_at > at, "P got {p_id} (draw {p_at}), not the taken {drawn} (draw {at})");
    let same_shape = |mut v: Value| {
        v["id"] = json!("ws_");
        v["partner_id"] = json!("p");
        // Each partner's brand is its own name.
        v["brand"]["name"] = json!("p");
        v
    };
    assert_eq!(same_shape(p_first), same_shape(q_first.clone()));
    // Q's workspace is untouched and still Q's alone.
    let q_view = api.call(req("GET /partner/workspaces/{id}").param("id", &drawn).by(partner_admin(Q))).await.ok(200);
    assert_eq!(q_view["name"], "Taken");
    api.call(req("GET /partner/workspaces/{id}").param("id", &drawn).by(partner_admin(P))).await.err(
        404,
        "not_found",
        None,
    );
    let p_list = api.call(req("GET /partner/workspaces").by(partner_admin(P))).await.ok(200);
    assert_eq!(p_list["data"].as_array().unwrap().iter().map(|w| w["id"].clone()).collect::<Vec<_>>(), [json!(p_id)]);
    // Q again, now that P holds workspaces: a 201 with a fresh id, as before.
    let q_second = api.call(create(Q, "q-2")).await.ok(201);
    let q_second_id = assigned_id(&q_second);
    api.track_workspace(&q_second_id);
    assert!(![drawn.as_str(), p_id.as_str()].contains(&q_second_id.as_str()));
}

/// A retry with the same Idempotency-Key answers the first id and creates nothing more; many
/// creations of two partners at once never share an id, and each partner sees its own only.
async fn concurrent_creations_never_collide_and_replays_answer_the_same_id<T: Table>(api: Api<T>) {
    api.partner(P, true).await;
    api.partner(Q, true).await;
    let create = |p: &str, i: usize| {
        req("POST /partner/workspaces")
            .by(partner_admin(p))
            .json(new_workspace(&format!("{p} {i}")))
            .key(format!("c-{i}"))
    };
    let first = api.call(create(P, 0)).await.ok(201);
    let again = api.call(create(P, 0)).await.ok(201);
    assert_eq!(again, first, "the replay answers the same id");
    const EACH: usize = 10;
    let calls = (0..2 * EACH).map(|i| api.call(create(if i % 2 == 0 { P } else { Q }, 1 + i / 2)));
    let answers = billing::join_all(calls).await;
    let mut ids = vec![assigned_id(&first)];
    for (i, r) in answers.into_iter().enumerate() {
        let body = r.ok(201);
        assert_eq!(body["partner_id"], if i % 2 == 0 { P } else { Q });
        ids.push(assigned_id(&body));
    }
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 2 * EACH + 1, "{ids:?}");
    for (p, q, expected) in [(P, Q, EACH + 1), (Q, P, EACH)] {
        let list = api.call(req("GET /partner/workspaces").by(partner_admin(p))).await.ok(200);
        let listed: Vec<String> =
            list["data"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(listed.len(), expected, "{p}: {listed:?}");
        for w in &listed {
            api.track_workspace(w);
            api.call(req("GET /partner/workspaces/{id}").param("id", w).by(partner_admin(p))).await.ok(200);
            api.call(req("GET /partner/workspaces/{id}").param("id", w).by(partner_admin(q))).await.err(
                404,
                "not_found",
                None,
            );
        }
    }
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

/// The partner's ledger covers all its workspaces (one statement for the partner), and may be
/// filtered by one.
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
    creation_answers_alike_whatever_ids_others_hold,
    concurrent_creations_never_collide_and_replays_answer_the_same_id,
    plan_change_answers_with_the_workspace,
    partner_ledger_lists_entries,
    partner_ledger_spans_its_workspaces,
);

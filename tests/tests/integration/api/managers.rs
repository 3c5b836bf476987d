//! Billing access: a partner names, per workspace, the users who may pay for it beside its
//! admins. A member without the grant reads and is refused every payment (top up, auto top-up,
//! buy and cancel add-ons) with nothing written; with it, it pays; revoked, it is refused again,
//! replays of its own earlier requests included. Each grant and revocation is a partner event.

use serde_json::{Value, json};
use store::{Table, keys, records};

use super::checkout::seller;
use super::{Api, P, W, partner_admin, req, workspace_admin, workspace_member};

const MEMBER: &str = "member@ws-acme-1";

fn grant(sub: &str) -> super::Req {
    req("POST /partner/workspaces/{id}/billing-managers")
        .param("id", W)
        .by(partner_admin(P))
        .json(json!({ "sub": sub }))
}

fn revoke(sub: &str) -> super::Req {
    req("POST /partner/workspaces/{id}/billing-managers/revoke")
        .param("id", W)
        .by(partner_admin(P))
        .json(json!({ "sub": sub }))
}

/// The payments a workspace user may ask for, each with its own key.
fn payments(addon: &str, round: &str) -> Vec<super::Req> {
    vec![
        req("POST /workspace/checkout").json(json!({ "points": "100" })).key(format!("checkout-{round}")),
        req("PUT /workspace/auto-topup").json(json!({ "enabled": false })).key(format!("auto-{round}")),
        req("POST /workspace/addons").json(json!({ "addon": "extra_bot", "quantity": 1 })).key(format!("buy-{round}")),
        req("DELETE /workspace/addons/{addon_id}").param("addon_id", addon).key(format!("cancel-{round}")),
    ]
}

async fn events<T: Table>(api: &Api<T>) -> Vec<Value> {
    let page = api.call(req("GET /partner/events").by(partner_admin(P)).query("limit", "100")).await.ok(200);
    let all = page["data"].as_array().unwrap().clone();
    all.into_iter().filter(|e| e["type"].as_str().unwrap().starts_with("billing_access.")).collect()
}

async fn a_granted_member_pays_and_a_revoked_one_cannot<T: Table>(api: Api<T>) {
    api.tenants().await;
    seller(&api, P).await;
    api.fund(P, W, "100").await;
    let owned = api.buy(P, W, "extra_bot", 1).await.ok(201)["addon"]["id"].as_str().unwrap().to_owned();
    let member = workspace_member(P, W);

    // Without the grant: it reads, and every payment is refused with nothing written.
    api.call(req("GET /workspace").by(member.clone())).await.ok(200);
    let before = api.state().await;
    for r in payments(&owned, "1") {
        let refused = api.call(r.by(member.clone())).await;
        refused.err(403, "forbidden", None);
    }
    assert_eq!(api.state().await, before);

    // Granted: once, whatever the retries.
    let granted = api.call(grant(MEMBER).key("grant-1")).await.ok(201);
    assert_eq!(granted["workspace_id"], W);
    let managers = granted["managers"].as_array().unwrap();
    assert_eq!((managers.len(), &managers[0]["sub"]), (1, &json!(MEMBER)));
    assert_eq!(managers[0]["granted_by"], partner_admin(P)["sub"]);
    assert_eq!(api.call(grant(MEMBER).key("grant-1")).await.ok(201), granted, "a replay answers the same");
    assert_eq!(api.call(grant(MEMBER).key("grant-2")).await.ok(200)["managers"], granted["managers"]);
    let listed = api.call(req("GET /partner/workspaces/{id}/billing-managers").param("id", W).by(partner_admin(P)));
    assert_eq!(listed.await.ok(200), granted);

    // Now the member pays: a checkout, auto top-up, an add-on bought and the first one cancelled.
    let answers: Vec<u16> = {
        let mut statuses = Vec::new();
        for r in payments(&owned, "2") {
            statuses.push(api.call(r.by(member.clone())).await.status);
        }
        statuses
    };
    assert_eq!(answers, [201, 200, 201, 200]);
    let entry = &api.ledger(P, W).await[0];
    assert_eq!((&entry["kind"], &entry["actor"]["id"]), (&json!("addon_purchase"), &json!(MEMBER)));

    // Revoked: refused again, even a request it made before (its replay is not an answer).
    let revoked = api.call(revoke(MEMBER).key("revoke-1")).await.ok(200);
    assert_eq!(revoked["managers"], json!([]));
    let before = api.state().await;
    for r in payments(&owned, "2").into_iter().chain(payments(&owned, "3")) {
        api.call(r.by(member.clone())).await.err(403, "forbidden", None);
    }
    assert_eq!(api.state().await, before);
    api.call(revoke(MEMBER).key("revoke-2")).await.err(404, "not_found", None);
    // The workspace's admin pays whatever the grants say.
    api.call(req("PUT /workspace/auto-topup").by(workspace_admin(P, W)).json(json!({ "enabled": false })))
        .await
        .ok(200);

    // Audited: each change once, naming who made it.
    let seen = events(&api).await;
    let types: Vec<&str> = seen.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["billing_access.revoked", "billing_access.granted"], "newest first");
    for e in &seen {
        assert_eq!(
            (&e["workspace_id"], &e["data"]),
            (&json!(W), &json!({ "sub": MEMBER, "by": partner_admin(P)["sub"] }))
        );
    }
}

async fn bad_grants_are_refused_with_nothing_written<T: Table>(api: Api<T>) {
    api.tenants().await;
    let before = api.state().await;
    for bad in [json!(""), json!(" padded"), json!("a\u{7}b"), json!("x".repeat(256)), json!(7), json!(null)] {
        let r = req("POST /partner/workspaces/{id}/billing-managers").param("id", W).by(partner_admin(P));
        api.call(r.json(json!({ "sub": bad }))).await.invalid("sub");
    }
    let r = req("POST /partner/workspaces/{id}/billing-managers").param("id", W).by(partner_admin(P));
    api.call(r.json(json!({ "sub": "a", "role": "admin" }))).await.invalid("role");
    assert_eq!(api.state().await, before);

    // A hundred users at most: the hundred-and-first is refused until one is revoked.
    let w = domain::WorkspaceId::parse(W).unwrap();
    let full = records::BillingManagers {
        managers: (0..100)
            .map(|i| records::BillingManager {
                sub: format!("user-{i}"),
                granted_by: "admin".into(),
                granted_at: super::T0,
            })
            .collect(),
        version: 1,
    };
    let put =
        store::Write::Put { item: records::billing_managers_item(&w, &full), condition: store::Condition::Always };
    api.billing.store.table().transact(vec![put]).await.unwrap();
    api.call(grant("user-100")).await.invalid("sub");
    api.call(revoke("user-7")).await.ok(200);
    let granted = api.call(grant("user-100")).await.ok(201);
    assert_eq!(granted["managers"].as_array().unwrap().len(), 100);
    let stored = api.billing.store.get(&keys::billing_managers(&w)).await.unwrap();
    assert_eq!(records::billing_managers_from(stored.as_ref()).unwrap().version, 3);
}

api_suite!(a_granted_member_pays_and_a_revoked_one_cannot, bad_grants_are_refused_with_nothing_written);

//! A partner's workspace list: each workspace with its points, status and why it is paused,
//! plan and renewal day, one Query a page; filtered by status; items stored before the list's
//! index existed are listed once the table is upgraded.

use serde_json::{Value, json};
use store::{Attr, Condition, Table, Write, keys};

use domain::{WalletId, WorkspaceId};

use super::{Api, P, Q, W, X, partner_admin, req};

async fn list<T: Table>(api: &Api<T>, p: &str, query: &[(&'static str, &str)]) -> Value {
    let mut r = req("GET /partner/workspaces").by(partner_admin(p));
    for (k, v) in query {
        r = r.query(k, *v);
    }
    api.call(r).await.ok(200)
}

/// Every page of the list, each page's ids in turn.
async fn pages<T: Table>(api: &Api<T>, query: &[(&'static str, &str)]) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = query.to_vec();
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let page = list(api, P, &q).await;
        pages.push(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pages,
        }
        assert!(pages.len() < 20, "the list ends");
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap().to_owned()).collect()
}

async fn the_list_shows_points_status_and_why_paused<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.workspace(P, "ws-z", "agency").await;
    api.fund(P, W, "250").await;
    api.fund(P, "ws-z", "40.5").await;
    // Over the starter plan's one bot: paused, and why.
    api.usage(W, 2, 1, 1).await;
    let shown = api.call(req("GET /partner/workspaces/{id}").param("id", W).by(partner_admin(P))).await.ok(200);
    let page = list(&api, P, &[]).await;
    assert_eq!(ids(&page), [W, "ws-z"]);
    assert_eq!(
        page["data"][0],
        json!({ "id": W, "name": shown["name"], "plan": "starter", "balance": "250.00", "status": "paused",
                "exceeded": ["bots"], "renews_on": shown["renews_on"], "created_at": page["data"][0]["created_at"] })
    );
    assert_eq!(
        (&page["data"][1]["balance"], &page["data"][1]["status"], &page["data"][1]["exceeded"]),
        (&json!("40.50"), &json!("active"), &json!([]))
    );
    // The filter: every paused workspace, every active one.
    assert_eq!(ids(&list(&api, P, &[("status", "paused")]).await), [W]);
    assert_eq!(ids(&list(&api, P, &[("status", "active")]).await), ["ws-z"]);
    // Back within its plan, and points spent: the list follows.
    api.usage(W, 1, 1, 1).await;
    let body = json!({ "amount": "-100", "reason": "correction" });
    api.call(req("POST /partner/workspaces/{id}/points").param("id", W).by(partner_admin(P)).json(body)).await.ok(201);
    let page = list(&api, P, &[("status", "active")]).await;
    assert_eq!(ids(&page), [W, "ws-z"]);
    assert_eq!(page["data"][0]["balance"], "150.00");
    // Another partner's list holds its own only.
    assert_eq!(ids(&list(&api, Q, &[]).await), [X]);
    assert_eq!(ids(&list(&api, Q, &[("status", "active")]).await), [X]);
    // A bad filter is refused with nothing written.
    let before = api.state().await;
    for bad in ["Paused", "lapsed", ""] {
        api.call(req("GET /partner/workspaces").by(partner_admin(P)).query("status", bad)).await.invalid("status");
    }
    assert_eq!(api.state().await, before);
}

async fn a_filtered_list_pages_through_every_match<T: Table>(api: Api<T>) {
    api.tenants().await;
    let all: Vec<String> = (0..7).map(|i| format!("ws-{i}")).collect();
    for w in &all {
        api.workspace(P, w, "starter").await;
    }
    for w in ["ws-1", "ws-4", "ws-6"] {
        api.usage(w, 2, 1, 1).await;
    }
    assert_eq!(pages(&api, &[("status", "paused"), ("limit", "2")]).await, [vec!["ws-1", "ws-4"], vec!["ws-6"]]);
    let active = pages(&api, &[("status", "active"), ("limit", "3")]).await;
    assert_eq!(active, [vec!["ws-0", "ws-2", "ws-3"], vec!["ws-5", W]]);
    // Unfiltered: every workspace once, in id order, however the pages fall.
    let mut everyone = all.clone();
    everyone.push(W.to_owned());
    for limit in ["1", "2", "3", "8", "100"] {
        let seen: Vec<String> = pages(&api, &[("limit", limit)]).await.concat();
        assert_eq!(seen, everyone, "limit {limit}");
    }
}

async fn items_from_before_the_list_are_listed_after_the_upgrade<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.workspace(P, "ws-z", "starter").await;
    api.fund(P, W, "75").await;
    // As stored before the index existed: the profiles and W's wallet without its keys.
    let table = api.billing.store.table();
    let w = WorkspaceId::parse(W).unwrap();
    let old_keys = [
        keys::workspace_profile(&w),
        keys::workspace_profile(&WorkspaceId::parse("ws-z").unwrap()),
        keys::wallet(&WalletId::Workspace(w)),
    ];
    for key in &old_keys {
        let mut item = table.get(key).await.unwrap().expect("stored");
        assert!(item.0.remove("GSI3PK").is_some() && item.0.remove("GSI3SK").is_some(), "{key:?}");
        table.transact(vec![Write::Put { item, condition: Condition::Always }]).await.unwrap();
    }
    assert_eq!(ids(&list(&api, P, &[]).await), Vec::<String>::new());

    let done = api.billing.store.backfill_workspace_list().await.unwrap();
    assert_eq!((done.partners, done.workspaces, done.items_updated), (2, 3, 3));
    let page = list(&api, P, &[]).await;
    assert_eq!(ids(&page), [W, "ws-z"]);
    assert_eq!((&page["data"][0]["balance"], &page["data"][1]["balance"]), (&json!("75.00"), &json!("0.00")));
    for key in &old_keys {
        let item = table.get(key).await.unwrap().unwrap();
        assert_eq!(item.get("GSI3PK"), Some(&Attr::s(keys::partner_pk(&domain::PartnerId::parse(P).unwrap()))));
    }
    // Again: nothing left to do.
    assert_eq!(api.billing.store.backfill_workspace_list().await.unwrap().items_updated, 0);
    assert_eq!(ids(&list(&api, Q, &[]).await), [X]);
}

api_suite!(
    the_list_shows_points_status_and_why_paused,
    a_filtered_list_pages_through_every_match,
    items_from_before_the_list_are_listed_after_the_upgrade,
);

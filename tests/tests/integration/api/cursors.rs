//! Every paged route: its cursor walks every item exactly once, and a cursor that is not one
//! this listing returned to this caller is 400 `cursor`: the raw index key the partner ledger
//! used to hand out (its index sort key empty, which DynamoDB refused with a 500), garbage, a
//! valid cursor of another listing, and one of another tenant's same listing (refused, not
//! answered with the caller's own page). A cursor shaped right by hand can only address the
//! caller's own partition.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use store::Table;

use super::{Api, Claims, P, Q, Req, W, X, partner_admin, platform, req, workspace_member};

/// A crafted cursor: `\nWS#x\nLEDGER#00000000000000000001`, an index position with an empty
/// index sort key: refused like any other malformed cursor.
const EMPTY_INDEX_SK_CURSOR: &str = "CldTI3gKTEVER0VSIzAwMDAwMDAwMDAwMDAwMDAwMDAx";
const W2: &str = "ws-acme-2";
const X2: &str = "ws-rival-2";

/// One paged route as one caller asks for it.
#[derive(Clone)]
struct Paged {
    name: &'static str,
    route: &'static str,
    by: Claims,
    query: Vec<(&'static str, String)>,
    /// `GET /partner/wallet` pages its ledger inside the answer.
    nested: Option<&'static str>,
}

impl Paged {
    fn new(name: &'static str, route: &'static str, by: Claims) -> Self {
        Self { name, route, by, query: vec![], nested: None }
    }

    fn req(&self, limit: usize, cursor: Option<&str>) -> Req {
        let mut r = req(self.route).by(self.by.clone()).query("limit", limit.to_string());
        for (k, v) in &self.query {
            r = r.query(k, v.clone());
        }
        match cursor {
            Some(c) => r.query("cursor", c),
            None => r,
        }
    }

    fn page<'a>(&self, body: &'a Value) -> &'a Value {
        match self.nested {
            Some(field) => &body[field],
            None => body,
        }
    }
}

fn listings(p: &str, w: &str) -> Vec<Paged> {
    let mut by_partner = Paged::new("partner ledger of one workspace", "GET /partner/ledger", partner_admin(p));
    by_partner.query.push(("workspace_id", w.to_owned()));
    let mut wallet = Paged::new("partner wallet", "GET /partner/wallet", partner_admin(p));
    wallet.nested = Some("ledger");
    vec![
        Paged::new("workspace ledger", "GET /workspace/ledger", workspace_member(p, w)),
        by_partner,
        Paged::new("partner ledger", "GET /partner/ledger", partner_admin(p)),
        wallet,
        Paged::new("events", "GET /partner/events", partner_admin(p)),
        Paged::new("workspaces", "GET /partner/workspaces", partner_admin(p)),
    ]
}

/// The ids of every item, page by page, and the cursors that led there.
async fn walk<T: Table>(api: &Api<T>, paged: &Paged, limit: usize) -> (Vec<Value>, Vec<String>) {
    let (mut ids, mut cursors) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let body = api.call(paged.req(limit, cursors.last().map(String::as_str))).await.ok(200);
        let page = paged.page(&body);
        ids.extend(page["data"].as_array().expect("a page").iter().map(|item| item["id"].clone()));
        match page["next_cursor"].as_str() {
            Some(c) => cursors.push(c.to_owned()),
            None => return (ids, cursors),
        }
    }
    panic!("{} does not end", paged.name);
}

/// Two partners with two workspaces each, ledger entries in every wallet, and events.
async fn listed<T: Table>(api: &Api<T>) {
    api.tenants().await;
    api.workspace(P, W2, "starter").await;
    api.workspace(Q, X2, "starter").await;
    for (i, (p, w)) in [(P, W), (P, W2), (Q, X), (P, W), (Q, X2), (P, W), (P, W2), (Q, X)].into_iter().enumerate() {
        api.set_clock(super::T0 + time::Duration::minutes(i64::try_from(i).unwrap()));
        api.fund(p, w, &format!("{}", i + 1)).await;
    }
    for (p, amount) in [(P, "10.00"), (P, "20.00"), (P, "30.00"), (Q, "40.00"), (Q, "50.00")] {
        api.credit_partner(p, amount).await;
    }
    // Over the plan's 1 bot and back: a paused and a resumed event each time.
    for (w, bots) in [(W, 2), (W, 1), (W, 2), (X, 2), (X, 1)] {
        let usage = req("PUT /platform/workspaces/{id}/usage-counts")
            .param("id", w)
            .by(platform())
            .json(json!({ "bots": bots, "members": 1, "bot_users": 1 }));
        api.call(usage).await.ok(200);
    }
}

async fn every_paged_route_walks_each_item_once<T: Table>(api: Api<T>) {
    listed(&api).await;
    // W: 3 fundings; P: W and W2 (2); P's wallet: 3 credits; events: paused, resumed, paused.
    let expected_counts = [3, 3, 5, 3, 3, 2];
    for (paged, count) in listings(P, W).iter().zip(expected_counts) {
        let (all, _) = walk(&api, paged, 100).await;
        assert_eq!(all.len(), count, "{}: {all:?}", paged.name);
        for limit in [1, 2, 3] {
            let (walked, cursors) = walk(&api, paged, limit).await;
            assert_eq!(walked, all, "{} by {limit}", paged.name);
            assert_eq!(cursors.len(), count.div_ceil(limit) - 1, "{} by {limit}: no page is empty", paged.name);
        }
    }
}

async fn cursors_of_other_listings_and_tenants_are_refused<T: Table>(api: Api<T>) {
    listed(&api).await;
    let ours = listings(P, W);
    let (mut cursor_of, mut second) = (Vec::new(), Vec::new());
    for paged in &ours {
        let (ids, cursors) = walk(&api, paged, 1).await;
        cursor_of.push(cursors[0].clone());
        second.push(ids[1].clone());
    }
    let theirs: Vec<String> = {
        let mut all = Vec::new();
        for paged in &listings(Q, X) {
            all.push(walk(&api, paged, 1).await.1[0].clone());
        }
        all
    };
    let (_, w2_cursors) = walk(&api, &listings(P, W2)[0], 1).await;
    let api = &api;
    let bad = |paged: &Paged, cursor: &str, why: &str| {
        let (name, why) = (paged.name, why.to_owned());
        let request = paged.req(2, Some(cursor));
        async move {
            let answer = api.call(request).await;
            assert_eq!(answer.status, 400, "{name}, {why}: {}", answer.body);
            answer.invalid("cursor");
        }
    };
    for (i, paged) in ours.iter().enumerate() {
        bad(paged, EMPTY_INDEX_SK_CURSOR, "an empty index sort key").await;
        for garbage in ["garbage!", "bm9wZQ", "", "%%%", "V0FMTEVU", &"QUFB".repeat(200)] {
            bad(paged, garbage, garbage).await;
        }
        // The previous formats: a raw ledger sort key, a bare workspace id.
        bad(paged, &URL_SAFE_NO_PAD.encode("LEDGER#00000000000000000001"), "an old ledger cursor").await;
        bad(paged, W2, "an old workspaces cursor").await;
        // The same listing of the other tenant: refused, not answered with our own page.
        bad(paged, &theirs[i], "the other tenant's cursor").await;
        for (j, other) in cursor_of.iter().enumerate() {
            // A workspace's ledger is one listing whichever route reads it.
            let same_listing = i == j || (i < 2 && j < 2);
            if same_listing {
                let page = api.call(paged.req(1, Some(other))).await.ok(200);
                assert_eq!(paged.page(&page)["data"][0]["id"], second[i], "{}", paged.name);
            } else {
                bad(paged, other, &format!("the cursor of {}", ours[j].name)).await;
            }
        }
    }
    // Another workspace's ledger of the same partner is another listing.
    bad(&ours[0], &w2_cursors[0], "another workspace's ledger").await;
    bad(&ours[1], &w2_cursors[0], "another workspace's ledger").await;
}

/// A cursor of the right shape, made by hand, is a position in the caller's own listing: the
/// keys are rebuilt from the caller's partition, so naming another tenant's workspace, or no
/// entry at all, reads nothing of theirs and never reaches DynamoDB as a bad key.
async fn hand_made_cursors_stay_in_the_callers_listing<T: Table>(api: Api<T>) {
    listed(&api).await;
    let partner_ledger = &listings(P, W)[2];
    let (all, _) = walk(&api, partner_ledger, 100).await;
    let craft = |text: &str| URL_SAFE_NO_PAD.encode(text);
    let ids = |body: &Value| body["data"].as_array().unwrap().iter().map(|e| e["id"].clone()).collect::<Vec<_>>();
    // After a time beyond every entry: from the newest on, P's entries only, though the
    // position names Q's workspace.
    let later = craft(&format!("c1.partner-ledger.{P}.99999999999999999999.{X}.1"));
    let page = api.call(partner_ledger.req(100, Some(&later))).await.ok(200);
    assert_eq!(ids(&page), all);
    assert!(page["data"].as_array().unwrap().iter().all(|e| e["workspace_id"] != X), "{page}");
    // Before every entry: an empty last page.
    let earlier = craft(&format!("c1.partner-ledger.{P}.0.{X}.1"));
    let page = api.call(partner_ledger.req(100, Some(&earlier))).await.ok(200);
    assert_eq!(page, json!({ "data": [], "next_cursor": null }));
    // A ledger position past the newest entry of W: the whole ledger.
    let ledger = &listings(P, W)[0];
    let (entries, _) = walk(&api, ledger, 100).await;
    let past = craft(&format!("c1.ledger.ws:{W}.{}", u64::MAX));
    assert_eq!(ids(&api.call(ledger.req(100, Some(&past))).await.ok(200)), entries);
    // An event position after every event, with an id no event has.
    let events = &listings(P, W)[4];
    let (seen, _) = walk(&api, events, 100).await;
    let after_all = craft(&format!("c1.events.{P}.99999999999999999999.0.evt_0"));
    assert_eq!(ids(&api.call(events.req(100, Some(&after_all))).await.ok(200)), seen);
    // A workspace position: P's own workspaces that sort after it, and never Q's (whose ids
    // sort after P's).
    let workspaces = &listings(P, W)[5];
    for (after, expected) in
        [("ws-a", vec![json!(W), json!(W2)]), (W, vec![json!(W2)]), ("ws-acme-10", vec![json!(W2)]), ("ws-b", vec![])]
    {
        let position = craft(&format!("c1.workspaces.{P}.{after}"));
        assert_eq!(ids(&api.call(workspaces.req(100, Some(&position))).await.ok(200)), expected, "after {after}");
    }
}

api_suite!(
    every_paged_route_walks_each_item_once,
    cursors_of_other_listings_and_tenants_are_refused,
    hand_made_cursors_stay_in_the_callers_listing,
);

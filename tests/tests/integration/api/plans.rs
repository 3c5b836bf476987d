//! Plans billed in money, end to end through the HTTP API, on the Stripe fake: a workspace
//! subscribes on a Checkout page, Stripe's events (delivered as the fake sent them) put it on
//! the plan, it buys an add-on onto the plan's bill and changes plans; renewals come from the
//! fake's clock, paid or declined.
//!
//! The published vector: plan 49.00 a month, an extra member at 10.00 bought with 15 of 30 days
//! left costs 5.00 now (the first cycle 54.00 in all), and the next invoice is 59.00; on a 31-day
//! cycle, bought on the 15th, 10.00 x 16/31 = 5.16 and 59.00.

use integration_tests::CountingTable;
use serde_json::{Value, json};
use store::Table;
use store::memory::MemoryTable;
use store::plan_billing::UNPAID_PK;
use time::{Date, Month, OffsetDateTime, Time};

use super::{Api, P, W, partner_admin, platform, req, workspace_admin};
use stripe_fake::NextPaymentIntent;

/// A month a year from now, so that the fake's clock (which only moves forward from the real
/// time) can start there.
pub(super) fn in_next_year(month: Month, day: u8, hour: u8) -> OffsetDateTime {
    let year = OffsetDateTime::now_utc().year() + 1;
    Date::from_calendar_date(year, month, day).unwrap().with_time(Time::from_hms(hour, 0, 0).unwrap()).assume_utc()
}

/// Both clocks, the billing's and the fake Stripe's, at `at`: what the fake renews on the way
/// sends its events (delivered by [`Feed::deliver`]).
pub(super) async fn at<T: Table>(api: &Api<T>, at: OffsetDateTime) {
    api.set_clock(at);
    api.stripe.set_clock(at.unix_timestamp()).await.expect("the fake's clock moves forward");
}

/// Delivers the fake's events of connected accounts, in the order it sent them, each once.
#[derive(Default)]
struct Feed {
    delivered: usize,
}

impl Feed {
    /// The events not delivered yet, each answered 200: their outcomes.
    async fn deliver<T: Table>(&mut self, api: &Api<T>) -> Vec<String> {
        let events = api.stripe.events();
        let mut outcomes = vec![];
        for e in &events[self.delivered..] {
            if e.account.is_none() {
                continue;
            }
            let r = api.deliver(&e.payload).await;
            assert_eq!(r.status, 200, "{}: {}", e.type_, r.body);
            outcomes.push(format!("{}:{}", e.type_, r.body["outcome"].as_str().unwrap()));
        }
        self.delivered = events.len();
        outcomes
    }
}

/// P sells in money: credit billing off, return URLs, `grace_days`, an extra member at 10.00 USD
/// a month. Its starter plan is 49.00 USD a month (the default).
pub(super) async fn money_partner<T: Table>(api: &Api<T>, grace_days: u32) {
    api.partner(P, false).await;
    let settings = json!({
        "credit_billing": false, "success_url": "https://agency.example/paid",
        "cancel_url": "https://agency.example/back", "grace_days": grace_days,
    });
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(settings)).await.ok(200);
    let member = json!({
        "label": "Extra member", "points": "10", "enabled": true,
        "price": { "amount_minor": 1000, "currency": "usd" },
    });
    let put = req("PUT /partner/addons/{code}").param("code", "extra_member").by(partner_admin(P)).json(member);
    assert_eq!(api.call(put).await.ok(200)["price"], json!({ "amount_minor": 1000, "currency": "usd" }));
    api.workspace(P, W, "starter").await;
}

/// W subscribes to `plan` on the Checkout page at `when` (its events sent, not delivered): the
/// subscription's id.
pub(super) async fn subscribe_paid<T: Table>(api: &Api<T>, plan: &str, when: OffsetDateTime) -> String {
    at(api, when).await;
    let started = api.call(req("POST /workspace/subscription").by(workspace_admin(P, W)).json(json!({ "plan": plan })));
    started.await.ok(201);
    let account = api.account(P).await;
    let session = api.stripe.sessions(Some(&account)).last().unwrap()["id"].as_str().unwrap().to_owned();
    api.stripe.pay(&session).await.unwrap();
    api.stripe.subscriptions(Some(&account)).last().unwrap()["id"].as_str().unwrap().to_owned()
}

/// W subscribes to `plan` on the Checkout page at `when`, and the fake's events are delivered:
/// the subscription's id.
async fn subscribe<T: Table>(api: &Api<T>, feed: &mut Feed, plan: &str, when: OffsetDateTime) -> String {
    at(api, when).await;
    let started = api.call(req("POST /workspace/subscription").by(workspace_admin(P, W)).json(json!({ "plan": plan })));
    let started = started.await.ok(201);
    assert_eq!(started["plan"], plan);
    let account = api.account(P).await;
    let session = api.stripe.sessions(Some(&account)).last().unwrap()["id"].as_str().unwrap().to_owned();
    assert_eq!(api.stripe.sessions(Some(&account)).last().unwrap()["mode"], "subscription");
    api.stripe.pay(&session).await.unwrap();
    let outcomes = feed.deliver(api).await;
    assert!(outcomes.iter().any(|o| o.ends_with("subscription_applied")), "{outcomes:?}");
    let sub = api.call(req("GET /workspace/subscription").by(workspace_admin(P, W))).await.ok(200);
    sub["subscription"]["id"].as_str().unwrap().to_owned()
}

/// Partner `p` sells in money for a moment: `w` subscribes to the starter plan (paid on the
/// Checkout page, applied from the fake's events) and puts an extra member on the plan's bill.
/// The partner's settings are left with credit billing off and its return URLs set.
pub(crate) async fn subscribe_with_billed_addon<T: Table>(api: &Api<T>, p: &str, w: &str) {
    let settings = json!({
        "credit_billing": false, "success_url": "https://agency.example/paid",
        "cancel_url": "https://agency.example/back", "grace_days": 0,
    });
    api.call(req("PUT /partner/settings").by(partner_admin(p)).json(settings)).await.ok(200);
    let member = json!({ "label": "Member", "points": "10", "enabled": true, "price": usd(1000) });
    let put = req("PUT /partner/addons/{code}").param("code", "extra_member").by(partner_admin(p)).json(member);
    api.call(put).await.ok(200);
    api.call(req("POST /workspace/subscription").by(workspace_admin(p, w)).json(json!({ "plan": "starter" })))
        .await
        .ok(201);
    let account = api.account(p).await;
    let session = api.stripe.sessions(Some(&account)).last().unwrap()["id"].as_str().unwrap().to_owned();
    let mut feed = Feed { delivered: api.stripe.events().len() };
    api.stripe.pay(&session).await.unwrap();
    feed.deliver(api).await;
    let body = json!({ "addon": "extra_member", "quantity": 1 });
    api.call(req("POST /workspace/subscription/addons").by(workspace_admin(p, w)).json(body)).await.ok(201);
    feed.deliver(api).await;
}

/// The id of W's add-on on its plan's bill.
pub(super) async fn billed_addon<T: Table>(api: &Api<T>) -> String {
    billed_addon_of(api, P, W).await
}

/// The id of `w`'s add-on on its plan's bill.
pub(crate) async fn billed_addon_of<T: Table>(api: &Api<T>, p: &str, w: &str) -> String {
    let ws = api.call(req("GET /workspace").by(workspace_admin(p, w))).await.ok(200);
    let billed = ws["addons"].as_array().unwrap().iter().find(|a| a.get("unit_price").is_some()).expect("billed");
    billed["id"].as_str().unwrap().to_owned()
}

fn usd(minor: i64) -> Value {
    json!({ "amount_minor": minor, "currency": "usd" })
}

pub(super) async fn subscription<T: Table>(api: &Api<T>) -> Value {
    api.call(req("GET /workspace/subscription").by(workspace_admin(P, W))).await.ok(200)
}

async fn invoices<T: Table>(api: &Api<T>) -> Vec<Value> {
    let page = api.call(req("GET /workspace/invoices").by(workspace_admin(P, W))).await.ok(200);
    page["data"].as_array().unwrap().clone()
}

async fn event_types<T: Table>(api: &Api<T>) -> Vec<String> {
    let events = api.call(req("GET /partner/events").by(partner_admin(P)).query("limit", "100")).await.ok(200);
    events["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
}

/// The vector on the cycle of `month` (bought on the 15th): what is charged now and in all.
async fn vector<T: Table>(api: Api<T>, month: Month, now: i64, days: (u32, u32)) {
    money_partner(&api, 0).await;
    let mut feed = Feed::default();
    let start = in_next_year(month, 1, 9);
    subscribe(&api, &mut feed, "starter", start).await;
    let sub = subscription(&api).await;
    let last = start.date().replace_day(days.1 as u8).unwrap();
    assert_eq!(sub["plan"], "starter");
    assert_eq!(sub["subscription"]["plan_price"], usd(4900));
    assert_eq!(sub["subscription"]["payment"], "paid");
    assert_eq!(sub["subscription"]["cycle"], json!({ "start": start.date().to_string(), "end": last.to_string() }));
    let renewal = last.next_day().unwrap();
    assert_eq!(sub["next_invoice"], json!({ "date": renewal.to_string(), "amount": usd(4900) }));

    // The extra member, bought on the 15th.
    at(&api, in_next_year(month, 15, 12)).await;
    let body = json!({ "addon": "extra_member", "quantity": 1 });
    let bought = api.call(req("POST /workspace/subscription/addons").by(workspace_admin(P, W)).json(body)).await;
    let bought = bought.ok(201);
    assert_eq!(bought["charged"]["amount"], usd(now), "{bought}");
    assert_eq!(bought["charged"]["full_price"], usd(1000));
    assert_eq!(
        (bought["charged"]["days_remaining"].as_u64(), bought["charged"]["days_in_cycle"].as_u64()),
        (Some(u64::from(days.0)), Some(u64::from(days.1)))
    );
    assert_eq!(bought["addon"]["unit_price"], usd(1000));
    assert_eq!(bought["workspace"]["limits"]["members"], 3, "starter's 2 and the extra member");
    let outcomes = feed.deliver(&api).await;
    let ours = |o: &&String| o.starts_with("invoice.paid") || o.starts_with("customer.subscription");
    assert!(outcomes.iter().filter(ours).all(|o| o.ends_with("unchanged")), "already agreed: {outcomes:?}");

    // The first cycle: the plan and the rest of the cycle's member, 49.00 + 5.00 (or 5.16).
    let paid: i64 = invoices(&api).await.iter().map(|i| i["amount_paid"]["amount_minor"].as_i64().unwrap()).sum();
    assert_eq!(paid, 4900 + now);
    assert_eq!(subscription(&api).await["next_invoice"], json!({ "date": renewal.to_string(), "amount": usd(5900) }));

    // The renewal bills 59.00, and the next cycle starts.
    let next_month = renewal.month();
    at(&api, in_next_year(next_month, 1, 10)).await;
    let outcomes = feed.deliver(&api).await;
    assert!(outcomes.iter().any(|o| o.ends_with("subscription_applied")), "{outcomes:?}");
    let newest = invoices(&api).await[0].clone();
    assert_eq!(
        (newest["billing_reason"].as_str(), newest["status"].as_str()),
        (Some("subscription_cycle"), Some("paid"))
    );
    assert_eq!(newest["total"], usd(5900));
    let sub = subscription(&api).await;
    assert_eq!(sub["subscription"]["cycle"]["start"], renewal.to_string());
    let ws = api.call(req("GET /workspace").by(workspace_admin(P, W))).await.ok(200);
    assert_eq!(ws["limits"]["members"], 3, "the member renewed on the plan's bill");
    assert_eq!(ws["balance"], "0.00", "no points moved");
    assert_eq!(event_types(&api).await.iter().filter(|t| *t == "subscription.started").count(), 1);
}

async fn the_published_vector_on_a_30_day_cycle<T: Table>(api: Api<T>) {
    // April: 15 of 30 days left after the 15th, 10.00 x 15/30 = 5.00.
    vector(api, Month::April, 500, (15, 30)).await;
}

async fn the_published_vector_on_a_31_day_cycle<T: Table>(api: Api<T>) {
    // May: 16 of 31 days left after the 15th, 10.00 x 16/31 = 5.1613 -> 5.16.
    vector(api, Month::May, 516, (16, 31)).await;
}

/// An upgrade charges the rest of the cycle now and resumes a paused workspace in the same
/// answer; a downgrade waits for the next cycle (and pauses it then, its limits being lower).
async fn a_customer_upgrade_resumes_a_paused_workspace<T: Table>(api: Api<T>) {
    money_partner(&api, 0).await;
    let mut feed = Feed::default();
    subscribe(&api, &mut feed, "starter", in_next_year(Month::April, 1, 9)).await;
    let usage = json!({ "bots": 2, "members": 1, "bot_users": 10 });
    let paused = req("PUT /platform/workspaces/{id}/usage-counts").param("id", W).by(platform()).json(usage);
    assert_eq!(api.call(paused).await.ok(200)["workspace"]["status"], "paused");

    let plans = api.call(req("GET /workspace/plans").by(workspace_admin(P, W))).await.ok(200);
    let growth = plans["data"].as_array().unwrap().iter().find(|p| p["id"] == "growth").unwrap().clone();
    at(&api, in_next_year(Month::April, 16, 8)).await;
    let plans = api.call(req("GET /workspace/plans").by(workspace_admin(P, W))).await.ok(200);
    let quoted = plans["data"].as_array().unwrap().iter().find(|p| p["id"] == "growth").unwrap()["change"].clone();
    // 99.00 - 49.00 = 50.00 for 14 of 30 days: 23.333 -> 23.33.
    assert_eq!(
        quoted,
        json!({ "kind": "upgrade", "charge_now": usd(2333), "days_remaining": 14, "days_in_cycle": 30 })
    );
    assert_eq!(growth["monthly_price"], usd(9900));

    let changed = api.call(req("POST /workspace/plan").by(workspace_admin(P, W)).json(json!({ "plan": "growth" })));
    let changed = changed.await.ok(200);
    assert_eq!(changed["charged"]["amount"], usd(2333));
    assert!(changed["charged"]["invoice"].as_str().unwrap().starts_with("in_"));
    assert_eq!(
        (changed["workspace"]["plan"].as_str(), changed["workspace"]["status"].as_str()),
        (Some("growth"), Some("active"))
    );
    let types = event_types(&api).await;
    assert!(types.contains(&"plan.changed".to_owned()) && types.contains(&"workspace.resumed".to_owned()), "{types:?}");
    feed.deliver(&api).await;
    // A replay answers the same, and charges nothing more.
    let charged = invoices(&api).await.len();

    // Back down to starter: billed from the next invoice, its limits from the next cycle.
    let down = api.call(req("POST /workspace/plan").by(workspace_admin(P, W)).json(json!({ "plan": "starter" })));
    let down = down.await.ok(200);
    let may = in_next_year(Month::May, 1, 0).date();
    assert_eq!((down["effective"].as_str(), down["charged"].is_null()), (Some(may.to_string().as_str()), true));
    assert_eq!(down["workspace"]["plan"], "growth");
    assert_eq!(subscription(&api).await["next_invoice"]["amount"], usd(4900));
    assert_eq!(invoices(&api).await.len(), charged, "a downgrade charges nothing now");
    feed.deliver(&api).await;
    at(&api, in_next_year(Month::May, 1, 10)).await;
    feed.deliver(&api).await;
    let ws = api.call(req("GET /workspace").by(workspace_admin(P, W))).await.ok(200);
    assert_eq!((ws["plan"].as_str(), ws["status"].as_str()), (Some("starter"), Some("paused")), "{ws}");
    assert_eq!(invoices(&api).await[0]["total"], usd(4900));
}

/// A declined upgrade changes nothing.
async fn a_declined_upgrade_changes_nothing<T: Table>(api: Api<T>) {
    money_partner(&api, 0).await;
    let mut feed = Feed::default();
    let sub = subscribe(&api, &mut feed, "starter", in_next_year(Month::April, 1, 9)).await;
    at(&api, in_next_year(Month::April, 10, 9)).await;
    let decline = Some(NextPaymentIntent::Decline("insufficient_funds".into()));
    api.stripe.set_subscription_payment_outcome(&sub, decline).unwrap();
    let before = api.state().await;
    let r = api.call(req("POST /workspace/plan").by(workspace_admin(P, W)).json(json!({ "plan": "agency" }))).await;
    r.err(402, "payment_declined", None);
    assert_eq!(api.state().await, before, "nothing written");
    assert_eq!(subscription(&api).await["plan"], "starter");
}

/// A failed renewal: past due through the grace days, paused after them, resumed when paid.
async fn a_failed_renewal_pauses_after_the_grace_days_and_a_payment_resumes<T: Table>(api: Api<T>) {
    money_partner(&api, 3).await;
    let mut feed = Feed::default();
    let sub = subscribe(&api, &mut feed, "starter", in_next_year(Month::April, 1, 9)).await;
    let decline = Some(NextPaymentIntent::Decline("insufficient_funds".into()));
    api.stripe.set_subscription_payment_outcome(&sub, decline).unwrap();
    let may = in_next_year(Month::May, 1, 10);
    at(&api, may).await;
    feed.deliver(&api).await;
    let s = subscription(&api).await;
    assert_eq!(s["subscription"]["payment"], "past_due");
    assert_eq!(s["subscription"]["payment_failed_on"], may.date().to_string());
    let ws = api.call(req("GET /workspace").by(workspace_admin(P, W))).await.ok(200);
    assert_eq!(ws["status"], "active", "the grace days run");
    assert!(event_types(&api).await.contains(&"subscription.past_due".to_owned()));

    // The third day after: still in grace. The fourth: paused.
    api.set_clock(in_next_year(Month::May, 3, 23));
    assert_eq!(api.billing.pause_unpaid_plans(|| false).await.unwrap().paused, 0);
    api.set_clock(in_next_year(Month::May, 4, 0));
    assert_eq!(api.billing.pause_unpaid_plans(|| false).await.unwrap().paused, 1);
    let ws = api.call(req("GET /workspace").by(workspace_admin(P, W))).await.ok(200);
    assert_eq!((ws["status"].as_str(), ws["unpaid"].as_bool()), (Some("paused"), Some(true)), "{ws}");
    assert_eq!(subscription(&api).await["subscription"]["payment"], "unpaid");
    // Again: nothing more to do.
    assert_eq!(api.billing.pause_unpaid_plans(|| false).await.unwrap(), Default::default());

    // Paid later (a new card, Stripe's retry): resumed.
    api.stripe.set_subscription_payment_outcome(&sub, None).unwrap();
    let open = invoices(&api).await.into_iter().find(|i| i["status"] == "open").expect("the unpaid renewal");
    api.stripe.pay_open_invoice(open["id"].as_str().unwrap()).await.unwrap();
    feed.deliver(&api).await;
    let ws = api.call(req("GET /workspace").by(workspace_admin(P, W))).await.ok(200);
    assert_eq!((ws["status"].as_str(), ws.get("unpaid")), (Some("active"), None), "{ws}");
    assert_eq!(subscription(&api).await["subscription"]["payment"], "paid");
    let types = event_types(&api).await;
    for t in ["subscription.past_due", "subscription.recovered", "workspace.paused", "workspace.resumed"] {
        assert_eq!(types.iter().filter(|x| *x == t).count(), 1, "{t} once: {types:?}");
    }
    assert!(api.billing.store.query_prefix(UNPAID_PK, "", None, 10).await.unwrap().is_empty(), "the mark is gone");
}

/// Cancelled at the period's end: the workspace falls back to the starter plan then.
async fn a_cancelled_subscription_ends_with_its_cycle<T: Table>(api: Api<T>) {
    money_partner(&api, 0).await;
    let mut feed = Feed::default();
    let sub = subscribe(&api, &mut feed, "growth", in_next_year(Month::April, 1, 9)).await;
    assert_eq!(subscription(&api).await["plan"], "growth");
    let cancel = api.call(req("DELETE /workspace/subscription").by(workspace_admin(P, W))).await.ok(200);
    assert_eq!(cancel["subscription"]["id"], sub);
    feed.deliver(&api).await;
    let s = subscription(&api).await;
    assert_eq!((s["subscription"]["cancel_at_cycle_end"].as_bool(), s["next_invoice"].is_null()), (Some(true), true));
    at(&api, in_next_year(Month::May, 1, 10)).await;
    let outcomes = feed.deliver(&api).await;
    assert!(outcomes.iter().any(|o| o.starts_with("customer.subscription.deleted")), "{outcomes:?}");
    let ws = api.call(req("GET /workspace").by(workspace_admin(P, W))).await.ok(200);
    assert_eq!(ws["plan"], "starter");
    api.call(req("GET /workspace/subscription").by(workspace_admin(P, W))).await.err(404, "not_found", None);
    assert!(event_types(&api).await.contains(&"subscription.ended".to_owned()));
}

/// A partner with credit billing on sells add-ons for points: the plan's bill takes none, and a
/// workspace that never subscribed can't change its own plan.
async fn money_routes_refuse_what_they_do_not_bill<T: Table>(api: Api<T>) {
    api.tenants().await;
    let body = json!({ "addon": "extra_member", "quantity": 1 });
    let r = api.call(req("POST /workspace/subscription/addons").by(workspace_admin(P, W)).json(body)).await;
    r.err(403, "forbidden", None);
    let r = api.call(req("POST /workspace/plan").by(workspace_admin(P, W)).json(json!({ "plan": "growth" }))).await;
    r.err(403, "forbidden", None);
    api.call(req("GET /workspace/subscription").by(workspace_admin(P, W))).await.err(404, "not_found", None);
    let plans = api.call(req("GET /workspace/plans").by(workspace_admin(P, W))).await.ok(200);
    assert!(plans["subscription"].is_null() && plans["data"].as_array().unwrap().iter().all(|p| p["change"].is_null()));
    // The partner still moves an unbilled workspace's plan as before.
    let moved =
        req("PUT /partner/workspaces/{id}/plan").param("id", W).by(partner_admin(P)).json(json!({ "plan": "growth" }));
    assert_eq!(api.call(moved).await.ok(200)["workspace"]["plan"], "growth");
}

/// A workspace's cycles become its subscription's (its renewals of points add-ons too), unless
/// it holds add-ons paid with points then: those keep renewing on its own cycles.
async fn the_workspace_takes_its_subscription_s_cycle_unless_it_holds_points_add_ons<T: Table>(api: Api<T>) {
    api.tenants().await;
    let settings = json!({
        "credit_billing": true, "success_url": "https://agency.example/paid",
        "cancel_url": "https://agency.example/back", "grace_days": 0,
    });
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(settings)).await.ok(200);
    api.workspace(P, "ws-acme-2", "starter").await;
    api.fund(P, "ws-acme-2", "100").await;
    api.buy(P, "ws-acme-2", "extra_bot", 1).await.ok(201);
    let mut feed = Feed::default();
    let start = in_next_year(Month::April, 10, 9);
    subscribe(&api, &mut feed, "starter", start).await;
    let next = start.date().replace_month(Month::May).unwrap();
    let ws = api.call(req("GET /workspace").by(workspace_admin(P, W))).await.ok(200);
    let cycle = json!({ "start": start.date().to_string(), "end": next.previous_day().unwrap().to_string() });
    assert_eq!((&ws["cycle"], &ws["renews_on"]), (&cycle, &json!(next.to_string())), "{ws}");
    // The other one holds an extra bot paid with points: its cycles stay the calendar month's.
    let other = |r: &'static str| req(r).by(workspace_admin(P, "ws-acme-2"));
    api.call(other("POST /workspace/subscription").json(json!({ "plan": "starter" }))).await.ok(201);
    let account = api.account(P).await;
    let session = api.stripe.sessions(Some(&account)).last().unwrap()["id"].as_str().unwrap().to_owned();
    api.stripe.pay(&session).await.unwrap();
    feed.deliver(&api).await;
    let ws = api.call(other("GET /workspace")).await.ok(200);
    assert_eq!(ws["cycle"]["start"], start.date().replace_day(1).unwrap().to_string(), "{ws}");
    let sub = api.call(other("GET /workspace/subscription")).await.ok(200);
    assert_eq!(sub["subscription"]["cycle"]["start"], start.date().to_string(), "{sub}");
}

/// The two changes in money the tenant matrix can't make succeed (its workspace is subscribed,
/// its partner sells for points) make one read and one transaction like every other change: a
/// subscription's Checkout (after the first, which also stores the new customer), and an add-on
/// put on the plan's bill. The Stripe calls between are not the table's.
#[tokio::test]
async fn changes_in_money_make_one_read_and_one_transaction() {
    let api = Api::over(CountingTable::new(MemoryTable::new())).await;
    money_partner(&api, 0).await;
    let mut feed = Feed::default();
    at(&api, in_next_year(Month::April, 1, 9)).await;
    let table = api.billing.store.table();
    let subscribe = || req("POST /workspace/subscription").by(workspace_admin(P, W)).json(json!({ "plan": "starter" }));
    api.call(subscribe()).await.ok(201);
    let before = table.counts();
    api.call(subscribe()).await.ok(201);
    let after = table.counts();
    assert_eq!((after.0 - before.0 + after.1 - before.1, after.2 - before.2), (1, 1), "a second Checkout");
    let account = api.account(P).await;
    let session = api.stripe.sessions(Some(&account)).last().unwrap()["id"].as_str().unwrap().to_owned();
    api.stripe.pay(&session).await.unwrap();
    feed.deliver(&api).await;
    // Its price stored by a first purchase; the second is counted.
    for expected in [None, Some((1, 1))] {
        let before = table.counts();
        let body = json!({ "addon": "extra_member", "quantity": 1 });
        api.call(req("POST /workspace/subscription/addons").by(workspace_admin(P, W)).json(body)).await.ok(201);
        let after = table.counts();
        if let Some(expected) = expected {
            assert_eq!(
                (after.0 - before.0 + after.1 - before.1, after.2 - before.2),
                expected,
                "an add-on on the bill"
            );
        }
    }
}

api_suite!(
    the_published_vector_on_a_30_day_cycle,
    the_published_vector_on_a_31_day_cycle,
    a_customer_upgrade_resumes_a_paused_workspace,
    a_declined_upgrade_changes_nothing,
    a_failed_renewal_pauses_after_the_grace_days_and_a_payment_resumes,
    a_cancelled_subscription_ends_with_its_cycle,
    money_routes_refuse_what_they_do_not_bill,
    the_workspace_takes_its_subscription_s_cycle_unless_it_holds_points_add_ons
);

//! Renewal at the cycle end: add-ons paid again with points at the partner's
//! price then, cancelled ones ending, unpaid ones kept through the grace days and then lapsing
//! together, the workspace pausing when that puts it over its limits; once per cycle, however
//! many runs race.

use std::sync::atomic::{AtomicUsize, Ordering};

use billing::{RenewalLimits, RenewalOutcome, RenewalRun};
use domain::{AddonCode, AddonId, AddonStatus, MAX_RENEWAL_ADDONS, Points, WorkspaceAddon, WorkspaceId};
use serde_json::{Value, json};
use store::{Condition, Table, Write, keys, records};
use time::OffsetDateTime;
use time::macros::{date, datetime};

use super::{Api, P, W, partner_admin, req, workspace_admin};
use billing::join_all;

async fn run<T: Table>(api: &Api<T>) -> RenewalRun {
    api.billing.renew_due(|| false, RenewalLimits::default()).await.unwrap()
}

fn at(d: time::Date) -> OffsetDateTime {
    d.with_hms(6, 0, 0).unwrap().assume_utc()
}

async fn addons<T: Table>(api: &Api<T>, p: &str, w: &str) -> Vec<(String, String, String)> {
    let got = api.call(req("GET /workspace/addons").by(workspace_admin(p, w))).await.ok(200);
    got["owned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["addon"].as_str().unwrap().into(),
                a["status"].as_str().unwrap().into(),
                a["period_end"].as_str().unwrap().into(),
            )
        })
        .collect()
}

async fn set_price<T: Table>(api: &Api<T>, code: &str, points: &str) {
    let body = json!({ "label": "Extra", "points": points, "enabled": true });
    api.call(req("PUT /partner/addons/{code}").param("code", code).by(partner_admin(P)).json(body)).await.ok(200);
}

async fn enough_points_renew_at_the_price_of_the_day<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "100").await;
    // 15 April, cycle 1-30 April: 10 x 15/30 = 5.00.
    assert_eq!(api.buy(P, W, "extra_bot", 2).await.ok(201)["charged"], "10.00");
    assert_eq!(api.view(P, W).await["renews_on"], "2026-05-01");
    // Nothing is due before 1 May.
    api.set_clock(datetime!(2026-04-30 23:00 UTC));
    assert_eq!(run(&api).await, RenewalRun { finished: true, ..Default::default() });
    api.set_clock(at(date!(2026 - 05 - 01)));
    // W, and the other tenant's X (nothing to pay: its cycle just moves on).
    assert_eq!(run(&api).await, RenewalRun { renewed: 2, finished: true, ..Default::default() });
    assert_eq!(api.balance(P, W).await, "70.00", "2 x 10.00 for May");
    assert_eq!(addons(&api, P, W).await, [("extra_bot".into(), "active".into(), "2026-05-31".into())]);
    assert_eq!(api.view(P, W).await["renews_on"], "2026-06-01");
    let entry = &api.ledger(P, W).await[0];
    assert_eq!((&entry["kind"], &entry["amount"]), (&json!("renewal"), &json!("-20.00")), "{entry}");
    assert_eq!(entry["detail"]["cycle_start"], "2026-05-01");
    assert_eq!(entry["detail"]["lines"][0]["unit_points"], "10.00");
    assert_eq!(entry["actor"], json!({ "type": "system", "id": "renewal" }));
    // Again the same day: nothing more.
    assert_eq!(run(&api).await, RenewalRun { finished: true, ..Default::default() });
    let w = WorkspaceId::parse(W).unwrap();
    assert_eq!(api.billing.renew_workspace(&w).await.unwrap(), RenewalOutcome::NotDue);
    // The partner raises the price in May: June renews at 12.
    set_price(&api, "extra_bot", "12").await;
    api.set_clock(at(date!(2026 - 06 - 01)));
    assert_eq!(run(&api).await.renewed, 2);
    assert_eq!(api.balance(P, W).await, "46.00");
    assert_eq!(api.verify(W).await, 4);
}

async fn cancelled_addons_end_and_the_workspace_pauses_if_over<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "100").await;
    let bought = api.buy(P, W, "extra_bot", 1).await.ok(201);
    let id = bought["addon"]["id"].as_str().unwrap().to_owned();
    api.usage(W, 2, 1, 1).await.ok(200);
    api.call(req("DELETE /workspace/addons/{addon_id}").param("addon_id", &id).by(workspace_admin(P, W))).await.ok(200);
    assert_eq!(api.view(P, W).await["status"], "active", "a cancelled add-on counts until its period ends");
    api.set_clock(at(date!(2026 - 05 - 01)));
    assert_eq!(run(&api).await.renewed, 2, "W and X");
    assert_eq!(api.balance(P, W).await, "95.00", "nothing charged for an add-on that ends");
    assert_eq!(addons(&api, P, W).await, []);
    let view = api.view(P, W).await;
    assert_eq!((&view["status"], &view["exceeded"]), (&json!("paused"), &json!(["bots"])), "2 bots on a 1-bot plan");
    // Back within limits: active again.
    api.usage(W, 1, 1, 1).await.ok(200);
    assert_eq!(api.view(P, W).await["status"], "active");
}

async fn unpaid_addons_lapse_together_after_the_grace_days<T: Table>(api: Api<T>) {
    api.tenants().await;
    let settings = json!({ "credit_billing": true, "success_url": null, "cancel_url": null, "grace_days": 3 });
    api.call(req("PUT /partner/settings").by(partner_admin(P)).json(settings)).await.ok(200);
    api.fund(P, W, "20").await;
    api.buy(P, W, "extra_bot", 1).await.ok(201);
    api.buy(P, W, "extra_member", 1).await.ok(201);
    api.usage(W, 2, 3, 1).await.ok(200);
    // 10.00 left; May costs 20.00 (both add-ons): all or nothing, so neither renews.
    assert_eq!(api.balance(P, W).await, "10.00");
    let w = WorkspaceId::parse(W).unwrap();
    for day in [date!(2026 - 05 - 01), date!(2026 - 05 - 03)] {
        api.set_clock(at(day));
        let outcome = api.billing.renew_workspace(&w).await.unwrap();
        let shortfall = Points::parse("10").unwrap();
        assert_eq!(outcome, RenewalOutcome::InGrace { shortfall, lapses_on: date!(2026 - 05 - 04) }, "{day}");
        assert_eq!(api.view(P, W).await["status"], "active", "kept during the grace days");
    }
    let w_state = || async {
        api.state()
            .await
            .into_iter()
            .filter(|i| i.get("PK") == Some(&store::Attr::s(format!("WS#{W}"))))
            .collect::<Vec<_>>()
    };
    let before = w_state().await;
    // X (nothing to pay) moves on; W stays in grace.
    assert_eq!(run(&api).await, RenewalRun { renewed: 1, in_grace: 1, finished: true, ..Default::default() });
    assert_eq!(w_state().await, before, "a renewal in grace writes nothing");
    api.set_clock(at(date!(2026 - 05 - 04)));
    assert_eq!(run(&api).await, RenewalRun { lapsed: 1, finished: true, ..Default::default() });
    let statuses: Vec<_> = addons(&api, P, W).await;
    assert_eq!(statuses, [], "both lapsed (they no longer count)");
    let view = api.view(P, W).await;
    assert_eq!((&view["status"], &view["exceeded"]), (&json!("paused"), &json!(["bots", "members"])));
    assert_eq!(api.balance(P, W).await, "10.00", "nothing charged");
    let entry = &api.ledger(P, W).await[0];
    assert_eq!((&entry["kind"], &entry["amount"]), (&json!("lapse"), &json!("0.00")), "{entry}");
    assert_eq!(entry["detail"]["shortfall"], "10.00");
    assert!(entry["detail"]["reason"].as_str().unwrap().contains("10.00"), "{entry}");
    assert_eq!(entry["detail"]["lines"].as_array().unwrap().len(), 2);
    // The workspace buys what it needs again and resumes.
    api.fund(P, W, "100").await;
    api.buy(P, W, "extra_bot", 1).await.ok(201);
    api.buy(P, W, "extra_member", 1).await.ok(201);
    assert_eq!(api.view(P, W).await["status"], "active");
    assert_eq!(api.view(P, W).await["renews_on"], "2026-06-01");
}

async fn anchor_day_31_renews_through_a_whole_year<T: Table>(api: Api<T>) {
    api.partner(P, true).await;
    api.set_clock(at(date!(2027 - 01 - 31)));
    api.provision(P, W, "Month ends", "starter", Some(31)).await;
    api.fund(P, W, "1000").await;
    // Bought on the cycle's first day (31 Jan - 27 Feb: 27 of 28 days left).
    assert_eq!(api.buy(P, W, "extra_member", 1).await.ok(201)["charged"], "9.64");
    let expected = [
        "2027-02-28",
        "2027-03-31",
        "2027-04-30",
        "2027-05-31",
        "2027-06-30",
        "2027-07-31",
        "2027-08-31",
        "2027-09-30",
        "2027-10-31",
        "2027-11-30",
        "2027-12-31",
        "2028-01-31",
        "2028-02-29",
    ];
    assert_eq!(api.view(P, W).await["renews_on"], expected[0]);
    for pair in expected.windows(2) {
        let day = time::Date::parse(pair[0], time::macros::format_description!("[year]-[month]-[day]")).unwrap();
        api.set_clock(at(day));
        assert_eq!(run(&api).await.renewed, 1, "renewal on {}", pair[0]);
        assert_eq!(api.view(P, W).await["renews_on"], pair[1]);
    }
    // 12 renewals of 10.00 each, after the prorated first month.
    assert_eq!(api.balance(P, W).await, "870.36");
    assert_eq!(api.verify(W).await, 14);
}

async fn concurrent_runs_renew_once<T: Table>(api: Api<T>) {
    api.partner(P, true).await;
    let workspaces: Vec<String> = (0..12).map(|i| format!("ws-r{i}")).collect();
    for w in &workspaces {
        api.workspace(P, w, "starter").await;
        api.fund(P, w, "100").await;
        api.buy(P, w, "extra_bot", 1).await.ok(201);
    }
    api.set_clock(at(date!(2026 - 05 - 01)));
    let limits = RenewalLimits { page_size: 5, concurrency: 3 };
    let runs = join_all((0..3).map(|_| api.billing.renew_due(|| false, limits))).await;
    let renewed: u64 = runs.iter().map(|r| r.as_ref().unwrap().renewed).sum();
    assert_eq!(renewed, 12, "{runs:?}");
    for w in &workspaces {
        assert_eq!(api.balance(P, w).await, "85.00", "{w}: charged once");
        assert_eq!(api.verify(w).await, 3);
    }
}

async fn a_run_that_runs_out_of_time_leaves_the_rest_to_the_next<T: Table>(api: Api<T>) {
    api.partner(P, true).await;
    for i in 0..20 {
        let w = format!("ws-t{i}");
        api.workspace(P, &w, "starter").await;
        api.fund(P, &w, "100").await;
        api.buy(P, &w, "extra_bot", 1).await.ok(201);
    }
    api.set_clock(at(date!(2026 - 05 - 01)));
    // Out of time after a few looks at the clock: mid-shard, mid-page.
    let looks = AtomicUsize::new(0);
    let limits = RenewalLimits { page_size: 4, concurrency: 2 };
    let first = api.billing.renew_due(|| looks.fetch_add(1, Ordering::Relaxed) >= 6, limits).await.unwrap();
    assert!(!first.finished && first.renewed > 0 && first.renewed < 20, "{first:?}");
    let second = api.billing.renew_due(|| false, limits).await.unwrap();
    assert!(second.finished, "{second:?}");
    assert_eq!(first.renewed + second.renewed, 20, "{first:?} then {second:?}");
    for i in 0..20 {
        assert_eq!(api.balance(P, &format!("ws-t{i}")).await, "85.00");
    }
}

async fn a_workspace_without_addons_just_moves_on<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.set_clock(at(date!(2026 - 05 - 01)));
    let before: Value = api.view(P, W).await;
    assert_eq!(run(&api).await.renewed, 2, "both tenants' workspaces");
    let after = api.view(P, W).await;
    assert_eq!((&before["renews_on"], &after["renews_on"]), (&json!("2026-05-01"), &json!("2026-06-01")));
    assert_eq!(api.ledger(P, W).await, Vec::<Value>::new(), "no entry for nothing");
}

/// A workspace holds at most as many add-ons as one renewal carries: the limit-th purchase
/// succeeds, the next is refused with nothing written, and at the cycle end every one is
/// renewed; none stays active past its period.
async fn purchases_stop_at_the_addon_limit_and_every_addon_renews<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "1400").await;
    // 15 April: 10 x 15/30 = 5.00 each.
    for _ in 0..MAX_RENEWAL_ADDONS - 1 {
        assert_eq!(api.buy(P, W, "extra_member", 1).await.ok(201)["charged"], "5.00");
    }
    // The limit-th, given by the partner (free).
    let give = || {
        req("POST /partner/workspace/{id}/add-addon")
            .param("id", W)
            .by(partner_admin(P))
            .json(json!({ "addon": "extra_bot", "quantity": 1 }))
    };
    let given = api.call(give()).await.ok(201);
    assert_eq!(api.balance(P, W).await, "955.00");
    let before = api.state().await;
    let refused = |r: super::Resp| {
        r.err(409, "addon_limit", None);
        let message = r.body["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains("90 add-ons"), "{message}");
    };
    refused(api.buy(P, W, "extra_member", 1).await);
    refused(api.buy(P, W, "extra_bot", 3).await);
    refused(api.call(give()).await);
    assert_eq!(api.state().await, before, "a refused purchase writes nothing");
    // A cancelled add-on holds its place until its period ends.
    let cancel = req("DELETE /workspace/addons/{addon_id}").param("addon_id", given["addon"]["id"].as_str().unwrap());
    api.call(cancel.by(workspace_admin(P, W))).await.ok(200);
    refused(api.buy(P, W, "extra_member", 1).await);

    api.set_clock(at(date!(2026 - 05 - 01)));
    assert_eq!(run(&api).await, RenewalRun { renewed: 2, finished: true, ..Default::default() });
    assert_eq!(api.balance(P, W).await, "65.00", "89 x 10.00 for May");
    let entry = &api.ledger(P, W).await[0];
    assert_eq!((&entry["kind"], &entry["amount"]), (&json!("renewal"), &json!("-890.00")), "{entry}");
    assert_eq!(entry["detail"]["lines"].as_array().unwrap().len(), MAX_RENEWAL_ADDONS - 1);
    let held = every_addon(&api, &WorkspaceId::parse(W).unwrap()).await;
    let active = held.iter().filter(|a| a.status == AddonStatus::Active);
    assert!(active.clone().all(|a| a.period_end == date!(2026 - 05 - 31)), "{held:?}");
    assert_eq!(active.count(), MAX_RENEWAL_ADDONS - 1);
    assert_eq!(held.iter().filter(|a| a.status == AddonStatus::Removed).count(), 1, "the cancelled one ended");
    // The ended one freed its place: one more (10 x 30/31), then the limit again.
    assert_eq!(api.buy(P, W, "extra_member", 1).await.ok(201)["charged"], "9.68");
    refused(api.buy(P, W, "extra_member", 1).await);
    assert_eq!(api.verify(W).await, 93);
}

/// A workspace that held more add-ons than one renewal carries (bought before purchases were
/// bounded, and before add-ons moved into the profile: written here straight into the table as
/// items of their own, the profile without them), whose renewals failed for months: the
/// renewal lapses the newest that do not fit in a transaction of their own, renews the rest
/// cycle after cycle until it is current, and lapses them when the points run out. Runs racing
/// each other do each step once.
async fn a_workspace_over_the_limit_and_behind_is_renewed_or_lapsed_in_full<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "2000").await;
    let w = WorkspaceId::parse(W).unwrap();
    let seeded: Vec<WorkspaceAddon> = (0..100)
        .map(|i| WorkspaceAddon {
            id: AddonId::parse(&format!("ad_seed{i:03}")).unwrap(),
            code: AddonCode::ExtraMember,
            quantity: 1,
            unit_points: Points::parse("10").unwrap(),
            // The four oldest were cancelled.
            status: if i < 4 { AddonStatus::Cancelling } else { AddonStatus::Active },
            period_end: date!(2026 - 04 - 30),
            created_at: datetime!(2026-04-01 00:00 UTC) + time::Duration::minutes(i),
            billed: None,
        })
        .collect();
    for chunk in seeded.chunks(50) {
        let writes = chunk
            .iter()
            .map(|a| Write::Put { item: records::workspace_addon_item(&w, a), condition: Condition::Always })
            .collect();
        api.billing.store.table().transact(writes).await.unwrap();
    }
    let profile = api.billing.store.table().get(&keys::workspace_profile(&w)).await.unwrap().unwrap();
    let mut earlier = profile.clone();
    earlier.0.remove("addons");
    let put = Write::Put { item: earlier, condition: Condition::Always };
    api.billing.store.table().transact(vec![put]).await.unwrap();
    assert_eq!(api.billing.workspace(&w).await.unwrap().addons, seeded, "read into the profile");
    // Mid-July: May, June and July are due.
    api.set_clock(at(date!(2026 - 07 - 15)));
    let runs = join_all((0..3).map(|_| api.billing.renew_due(|| false, RenewalLimits::default()))).await;
    let mut runs: Vec<RenewalRun> = runs.into_iter().map(Result::unwrap).collect();
    runs.push(run(&api).await);
    let total = |f: fn(&RenewalRun) -> u64| runs.iter().map(f).sum::<u64>();
    // W: May and June renewed, July lapsed; X (no add-ons): three cycles moved on.
    assert_eq!((total(|r| r.renewed), total(|r| r.lapsed), total(|r| r.in_grace)), (5, 1, 0), "{runs:?}");
    assert_eq!(run(&api).await, RenewalRun { finished: true, ..Default::default() }, "nothing left due");

    assert_eq!(api.balance(P, W).await, "200.00", "2000 - 900 (May) - 900 (June)");
    let ledger = api.ledger(P, W).await;
    let shape: Vec<_> = ledger.iter().map(|e| (e["kind"].clone(), e["amount"].clone())).collect();
    assert_eq!(
        shape,
        [
            (json!("lapse"), json!("0.00")),
            (json!("renewal"), json!("-900.00")),
            (json!("renewal"), json!("-900.00")),
            (json!("lapse"), json!("0.00")),
            (json!("adjustment"), json!("2000.00")),
        ]
    );
    // First, the overflow: the 4 cancelled ended, and the 6 newest lapsed instead of renewing.
    let overflow = &ledger[3]["detail"];
    let lapsed: Vec<_> = overflow["lines"].as_array().unwrap().iter().map(|l| l["addon_id"].clone()).collect();
    let newest: Vec<_> = (94..100).rev().map(|i| json!(format!("ad_seed{i:03}"))).collect();
    assert_eq!(lapsed, newest);
    assert_eq!((&overflow["shortfall"], &overflow["cycle_start"]), (&json!("0.00"), &json!("2026-05-01")));
    assert!(overflow["reason"].as_str().unwrap().contains("90"), "{overflow}");
    assert_eq!(ledger[2]["detail"]["lines"].as_array().unwrap().len(), MAX_RENEWAL_ADDONS);
    assert_eq!(ledger[1]["detail"]["cycle_start"], "2026-06-01");
    // July: 900.00 due, 200.00 there, no grace days: all 90 lapsed together.
    let july = &ledger[0]["detail"];
    assert_eq!((&july["shortfall"], &july["cycle_start"]), (&json!("700.00"), &json!("2026-07-01")));
    assert_eq!(july["lines"].as_array().unwrap().len(), MAX_RENEWAL_ADDONS);

    let held = every_addon(&api, &w).await;
    let count = |s: AddonStatus| held.iter().filter(|a| a.status == s).count();
    assert_eq!((count(AddonStatus::Lapsed), count(AddonStatus::Removed)), (96, 4));
    assert_eq!(addons(&api, P, W).await, [], "none active");
    let view = api.view(P, W).await;
    assert_eq!((&view["renews_on"], &view["status"]), (&json!("2026-08-01"), &json!("active")));
    assert_eq!(api.view(super::Q, super::X).await["renews_on"], "2026-08-01");
    assert_eq!(api.verify(W).await, 5);
}

/// Every add-on of `w`: those it holds (its profile), then those that ended (their history
/// items; one the profile holds may also have an item from before add-ons moved into profiles).
async fn every_addon<T: Table>(api: &Api<T>, w: &WorkspaceId) -> Vec<WorkspaceAddon> {
    let mut every = api.billing.workspace(w).await.unwrap().addons;
    let items = api.billing.store.query_prefix(&keys::workspace_pk(w), keys::ADDON_PREFIX, None, 1000).await.unwrap();
    for item in &items {
        let addon = records::workspace_addon_from(item).unwrap();
        if !every.iter().any(|held| held.id == addon.id) {
            every.push(addon);
        }
    }
    every
}

api_suite!(
    purchases_stop_at_the_addon_limit_and_every_addon_renews,
    a_workspace_over_the_limit_and_behind_is_renewed_or_lapsed_in_full,
    enough_points_renew_at_the_price_of_the_day,
    cancelled_addons_end_and_the_workspace_pauses_if_over,
    unpaid_addons_lapse_together_after_the_grace_days,
    anchor_day_31_renews_through_a_whole_year,
    concurrent_runs_renew_once,
    a_run_that_runs_out_of_time_leaves_the_rest_to_the_next,
    a_workspace_without_addons_just_moves_on,
);

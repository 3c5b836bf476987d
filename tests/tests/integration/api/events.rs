//! Events for partners: each state change a partner reacts to is in `GET /partner/events`,
//! written with the change (so a replayed request adds none), newest first, paged.

use billing::RenewalRun;
use serde_json::{Value, json};
use store::Table;
use stripe_fake::NextPaymentIntent;
use time::macros::datetime;

use super::autotopup::{turn_on, with_saved_card};
use super::checkout::{events_of, seller, session};
use super::{Api, P, Q, W, partner_admin, req};

async fn events<T: Table>(api: &Api<T>, p: &str) -> Vec<Value> {
    let page = api.call(req("GET /partner/events").by(partner_admin(p)).query("limit", "100")).await.ok(200);
    page["data"].as_array().unwrap().clone()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

async fn run<T: Table>(api: &Api<T>) -> RenewalRun {
    super::autotopup::run(api).await
}

async fn payments_and_pauses_are_events<T: Table>(api: Api<T>) {
    api.tenants().await;
    let option = seller(&api, P).await;
    let id = session(&api, P, W, &option).await;
    api.stripe.pay(&id).await.unwrap();
    for (_, payload) in events_of(&api, W) {
        api.deliver(&payload).await.ok(200);
        api.deliver(&payload).await.ok(200);
    }
    let charge = api.stripe.session(&id).unwrap()["payment_intent"]["latest_charge"].as_str().unwrap().to_owned();
    api.stripe.refund(&charge, Some(250)).await.unwrap();
    let refunded = events_of(&api, W).into_iter().find(|(t, _)| t == "charge.refunded").unwrap().1;
    api.deliver(&refunded).await.ok(200);
    // Over the plan's 1 bot, back within it; the same report again changes nothing.
    let usage = |bots: u32| {
        req("PUT /platform/workspaces/{id}/usage-counts")
            .param("id", W)
            .by(super::platform())
            .json(json!({ "bots": bots, "members": 1, "bot_users": 1 }))
            .key(format!("usage-{bots}"))
    };
    api.call(usage(2)).await.ok(200);
    api.call(usage(2)).await.ok(200);
    api.call(usage(1)).await.ok(200);
    let seen = events(&api, P).await;
    assert_eq!(
        types(&seen),
        ["workspace.resumed", "workspace.paused", "refund.clawed_back", "topup.succeeded"],
        "newest first, each once: {seen:?}"
    );
    assert_eq!(seen[1]["data"]["exceeded"], json!(["bots"]));
    assert_eq!(seen[2]["data"]["points"], "250.00");
    assert_eq!((&seen[3]["workspace_id"], &seen[3]["data"]["payment"]), (&json!(W), &json!(id)));
    assert!(seen.iter().all(|e| e["id"].as_str().unwrap().starts_with("evt_")));
    // The other partner sees none of it.
    assert_eq!(events(&api, Q).await, Vec::<Value>::new());
    // Pages of one: the cursor walks them all, in the same order.
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut r = req("GET /partner/events").by(partner_admin(P)).query("limit", "1");
        if let Some(c) = &cursor {
            r = r.query("cursor", c.clone());
        }
        let page = api.call(r).await.ok(200);
        walked.extend(page["data"].as_array().unwrap().iter().map(|e| e["id"].clone()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(walked, seen.iter().map(|e| e["id"].clone()).collect::<Vec<_>>());
    api.call(req("GET /partner/events").by(partner_admin(P)).query("cursor", "bm9wZQ")).await.invalid("cursor");
}

async fn failed_top_ups_and_lapses_are_events<T: Table>(api: Api<T>) {
    let option = with_saved_card(&api, 1).await;
    turn_on(&api, &option).await;
    api.usage(W, 3, 1, 1).await.ok(200);
    api.stripe.next_payment_intents(NextPaymentIntent::Decline("card_declined".into()), 3);
    for hour in [6, 7, 8] {
        api.set_clock(datetime!(2026-05-01 00:00 UTC) + time::Duration::hours(hour));
        run(&api).await;
    }
    api.set_clock(datetime!(2026-05-02 06:00 UTC));
    assert_eq!(run(&api).await.lapsed, 1);
    let seen = events(&api, P).await;
    assert_eq!(
        types(&seen)[..6],
        ["workspace.paused", "addon.lapsed", "autotopup.disabled", "topup.failed", "topup.failed", "topup.failed"],
        "{seen:?}"
    );
    assert_eq!(seen[1]["data"]["addons"][0]["addon"], "extra_bot");
    assert_eq!(
        (&seen[3]["data"]["code"], &seen[3]["data"]["consecutive_failures"]),
        (&json!("card_declined"), &json!(3))
    );
}

api_suite!(payments_and_pauses_are_events, failed_top_ups_and_lapses_are_events);

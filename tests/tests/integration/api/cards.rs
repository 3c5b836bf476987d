//! Saved cards: a workspace (on its partner's account) and a partner (on the platform's) save
//! or replace the card their auto top-up charges without paying, see its brand, last 4 and
//! expiry, and remove it (auto top-up off, with an event); a card that lapses before its wallet
//! needs it is told of to the partner, once per card. Stripe's events in any order, repeated.

use serde_json::{Value, json};
use store::Table;
use stripe_fake::Card;

use super::checkout::{outcome, seller, session};
use super::{Api, P, Q, W, X, partner_admin, req, workspace_admin, workspace_member};

const SUCCESS: &str = "https://agency.example/card-saved";
const CANCEL: &str = "https://agency.example/billing";

fn card(brand: &str, last4: &str, exp_month: u32, exp_year: u32) -> Card {
    Card { brand: brand.into(), last4: last4.into(), exp_month, exp_year }
}

/// The fake's events from the `since`-th on, of the types that save a card: (type, payload),
/// oldest first.
fn card_events<T>(api: &Api<T>, since: usize) -> Vec<(String, String)> {
    let saving = ["payment_method.attached", "setup_intent.succeeded", "payment_intent.succeeded"];
    api.stripe
        .events()
        .into_iter()
        .skip(since)
        .filter(|e| saving.contains(&e.type_.as_str()))
        .map(|e| (e.type_, e.payload))
        .collect()
}

/// Delivers `events` to the endpoint of their account: the outcomes.
async fn deliver_all<T: Table>(api: &Api<T>, events: &[(String, String)], platform: bool) -> Vec<String> {
    let mut outcomes = vec![];
    for (_, payload) in events {
        let r = if platform { api.deliver_platform(payload).await } else { api.deliver(payload).await };
        outcomes.push(outcome(&r).to_owned());
    }
    outcomes
}

/// W's admin saves `card` on the page `POST /workspace/card` sends it to: the card's events,
/// not delivered yet.
pub(crate) async fn workspace_card_events<T: Table>(
    api: &Api<T>,
    p: &str,
    w: &str,
    card: Option<Card>,
) -> Vec<(String, String)> {
    let since = api.stripe.events().len();
    let created = api.call(req("POST /workspace/card").by(workspace_admin(p, w))).await.ok(201);
    api.stripe.pay_with_card(created["id"].as_str().unwrap(), card).await.unwrap();
    card_events(api, since)
}

/// W saves `card`, its events delivered in the order Stripe sent them: the details kept, then
/// the card saved with them.
pub(crate) async fn save_workspace_card<T: Table>(api: &Api<T>, p: &str, w: &str, card: Option<Card>) {
    let events = workspace_card_events(api, p, w, card).await;
    assert_eq!(deliver_all(api, &events, false).await, ["recorded", "card_saved"]);
}

/// The partner saves `card` for its wallet, its events delivered in the order Stripe sent them.
pub(crate) async fn save_partner_card<T: Table>(api: &Api<T>, p: &str, card: Option<Card>) {
    let since = api.stripe.events().len();
    let body = json!({ "success_url": SUCCESS, "cancel_url": CANCEL });
    let created = api.call(req("POST /partner/wallet/card").by(partner_admin(p)).json(body)).await.ok(201);
    api.stripe.pay_with_card(created["id"].as_str().unwrap(), card).await.unwrap();
    let events = card_events(api, since);
    assert_eq!(deliver_all(api, &events, true).await, ["recorded", "card_saved"]);
}

async fn workspace_card<T: Table>(api: &Api<T>) -> Value {
    api.call(req("GET /workspace/card").by(workspace_member(P, W))).await.ok(200)["card"].clone()
}

async fn partner_events<T: Table>(api: &Api<T>, t: &str) -> Vec<Value> {
    let page = api.call(req("GET /partner/events").by(partner_admin(P)).query("limit", "100")).await.ok(200);
    page["data"].as_array().unwrap().iter().filter(|e| e["type"] == t).cloned().collect()
}

/// The payload with its `created` moved by `by` seconds: the same event as if Stripe had sent
/// it then.
fn sent_at(payload: &str, by: i64) -> String {
    let mut v: Value = serde_json::from_str(payload).unwrap();
    v["created"] = json!(v["created"].as_i64().unwrap() + by);
    v.to_string()
}

fn of(events: &[(String, String)], t: &str) -> String {
    events.iter().find(|(ty, _)| ty == t).unwrap_or_else(|| panic!("no {t} in {events:?}")).1.clone()
}

async fn a_workspace_saves_replaces_and_removes_its_card<T: Table>(api: Api<T>) {
    api.tenants().await;
    let option = seller(&api, P).await;
    assert_eq!(workspace_card(&api).await, Value::Null);

    // A paid checkout saves its card: the details come with `payment_method.attached`.
    let since = api.stripe.events().len();
    let paid = session(&api, P, W, &option).await;
    api.stripe.pay_with_card(&paid, Some(card("amex", "0005", 1, 2030))).await.unwrap();
    let events = card_events(&api, since);
    assert_eq!(deliver_all(&api, &events, false).await, ["recorded", "card_saved"]);
    let shown = workspace_card(&api).await;
    assert_eq!(shown, json!({ "brand": "amex", "last4": "0005", "exp_month": 1, "exp_year": 2030, "expiring": false }));

    // Saving one without paying: a member may not; the admin gets a page, once per key.
    api.call(req("POST /workspace/card").by(workspace_member(P, W))).await.err(403, "forbidden", None);
    let save = req("POST /workspace/card").by(workspace_admin(P, W)).key("save-card-1");
    let first = api.call(save.clone()).await.ok(201);
    assert_eq!(api.call(save).await.ok(201), first);
    assert!(first["url"].as_str().unwrap().contains("/pay/"), "{first}");
    let balance = api.balance(P, W).await;
    api.stripe.pay_with_card(first["id"].as_str().unwrap(), Some(card("mastercard", "4444", 3, 2031))).await.unwrap();
    // Out of order: the save first (its details unknown yet), then its details.
    let events = card_events(&api, api.stripe.events().len() - 3);
    let (attached, succeeded) = (of(&events, "payment_method.attached"), of(&events, "setup_intent.succeeded"));
    assert_eq!(outcome(&api.deliver(&succeeded).await), "card_saved");
    assert_eq!(workspace_card(&api).await["brand"], Value::Null, "the details are not known yet");
    assert_eq!(outcome(&api.deliver(&attached).await), "card_saved");
    for again in [&succeeded, &attached] {
        assert_eq!(outcome(&api.deliver(again).await), "unchanged");
    }
    let shown = workspace_card(&api).await;
    assert_eq!(
        (&shown["brand"], &shown["last4"], &shown["exp_month"]),
        (&json!("mastercard"), &json!("4444"), &json!(3))
    );
    // Saving a card pays nothing: its session completing is not a checkout of ours.
    let completed = api.stripe.events().into_iter().rev().find(|e| e.type_ == "checkout.session.completed").unwrap();
    assert_eq!(outcome(&api.deliver(&completed.payload).await), "ignored");
    assert_eq!(api.balance(P, W).await, balance);
    // A save sent before this one, delivered late, changes nothing.
    let late = of(&card_events(&api, since), "payment_intent.succeeded");
    assert_eq!(outcome(&api.deliver(&sent_at(&late, -60)).await), "unchanged");
    assert_eq!(workspace_card(&api).await["last4"], "4444");
    // A save naming another partner's workspace on this account is not that workspace's.
    let mut forged: Value = serde_json::from_str(&succeeded).unwrap();
    forged["data"]["object"]["metadata"]["workspace_id"] = json!(X);
    assert_eq!(outcome(&api.deliver(&forged.to_string()).await), "ignored");

    // Auto top-up charges the card; removing the card turns it off, with an event.
    let on = json!({ "enabled": true, "topup_option_id": option });
    api.call(req("PUT /workspace/auto-topup").by(workspace_admin(P, W)).json(on)).await.ok(200);
    api.call(req("DELETE /workspace/card").by(workspace_member(P, W))).await.err(403, "forbidden", None);
    let remove = req("DELETE /workspace/card").by(workspace_admin(P, W)).key("remove-card-1");
    let removed = api.call(remove.clone()).await.ok(200);
    assert_eq!(
        removed,
        json!({
            "removed": { "brand": "mastercard", "last4": "4444", "exp_month": 3, "exp_year": 2031, "expiring": false },
            "auto_topup_turned_off": true,
        })
    );
    assert_eq!(api.call(remove).await.ok(200), removed, "a retry answers the same");
    assert_eq!(workspace_card(&api).await, Value::Null);
    let auto = api.view(P, W).await["auto_topup"].clone();
    assert_eq!((&auto["enabled"], &auto["card_saved"]), (&json!(false), &json!(false)), "{auto}");
    assert!(auto["disabled_reason"].as_str().unwrap().contains("card was removed"), "{auto}");
    let disabled = partner_events(&api, "autotopup.disabled").await;
    assert_eq!((disabled.len(), &disabled[0]["data"]["code"]), (1, &json!("card_removed")), "{disabled:?}");
    // Stripe can't charge it any more.
    let account = api.account(P).await;
    let detached = api.stripe.payment_methods(Some(&account));
    let pm = detached.iter().find(|pm| pm["card"]["last4"] == "4444").unwrap();
    assert_eq!(pm["customer"], Value::Null, "{pm}");
    // Nor do we keep its details.
    let id = stripe_gateway::ids::PaymentMethodId::parse(pm["id"].as_str().unwrap()).unwrap();
    assert_eq!(api.billing.store.get(&store::keys::payment_method(&id)).await.unwrap(), None);
    // Nothing left to remove; the removed card's save, delivered late, doesn't bring it back.
    api.call(req("DELETE /workspace/card").by(workspace_admin(P, W))).await.err(404, "not_found", None);
    assert_eq!(outcome(&api.deliver(&sent_at(&succeeded, -60)).await), "unchanged");
    assert_eq!(workspace_card(&api).await, Value::Null);
    // Turning auto top-up on again wants a card.
    let on = json!({ "enabled": true, "topup_option_id": option });
    api.call(req("PUT /workspace/auto-topup").by(workspace_admin(P, W)).json(on)).await.invalid("enabled");
    // Another tenant's workspace sees none of it.
    let theirs = api.call(req("GET /workspace/card").by(workspace_admin(Q, X))).await.ok(200);
    assert_eq!(theirs["card"], Value::Null);
    assert_eq!(api.verify(W).await, 0, "saving and removing cards moves no points");
}

async fn a_card_lapsing_before_it_is_needed_is_told_of_once<T: Table>(api: Api<T>) {
    // T0 is 15 April 2026; W renews on 1 May.
    api.tenants().await;
    let option = seller(&api, P).await;
    save_workspace_card(&api, P, W, Some(card("visa", "1881", 4, 2026))).await;
    // Auto top-up off: the card is never charged, so nobody is told.
    assert_eq!(workspace_card(&api).await["expiring"], false);
    assert!(partner_events(&api, "card.expiring").await.is_empty());

    // On: it lapses on 1 May, before the month ahead is out.
    let on = json!({ "enabled": true, "topup_option_id": option });
    for _ in 0..2 {
        api.call(req("PUT /workspace/auto-topup").by(workspace_admin(P, W)).json(on.clone())).await.ok(200);
        let off = json!({ "enabled": false });
        api.call(req("PUT /workspace/auto-topup").by(workspace_admin(P, W)).json(off)).await.ok(200);
    }
    api.call(req("PUT /workspace/auto-topup").by(workspace_admin(P, W)).json(on)).await.ok(200);
    assert_eq!(workspace_card(&api).await["expiring"], true);
    let told = partner_events(&api, "card.expiring").await;
    assert_eq!(told.len(), 1, "once per card: {told:?}");
    assert_eq!(told[0]["workspace_id"], W);
    assert_eq!(
        told[0]["data"],
        json!({
            "brand": "visa", "last4": "1881", "exp_month": 4, "exp_year": 2026,
            "lapses_at": "2026-05-01T00:00:00Z", "needed_until": "2026-05-15T10:00:00Z",
        })
    );

    // The card's network moves its expiry to May: it lasts the month ahead now.
    let account = api.account(P).await;
    let pm = api.stripe.payment_methods(Some(&account)).into_iter().find(|pm| pm["card"]["last4"] == "1881").unwrap();
    let since = api.stripe.events().len();
    api.stripe.update_card_expiry(pm["id"].as_str().unwrap(), 5, 2026).await.unwrap();
    let updated =
        api.stripe.events().into_iter().skip(since).find(|e| e.type_ == "payment_method.automatically_updated");
    assert_eq!(outcome(&api.deliver(&updated.unwrap().payload).await), "card_saved");
    let shown = workspace_card(&api).await;
    assert_eq!((&shown["exp_month"], &shown["expiring"]), (&json!(5), &json!(false)), "{shown}");

    // The renewal of 1 May looks to the next, on 1 June: the card lapses that day. Told once more,
    // for the new expiry.
    api.set_clock(time::macros::datetime!(2026-05-01 09:00 UTC));
    api.billing.renew_workspace(&domain::WorkspaceId::parse(W).unwrap()).await.unwrap();
    let told = partner_events(&api, "card.expiring").await;
    assert_eq!(told.len(), 2, "{told:?}");
    assert_eq!(
        (&told[0]["data"]["exp_month"], &told[0]["data"]["needed_until"]),
        (&json!(5), &json!("2026-06-01T00:00:00Z")),
        "newest first: {told:?}"
    );
    // A card that lasts gets no word at the next renewal.
    save_workspace_card(&api, P, W, Some(card("visa", "4242", 12, 2030))).await;
    api.set_clock(time::macros::datetime!(2026-06-01 09:00 UTC));
    api.billing.renew_workspace(&domain::WorkspaceId::parse(W).unwrap()).await.unwrap();
    assert_eq!(partner_events(&api, "card.expiring").await.len(), 2);
}

async fn the_partner_wallet_saves_and_removes_its_card<T: Table>(api: Api<T>) {
    api.tenants().await;
    let get = || req("GET /partner/wallet/card").by(partner_admin(P));
    assert_eq!(api.call(get()).await.ok(200), json!({ "card": null }));
    let bad = json!({ "success_url": "ftp://agency.example", "cancel_url": CANCEL });
    api.call(req("POST /partner/wallet/card").by(partner_admin(P)).json(bad)).await.invalid("success_url");
    save_partner_card(&api, P, Some(card("visa", "1111", 2, 2029))).await;
    let shown = api.call(get()).await.ok(200)["card"].clone();
    assert_eq!(shown, json!({ "brand": "visa", "last4": "1111", "exp_month": 2, "exp_year": 2029, "expiring": false }));
    // Another partner sees its own (none).
    assert_eq!(api.call(req("GET /partner/wallet/card").by(partner_admin(Q))).await.ok(200)["card"], Value::Null);

    let refill = json!({ "enabled": true, "threshold": "20.00", "amount": "50.00" });
    api.call(req("PUT /partner/wallet/auto-refill").by(partner_admin(P)).json(refill)).await.ok(200);
    let removed = api.call(req("DELETE /partner/wallet/card").by(partner_admin(P))).await.ok(200);
    assert_eq!((&removed["removed"]["last4"], &removed["auto_topup_turned_off"]), (&json!("1111"), &json!(true)));
    let wallet = api.call(req("GET /partner/wallet").by(partner_admin(P))).await.ok(200);
    assert_eq!(
        (&wallet["auto_refill"]["enabled"], &wallet["auto_refill"]["card_saved"]),
        (&json!(false), &json!(false)),
        "{wallet}"
    );
    let disabled = partner_events(&api, "autotopup.disabled").await;
    assert_eq!(
        (disabled.len(), &disabled[0]["workspace_id"], &disabled[0]["data"]["code"]),
        (1, &Value::Null, &json!("card_removed"))
    );
    assert_eq!(api.call(get()).await.ok(200)["card"], Value::Null);
    api.call(req("DELETE /partner/wallet/card").by(partner_admin(P))).await.err(404, "not_found", None);
    let detached = api.stripe.payment_methods(None);
    assert!(detached.iter().all(|pm| pm["customer"].is_null()), "{detached:?}");
}

async fn a_partner_hears_of_its_wallet_card_lapsing_when_a_refill_starts<T: Table>(api: Api<T>) {
    api.tenants().await;
    // Lapses on 1 June: on 15 April it lasts the month ahead.
    save_partner_card(&api, P, Some(card("visa", "0341", 5, 2026))).await;
    api.auto_refill(P, json!({ "enabled": true, "threshold": "50.00", "amount": "200.00" })).await.ok(200);
    assert!(partner_events(&api, "card.expiring").await.is_empty());
    // On 10 May a fold leaves the wallet under its threshold: the refill starts with a card that
    // won't last to 9 June.
    api.set_clock(time::macros::datetime!(2026-05-10 10:00 UTC));
    api.spend(W, "500", "call-1").await.ok(200);
    api.fold(P).await;
    let told = partner_events(&api, "card.expiring").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(
        (&told[0]["workspace_id"], &told[0]["data"]["last4"], &told[0]["data"]["needed_until"]),
        (&Value::Null, &json!("0341"), &json!("2026-06-09T10:00:00Z"))
    );
    let shown = api.call(req("GET /partner/wallet/card").by(partner_admin(P))).await.ok(200);
    assert_eq!(shown["card"]["expiring"], true);
    // The next refill tells nobody again.
    api.set_clock(time::macros::datetime!(2026-05-10 12:00 UTC));
    api.spend(W, "500", "call-2").await.ok(200);
    api.fold(P).await;
    assert_eq!(partner_events(&api, "card.expiring").await.len(), 1);
}

api_suite!(
    a_partner_hears_of_its_wallet_card_lapsing_when_a_refill_starts,
    a_workspace_saves_replaces_and_removes_its_card,
    a_card_lapsing_before_it_is_needed_is_told_of_once,
    the_partner_wallet_saves_and_removes_its_card,
);

//! The List Events API (`GET /v1/events`): newest first, a page at a time both ways, filtered by
//! `created` and type, scoped to the calling account, and listing what happened whether or not
//! its webhook was sent, held or dropped.

use std::time::Duration;

use serde_json::{Value, json};
use stripe_fake::state::now_s;

use crate::support::*;

/// A paid Checkout Session's form, with no customer: paying it sends `payment_intent.succeeded`
/// and `checkout.session.completed`, expiring it `checkout.session.expired`.
const SESSION_FORM: &str = "mode=payment&line_items[0][price_data][currency]=usd\
    &line_items[0][price_data][unit_amount]=1000&line_items[0][price_data][product_data][name]=Points\
    &line_items[0][quantity]=1&success_url=https://x.example/ok";
/// Most polls of the clock while waiting for the next second (20 ms apart: two seconds).
const MAX_CLOCK_POLLS: u32 = 100;
/// Most pages read while walking a list.
const MAX_PAGES: usize = 10;

/// `GET /v1/events?{query}` as `account` (`None`: the platform itself).
async fn list(stack: &Stack, account: Option<&str>, query: &str) -> HttpResponse {
    stack.http.api("GET", &format!("/v1/events?{query}"), account, None, "").await
}

/// The ids listed, and `has_more`.
fn page(listed: &HttpResponse) -> (Vec<String>, bool) {
    assert_eq!(listed.status, 200, "{}", listed.text());
    let body = listed.json();
    let ids = body["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    (ids, body["has_more"].as_bool().unwrap())
}

async fn ids(stack: &Stack, account: Option<&str>, query: &str) -> Vec<String> {
    page(&list(stack, account, query).await).0
}

/// The types listed, in list order.
async fn types(stack: &Stack, account: Option<&str>, query: &str) -> Vec<String> {
    let listed = list(stack, account, query).await;
    assert_eq!(listed.status, 200, "{query}: {}", listed.text());
    listed.json()["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
}

/// A 400 `invalid_request_error`: its `param` and `code`.
fn refused(r: &HttpResponse) -> (Value, Value) {
    assert_eq!((r.status, &r.json()["error"]["type"]), (400, &json!("invalid_request_error")), "{}", r.text());
    (r.json()["error"]["param"].clone(), r.json()["error"]["code"].clone())
}

/// The ids of `account`'s events as the fake recorded them, newest first.
fn recorded(stack: &Stack, account: Option<&str>) -> Vec<String> {
    stack.fake.events().into_iter().rev().filter(|e| e.account.as_deref() == account).map(|e| e.id).collect()
}

async fn open_session(stack: &Stack, account: Option<&str>) -> String {
    let created = stack.http.api("POST", "/v1/checkout/sessions", account, None, SESSION_FORM).await;
    assert_eq!(created.status, 200, "{}", created.text());
    created.json()["id"].as_str().unwrap().to_owned()
}

/// Expires a new session on `account`: the id of its `checkout.session.expired`.
async fn expired_event(stack: &Stack, account: Option<&str>) -> String {
    let session = open_session(stack, account).await;
    stack.fake.expire(&session).await.unwrap();
    let event = stack.fake.events().pop().unwrap();
    assert_eq!((event.type_.as_str(), event.account.as_deref()), ("checkout.session.expired", account));
    event.id
}

fn created_of(stack: &Stack, id: &str) -> i64 {
    stack.fake.events().into_iter().find(|e| e.id == id).unwrap().created
}

/// Waits until the fake's clock is past the second `created`, so the next event is a second later.
async fn after_second(created: i64) {
    for _ in 0..MAX_CLOCK_POLLS {
        if now_s() > created {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the clock did not pass {created}");
}

#[tokio::test]
async fn events_are_listed_newest_first_a_page_at_a_time_both_ways() {
    let stack = Stack::start().await;
    for _ in 0..11 {
        expired_event(&stack, Some(ACCOUNT)).await;
    }
    let all = recorded(&stack, Some(ACCOUNT));
    assert_eq!(all.len(), 11);

    let first = list(&stack, Some(ACCOUNT), "").await;
    let body = first.json();
    assert_eq!((&body["object"], &body["url"]), (&json!("list"), &json!("/v1/events")));
    assert_eq!(page(&first), (all[..10].to_vec(), true), "10 by default, newest first");
    assert_eq!(page(&list(&stack, Some(ACCOUNT), "limit=11").await), (all.clone(), false));

    // Forward: each page starts after the last one's last event.
    let mut pages = vec![page(&list(&stack, Some(ACCOUNT), "limit=4").await)];
    while pages.last().unwrap().1 && pages.len() < MAX_PAGES {
        let last = pages.last().unwrap().0.last().unwrap().clone();
        pages.push(page(&list(&stack, Some(ACCOUNT), &format!("limit=4&starting_after={last}")).await));
    }
    let expected = [(all[..4].to_vec(), true), (all[4..8].to_vec(), true), (all[8..].to_vec(), false)];
    assert_eq!(pages, expected);
    assert_eq!(ids(&stack, Some(ACCOUNT), &format!("starting_after={}", all[10])).await, Vec::<String>::new());

    // Backward: each page is the events immediately newer than the cursor, still newest first.
    let mut pages = vec![page(&list(&stack, Some(ACCOUNT), &format!("limit=4&ending_before={}", all[10])).await)];
    while pages.last().unwrap().1 && pages.len() < MAX_PAGES {
        let newest = pages.last().unwrap().0[0].clone();
        pages.push(page(&list(&stack, Some(ACCOUNT), &format!("limit=4&ending_before={newest}")).await));
    }
    let expected = [(all[6..10].to_vec(), true), (all[2..6].to_vec(), true), (all[..2].to_vec(), false)];
    assert_eq!(pages, expected);
    assert_eq!(page(&list(&stack, Some(ACCOUNT), &format!("ending_before={}", all[0])).await), (vec![], false));

    let both = format!("starting_after={}&ending_before={}", all[5], all[1]);
    assert_eq!(refused(&list(&stack, Some(ACCOUNT), &both).await), (Value::Null, Value::Null));
}

#[tokio::test]
async fn limit_is_1_to_100() {
    let stack = Stack::start().await;
    expired_event(&stack, Some(ACCOUNT)).await;
    let newest = expired_event(&stack, Some(ACCOUNT)).await;

    assert_eq!(page(&list(&stack, Some(ACCOUNT), "limit=1").await), (vec![newest], true));
    assert_eq!(ids(&stack, Some(ACCOUNT), "limit=100").await.len(), 2);
    for bad in ["limit=0", "limit=101", "limit=-1", "limit=ten", "limit[]=1"] {
        assert_eq!(refused(&list(&stack, Some(ACCOUNT), bad).await).0, "limit", "{bad}");
    }
    let (_, code) = refused(&list(&stack, Some(ACCOUNT), "limit=ten").await);
    assert_eq!(code, "parameter_invalid_integer");
}

#[tokio::test]
async fn created_filters_bound_the_seconds_listed() {
    let stack = Stack::start().await;
    let a = expired_event(&stack, Some(ACCOUNT)).await;
    after_second(created_of(&stack, &a)).await;
    let b = expired_event(&stack, Some(ACCOUNT)).await;
    after_second(created_of(&stack, &b)).await;
    let c = expired_event(&stack, Some(ACCOUNT)).await;
    let (at_a, at_b, at_c) = (created_of(&stack, &a), created_of(&stack, &b), created_of(&stack, &c));
    assert!(at_a < at_b && at_b < at_c);
    let (a, b, c) = (a.as_str(), b.as_str(), c.as_str());

    let cases = [
        (format!("created[gt]={at_a}"), vec![c, b]),
        (format!("created[gte]={at_b}"), vec![c, b]),
        (format!("created[lt]={at_b}"), vec![a]),
        (format!("created[lte]={at_b}"), vec![b, a]),
        (format!("created[gt]={at_a}&created[lt]={at_c}"), vec![b]),
        (format!("created[gte]={at_a}&created[lte]={at_a}"), vec![a]),
        (format!("created[gte]={at_b}&created[gt]={at_a}&created[lte]={at_c}"), vec![c, b]),
        (format!("created={at_b}"), vec![b]),
        (format!("created[gt]={at_c}"), vec![]),
        (format!("created[lt]={at_b}&created[gt]={at_b}"), vec![]),
    ];
    for (query, expected) in cases {
        assert_eq!(ids(&stack, Some(ACCOUNT), &query).await, expected, "{query}");
    }
    // A filter and a cursor together: older than `c`, from `b`'s second on.
    assert_eq!(ids(&stack, Some(ACCOUNT), &format!("created[gte]={at_b}&starting_after={c}")).await, [b]);

    assert_eq!(refused(&list(&stack, Some(ACCOUNT), "created[gt]=soon").await).0, "created[gt]");
    assert_eq!(refused(&list(&stack, Some(ACCOUNT), "created=today").await).0, "created");
    let unknown = refused(&list(&stack, Some(ACCOUNT), "created[after]=1").await);
    assert_eq!(unknown, (json!("created[after]"), json!("parameter_unknown")));
}

/// On [`ACCOUNT`]: a paid session, part of its charge refunded, the rest disputed and won, then
/// another session expired.
async fn events_of_every_charge_kind(stack: &Stack) {
    let paid = open_session(stack, Some(ACCOUNT)).await;
    stack.fake.pay(&paid).await.unwrap();
    let charge = stack.fake.session(&paid).unwrap()["fake"]["charge"].as_str().unwrap().to_owned();
    stack.fake.refund(&charge, Some(300)).await.unwrap();
    let dispute = stack.fake.dispute(&charge, None, None).await.unwrap();
    stack.fake.close_dispute(dispute["id"].as_str().unwrap(), true).await.unwrap();
    expired_event(stack, Some(ACCOUNT)).await;
}

#[tokio::test]
async fn types_and_type_patterns_filter_the_list() {
    let stack = Stack::start().await;
    events_of_every_charge_kind(&stack).await;
    let disputes = ["charge.dispute.closed", "charge.dispute.funds_reinstated", "charge.dispute.created"];
    assert_eq!(
        types(&stack, Some(ACCOUNT), "").await,
        [
            &["checkout.session.expired"][..],
            &disputes,
            &["charge.refunded", "checkout.session.completed", "payment_intent.succeeded"]
        ]
        .concat()
    );

    assert_eq!(types(&stack, Some(ACCOUNT), "type=charge.dispute.*").await, disputes);
    assert_eq!(types(&stack, Some(ACCOUNT), "type=charge.*").await, [&disputes[..], &["charge.refunded"]].concat());
    assert_eq!(types(&stack, Some(ACCOUNT), "type=*.succeeded").await, ["payment_intent.succeeded"]);
    assert_eq!(types(&stack, Some(ACCOUNT), "type=charge.refunded").await, ["charge.refunded"]);
    assert_eq!(ids(&stack, Some(ACCOUNT), "type=*").await, recorded(&stack, Some(ACCOUNT)));
    assert_eq!(types(&stack, Some(ACCOUNT), "type=charge").await, Vec::<String>::new(), "no star: that type only");
    assert_eq!(
        types(&stack, Some(ACCOUNT), "types[]=charge.refunded&types[]=checkout.session.expired").await,
        ["checkout.session.expired", "charge.refunded"]
    );
    assert_eq!(types(&stack, Some(ACCOUNT), "types[]=charge.dispute.*").await, Vec::<String>::new(), "names only");

    // A filtered list pages through what it keeps.
    let (first, more) = page(&list(&stack, Some(ACCOUNT), "type=charge.*&limit=3").await);
    assert_eq!((first.len(), more), (3, true));
    let rest = list(&stack, Some(ACCOUNT), &format!("type=charge.*&limit=3&starting_after={}", first[2])).await;
    let rest_types: Vec<Value> = rest.json()["data"].as_array().unwrap().iter().map(|e| e["type"].clone()).collect();
    assert_eq!((rest_types, page(&rest).1), (vec![json!("charge.refunded")], false));

    let twenty: String = (0..20).map(|i| format!("types[]=t.{i}&")).collect();
    assert_eq!(list(&stack, Some(ACCOUNT), &twenty).await.status, 200);
    assert_eq!(refused(&list(&stack, Some(ACCOUNT), &format!("{twenty}types[]=t.20")).await).0, "types");
    let both = refused(&list(&stack, Some(ACCOUNT), "type=charge.refunded&types[]=charge.refunded").await);
    assert_eq!(both.1, Value::Null);
    assert_eq!(refused(&list(&stack, Some(ACCOUNT), "types=charge.refunded").await).0, "types");
}

#[tokio::test]
async fn each_account_lists_only_its_own_events() {
    let stack = Stack::start().await;
    let other = stack.fake.create_account(None, false);
    let mine = expired_event(&stack, Some(ACCOUNT)).await;
    let theirs = expired_event(&stack, Some(&other)).await;
    let platform = expired_event(&stack, None).await;

    assert_eq!(ids(&stack, Some(ACCOUNT), "").await, [mine.as_str()]);
    assert_eq!(ids(&stack, Some(&other), "").await, [theirs.as_str()]);
    assert_eq!(ids(&stack, None, "").await, [platform.as_str()], "without Stripe-Account: the platform's own");
    let connected = list(&stack, Some(ACCOUNT), "").await.json();
    assert_eq!(connected["data"][0]["account"], ACCOUNT);
    let own = list(&stack, None, "").await.json();
    assert!(own["data"][0].get("account").is_none(), "{own}");

    // Another account's event, or none at all, is no cursor.
    for (account, cursor, id) in [
        (Some(ACCOUNT), "starting_after", &theirs),
        (Some(ACCOUNT), "ending_before", &platform),
        (None, "starting_after", &mine),
        (Some(&other), "ending_before", &"evt_nonesuch".to_owned()),
    ] {
        let r = list(&stack, account, &format!("{cursor}={id}")).await;
        assert_eq!(refused(&r), (json!(cursor), json!("resource_missing")));
        assert_eq!(r.json()["error"]["message"], format!("No such event: '{id}'"));
    }

    assert_eq!(refused(&list(&stack, Some(ACCOUNT), "bogus=1").await), (json!("bogus"), json!("parameter_unknown")));
    assert_eq!(ids(&stack, Some(ACCOUNT), "expand[]=data.data.object").await, [mine.as_str()], "expand is ignored");
    assert_eq!(list(&stack, Some("acct_nobody"), "").await.status, 403);
}

#[tokio::test]
async fn a_dropped_event_is_listed_but_never_released() {
    let stack = Stack::start().await;
    let sent = expired_event(&stack, Some(ACCOUNT)).await;
    let not_held = stack.http.control("POST", &format!("/events/{sent}/drop"), Value::Null).await;
    assert_eq!(not_held.status, 409, "{}", not_held.text());
    assert!(stack.fake.drop_event(&sent).unwrap_err().contains("not held"));
    assert_eq!(stack.http.control("POST", "/events/evt_nonesuch/drop", Value::Null).await.status, 404);

    stack.http.control("POST", "/events/config", json!({ "hold": true })).await;
    let lost = expired_event(&stack, Some(ACCOUNT)).await;
    let late = expired_event(&stack, Some(ACCOUNT)).await;
    let dropped = stack.http.control("POST", &format!("/events/{lost}/drop"), Value::Null).await;
    assert_eq!(dropped.status, 200, "{}", dropped.text());
    assert_eq!(
        (&dropped.json()["id"], &dropped.json()["held"], &dropped.json()["dropped"]),
        (&json!(lost), &json!(false), &json!(true))
    );
    assert_eq!(stack.http.control("POST", &format!("/events/{lost}/drop"), Value::Null).await.status, 409);

    let flags = |events: &Value| -> Vec<(Value, Value)> {
        events["data"].as_array().unwrap().iter().map(|e| (e["held"].clone(), e["dropped"].clone())).collect()
    };
    let recorded = stack.http.control("GET", "/events", Value::Null).await.json();
    let expected = [(json!(false), json!(false)), (json!(false), json!(true)), (json!(true), json!(false))];
    assert_eq!(flags(&recorded), expected);

    let released = stack.http.control("POST", "/events/release", Value::Null).await.json();
    assert_eq!(released["released"], json!([late]));
    let received: Vec<Value> = stack.receiver.events().iter().map(Received::json).collect();
    let received_ids: Vec<&Value> = received.iter().map(|e| &e["id"]).collect();
    assert_eq!(received_ids, [&json!(sent), &json!(late)], "the dropped event never left");

    // The list is what happened: the dropped event too, each exactly as its webhook's body.
    let listed = list(&stack, Some(ACCOUNT), "").await.json();
    assert_eq!(
        listed["data"].as_array().unwrap().iter().map(|e| &e["id"]).collect::<Vec<_>>(),
        [&json!(late), &json!(lost), &json!(sent)]
    );
    assert_eq!((&listed["data"][0], &listed["data"][2]), (&received[1], &received[0]));

    // On demand it still goes, and stays dropped: a later release passes it over.
    assert_eq!(stack.fake.deliver(&lost).await.unwrap().status, Some(200));
    assert_eq!(&stack.receiver.events()[2].json(), &listed["data"][1]);
    assert_eq!(stack.http.control("POST", "/events/release", Value::Null).await.json()["released"], json!([]));
    let recorded = stack.http.control("GET", "/events", Value::Null).await.json();
    assert_eq!(flags(&recorded)[1], (json!(false), json!(true)));
    assert_eq!(recorded["data"][1]["deliveries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn listing_events_fails_on_demand_and_is_logged_as_events_list() {
    let stack = Stack::start().await;
    let fault = json!({ "operation": "events.list", "fault": "500" });
    assert_eq!(stack.http.control("POST", "/faults", fault).await.status, 200);
    assert_eq!(list(&stack, Some(ACCOUNT), "").await.status, 500);
    assert_eq!(list(&stack, Some(ACCOUNT), "limit=5").await.status, 200);
    let logged: Vec<(u16, Option<String>)> =
        stack.requests("events.list").into_iter().map(|r| (r.status, r.fault)).collect();
    assert_eq!(logged, [(500, Some("500".to_owned())), (200, None)]);
}

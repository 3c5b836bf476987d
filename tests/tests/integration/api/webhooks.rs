//! Partner webhooks: a partner's endpoint (a real HTTP server here) receives every event, signed
//! as Stripe signs, in order per workspace; it may be down for a while and still get every one;
//! a delivery that ran out of attempts is replayed; a rolled secret signs beside the new one for
//! a day. The table's stream is played by [`stream`]: each outbox item handed over, twice.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use billing::{DeliveryRun, RETRY_DELAYS_S};
use deliver_webhooks::HttpSender;
use domain::Clock;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use store::{Key, Table, keys};
use time::Duration;

use super::{Api, P, W, partner_admin, req};

/// One request the endpoint received.
#[derive(Debug, Clone)]
struct Received {
    signature: String,
    event_id: String,
    body: String,
}

/// The partner's endpoint: records what it receives, and answers each with the next status of
/// `answers` (then 200).
#[derive(Clone)]
struct Endpoint {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<Vec<u16>>>,
}

impl Endpoint {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let url = format!("http://{}/hooks/billing", listener.local_addr().unwrap());
        let endpoint = Endpoint { url, received: Arc::default(), answers: Arc::default() };
        let serving = endpoint.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let e = serving.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                        let e = e.clone();
                        async move {
                            let header = |name: &str| {
                                request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
                            };
                            let (signature, event_id) = (header("billing-signature"), header("billing-event-id"));
                            let body = request.into_body().collect().await.unwrap().to_bytes();
                            let body = String::from_utf8(body.to_vec()).unwrap();
                            e.received.lock().unwrap().push(Received { signature, event_id, body });
                            let status = {
                                let mut answers = e.answers.lock().unwrap();
                                if answers.is_empty() { 200 } else { answers.remove(0) }
                            };
                            let response =
                                hyper::Response::builder().status(status).body(Full::new(Bytes::from("ok"))).unwrap();
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        endpoint
    }

    fn answer(&self, statuses: &[u16]) {
        self.answers.lock().unwrap().extend_from_slice(statuses);
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The event ids received, in order.
    fn ids(&self) -> Vec<String> {
        self.received().into_iter().map(|r| r.event_id).collect()
    }
}

/// The table's stream: every event in P's outbox handed to the function, twice (a stream hands
/// a record over at least once).
async fn stream<T: Table>(api: &Api<T>) {
    let p = domain::PartnerId::parse(P).unwrap();
    let items = api.billing.store.query_prefix(&keys::partner_pk(&p), keys::EVENT_PREFIX, None, 999).await.unwrap();
    for _ in 0..2 {
        for item in &items {
            let key = Key::new(keys::partner_pk(&p), item.str(store::item::SK).unwrap());
            api.billing.queue_partner_event(&p, &key).await.unwrap();
        }
    }
}

async fn pass<T: Table>(api: &Api<T>) -> DeliveryRun {
    let sender = HttpSender::new(true).unwrap();
    api.billing.deliver_webhooks(&domain::PartnerId::parse(P).unwrap(), &sender).await.unwrap()
}

/// The schedule's pass: every partner with deliveries queued.
async fn scheduled<T: Table>(api: &Api<T>) -> DeliveryRun {
    let sender = HttpSender::new(true).unwrap();
    api.billing.deliver_due_webhooks(&sender, || false).await.unwrap()
}

/// P registers `endpoint`: its signing secret.
async fn register<T: Table>(api: &Api<T>, endpoint: &Endpoint) -> String {
    let body = json!({ "url": endpoint.url });
    let registered = api.call(req("PUT /partner/webhook").by(partner_admin(P)).json(body)).await.ok(201);
    registered["secret"].as_str().unwrap().to_owned()
}

/// W goes over its plan's limits and back: `workspace.paused`, then `workspace.resumed`.
async fn pause_and_resume<T: Table>(api: &Api<T>) {
    api.usage(W, 5, 1, 0).await.ok(200);
    api.usage(W, 1, 1, 0).await.ok(200);
}

async fn deliveries<T: Table>(api: &Api<T>) -> Vec<Value> {
    let page = api.call(req("GET /partner/webhook/deliveries").by(partner_admin(P)).query("limit", "100")).await;
    page.ok(200)["data"].as_array().unwrap().clone()
}

fn check_signed(r: &Received, secrets: &[&str], now: i64) {
    let verified = stripe_gateway::signature::verify(r.body.as_bytes(), Some(&r.signature), secrets, now);
    assert_eq!(verified, Ok(()), "{r:?}");
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["id"], json!(r.event_id), "the header names the body's event");
}

async fn every_event_arrives_signed_once_in_order<T: Table>(api: Api<T>) {
    let mut api = api;
    api.billing.platform.local_webhook_endpoints = true;
    api.tenants().await;
    let endpoint = Endpoint::start().await;
    let secret = register(&api, &endpoint).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let shown = api.call(req("GET /partner/webhook").by(partner_admin(P))).await.ok(200);
    assert_eq!(shown["endpoint"]["url"], json!(endpoint.url));
    assert!(!shown.to_string().contains(&secret), "the secret is shown once: {shown}");

    pause_and_resume(&api).await;
    stream(&api).await;
    let run = pass(&api).await;
    assert_eq!((run.sent, run.delivered), (2, 2), "{run:?}");
    // The events as the partner lists them (newest first), received oldest first, each once.
    let events = api.call(req("GET /partner/events").by(partner_admin(P))).await.ok(200);
    let mut listed: Vec<String> =
        events["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    listed.reverse();
    assert_eq!(endpoint.ids(), listed);
    let now = api.clock.now().unix_timestamp();
    for r in endpoint.received() {
        check_signed(&r, &[&secret], now);
    }
    let first: Value = serde_json::from_str(&endpoint.received()[0].body).unwrap();
    assert_eq!((&first["type"], &first["workspace_id"]), (&json!("workspace.paused"), &json!(W)), "{first}");
    // Nothing more to send, however often the stream hands the events over again.
    stream(&api).await;
    assert_eq!(pass(&api).await.sent, 0);
    let listed = deliveries(&api).await;
    assert!(listed.iter().all(|d| d["status"] == "delivered" && d["attempts"] == 1), "{listed:?}");
}

async fn an_endpoint_down_for_a_while_gets_every_event<T: Table>(api: Api<T>) {
    let mut api = api;
    api.billing.platform.local_webhook_endpoints = true;
    api.tenants().await;
    let endpoint = Endpoint::start().await;
    register(&api, &endpoint).await;
    // Down: three answers of 503, then a timeout-free 200s.
    endpoint.answer(&[503, 503, 503]);
    pause_and_resume(&api).await;
    stream(&api).await;
    let first = pass(&api).await;
    // The pause failed; the resume of the same workspace waits behind it.
    assert_eq!((first.sent, first.retrying), (1, 1), "{first:?}");
    let waiting = deliveries(&api).await;
    let paused = waiting.iter().find(|d| d["event_type"] == "workspace.paused").unwrap();
    assert_eq!(
        (&paused["status"], &paused["attempts"], &paused["last_status"]),
        (&json!("pending"), &json!(1), &json!(503))
    );
    // Nothing is due before its retry.
    assert_eq!(pass(&api).await.sent, 0);
    // The schedule's passes take them up.
    for delay in &RETRY_DELAYS_S[..3] {
        api.set_clock(api.clock.now() + Duration::seconds(*delay));
        assert_eq!(scheduled(&api).await.partners, 1);
    }
    let ids = endpoint.ids();
    assert_eq!(ids.len(), 5, "three refusals, then both: {ids:?}");
    assert!(ids[..4].iter().all(|id| *id == ids[0]), "the same event until it was taken: {ids:?}");
    assert_ne!(ids[4], ids[0]);
    let done = deliveries(&api).await;
    assert!(done.iter().all(|d| d["status"] == "delivered"), "{done:?}");
    // Its queue empty, the partner is no longer visited, until an event comes.
    assert_eq!(scheduled(&api).await.partners, 1, "the pass that finds the queue empty clears the mark");
    assert_eq!(scheduled(&api).await.partners, 0);

    // An endpoint that refuses one event for good: failed after its last attempt, then replayed.
    endpoint.answer(&[500; RETRY_DELAYS_S.len() + 1]);
    api.usage(W, 5, 1, 0).await.ok(200);
    stream(&api).await;
    pass(&api).await;
    for delay in RETRY_DELAYS_S {
        api.set_clock(api.clock.now() + Duration::seconds(delay));
        pass(&api).await;
    }
    let failed = deliveries(&api).await.into_iter().find(|d| d["status"] == "failed").expect("one failed");
    assert_eq!(failed["attempts"], json!(RETRY_DELAYS_S.len() + 1), "{failed}");
    let id = failed["id"].as_str().unwrap();
    let replay = req("POST /partner/webhook/deliveries/{id}/replay").param("id", id).by(partner_admin(P));
    let replayed = api.call(replay).await.ok(202);
    assert_eq!((&replayed["delivery"]["status"], &replayed["delivery"]["replay"]), (&json!("pending"), &json!(true)));
    assert_eq!(pass(&api).await.delivered, 1);
    let after = deliveries(&api).await;
    assert!(after.iter().all(|d| d["status"] == "delivered"), "{after:?}");
    let nobody =
        req("POST /partner/webhook/deliveries/{id}/replay").param("id", "dlv_000000000000000000010000000001_ab");
    api.call(nobody.by(partner_admin(P))).await.err(404, "not_found", None);
}

async fn a_rolled_secret_signs_beside_the_new_one_for_a_day<T: Table>(api: Api<T>) {
    let mut api = api;
    api.billing.platform.local_webhook_endpoints = true;
    api.tenants().await;
    let endpoint = Endpoint::start().await;
    let old = register(&api, &endpoint).await;
    let rolled = api.call(req("POST /partner/webhook/secret").by(partner_admin(P))).await.ok(200);
    let new = rolled["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(rolled["endpoint"]["secrets"].as_array().unwrap().len(), 2, "{rolled}");
    pause_and_resume(&api).await;
    stream(&api).await;
    pass(&api).await;
    let now = api.clock.now().unix_timestamp();
    for r in endpoint.received() {
        check_signed(&r, &[&old], now);
        check_signed(&r, &[&new], now);
    }
    // A day later the old one signs no more.
    api.set_clock(api.clock.now() + Duration::hours(25));
    api.usage(W, 5, 1, 0).await.ok(200);
    stream(&api).await;
    pass(&api).await;
    let last = endpoint.received().pop().unwrap();
    let now = api.clock.now().unix_timestamp();
    check_signed(&last, &[&new], now);
    let old_only = stripe_gateway::signature::verify(last.body.as_bytes(), Some(&last.signature), &[&old], now);
    assert!(old_only.is_err(), "{last:?}");
    // A URL that is not http(s) is refused, nothing changed.
    let bad = req("PUT /partner/webhook").by(partner_admin(P)).json(json!({ "url": "ftp://hooks.agency.example/x" }));
    api.call(bad).await.invalid("url");
}

/// The partner's events of `kind`, oldest first: (threshold, balance).
async fn alerts<T: Table>(api: &Api<T>, kind: &str) -> Vec<(String, String)> {
    let events = api.call(req("GET /partner/events").by(partner_admin(P)).query("limit", "100")).await.ok(200);
    let mut told: Vec<(String, String)> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .map(|e| {
            (e["data"]["threshold"].as_str().unwrap().to_owned(), e["data"]["balance"].as_str().unwrap().to_owned())
        })
        .collect();
    told.reverse();
    told
}

/// The stream's work for wallet W: its balance alerts, worked out (twice: the stream hands an
/// entry over at least once).
async fn alerts_of_w<T: Table>(api: &Api<T>) {
    let w = domain::WalletId::Workspace(domain::WorkspaceId::parse(W).unwrap());
    api.billing.check_balance_alerts(&w).await.unwrap();
    api.billing.check_balance_alerts(&w).await.unwrap();
}

async fn balance_alerts_are_told_once_per_crossing<T: Table>(api: Api<T>) {
    api.tenants().await;
    let set = json!({ "workspace": ["10", "100.00", "10.00"], "wallet": ["50"] });
    let set = api.call(req("PUT /partner/balance-alerts").by(partner_admin(P)).json(set)).await.ok(200);
    assert_eq!(set, json!({ "workspace": ["10.00", "100.00"], "wallet": ["50.00"] }), "in order, each once");
    api.fund(P, W, "150").await;
    alerts_of_w(&api).await;
    assert!(alerts(&api, "balance.low").await.is_empty());
    // Down through both thresholds in two steps, then back above both at once.
    let deduct = |amount: &str| {
        let body = json!({ "amount": amount, "reason": "test" });
        req("POST /partner/workspaces/{id}/points").param("id", W).by(partner_admin(P)).json(body)
    };
    api.call(deduct("-100")).await.ok(201);
    alerts_of_w(&api).await;
    api.call(deduct("-45")).await.ok(201);
    alerts_of_w(&api).await;
    let low = alerts(&api, "balance.low").await;
    assert_eq!(low, [("100.00".to_owned(), "50.00".to_owned()), ("10.00".to_owned(), "5.00".to_owned())]);
    api.fund(P, W, "200").await;
    alerts_of_w(&api).await;
    let recovered = alerts(&api, "balance.recovered").await;
    assert_eq!(recovered, [("10.00".to_owned(), "205.00".to_owned()), ("100.00".to_owned(), "205.00".to_owned())]);
    // A dip and a recovery between two looks tell nothing: the balance did not stay under.
    api.call(deduct("-199")).await.ok(201);
    api.fund(P, W, "199").await;
    alerts_of_w(&api).await;
    assert_eq!(alerts(&api, "balance.low").await.len(), 2);
    // The partner's own wallet, against its own threshold.
    api.credit_partner(P, "30").await;
    let own = domain::WalletId::Partner(domain::PartnerId::parse(P).unwrap());
    api.billing.check_balance_alerts(&own).await.unwrap();
    api.credit_partner(P, "40").await;
    api.billing.check_balance_alerts(&own).await.unwrap();
    assert_eq!(alerts(&api, "balance.low").await.last().unwrap(), &("50.00".to_owned(), "30.00".to_owned()));
    assert_eq!(alerts(&api, "balance.recovered").await.last().unwrap(), &("50.00".to_owned(), "70.00".to_owned()));
    // Too many thresholds, or a negative one: refused, nothing changed.
    let many = json!({ "workspace": ["1", "2", "3", "4", "5", "6"] });
    api.call(req("PUT /partner/balance-alerts").by(partner_admin(P)).json(many)).await.invalid("workspace");
    let shown = api.call(req("GET /partner/balance-alerts").by(partner_admin(P))).await.ok(200);
    assert_eq!(shown["workspace"], json!(["10.00", "100.00"]));
}

async fn a_renewal_the_balance_will_not_cover_is_told_days_ahead_once<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.price(P, "extra_bot", "Extra bot", "10", true).await;
    api.fund(P, W, "14").await;
    // Bought on 15 April with 15 of the cycle's 30 days left: 5.00; 9.00 left, and the renewal
    // on 1 May costs 10.00.
    api.buy(P, W, "extra_bot", 1).await.ok(201);
    let warn = || api.billing.warn_renewals_ahead(|| false);
    api.set_clock(time::macros::datetime!(2026-04-27 06:00 UTC));
    assert_eq!(warn().await.unwrap().warned, 0, "four days ahead: not yet");
    api.set_clock(time::macros::datetime!(2026-04-28 06:00 UTC));
    let run = warn().await.unwrap();
    assert_eq!((run.looked_at, run.warned, run.finished), (2, 1, true), "{run:?}");
    assert_eq!(warn().await.unwrap().warned, 0, "once per renewal");
    let events = api.call(req("GET /partner/events").by(partner_admin(P))).await.ok(200);
    let told: Vec<&Value> =
        events["data"].as_array().unwrap().iter().filter(|e| e["type"] == "renewal.at_risk").collect();
    assert_eq!(told.len(), 1, "{events}");
    assert_eq!(
        told[0]["data"],
        json!({ "renews_on": "2026-05-01", "due": "10.00", "balance": "9.00", "shortfall": "1.00", "auto_topup": false })
    );
    assert_eq!(told[0]["workspace_id"], json!(W));
}

api_suite!(
    a_renewal_the_balance_will_not_cover_is_told_days_ahead_once,
    balance_alerts_are_told_once_per_crossing,
    every_event_arrives_signed_once_in_order,
    an_endpoint_down_for_a_while_gets_every_event,
    a_rolled_secret_signs_beside_the_new_one_for_a_day,
);

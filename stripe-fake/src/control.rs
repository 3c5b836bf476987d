//! Control: what a test (or a person running the local stack) tells the fake. Each is a method
//! on [`Fake`] for in-process use and a JSON endpoint under `/_fake` for everything else:
//!
//! | endpoint | body | does |
//! |---|---|---|
//! | `POST /_fake/accounts` | `{"id"?, "livemode"?}` | a connected account |
//! | `POST /_fake/accounts/{acct}/deauthorize` | | later calls refused, `account.application.deauthorized` sent |
//! | `POST /_fake/oauth/codes` | `{"account"?, "livemode"?}` | an OAuth code (and its account) |
//! | `GET\|POST\|DELETE /_fake/faults` | `{"operation", "fault", "count"?, "delay_ms"?}` | fail the next `count` calls of `operation` (or `*`) with `500`, `502` (HTML body), `429`, `timeout_before` or `timeout_after` |
//! | `POST /_fake/payment_intents/next` | `{"outcome", "decline_code"?, "count"?}` | the next confirmed PaymentIntents `succeed`, `decline` (`card_declined` + decline code) or need `authentication_required` |
//! | `GET /_fake/checkout/sessions?account=acct_..` | | the account's sessions |
//! | `GET /_fake/checkout/sessions/{cs}` | | the session with its PaymentIntent or SetupIntent, charge and saved payment method |
//! | `POST /_fake/checkout/sessions/{cs}/pay` | `{"card"?: {"brand", "last4", "exp_month", "exp_year"}}` | what "Pay now" (or "Save card") does, with that card (default: Visa 4242, expiring in December three years on) |
//! | `POST /_fake/checkout/sessions/{cs}/async` | | its payment completes later: `completed` with `unpaid` (not in setup mode) |
//! | `POST /_fake/checkout/sessions/{cs}/async_result` | `{"result": "succeeded"\|"failed"}` | `checkout.session.async_payment_*` |
//! | `POST /_fake/checkout/sessions/{cs}/expire` | | `checkout.session.expired` |
//! | `POST /_fake/charges/{ch}/refund` | `{"amount"?}` | a full or partial refund, `charge.refunded` |
//! | `POST /_fake/charges/{ch}/dispute` | `{"amount"?, "reason"?}` | a chargeback (once per charge; default: all not refunded, `fraudulent`), `charge.dispute.created` |
//! | `POST /_fake/disputes/{dp}/close` | `{"status": "won"\|"lost"}` | the bank decides (once): won sends `charge.dispute.funds_reinstated`, both send `charge.dispute.closed` |
//! | `GET /_fake/customers?account=acct_..` | | the account's customers |
//! | `GET /_fake/payment_methods?account=acct_..` | | the account's payment methods, with their customer and card |
//! | `POST /_fake/payment_methods/{pm}/card` | `{"exp_month", "exp_year"}` | the card updater's new expiry, `payment_method.automatically_updated` |
//! | `GET /_fake/charges?account=acct_..` | | the account's charges |
//! | `GET /_fake/invoices?account=acct_..` | | the account's invoices (Checkout's with `invoice_creation`, subscriptions', drafts made through the API) |
//! | `GET /_fake/disputes?account=acct_..` | | the account's disputes |
//! | `GET /_fake/clock` | | the fake's time: `{"now", "offset_s"}` |
//! | `POST /_fake/clock` | `{"now": <unix s>}` | moves the clock forward (never back: 400) and renews the subscriptions whose period ended by then, period after period: `{"now", "offset_s", "subscriptions": [{"id", "status", "invoices"}]}` |
//! | `GET /_fake/subscriptions?account=acct_..` | | the account's subscriptions |
//! | `POST /_fake/subscriptions/{sub}/payment_outcome` | `{"outcome": "succeed"\|"decline"\|"authentication_required"\|"default", "decline_code"?}` | every later charge of the subscription's invoices (renewals, `POST /v1/invoices/{id}/pay`) ends so, until set again; `default` goes back to the queued outcome, else the card's expiry |
//! | `POST /_fake/invoices/{in}/pay` | | an open invoice is paid now, as Stripe's retry after a card update: the subscription's outcome is cleared, `invoice.paid`, and a past-due subscription with nothing else open is `active` again |
//! | `GET\|POST /_fake/events/config` | `{"hold"?, "duplicate"?, "delay_ms"?}` | how events leave |
//! | `POST /_fake/events/release` | `{"order"?: "fifo"\|"reverse"\|"shuffle", "seed"?, "ids"?}` | send held events |
//! | `POST /_fake/events/{evt}/deliver` | | send one event (again) now |
//! | `POST /_fake/events/{evt}/drop` | | lose a held event's delivery for good: `release` passes it over (`deliver` still sends it); `409` if it is not held |
//! | `GET /_fake/events` | | every event with its deliveries and its `held` and `dropped` flags (`?type=` filters) |
//! | `GET /_fake/requests` | | the API request log (`?operation=` filters) |

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Fake;
use crate::api::{Operation, json_response};
use crate::form::Param;
use crate::state::{
    Card, Delivery, DeliveryMode, Event, Fault, FaultKind, Hold, LoggedRequest, NextPaymentIntent, check_expiry,
};
use crate::webhooks;

/// Most faults or queued outcomes set by one call.
pub const MAX_COUNT: u32 = 1000;
/// Default sleep of a timeout fault: longer than any client timeout a test sets.
pub const DEFAULT_TIMEOUT_DELAY_MS: u64 = 5_000;
/// Longest sleep a timeout fault may ask for.
pub const MAX_DELAY_MS: u64 = 120_000;

/// In which order held events leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseOrder {
    #[default]
    Fifo,
    Reverse,
    Shuffle,
}

impl Fake {
    /// A connected account (`id` or a new one).
    pub fn create_account(&self, id: Option<&str>, livemode: bool) -> String {
        self.state().create_account(id, livemode)
    }

    pub async fn deauthorize(&self, account: &str) -> Result<(), String> {
        self.state().deauthorize(account)?;
        webhooks::dispatch(self).await;
        Ok(())
    }

    /// A Connect OAuth code for `account` (created if new, or a new one): `(code, account)`.
    pub fn issue_oauth_code(&self, account: Option<&str>, livemode: bool) -> (String, String) {
        self.state().issue_oauth_code(account, livemode)
    }

    /// Fails the next `count` calls of `operation` (an [`Operation`] name, or `*`).
    pub fn fail_next(&self, operation: &str, kind: FaultKind, count: u32, delay_ms: u64) {
        let fault = Fault {
            operation: operation.to_owned(),
            kind,
            remaining: count.min(MAX_COUNT),
            delay_ms: delay_ms.min(MAX_DELAY_MS),
        };
        self.state().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// The next `count` confirmed PaymentIntents do `outcome`.
    pub fn next_payment_intents(&self, outcome: NextPaymentIntent, count: u32) {
        let mut state = self.state();
        for _ in 0..count.min(MAX_COUNT) {
            state.next_payment_intents.push_back(outcome.clone());
        }
    }

    /// What "Pay now" (or "Save card") on the pay page does with the default card, Visa 4242;
    /// the session as the API shows it.
    pub async fn pay(&self, session: &str) -> Result<Value, String> {
        self.pay_with_card(session, None).await
    }

    /// What "Pay now" (or "Save card") does with `card` (`None`: Visa 4242), taken as given,
    /// expired or not; a card Stripe would refuse ([`Card::check`]) is refused.
    pub async fn pay_with_card(&self, session: &str, card: Option<Card>) -> Result<Value, String> {
        let paid = self.state().pay(session, card);
        webhooks::dispatch(self).await;
        paid
    }

    /// The session's payment will complete later ([`Fake::finish_async`]); not for a setup
    /// session, which takes no payment.
    pub fn make_async(&self, session: &str) -> Result<(), String> {
        self.state().set_async_payment(session)
    }

    pub async fn finish_async(&self, session: &str, succeeded: bool) -> Result<Value, String> {
        let done = self.state().finish_async_payment(session, succeeded);
        webhooks::dispatch(self).await;
        done
    }

    pub async fn expire(&self, session: &str) -> Result<Value, String> {
        let expired = self.state().expire_session(None, session).map(|r| r.body).map_err(error_message);
        webhooks::dispatch(self).await;
        expired
    }

    /// Refunds `amount` (by default all that is left) of a charge: the refund object.
    pub async fn refund(&self, charge: &str, amount: Option<i64>) -> Result<Value, String> {
        let refunded = self.state().refund(charge, amount).map_err(error_message);
        webhooks::dispatch(self).await;
        refunded
    }

    /// The cardholder disputes `amount` (by default all that was not refunded) of a charge for
    /// `reason` (by default `fraudulent`): the dispute object.
    pub async fn dispute(&self, charge: &str, amount: Option<i64>, reason: Option<&str>) -> Result<Value, String> {
        let disputed = self.state().dispute(charge, amount, reason).map_err(error_message);
        webhooks::dispatch(self).await;
        disputed
    }

    /// The bank decides a dispute, for the merchant (`won`) or the cardholder: the dispute object.
    pub async fn close_dispute(&self, dispute: &str, won: bool) -> Result<Value, String> {
        let closed = self.state().close_dispute(dispute, won).map_err(error_message);
        webhooks::dispatch(self).await;
        closed
    }

    /// The session as the API shows it, plus `fake: {account, charge, payment_method,
    /// setup_intent, ..}`.
    pub fn session(&self, id: &str) -> Option<Value> {
        self.state().session_control_view(id)
    }

    pub fn customers(&self, account: Option<&str>) -> Vec<Value> {
        let list = self.state().customers_of_account(&account.map(str::to_owned));
        list["data"].as_array().cloned().unwrap_or_default()
    }

    pub fn sessions(&self, account: Option<&str>) -> Vec<Value> {
        self.state().sessions_of_account(&account.map(str::to_owned))
    }

    /// The account's payment methods (`None`: the platform's), in the order they were made, as
    /// the API shows them: customer (`null` once detached) and card.
    pub fn payment_methods(&self, account: Option<&str>) -> Vec<Value> {
        self.state().payment_methods_of_account(&account.map(str::to_owned))
    }

    /// The card updater gives a payment method's card a new expiry, as when the bank sends the
    /// cardholder a renewed card: the payment method as the API shows it.
    pub async fn update_card_expiry(
        &self,
        payment_method: &str,
        exp_month: u32,
        exp_year: u32,
    ) -> Result<Value, String> {
        let updated = self.state().update_card_expiry(payment_method, exp_month, exp_year);
        webhooks::dispatch(self).await;
        updated
    }

    pub fn charges(&self, account: Option<&str>) -> Vec<Value> {
        self.state().charges_of_account(&account.map(str::to_owned))
    }

    pub fn invoices(&self, account: Option<&str>) -> Vec<Value> {
        self.state().invoices_of_account(&account.map(str::to_owned))
    }

    pub fn disputes(&self, account: Option<&str>) -> Vec<Value> {
        self.state().disputes_of_account(&account.map(str::to_owned))
    }

    /// The fake's time (unix seconds): the real time plus how far [`Fake::set_clock`] moved it.
    pub fn clock_now(&self) -> i64 {
        self.state().now()
    }

    /// Moves the fake's clock to `unix_s` (not earlier than now: `Err`) and renews the
    /// subscriptions whose period ended by then, sending their events: what it renewed, as
    /// `POST /_fake/clock` answers.
    pub async fn set_clock(&self, unix_s: i64) -> Result<Value, String> {
        let moved = self.state().set_clock(unix_s);
        webhooks::dispatch(self).await;
        moved
    }

    /// As [`Fake::set_clock`], for a caller with a clock of its own (the local runner's): a time
    /// not later than the fake's leaves the clock where it is, and renews what is due.
    pub async fn advance_clock_to(&self, unix_s: i64) -> Value {
        let moved = self.state().advance_clock_to(unix_s);
        webhooks::dispatch(self).await;
        moved
    }

    /// Moves the clock `seconds` ahead: [`Fake::set_clock`] from now.
    pub async fn advance_clock_by(&self, seconds: i64) -> Value {
        let to = self.clock_now().saturating_add(seconds.max(0));
        self.advance_clock_to(to).await
    }

    /// The account's subscriptions, as the API shows them.
    pub fn subscriptions(&self, account: Option<&str>) -> Vec<Value> {
        self.state().subscriptions_of_account(&account.map(str::to_owned))
    }

    /// How every later charge of `subscription`'s invoices ends (`None`: the usual rules).
    pub fn set_subscription_payment_outcome(
        &self,
        subscription: &str,
        outcome: Option<NextPaymentIntent>,
    ) -> Result<Value, String> {
        self.state().set_subscription_payment_outcome(subscription, outcome)
    }

    /// Pays an open invoice now, as Stripe's retry after the customer fixed the card: the
    /// invoice as the API shows it.
    pub async fn pay_open_invoice(&self, invoice: &str) -> Result<Value, String> {
        let paid = self.state().pay_open_invoice(invoice);
        webhooks::dispatch(self).await;
        paid
    }

    pub fn set_delivery(&self, mode: DeliveryMode) {
        self.state().delivery = mode;
    }

    pub fn delivery(&self) -> DeliveryMode {
        self.state().delivery
    }

    /// Sends the held events (or those of `ids` that are held; never a dropped one) in `order`;
    /// their ids, in the order sent. `seed` makes a shuffle repeatable.
    pub async fn release(&self, order: ReleaseOrder, seed: Option<u64>, ids: Option<&[String]>) -> Vec<String> {
        let mut held: Vec<String> = {
            let state = self.state();
            state
                .events
                .iter()
                .filter(|e| e.hold == Hold::Held && ids.is_none_or(|ids| ids.contains(&e.id)))
                .map(|e| e.id.clone())
                .collect()
        };
        match order {
            ReleaseOrder::Fifo => {}
            ReleaseOrder::Reverse => held.reverse(),
            ReleaseOrder::Shuffle => {
                let mut rng = seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
                rng.shuffle(&mut held);
            }
        }
        let copies = if self.delivery().duplicate { 2 } else { 1 };
        for id in &held {
            for _ in 0..copies {
                webhooks::deliver(self, id).await;
            }
        }
        held
    }

    /// Sends one event now (again if it was sent before).
    pub async fn deliver(&self, event: &str) -> Option<Delivery> {
        webhooks::deliver(self, event).await
    }

    /// Loses a held event's webhook for good, so a test can miss one: `release` passes it over,
    /// [`Fake::deliver`] still sends it, and `GET /v1/events` lists it like any other.
    pub fn drop_event(&self, id: &str) -> Result<(), String> {
        self.state().drop_event(id)
    }

    pub fn events(&self) -> Vec<Event> {
        self.state().events.clone()
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.state().requests.clone()
    }
}

fn error_message(reply: crate::state::Reply) -> String {
    reply.body["error"]["message"].as_str().unwrap_or("refused").to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountBody {
    id: Option<String>,
    account: Option<String>,
    #[serde(default)]
    livemode: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultBody {
    operation: String,
    fault: String,
    count: Option<u32>,
    delay_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NextBody {
    outcome: String,
    decline_code: Option<String>,
    count: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    now: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeBody {
    outcome: String,
    decline_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayBody {
    card: Option<Card>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpiryBody {
    exp_month: u32,
    exp_year: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AsyncResultBody {
    result: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    amount: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisputeBody {
    amount: Option<i64>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseDisputeBody {
    status: DisputeDecision,
}

#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum DisputeDecision {
    Won,
    Lost,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    #[serde(default)]
    order: ReleaseOrder,
    seed: Option<u64>,
    ids: Option<Vec<String>>,
}

type Reply = Response<Full<Bytes>>;

fn ok(body: Value) -> Reply {
    json_response(200, &body, &[])
}

fn refuse(status: u16, message: &str) -> Reply {
    json_response(status, &json!({ "error": { "message": message } }), &[])
}

/// A refused control call: status and message.
struct Refusal(u16, String);

fn refusal(status: u16, message: &str) -> Refusal {
    Refusal(status, message.to_owned())
}

/// The body as `T`; an empty body is `{}`.
fn body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, Refusal> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { bytes };
    serde_json::from_slice(bytes).map_err(|e| Refusal(400, format!("bad JSON body: {e}")))
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    Param::parse(query.unwrap_or("")).ok()?.str_at(&[name]).map(str::to_owned)
}

fn fault_kind(name: &str) -> Option<FaultKind> {
    Some(match name {
        "500" => FaultKind::ServerError,
        "502" => FaultKind::BadGateway,
        "429" => FaultKind::RateLimited,
        "timeout_before" => FaultKind::TimeoutBefore,
        "timeout_after" => FaultKind::TimeoutAfter,
        _ => return None,
    })
}

fn faults_json(fake: &Fake) -> Value {
    let faults: Vec<Value> = fake
        .state()
        .faults
        .iter()
        .map(|f| json!({ "operation": f.operation, "fault": format!("{:?}", f.kind), "remaining": f.remaining, "delay_ms": f.delay_ms }))
        .collect();
    json!({ "faults": faults })
}

fn done(result: Result<Value, String>) -> Reply {
    match result {
        Ok(v) => ok(v),
        Err(message) if message.starts_with("no ") || message.starts_with("No such") => refuse(404, &message),
        Err(message) => refuse(409, &message),
    }
}

pub async fn handle(fake: &Fake, method: &Method, path: &[&str], query: Option<&str>, bytes: &[u8]) -> Reply {
    let result: Result<Reply, Refusal> = async {
        Ok(match (method, path) {
            (&Method::GET, [] | [""]) => ok(json!({
                "operations": Operation::ALL.iter().map(|o| o.name()).collect::<Vec<_>>(),
                "faults": ["500", "502", "429", "timeout_before", "timeout_after"],
                "help": "see stripe-fake/src/control.rs",
            })),
            (&Method::POST, ["accounts"]) => {
                let b: AccountBody = body(bytes)?;
                ok(json!({ "id": fake.create_account(b.id.or(b.account).as_deref(), b.livemode) }))
            }
            (&Method::POST, ["accounts", id, "deauthorize"]) => done(fake.deauthorize(id).await.map(|()| json!({}))),
            (&Method::POST, ["oauth", "codes"]) => {
                let b: AccountBody = body(bytes)?;
                let (code, account) = fake.issue_oauth_code(b.account.or(b.id).as_deref(), b.livemode);
                ok(json!({ "code": code, "account": account }))
            }
            (&Method::GET, ["faults"]) => ok(faults_json(fake)),
            (&Method::DELETE, ["faults"]) => {
                fake.clear_faults();
                ok(faults_json(fake))
            }
            (&Method::POST, ["faults"]) => {
                let b: FaultBody = body(bytes)?;
                let kind = fault_kind(&b.fault)
                    .ok_or_else(|| refusal(400, "fault must be one of 500, 502, 429, timeout_before, timeout_after"))?;
                if b.operation != "*" && !Operation::ALL.iter().any(|o| o.name() == b.operation) {
                    return Err(refusal(400, &format!("unknown operation {:?}; GET /_fake lists them", b.operation)));
                }
                fake.fail_next(
                    &b.operation,
                    kind,
                    b.count.unwrap_or(1),
                    b.delay_ms.unwrap_or(DEFAULT_TIMEOUT_DELAY_MS),
                );
                ok(faults_json(fake))
            }
            (&Method::POST, ["payment_intents", "next"]) => {
                let b: NextBody = body(bytes)?;
                let outcome = match b.outcome.as_str() {
                    "succeed" => NextPaymentIntent::Succeed,
                    "decline" => NextPaymentIntent::Decline(b.decline_code.unwrap_or_else(|| "generic_decline".into())),
                    "authentication_required" => NextPaymentIntent::AuthenticationRequired,
                    _ => return Err(refusal(400, "outcome must be succeed, decline or authentication_required")),
                };
                fake.next_payment_intents(outcome, b.count.unwrap_or(1));
                ok(json!({ "queued": fake.state().next_payment_intents.len() }))
            }
            (&Method::GET, ["checkout", "sessions", id]) => {
                fake.session(id).map(ok).ok_or_else(|| refusal(404, &format!("no session {id}")))?
            }
            (&Method::POST, ["checkout", "sessions", id, "pay"]) => {
                let b: PayBody = body(bytes)?;
                if let Some(card) = &b.card {
                    card.check().map_err(|m| Refusal(400, m))?;
                }
                done(fake.pay_with_card(id, b.card).await)
            }
            (&Method::POST, ["checkout", "sessions", id, "async"]) => {
                if fake.session(id).is_some_and(|s| s["mode"] == "setup") {
                    return Err(refusal(400, &format!("session {id} is in setup mode: it takes no payment")));
                }
                done(fake.make_async(id).map(|()| fake.session(id).unwrap_or_default()))
            }
            (&Method::POST, ["checkout", "sessions", id, "async_result"]) => {
                let b: AsyncResultBody = body(bytes)?;
                let succeeded = match b.result.as_str() {
                    "succeeded" => true,
                    "failed" => false,
                    _ => return Err(refusal(400, "result must be succeeded or failed")),
                };
                done(fake.finish_async(id, succeeded).await)
            }
            (&Method::POST, ["checkout", "sessions", id, "expire"]) => done(fake.expire(id).await),
            (&Method::POST, ["charges", id, "refund"]) => {
                let b: RefundBody = body(bytes)?;
                done(fake.refund(id, b.amount).await)
            }
            (&Method::POST, ["charges", id, "dispute"]) => {
                let b: DisputeBody = body(bytes)?;
                done(fake.dispute(id, b.amount, b.reason.as_deref()).await)
            }
            (&Method::POST, ["disputes", id, "close"]) => {
                let b: CloseDisputeBody = body(bytes)?;
                done(fake.close_dispute(id, b.status == DisputeDecision::Won).await)
            }
            (&Method::GET, ["customers"]) => {
                ok(json!({ "data": fake.customers(query_param(query, "account").as_deref()) }))
            }
            (&Method::GET, ["payment_methods"]) => {
                ok(json!({ "data": fake.payment_methods(query_param(query, "account").as_deref()) }))
            }
            (&Method::POST, ["payment_methods", id, "card"]) => {
                let b: ExpiryBody = body(bytes)?;
                check_expiry(b.exp_month, b.exp_year).map_err(|m| Refusal(400, m))?;
                done(fake.update_card_expiry(id, b.exp_month, b.exp_year).await)
            }
            (&Method::GET, ["checkout", "sessions"]) => {
                ok(json!({ "data": fake.sessions(query_param(query, "account").as_deref()) }))
            }
            (&Method::GET, ["charges"]) => {
                ok(json!({ "data": fake.charges(query_param(query, "account").as_deref()) }))
            }
            (&Method::GET, ["invoices"]) => {
                ok(json!({ "data": fake.invoices(query_param(query, "account").as_deref()) }))
            }
            (&Method::GET, ["disputes"]) => {
                ok(json!({ "data": fake.disputes(query_param(query, "account").as_deref()) }))
            }
            (&Method::GET, ["clock"]) => {
                let state = fake.state();
                ok(json!({ "now": state.now(), "offset_s": state.now() - crate::state::now_s() }))
            }
            (&Method::POST, ["clock"]) => {
                let b: ClockBody = body(bytes)?;
                ok(fake.set_clock(b.now).await.map_err(|m| Refusal(400, m))?)
            }
            (&Method::GET, ["subscriptions"]) => {
                ok(json!({ "data": fake.subscriptions(query_param(query, "account").as_deref()) }))
            }
            (&Method::POST, ["subscriptions", id, "payment_outcome"]) => {
                let b: OutcomeBody = body(bytes)?;
                let outcome = match b.outcome.as_str() {
                    "default" => None,
                    "succeed" => Some(NextPaymentIntent::Succeed),
                    "decline" => {
                        Some(NextPaymentIntent::Decline(b.decline_code.unwrap_or_else(|| "generic_decline".into())))
                    }
                    "authentication_required" => Some(NextPaymentIntent::AuthenticationRequired),
                    _ => {
                        return Err(refusal(
                            400,
                            "outcome must be succeed, decline, authentication_required or default",
                        ));
                    }
                };
                done(fake.set_subscription_payment_outcome(id, outcome))
            }
            (&Method::POST, ["invoices", id, "pay"]) => done(fake.pay_open_invoice(id).await),
            (&Method::GET, ["events", "config"]) => ok(json!(fake.delivery())),
            (&Method::POST, ["events", "config"]) => {
                let mode: DeliveryMode = body(bytes)?;
                fake.set_delivery(mode);
                ok(json!(mode))
            }
            (&Method::POST, ["events", "release"]) => {
                let b: ReleaseBody = body(bytes)?;
                let sent = fake.release(b.order, b.seed, b.ids.as_deref()).await;
                ok(json!({ "released": sent }))
            }
            (&Method::POST, ["events", id, "deliver"]) => match fake.deliver(id).await {
                Some(d) => ok(json!(d)),
                None => refuse(404, &format!("no event {id}")),
            },
            (&Method::POST, ["events", id, "drop"]) => {
                done(fake.drop_event(id).map(|()| json!(fake.state().events.iter().find(|e| e.id == *id))))
            }
            (&Method::GET, ["events"]) => {
                let wanted = query_param(query, "type");
                let events: Vec<Event> =
                    fake.events().into_iter().filter(|e| wanted.as_ref().is_none_or(|t| &e.type_ == t)).collect();
                ok(json!({ "data": events }))
            }
            (&Method::GET, ["requests"]) => {
                let wanted = query_param(query, "operation");
                let requests: Vec<LoggedRequest> =
                    fake.requests().into_iter().filter(|r| wanted.is_none() || r.operation == wanted).collect();
                ok(json!({ "data": requests }))
            }
            _ => refuse(404, "no such control endpoint; GET /_fake lists the operations"),
        })
    }
    .await;
    result.unwrap_or_else(|Refusal(status, message)| refuse(status, &message))
}

//! Everything the fake remembers, and what each call does to it. Pure and synchronous: the HTTP
//! layer takes the lock, calls one method, and delivers the events it queued after letting go.
//!
//! Objects are rendered as Stripe renders them, with at least every field async-stripe's parser
//! requires (a test parses each one with async-stripe's own types).
//!
//! One file per Stripe resource, each with its object, its JSON and its operations; this one
//! holds the `State` itself and what every resource shares: ids, the clock, errors, parameters.

/// Implements `Owned` for a resource whose `account` field names its owner.
macro_rules! owned_by_account_field {
    ($t:ty) => {
        impl $crate::state::Owned for $t {
            fn account(&self) -> &$crate::state::Acct {
                &self.account
            }
        }
    };
}

mod accounts;
mod charges;
mod checkout;
mod customers;
mod disputes;
mod events;
mod invoices;
mod payment_intents;
mod payment_methods;
mod products;
mod refunds;
mod renewals;
mod setup_intents;
mod subscriptions;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use domain::{Currency, Money, MoneyError};
use serde_json::{Value, json};

use crate::form::Param;

pub use accounts::Account;
use accounts::OAuthCodeState;
use charges::Charge;
pub use charges::ReceiptPage;
use checkout::Session;
pub use checkout::{PageAmount, PagePurpose, PageSession, SESSION_LIFETIME_S};
use customers::Customer;
pub use disputes::DISPUTE_RESPONSE_WINDOW_S;
use disputes::Dispute;
pub use events::{Delivery, DeliveryMode, Event, Hold};
use invoices::Invoice;
pub use invoices::InvoicePage;
pub use payment_intents::NextPaymentIntent;
use payment_intents::PaymentIntent;
use payment_methods::PaymentMethod;
pub use payment_methods::{Card, TestCard, check_expiry};
use products::{Price, Product};
use refunds::Refund;
pub use renewals::{MAX_RENEWED_PERIODS, period_end};
use setup_intents::SetupIntent;
use subscriptions::Subscription;

/// The API version the fake's events claim: the one async-stripe 1.0.0-rc.10 is generated for.
pub const API_VERSION: &str = "2026-09-30.endive";
/// Most events, requests and deliveries kept: the fake runs for a test or a local session.
pub const MAX_LOG: usize = 10_000;

/// The real time, unix seconds: what webhook signatures are dated with (the receiver checks them
/// against its own clock). Objects and events are dated by [`State::now`], the fake's clock.
pub fn now_s() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// This month, UTC: `(year, month)`, the month 1 to 12. A card's expiry is a month.
pub fn this_month_utc() -> (u32, u32) {
    let now = time::OffsetDateTime::now_utc();
    (u32::try_from(now.year()).unwrap_or(0), u32::from(u8::from(now.month())))
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// A random id with Stripe's shape: prefix and `len` letters and digits.
pub fn random_id(prefix: &str, len: usize) -> String {
    let mut id = String::with_capacity(prefix.len() + len);
    id.push_str(prefix);
    id.extend(std::iter::repeat_with(fastrand::alphanumeric).take(len));
    id
}

/// What a `/v1` call answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }
}

/// A Stripe-shaped error: `{"error": {"type", "code", "message", "param", ...}}`.
pub fn error(status: u16, type_: &str, code: Option<&str>, message: &str, param: Option<&str>) -> Reply {
    let mut e = json!({ "type": type_, "message": message });
    if let Some(code) = code {
        e["code"] = json!(code);
        e["doc_url"] = json!(doc_url(code));
    }
    if let Some(param) = param {
        e["param"] = json!(param);
    }
    Reply { status, body: json!({ "error": e }) }
}

/// Where Stripe documents an error code.
fn doc_url(code: &str) -> String {
    format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-"))
}

fn invalid(code: Option<&str>, message: &str, param: Option<&str>) -> Reply {
    error(400, "invalid_request_error", code, message, param)
}

fn missing(kind: &str, id: &str, param: Option<&str>) -> Reply {
    let status = if param.is_some() { 400 } else { 404 };
    error(status, "invalid_request_error", Some("resource_missing"), &format!("No such {kind}: '{id}'"), param)
}

type R<T> = Result<T, Reply>;

/// Which account a call acts on: `None` is the platform itself (no `Stripe-Account`).
pub type Acct = Option<String>;

/// An object that belongs to one account (or to the platform).
trait Owned {
    fn account(&self) -> &Acct;
}

/// Object `id` of `kind`, if `acct` owns it: another account's object is as missing as one that
/// never was, as Stripe answers.
fn owned<'a, T: Owned>(
    objects: &'a HashMap<String, T>,
    acct: &Acct,
    kind: &str,
    id: &str,
    param: Option<&str>,
) -> R<&'a T> {
    objects.get(id).filter(|o| o.account() == acct).ok_or_else(|| missing(kind, id, param))
}

/// An account's objects in creation order (`seq`), for the control endpoints' lists.
fn of_account<'a, T: Owned>(objects: &'a HashMap<String, T>, account: &Acct, seq: fn(&T) -> u64) -> Vec<&'a T> {
    let mut v: Vec<_> = objects.values().filter(|o| o.account() == account).collect();
    v.sort_by_key(|o| seq(o));
    v
}

/// A failure to inject into the next calls of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// HTTP 500 `api_error`, without acting.
    ServerError,
    /// HTTP 502 with an HTML body, without acting: a load balancer in front of Stripe failing,
    /// the answer a client can't parse as Stripe's.
    BadGateway,
    /// HTTP 429 `rate_limit`, without acting.
    RateLimited,
    /// Sleep `delay_ms` (past the client's timeout), then answer 500 without having acted: a
    /// request lost on its way in.
    TimeoutBefore,
    /// Act (and keep the answer under the idempotency key), then sleep `delay_ms` before
    /// answering: a response lost on its way out.
    TimeoutAfter,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// An operation name (`checkout.sessions.create`; see `api::Operation`) or `*`.
    pub operation: String,
    pub kind: FaultKind,
    pub remaining: u32,
    pub delay_ms: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LoggedRequest {
    pub at_ms: i64,
    pub method: String,
    pub path: String,
    pub operation: Option<String>,
    pub account: Acct,
    pub idempotency_key: Option<String>,
    pub params: Value,
    pub status: u16,
    /// Answered from the idempotency record.
    pub replayed: bool,
    /// The injected fault, if any.
    pub fault: Option<String>,
}

/// A stored idempotent result: what was asked and what was answered.
#[derive(Debug, Clone)]
pub struct IdempotentResult {
    pub method: String,
    pub path: String,
    pub params: Param,
    pub reply: Reply,
}

#[derive(Debug)]
pub struct State {
    /// Where URLs handed out point (the pay page): the fake's own address.
    pub base_url: String,
    pub accounts: BTreeMap<String, Account>,
    oauth_codes: HashMap<String, OAuthCodeState>,
    customers: HashMap<String, Customer>,
    sessions: HashMap<String, Session>,
    payment_intents: HashMap<String, PaymentIntent>,
    payment_methods: HashMap<String, PaymentMethod>,
    setup_intents: HashMap<String, SetupIntent>,
    charges: HashMap<String, Charge>,
    invoices: HashMap<String, Invoice>,
    invoice_items: HashMap<String, invoices::InvoiceItem>,
    products: HashMap<String, Product>,
    prices: HashMap<String, Price>,
    subscriptions: HashMap<String, Subscription>,
    refunds: HashMap<String, Refund>,
    disputes: HashMap<String, Dispute>,
    /// How far the fake's clock is ahead of the real time (seconds; only grows): see [`State::now`].
    clock_offset_s: i64,
    /// While a renewal bills a period that ended in the past, the time it writes: that end.
    as_of: Option<i64>,
    /// By (account or "" for the platform, key).
    pub idempotency: HashMap<(String, String), IdempotentResult>,
    pub faults: Vec<Fault>,
    pub next_payment_intents: VecDeque<NextPaymentIntent>,
    pub delivery: DeliveryMode,
    pub events: Vec<Event>,
    /// Events created since the HTTP layer last looked.
    pub outbox: Vec<String>,
    pub requests: Vec<LoggedRequest>,
    seq: u64,
}

fn push_bounded<T>(v: &mut Vec<T>, item: T) {
    if v.len() >= MAX_LOG {
        v.remove(0);
    }
    v.push(item);
}

fn metadata_json(m: &BTreeMap<String, String>) -> Value {
    json!(m)
}

fn required<'a>(p: &'a Param, path: &[&str], param: &str) -> R<&'a str> {
    p.str_at(path)
        .ok_or_else(|| invalid(Some("parameter_missing"), &format!("Missing required param: {param}."), Some(param)))
}

fn parse_amount(p: &Param, path: &[&str], param: &str) -> R<i64> {
    let raw = required(p, path, param)?;
    raw.parse::<i64>()
        .ok()
        .filter(|a| *a >= 0)
        .ok_or_else(|| invalid(Some("parameter_invalid_integer"), &format!("Invalid integer: {raw}"), Some(param)))
}

fn parse_currency(p: &Param, path: &[&str], param: &str) -> R<Currency> {
    let raw = required(p, path, param)?;
    Currency::parse(raw).map_err(|_| invalid(None, &format!("Invalid currency: {raw}."), Some(param)))
}

/// Stripe's amount rules, from the shared domain's tables: the currency's step, the minimum and
/// maximum charge.
fn check_amount(amount: i64, currency: Currency, param: &str) -> R<()> {
    let money = Money::from_minor(amount, currency)
        .map_err(|e| invalid(Some("amount_invalid"), &e.to_string(), Some(param)))?;
    money.check_chargeable().map_err(|e| match e {
        MoneyError::BelowMinimumCharge { minimum } => invalid(
            Some("amount_too_small"),
            &format!("Amount must be at least {} {}", minimum.format_major(), currency.code()),
            Some(param),
        ),
        other => invalid(Some("amount_too_large"), &other.to_string(), Some(param)),
    })
}

fn check_known_params(p: &Param, allowed: &[&str]) -> R<()> {
    match p.names().into_iter().find(|n| !allowed.contains(n)) {
        Some(unknown) => Err(unknown_param(unknown)),
        None => Ok(()),
    }
}

fn unknown_param(name: &str) -> Reply {
    invalid(Some("parameter_unknown"), &format!("Received unknown parameter: {name}"), Some(name))
}

fn bool_param(p: &Param, name: &str) -> R<bool> {
    match p.str_at(&[name]) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => {
            Err(invalid(Some("parameter_invalid_boolean"), &format!("Invalid boolean: {other}"), Some(name)))
        }
    }
}

fn string_map(p: &Param, name: &str) -> R<BTreeMap<String, String>> {
    match p.get(name) {
        None => Ok(BTreeMap::new()),
        Some(m) => m.string_map().ok_or_else(|| invalid(None, &format!("Invalid hash: {name}"), Some(name))),
    }
}

fn opt_string(p: &Param, path: &[&str]) -> Option<String> {
    p.str_at(path).map(str::to_owned)
}

/// The fields a retrieve asked to expand (`expand[]=setup_intent`), with their own
/// (`expand[]=setup_intent.payment_method` expands the SetupIntent and its PaymentMethod).
#[derive(Debug, Clone, Default)]
pub struct Expand(Vec<String>);

impl Expand {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn of(p: &Param) -> Self {
        Self(p.get("expand").map(Param::string_list).unwrap_or_default().into_iter().map(str::to_owned).collect())
    }

    /// Every one of `fields`, as the control endpoints show objects.
    fn all(fields: &[&str]) -> Self {
        Self(fields.iter().map(|f| (*f).to_owned()).collect())
    }

    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|e| e == field || e.strip_prefix(field).is_some_and(|rest| rest.starts_with('.')))
    }

    /// What to expand inside `field`.
    pub fn within(&self, field: &str) -> Self {
        Self(self.0.iter().filter_map(|e| e.strip_prefix(field)?.strip_prefix('.')).map(str::to_owned).collect())
    }
}

/// A Stripe list object.
fn list(url: &str, data: Vec<Value>) -> Value {
    json!({ "object": "list", "data": data, "has_more": false, "url": url })
}

impl State {
    pub fn new(base_url: String, accounts: &[String]) -> Self {
        let mut s = Self {
            base_url,
            accounts: BTreeMap::new(),
            oauth_codes: HashMap::new(),
            customers: HashMap::new(),
            sessions: HashMap::new(),
            payment_intents: HashMap::new(),
            payment_methods: HashMap::new(),
            setup_intents: HashMap::new(),
            charges: HashMap::new(),
            invoices: HashMap::new(),
            invoice_items: HashMap::new(),
            products: HashMap::new(),
            prices: HashMap::new(),
            subscriptions: HashMap::new(),
            refunds: HashMap::new(),
            disputes: HashMap::new(),
            clock_offset_s: 0,
            as_of: None,
            idempotency: HashMap::new(),
            faults: Vec::new(),
            next_payment_intents: VecDeque::new(),
            delivery: DeliveryMode::default(),
            events: Vec::new(),
            outbox: Vec::new(),
            requests: Vec::new(),
            seq: 0,
        };
        for id in accounts {
            s.create_account(Some(id), false);
        }
        s
    }

    /// The fake's time, unix seconds: the real time plus the offset the clock control set
    /// ([`State::set_clock`]). Every timestamp the fake writes (`created`, periods, events) is
    /// this one.
    pub fn now(&self) -> i64 {
        self.as_of.unwrap_or_else(|| now_s().saturating_add(self.clock_offset_s))
    }

    /// The month of [`State::now`], UTC: `(year, month)`, against which a card charged now is
    /// judged.
    pub fn this_month(&self) -> (u32, u32) {
        let now =
            time::OffsetDateTime::from_unix_timestamp(self.now()).unwrap_or_else(|_| time::OffsetDateTime::now_utc());
        (u32::try_from(now.year()).unwrap_or(0), u32::from(u8::from(now.month())))
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn log_request(&mut self, entry: LoggedRequest) {
        push_bounded(&mut self.requests, entry);
    }
}

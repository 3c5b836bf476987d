//! Everything the fake remembers, and what each call does to it. Pure and synchronous: the HTTP
//! layer takes the lock, calls one method, and delivers the events it queued after letting go.
//!
//! Objects are rendered as Stripe renders them, with at least every field async-stripe's parser
//! requires (a test parses each one with async-stripe's own types).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use domain::{Currency, Money, MoneyError};
use serde_json::{Value, json};

use crate::form::Param;

/// The API version the fake's events claim: the one async-stripe 1.0.0-rc.10 is generated for.
pub const API_VERSION: &str = "2026-09-30.endive";
/// Stripe's default and maximum Checkout Session lifetime.
pub const SESSION_LIFETIME_S: i64 = 24 * 60 * 60;
/// Stripe's minimum `expires_at`: 30 minutes from creation.
const SESSION_MIN_LIFETIME_S: i64 = 30 * 60;
/// Most events, requests and deliveries kept: the fake runs for a test or a local session.
pub const MAX_LOG: usize = 10_000;
/// How long a merchant has to answer a new dispute (`evidence_details.due_by`): Stripe's usual
/// window, so code that shows or acts on the deadline sees a realistic one.
pub const DISPUTE_RESPONSE_WINDOW_S: i64 = 7 * 24 * 60 * 60;

pub fn now_s() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
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
        e["doc_url"] = json!(format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-")));
    }
    if let Some(param) = param {
        e["param"] = json!(param);
    }
    Reply { status, body: json!({ "error": e }) }
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

#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub livemode: bool,
    pub deauthorized: bool,
}

#[derive(Debug, Clone)]
struct OAuthCodeState {
    account: String,
    used: bool,
}

#[derive(Debug, Clone)]
struct Customer {
    /// Creation order, for lists (`created` is in whole seconds).
    seq: u64,
    id: String,
    account: Acct,
    created: i64,
    description: Option<String>,
    email: Option<String>,
    name: Option<String>,
    metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionStatus {
    Open,
    Complete,
    Expired,
}

impl SessionStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Complete => "complete",
            Self::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone)]
struct Session {
    seq: u64,
    id: String,
    account: Acct,
    created: i64,
    expires_at: i64,
    currency: String,
    amount_total: i64,
    line_items: Vec<LineItem>,
    customer: Option<String>,
    client_reference_id: Option<String>,
    metadata: BTreeMap<String, String>,
    success_url: Option<String>,
    cancel_url: Option<String>,
    setup_future_usage: Option<String>,
    pi_metadata: BTreeMap<String, String>,
    pi_description: Option<String>,
    status: SessionStatus,
    /// "paid" | "unpaid".
    payment_status: &'static str,
    payment_intent: Option<String>,
    /// Set by the control endpoint: the payment completes later (`async_payment_*` events).
    async_payment: bool,
}

#[derive(Debug, Clone)]
struct LineItem {
    name: String,
    unit_amount: i64,
    quantity: i64,
}

#[derive(Debug, Clone)]
struct PaymentIntent {
    id: String,
    account: Acct,
    created: i64,
    amount: i64,
    currency: String,
    customer: Option<String>,
    payment_method: Option<String>,
    description: Option<String>,
    metadata: BTreeMap<String, String>,
    setup_future_usage: Option<String>,
    /// Stripe's status names.
    status: &'static str,
    latest_charge: Option<String>,
    last_payment_error: Option<Value>,
}

#[derive(Debug, Clone)]
struct PaymentMethod {
    id: String,
    account: Acct,
    customer: Option<String>,
}

#[derive(Debug, Clone)]
struct Charge {
    seq: u64,
    id: String,
    account: Acct,
    created: i64,
    amount: i64,
    amount_refunded: i64,
    currency: String,
    customer: Option<String>,
    payment_intent: String,
    payment_method: Option<String>,
    metadata: BTreeMap<String, String>,
    /// The dispute's id once the cardholder has disputed it (once: the fake keeps one per charge).
    dispute: Option<String>,
}

#[derive(Debug, Clone)]
struct Refund {
    id: String,
    account: Acct,
    created: i64,
    amount: i64,
    currency: String,
    charge: String,
    payment_intent: String,
}

/// A chargeback opened by the cardholder's bank (control endpoint), waiting for a response.
#[derive(Debug, Clone)]
struct Dispute {
    seq: u64,
    id: String,
    account: Acct,
    created: i64,
    amount: i64,
    currency: String,
    charge: String,
    payment_intent: String,
    reason: String,
}

/// What the next confirmed PaymentIntent does (control endpoint), else it succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextPaymentIntent {
    Succeed,
    /// `card_declined` with this `decline_code` (`generic_decline`, `insufficient_funds`...).
    Decline(String),
    AuthenticationRequired,
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

/// How events leave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryMode {
    /// Keep new events until released (`/_fake/events/release`), in the order asked for.
    #[serde(default)]
    pub hold: bool,
    /// Send every event twice.
    #[serde(default)]
    pub duplicate: bool,
    /// Send every event this late (in the background); 0 sends it before the call that caused
    /// it answers, so a test needs no waiting.
    #[serde(default)]
    pub delay_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    pub at_ms: i64,
    /// The receiver's status code; `None` if it could not be reached.
    pub status: Option<u16>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub account: Acct,
    pub created: i64,
    /// The exact body sent (and signed).
    pub payload: String,
    pub held: bool,
    pub deliveries: Vec<Delivery>,
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
    charges: HashMap<String, Charge>,
    refunds: HashMap<String, Refund>,
    disputes: HashMap<String, Dispute>,
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

fn parse_amount(p: &Param, path: &[&str], param: &str) -> R<i64> {
    let raw = p
        .str_at(path)
        .ok_or_else(|| invalid(Some("parameter_missing"), &format!("Missing required param: {param}."), Some(param)))?;
    raw.parse::<i64>()
        .ok()
        .filter(|a| *a >= 0)
        .ok_or_else(|| invalid(Some("parameter_invalid_integer"), &format!("Invalid integer: {raw}"), Some(param)))
}

fn parse_currency(p: &Param, path: &[&str], param: &str) -> R<Currency> {
    let raw = p
        .str_at(path)
        .ok_or_else(|| invalid(Some("parameter_missing"), &format!("Missing required param: {param}."), Some(param)))?;
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
        Some(unknown) => {
            Err(invalid(Some("parameter_unknown"), &format!("Received unknown parameter: {unknown}"), Some(unknown)))
        }
        None => Ok(()),
    }
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

/// A Stripe list object.
fn list(url: &str, data: Vec<Value>) -> Value {
    json!({ "object": "list", "data": data, "has_more": false, "url": url })
}

fn billing_details() -> Value {
    json!({ "address": null, "email": null, "name": null, "phone": null, "tax_id": null })
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
            charges: HashMap::new(),
            refunds: HashMap::new(),
            disputes: HashMap::new(),
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

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn log_request(&mut self, entry: LoggedRequest) {
        push_bounded(&mut self.requests, entry);
    }

    // ---- accounts and OAuth -------------------------------------------------------------

    /// A connected account, new unless `id` names one already there.
    pub fn create_account(&mut self, id: Option<&str>, livemode: bool) -> String {
        let id = id.map_or_else(|| random_id("acct_", 16), str::to_owned);
        self.accounts.entry(id.clone()).or_insert(Account { id: id.clone(), livemode, deauthorized: false });
        id
    }

    /// Whether calls may name `account` in `Stripe-Account`.
    pub fn account_usable(&self, account: &str) -> bool {
        self.accounts.get(account).is_some_and(|a| !a.deauthorized)
    }

    /// An authorization code, as Stripe redirects back with after the partner clicks Connect.
    pub fn issue_oauth_code(&mut self, account: Option<&str>, livemode: bool) -> (String, String) {
        let account = self.create_account(account, livemode);
        let code = random_id("ac_", 32);
        self.oauth_codes.insert(code.clone(), OAuthCodeState { account: account.clone(), used: false });
        (code, account)
    }

    /// `POST /oauth/token`. OAuth errors are not Stripe API errors: `{"error", "error_description"}`.
    pub fn oauth_token(&mut self, p: &Param) -> Reply {
        let oauth_error = |error: &str, description: String| Reply {
            status: 400,
            body: json!({ "error": error, "error_description": description }),
        };
        match p.str_at(&["grant_type"]) {
            Some("authorization_code") => {}
            Some(other) => return oauth_error("unsupported_grant_type", format!("Unsupported grant type: {other}")),
            None => return oauth_error("invalid_request", "No grant type specified".into()),
        }
        let Some(code) = p.str_at(&["code"]) else {
            return oauth_error("invalid_request", "No authorization code provided".into());
        };
        let Some(state) = self.oauth_codes.get_mut(code) else {
            return oauth_error("invalid_grant", format!("Authorization code does not exist: {code}"));
        };
        if state.used {
            return oauth_error(
                "invalid_grant",
                "This authorization code has already been used. All tokens issued with this code have been revoked."
                    .into(),
            );
        }
        state.used = true;
        let account = state.account.clone();
        let livemode = self.accounts.get(&account).is_some_and(|a| a.livemode);
        let mode = if livemode { "live" } else { "test" };
        Reply::ok(json!({
            "access_token": random_id(&format!("sk_{mode}_"), 24),
            "livemode": livemode,
            "refresh_token": random_id("rt_", 24),
            "scope": "read_write",
            "stripe_publishable_key": random_id(&format!("pk_{mode}_"), 24),
            "stripe_user_id": account,
            "token_type": "bearer",
        }))
    }

    /// The partner disconnected the platform: later calls naming the account are refused, and
    /// `account.application.deauthorized` is sent.
    pub fn deauthorize(&mut self, account: &str) -> Result<(), String> {
        let a = self.accounts.get_mut(account).ok_or_else(|| format!("no account {account}"))?;
        a.deauthorized = true;
        let application = json!({ "id": "ca_fakeplatform", "object": "application", "name": "Fake platform" });
        self.emit("account.application.deauthorized", &Some(account.to_owned()), application, None);
        Ok(())
    }

    // ---- events --------------------------------------------------------------------------

    fn emit(&mut self, type_: &str, account: &Acct, object: Value, previous: Option<Value>) -> String {
        let id = random_id("evt_", 24);
        let created = now_s();
        let mut data = json!({ "object": object });
        if let Some(previous) = previous {
            data["previous_attributes"] = previous;
        }
        let mut event = json!({
            "id": id,
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "data": data,
            "livemode": false,
            "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
            "type": type_,
        });
        if let Some(account) = account {
            event["account"] = json!(account);
        }
        push_bounded(
            &mut self.events,
            Event {
                id: id.clone(),
                type_: type_.to_owned(),
                account: account.clone(),
                created,
                payload: event.to_string(),
                held: false,
                deliveries: Vec::new(),
            },
        );
        self.outbox.push(id.clone());
        id
    }

    pub fn event_mut(&mut self, id: &str) -> Option<&mut Event> {
        self.events.iter_mut().find(|e| e.id == id)
    }

    // ---- customers -----------------------------------------------------------------------

    fn customer_json(c: &Customer) -> Value {
        json!({
            "id": c.id,
            "object": "customer",
            "balance": 0,
            "created": c.created,
            "currency": null,
            "default_source": null,
            "delinquent": false,
            "description": c.description,
            "email": c.email,
            "invoice_prefix": c.id.trim_start_matches("cus_").chars().take(8).collect::<String>().to_uppercase(),
            "livemode": false,
            "metadata": metadata_json(&c.metadata),
            "name": c.name,
            "phone": null,
            "preferred_locales": [],
            "shipping": null,
            "tax_exempt": "none",
        })
    }

    pub fn create_customer(&mut self, acct: &Acct, p: &Param) -> R<Reply> {
        check_known_params(p, &["description", "email", "expand", "metadata", "name", "phone"])?;
        let c = Customer {
            seq: self.next_seq(),
            id: random_id("cus_", 14),
            account: acct.clone(),
            created: now_s(),
            description: opt_string(p, &["description"]),
            email: opt_string(p, &["email"]),
            name: opt_string(p, &["name"]),
            metadata: string_map(p, "metadata")?,
        };
        let body = Self::customer_json(&c);
        self.customers.insert(c.id.clone(), c);
        Ok(Reply::ok(body))
    }

    fn customer(&self, acct: &Acct, id: &str, param: Option<&str>) -> R<&Customer> {
        self.customers.get(id).filter(|c| &c.account == acct).ok_or_else(|| missing("customer", id, param))
    }

    pub fn retrieve_customer(&self, acct: &Acct, id: &str) -> R<Reply> {
        Ok(Reply::ok(Self::customer_json(self.customer(acct, id, None)?)))
    }

    // ---- checkout sessions ---------------------------------------------------------------

    fn session_json(&self, s: &Session, expand_payment_intent: bool) -> Value {
        let payment_intent = match (&s.payment_intent, expand_payment_intent) {
            (Some(pi), true) => self.payment_intents.get(pi).map_or(json!(pi), |pi| self.payment_intent_json(pi)),
            (pi, _) => json!(pi),
        };
        let url = (s.status == SessionStatus::Open).then(|| format!("{}/pay/{}", self.base_url, s.id));
        json!({
            "id": s.id,
            "object": "checkout.session",
            "adaptive_pricing": null,
            "after_expiration": null,
            "allow_promotion_codes": null,
            "amount_subtotal": s.amount_total,
            "amount_total": s.amount_total,
            "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
            "billing_address_collection": null,
            "cancel_url": s.cancel_url,
            "client_reference_id": s.client_reference_id,
            "client_secret": null,
            "consent": null,
            "consent_collection": null,
            "created": s.created,
            "currency": s.currency,
            "custom_fields": [],
            "custom_text": { "after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null },
            "customer": s.customer,
            "customer_creation": null,
            "customer_details": null,
            "customer_email": null,
            "expires_at": s.expires_at,
            "invoice": null,
            "invoice_creation": null,
            "livemode": false,
            "locale": null,
            "metadata": metadata_json(&s.metadata),
            "mode": "payment",
            "payment_intent": payment_intent,
            "payment_link": null,
            "payment_method_collection": "if_required",
            "payment_method_types": ["card"],
            "payment_status": s.payment_status,
            "phone_number_collection": { "enabled": false },
            "recovered_from": null,
            "setup_intent": null,
            "shipping_address_collection": null,
            "shipping_cost": null,
            "shipping_options": [],
            "status": s.status.as_str(),
            "submit_type": null,
            "subscription": null,
            "success_url": s.success_url,
            "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
            "url": url,
        })
    }

    pub fn create_session(&mut self, acct: &Acct, p: &Param) -> R<Reply> {
        check_known_params(
            p,
            &[
                "cancel_url",
                "client_reference_id",
                "customer",
                "customer_email",
                "expand",
                "expires_at",
                "line_items",
                "locale",
                "metadata",
                "mode",
                "payment_intent_data",
                "payment_method_types",
                "submit_type",
                "success_url",
            ],
        )?;
        match p.str_at(&["mode"]) {
            Some("payment") => {}
            Some(other) => {
                return Err(invalid(None, &format!("The fake only does mode=payment, not {other}."), Some("mode")));
            }
            None => return Err(invalid(Some("parameter_missing"), "Missing required param: mode.", Some("mode"))),
        }
        let items = p.get("line_items").map(Param::items).unwrap_or_default();
        if items.is_empty() {
            return Err(invalid(
                Some("parameter_missing"),
                "You must provide at least one line item.",
                Some("line_items"),
            ));
        }
        let mut currency: Option<Currency> = None;
        let mut line_items = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = |field: &str| format!("line_items[{i}][{field}]");
            if item.get("price").is_some() {
                return Err(invalid(None, "The fake only takes price_data, not price.", Some(&at("price"))));
            }
            let param = at("price_data][currency");
            let c = parse_currency(item, &["price_data", "currency"], &param)?;
            if currency.is_some_and(|cur| cur != c) {
                return Err(invalid(None, "All line items must use the same currency.", Some(&param)));
            }
            currency = Some(c);
            let unit_amount = parse_amount(item, &["price_data", "unit_amount"], &at("price_data][unit_amount"))?;
            let name =
                item.str_at(&["price_data", "product_data", "name"]).filter(|n| !n.is_empty()).ok_or_else(|| {
                    invalid(
                        Some("parameter_missing"),
                        "Missing required param: line_items[0][price_data][product_data][name].",
                        Some(&at("price_data][product_data][name")),
                    )
                })?;
            let quantity = match item.str_at(&["quantity"]) {
                None => 1,
                Some(q) => q
                    .parse::<i64>()
                    .ok()
                    .filter(|q| (1..=999_999).contains(q))
                    .ok_or_else(|| invalid(None, &format!("Invalid quantity: {q}"), Some(&at("quantity"))))?,
            };
            line_items.push(LineItem { name: name.to_owned(), unit_amount, quantity });
        }
        let currency = currency.expect("at least one line item");
        let amount_total = line_items
            .iter()
            .try_fold(0i64, |sum, li| li.unit_amount.checked_mul(li.quantity).and_then(|a| sum.checked_add(a)))
            .ok_or_else(|| invalid(Some("amount_too_large"), "Amount too large.", Some("line_items")))?;
        check_amount(amount_total, currency, "line_items[0][price_data][unit_amount]")?;
        let customer = match p.str_at(&["customer"]) {
            Some(c) => Some(self.customer(acct, c, Some("customer"))?.id.clone()),
            None => None,
        };
        let created = now_s();
        let expires_at = match p.str_at(&["expires_at"]) {
            None => created + SESSION_LIFETIME_S,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|t| (created + SESSION_MIN_LIFETIME_S..=created + SESSION_LIFETIME_S).contains(t))
                .ok_or_else(|| {
                    invalid(None, "expires_at must be between 30 minutes and 24 hours from now.", Some("expires_at"))
                })?,
        };
        let setup_future_usage = opt_string(p, &["payment_intent_data", "setup_future_usage"]);
        if let Some(sfu) = &setup_future_usage
            && !matches!(sfu.as_str(), "off_session" | "on_session")
        {
            return Err(invalid(
                None,
                &format!("Invalid setup_future_usage: {sfu}"),
                Some("payment_intent_data[setup_future_usage]"),
            ));
        }
        let pi_metadata = match p.at(&["payment_intent_data", "metadata"]) {
            None => BTreeMap::new(),
            Some(m) => {
                m.string_map().ok_or_else(|| invalid(None, "Invalid hash", Some("payment_intent_data[metadata]")))?
            }
        };
        let session = Session {
            seq: self.next_seq(),
            // Stripe's session ids are 66 characters; the fake's are too, so code that stores
            // them meets their real length.
            id: random_id("cs_test_", 58),
            account: acct.clone(),
            created,
            expires_at,
            currency: currency.code().to_owned(),
            amount_total,
            line_items,
            customer,
            client_reference_id: opt_string(p, &["client_reference_id"]),
            metadata: string_map(p, "metadata")?,
            success_url: opt_string(p, &["success_url"]),
            cancel_url: opt_string(p, &["cancel_url"]),
            setup_future_usage,
            pi_metadata,
            pi_description: opt_string(p, &["payment_intent_data", "description"]),
            status: SessionStatus::Open,
            payment_status: "unpaid",
            payment_intent: None,
            async_payment: false,
        };
        let body = self.session_json(&session, false);
        self.sessions.insert(session.id.clone(), session);
        Ok(Reply::ok(body))
    }

    fn session(&self, acct: &Acct, id: &str) -> R<&Session> {
        self.sessions.get(id).filter(|s| &s.account == acct).ok_or_else(|| missing("checkout.session", id, None))
    }

    pub fn retrieve_session(&self, acct: &Acct, id: &str, p: &Param) -> R<Reply> {
        let expand = p.get("expand").map(Param::string_list).unwrap_or_default();
        let s = self.session(acct, id)?;
        Ok(Reply::ok(self.session_json(s, expand.contains(&"payment_intent"))))
    }

    /// `POST /v1/checkout/sessions/{id}/expire`, or the control endpoint (`acct` = the session's).
    pub fn expire_session(&mut self, acct: Option<&Acct>, id: &str) -> R<Reply> {
        let s = match acct {
            Some(acct) => self.session(acct, id)?,
            None => self.sessions.get(id).ok_or_else(|| missing("checkout.session", id, None))?,
        };
        if s.status != SessionStatus::Open {
            return Err(invalid(
                None,
                &format!(
                    "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of \"{}\".",
                    s.status.as_str()
                ),
                None,
            ));
        }
        let s = self.sessions.get_mut(id).expect("found above");
        s.status = SessionStatus::Expired;
        let (s, account) = (s.clone(), s.account.clone());
        let body = self.session_json(&s, false);
        self.emit("checkout.session.expired", &account, body.clone(), None);
        Ok(Reply::ok(body))
    }

    /// The pay page's view of a session: amount, currency, label, status, URLs.
    pub fn session_for_page(&self, id: &str) -> Option<PageSession> {
        let s = self.sessions.get(id)?;
        Some(PageSession {
            id: s.id.clone(),
            amount: Currency::parse(&s.currency).ok().and_then(|c| Money::from_minor(s.amount_total, c).ok()),
            currency: s.currency.clone(),
            amount_minor: s.amount_total,
            label: s.line_items.iter().map(|li| li.name.as_str()).collect::<Vec<_>>().join(", "),
            open: s.status == SessionStatus::Open && now_s() < s.expires_at,
            status: s.status.as_str(),
            success_url: s.success_url.as_ref().map(|u| u.replace("{CHECKOUT_SESSION_ID}", &s.id)),
            cancel_url: s.cancel_url.clone(),
        })
    }

    /// The whole session as the control endpoint shows it: the API's JSON with the
    /// PaymentIntent, its charge and the saved payment method.
    pub fn session_control_view(&self, id: &str) -> Option<Value> {
        let s = self.sessions.get(id)?;
        let mut v = self.session_json(s, true);
        let pi = s.payment_intent.as_ref().and_then(|pi| self.payment_intents.get(pi));
        v["fake"] = json!({
            "account": s.account,
            "async_payment": s.async_payment,
            "charge": pi.and_then(|pi| pi.latest_charge.clone()),
            "payment_method": pi.and_then(|pi| pi.payment_method.clone()),
        });
        Some(v)
    }

    pub fn set_async_payment(&mut self, id: &str) -> Result<(), String> {
        let s = self.sessions.get_mut(id).ok_or_else(|| format!("no session {id}"))?;
        if s.status != SessionStatus::Open {
            return Err(format!("session {id} is {}", s.status.as_str()));
        }
        s.async_payment = true;
        Ok(())
    }

    /// The customer pays on the pay page: a card payment method (saved on the customer when
    /// `setup_future_usage` asked for it), a PaymentIntent and, unless the payment is
    /// asynchronous, a charge; the session completes. Events: `payment_intent.succeeded` (not
    /// for an asynchronous payment) and `checkout.session.completed`.
    pub fn pay(&mut self, id: &str) -> Result<Value, String> {
        let s = self.sessions.get(id).ok_or_else(|| format!("no session {id}"))?.clone();
        if s.status != SessionStatus::Open {
            return Err(format!("this checkout session is {}", s.status.as_str()));
        }
        if now_s() >= s.expires_at {
            return Err("this checkout session has expired".into());
        }
        let pm = PaymentMethod {
            id: random_id("pm_", 24),
            account: s.account.clone(),
            customer: s.setup_future_usage.as_ref().and(s.customer.clone()),
        };
        let mut pi = PaymentIntent {
            id: random_id("pi_", 24),
            account: s.account.clone(),
            created: now_s(),
            amount: s.amount_total,
            currency: s.currency.clone(),
            customer: s.customer.clone(),
            payment_method: Some(pm.id.clone()),
            description: s.pi_description.clone(),
            metadata: s.pi_metadata.clone(),
            setup_future_usage: s.setup_future_usage.clone(),
            status: "processing",
            latest_charge: None,
            last_payment_error: None,
        };
        self.payment_methods.insert(pm.id.clone(), pm);
        if !s.async_payment {
            self.succeed_payment_intent(&mut pi);
        }
        let session = self.sessions.get_mut(id).expect("found above");
        session.status = SessionStatus::Complete;
        session.payment_status = if s.async_payment { "unpaid" } else { "paid" };
        session.payment_intent = Some(pi.id.clone());
        let pi_body = self.payment_intent_json(&pi);
        let paid = pi.status == "succeeded";
        self.payment_intents.insert(pi.id.clone(), pi);
        if paid {
            self.emit("payment_intent.succeeded", &s.account, pi_body, None);
        }
        let session = self.sessions.get(id).expect("found above").clone();
        let body = self.session_json(&session, false);
        self.emit("checkout.session.completed", &s.account, body.clone(), None);
        Ok(body)
    }

    /// An asynchronous payment settles: `checkout.session.async_payment_succeeded` (with
    /// `payment_intent.succeeded`) or `..._failed` (with `payment_intent.payment_failed`).
    pub fn finish_async_payment(&mut self, id: &str, succeeded: bool) -> Result<Value, String> {
        let s = self.sessions.get(id).ok_or_else(|| format!("no session {id}"))?.clone();
        let waiting = s.status == SessionStatus::Complete && s.payment_status == "unpaid" && s.async_payment;
        let pi_id = s.payment_intent.clone().filter(|_| waiting).ok_or_else(|| {
            format!("session {id} has no asynchronous payment waiting (make it async, then pay it, first)")
        })?;
        let mut pi = self.payment_intents.get(&pi_id).expect("sessions name their PaymentIntent").clone();
        if pi.status != "processing" {
            return Err(format!("the payment of session {id} has already settled"));
        }
        if succeeded {
            self.succeed_payment_intent(&mut pi);
            self.sessions.get_mut(id).expect("found above").payment_status = "paid";
        } else {
            pi.status = "requires_payment_method";
            pi.last_payment_error = Some(json!({
                "type": "invalid_request_error",
                "code": "payment_intent_payment_attempt_failed",
                "message": "The payment failed.",
            }));
        }
        let pi_body = self.payment_intent_json(&pi);
        self.payment_intents.insert(pi.id.clone(), pi);
        let (pi_event, session_event) = if succeeded {
            ("payment_intent.succeeded", "checkout.session.async_payment_succeeded")
        } else {
            ("payment_intent.payment_failed", "checkout.session.async_payment_failed")
        };
        self.emit(pi_event, &s.account, pi_body, None);
        let session = self.sessions.get(id).expect("found above").clone();
        let body = self.session_json(&session, false);
        self.emit(session_event, &s.account, body.clone(), None);
        Ok(body)
    }

    // ---- payment intents and charges -----------------------------------------------------

    fn succeed_payment_intent(&mut self, pi: &mut PaymentIntent) {
        let charge = Charge {
            seq: self.next_seq(),
            id: random_id("ch_", 24),
            account: pi.account.clone(),
            created: now_s(),
            amount: pi.amount,
            amount_refunded: 0,
            currency: pi.currency.clone(),
            customer: pi.customer.clone(),
            payment_intent: pi.id.clone(),
            payment_method: pi.payment_method.clone(),
            metadata: pi.metadata.clone(),
            dispute: None,
        };
        pi.status = "succeeded";
        pi.latest_charge = Some(charge.id.clone());
        pi.last_payment_error = None;
        self.charges.insert(charge.id.clone(), charge);
    }

    fn payment_intent_json(&self, pi: &PaymentIntent) -> Value {
        let received = if pi.status == "succeeded" { pi.amount } else { 0 };
        json!({
            "id": pi.id,
            "object": "payment_intent",
            "amount": pi.amount,
            "amount_capturable": 0,
            "amount_received": received,
            "application": null,
            "application_fee_amount": null,
            "automatic_payment_methods": null,
            "canceled_at": null,
            "cancellation_reason": null,
            "capture_method": "automatic",
            "client_secret": format!("{}_secret_{}", pi.id, pi.id.trim_start_matches("pi_")),
            "confirmation_method": "automatic",
            "created": pi.created,
            "currency": pi.currency,
            "customer": pi.customer,
            "description": pi.description,
            "last_payment_error": pi.last_payment_error,
            "latest_charge": pi.latest_charge,
            "livemode": false,
            "metadata": metadata_json(&pi.metadata),
            "next_action": null,
            "on_behalf_of": null,
            "payment_method": pi.payment_method,
            "payment_method_types": ["card"],
            "receipt_email": null,
            "setup_future_usage": pi.setup_future_usage,
            "shipping": null,
            "statement_descriptor": null,
            "statement_descriptor_suffix": null,
            "status": pi.status,
            "transfer_data": null,
            "transfer_group": null,
        })
    }

    fn charge_json(&self, c: &Charge) -> Value {
        json!({
            "id": c.id,
            "object": "charge",
            "amount": c.amount,
            "amount_captured": c.amount,
            "amount_refunded": c.amount_refunded,
            "balance_transaction": null,
            "billing_details": billing_details(),
            "captured": true,
            "created": c.created,
            "currency": c.currency,
            "customer": c.customer,
            "description": null,
            "disputed": c.dispute.is_some(),
            "failure_code": null,
            "failure_message": null,
            "livemode": false,
            "metadata": metadata_json(&c.metadata),
            "paid": true,
            "payment_intent": c.payment_intent,
            "payment_method": c.payment_method,
            "receipt_url": null,
            "refunded": c.amount_refunded == c.amount,
            "status": "succeeded",
        })
    }

    fn refund_json(r: &Refund) -> Value {
        json!({
            "id": r.id,
            "object": "refund",
            "amount": r.amount,
            "balance_transaction": null,
            "charge": r.charge,
            "created": r.created,
            "currency": r.currency,
            "metadata": {},
            "payment_intent": r.payment_intent,
            "reason": null,
            "status": "succeeded",
        })
    }

    /// `POST /v1/payment_intents`. With `confirm=true` the next queued outcome decides (a
    /// success by default); a decline or an authentication request answers 402 with the
    /// PaymentIntent in the error, as Stripe does, and is kept under the idempotency key.
    pub fn create_payment_intent(&mut self, acct: &Acct, p: &Param) -> R<Reply> {
        check_known_params(
            p,
            &[
                "amount",
                "automatic_payment_methods",
                "capture_method",
                "confirm",
                "currency",
                "customer",
                "description",
                "expand",
                "metadata",
                "off_session",
                "payment_method",
                "payment_method_types",
                "receipt_email",
                "return_url",
                "setup_future_usage",
                "statement_descriptor_suffix",
            ],
        )?;
        let amount = parse_amount(p, &["amount"], "amount")?;
        let currency = parse_currency(p, &["currency"], "currency")?;
        check_amount(amount, currency, "amount")?;
        let customer = match p.str_at(&["customer"]) {
            Some(c) => Some(self.customer(acct, c, Some("customer"))?.id.clone()),
            None => None,
        };
        let payment_method = match p.str_at(&["payment_method"]) {
            Some(id) => {
                let pm = self
                    .payment_methods
                    .get(id)
                    .filter(|pm| &pm.account == acct)
                    .ok_or_else(|| missing("PaymentMethod", id, Some("payment_method")))?;
                if customer.is_some() && pm.customer != customer {
                    return Err(invalid(
                        None,
                        "The provided PaymentMethod was previously used without being attached to a Customer or was detached from a Customer, and may not be used again.",
                        Some("payment_method"),
                    ));
                }
                Some(pm.id.clone())
            }
            None => None,
        };
        let confirm = bool_param(p, "confirm")?;
        let off_session = bool_param(p, "off_session")?;
        if off_session && !confirm {
            return Err(invalid(None, "off_session may only be used with confirm=true.", Some("off_session")));
        }
        if confirm && payment_method.is_none() {
            return Err(invalid(
                Some("payment_intent_unexpected_state"),
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                None,
            ));
        }
        let mut pi = PaymentIntent {
            id: random_id("pi_", 24),
            account: acct.clone(),
            created: now_s(),
            amount,
            currency: currency.code().to_owned(),
            customer,
            payment_method,
            description: opt_string(p, &["description"]),
            metadata: string_map(p, "metadata")?,
            setup_future_usage: opt_string(p, &["setup_future_usage"]),
            status: if confirm { "processing" } else { "requires_confirmation" },
            latest_charge: None,
            last_payment_error: None,
        };
        if !confirm {
            let body = self.payment_intent_json(&pi);
            self.payment_intents.insert(pi.id.clone(), pi);
            return Ok(Reply::ok(body));
        }
        let failure = match self.next_payment_intents.pop_front().unwrap_or(NextPaymentIntent::Succeed) {
            NextPaymentIntent::Succeed => None,
            NextPaymentIntent::Decline(code) => Some(("card_declined", code, "Your card was declined.")),
            NextPaymentIntent::AuthenticationRequired => Some((
                "authentication_required",
                "authentication_required".to_owned(),
                "Your card was declined. This transaction requires authentication.",
            )),
        };
        let Some((code, decline_code, message)) = failure else {
            self.succeed_payment_intent(&mut pi);
            let body = self.payment_intent_json(&pi);
            self.payment_intents.insert(pi.id.clone(), pi);
            self.emit("payment_intent.succeeded", acct, body.clone(), None);
            return Ok(Reply::ok(body));
        };
        let error_body = json!({
            "type": "card_error",
            "code": code,
            "decline_code": decline_code,
            "message": message,
            "doc_url": format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-")),
        });
        pi.status = "requires_payment_method";
        pi.last_payment_error = Some(error_body.clone());
        let pi_body = self.payment_intent_json(&pi);
        self.payment_intents.insert(pi.id.clone(), pi);
        self.emit("payment_intent.payment_failed", acct, pi_body.clone(), None);
        let mut error = error_body;
        error["payment_intent"] = pi_body;
        Ok(Reply { status: 402, body: json!({ "error": error }) })
    }

    pub fn retrieve_payment_intent(&self, acct: &Acct, id: &str) -> R<Reply> {
        let pi = self
            .payment_intents
            .get(id)
            .filter(|pi| &pi.account == acct)
            .ok_or_else(|| missing("payment_intent", id, None))?;
        Ok(Reply::ok(self.payment_intent_json(pi)))
    }

    pub fn retrieve_charge(&self, acct: &Acct, id: &str) -> R<Reply> {
        let c = self.charges.get(id).filter(|c| &c.account == acct).ok_or_else(|| missing("charge", id, None))?;
        Ok(Reply::ok(self.charge_json(c)))
    }

    pub fn retrieve_refund(&self, acct: &Acct, id: &str) -> R<Reply> {
        let r = self.refunds.get(id).filter(|r| &r.account == acct).ok_or_else(|| missing("refund", id, None))?;
        Ok(Reply::ok(Self::refund_json(r)))
    }

    // ---- refunds -------------------------------------------------------------------------

    /// `POST /v1/refunds` (`charge` or `payment_intent`, optional `amount`).
    pub fn create_refund(&mut self, acct: &Acct, p: &Param) -> R<Reply> {
        check_known_params(p, &["amount", "charge", "expand", "metadata", "payment_intent", "reason"])?;
        let charge = match (p.str_at(&["charge"]), p.str_at(&["payment_intent"])) {
            (Some(ch), _) => self
                .charges
                .get(ch)
                .filter(|c| &c.account == acct)
                .ok_or_else(|| missing("charge", ch, Some("charge")))?,
            (None, Some(pi)) => {
                let pi = self
                    .payment_intents
                    .get(pi)
                    .filter(|x| &x.account == acct)
                    .ok_or_else(|| missing("payment_intent", pi, Some("payment_intent")))?;
                let ch = pi.latest_charge.as_ref().ok_or_else(|| {
                    invalid(
                        Some("charge_not_refundable"),
                        "This PaymentIntent has no successful charge to refund.",
                        Some("payment_intent"),
                    )
                })?;
                self.charges.get(ch).expect("PaymentIntents name existing charges")
            }
            (None, None) => {
                return Err(invalid(
                    Some("parameter_missing"),
                    "One of the following params should be provided for this request: payment_intent or charge.",
                    None,
                ));
            }
        };
        let amount = match p.str_at(&["amount"]) {
            None => None,
            Some(_) => Some(parse_amount(p, &["amount"], "amount")?),
        };
        let id = charge.id.clone();
        self.refund(&id, amount).map(Reply::ok)
    }

    /// Refunds `amount` (all that is left by default) of a charge; event `charge.refunded` with
    /// the charge (its `amount_refunded` is the running total) and `previous_attributes`.
    pub fn refund(&mut self, charge_id: &str, amount: Option<i64>) -> R<Value> {
        let c = self.charges.get(charge_id).ok_or_else(|| missing("charge", charge_id, Some("charge")))?;
        let left = c.amount - c.amount_refunded;
        let amount = amount.unwrap_or(left);
        if left == 0 {
            return Err(invalid(
                Some("charge_already_refunded"),
                &format!("Charge {charge_id} has already been refunded."),
                None,
            ));
        }
        if amount <= 0 || amount > left {
            return Err(invalid(
                Some("amount_too_large"),
                &format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({left})"),
                Some("amount"),
            ));
        }
        let previous = json!({ "amount_refunded": c.amount_refunded, "refunded": false });
        let refund = Refund {
            id: random_id("re_", 24),
            account: c.account.clone(),
            created: now_s(),
            amount,
            currency: c.currency.clone(),
            charge: c.id.clone(),
            payment_intent: c.payment_intent.clone(),
        };
        let c = self.charges.get_mut(charge_id).expect("found above");
        c.amount_refunded += amount;
        let (charge, account) = (c.clone(), c.account.clone());
        let body = Self::refund_json(&refund);
        self.refunds.insert(refund.id.clone(), refund);
        let charge_body = self.charge_json(&charge);
        self.emit("charge.refunded", &account, charge_body, Some(previous));
        Ok(body)
    }

    // ---- disputes ------------------------------------------------------------------------

    /// Stripe's dispute, with every field async-stripe requires (the evidence empty: nothing
    /// has been submitted).
    fn dispute_json(d: &Dispute) -> Value {
        let evidence_fields = [
            "access_activity_log",
            "billing_address",
            "cancellation_policy",
            "cancellation_policy_disclosure",
            "cancellation_rebuttal",
            "customer_communication",
            "customer_email_address",
            "customer_name",
            "customer_purchase_ip",
            "customer_signature",
            "duplicate_charge_documentation",
            "duplicate_charge_explanation",
            "duplicate_charge_id",
            "product_description",
            "receipt",
            "refund_policy",
            "refund_policy_disclosure",
            "refund_refusal_explanation",
            "service_date",
            "service_documentation",
            "shipping_address",
            "shipping_carrier",
            "shipping_date",
            "shipping_documentation",
            "shipping_tracking_number",
            "uncategorized_file",
            "uncategorized_text",
        ];
        let mut evidence: serde_json::Map<String, Value> =
            evidence_fields.iter().map(|f| ((*f).to_owned(), Value::Null)).collect();
        evidence.insert("enhanced_evidence".into(), json!({}));
        json!({
            "id": d.id,
            "object": "dispute",
            "amount": d.amount,
            "balance_transactions": [],
            "charge": d.charge,
            "created": d.created,
            "currency": d.currency,
            "enhanced_eligibility_types": [],
            "evidence": evidence,
            "evidence_details": {
                "due_by": d.created + DISPUTE_RESPONSE_WINDOW_S,
                "enhanced_eligibility": {},
                "has_evidence": false,
                "past_due": false,
                "submission_count": 0,
            },
            "is_charge_refundable": false,
            "livemode": false,
            "metadata": {},
            "network_reason_code": null,
            "payment_intent": d.payment_intent,
            "payment_method_details": null,
            "reason": d.reason,
            "status": "needs_response",
        })
    }

    /// The cardholder disputes `amount` (by default all that was not refunded) of a charge, for
    /// `reason` (`fraudulent` by default, the most common): the dispute object, and event
    /// `charge.dispute.created` with it. A charge is disputed once.
    pub fn dispute(&mut self, charge_id: &str, amount: Option<i64>, reason: Option<&str>) -> R<Value> {
        let c = self.charges.get(charge_id).ok_or_else(|| missing("charge", charge_id, Some("charge")))?.clone();
        if let Some(existing) = &c.dispute {
            return Err(invalid(
                Some("charge_disputed"),
                &format!("Charge {charge_id} has already been disputed ({existing})."),
                Some("charge"),
            ));
        }
        let left = c.amount - c.amount_refunded;
        if left == 0 {
            return Err(invalid(
                Some("charge_already_refunded"),
                &format!("Charge {charge_id} has been refunded in full: there is nothing to dispute."),
                Some("charge"),
            ));
        }
        let amount = amount.unwrap_or(left);
        if !(1..=left).contains(&amount) {
            return Err(invalid(
                Some("amount_too_large"),
                &format!("Dispute amount ({amount}) must be between 1 and the unrefunded amount on charge ({left})"),
                Some("amount"),
            ));
        }
        let dispute = Dispute {
            seq: self.next_seq(),
            id: random_id("dp_", 24),
            account: c.account,
            created: now_s(),
            amount,
            currency: c.currency,
            charge: c.id,
            payment_intent: c.payment_intent,
            reason: reason.unwrap_or("fraudulent").to_owned(),
        };
        self.charges.get_mut(charge_id).expect("found above").dispute = Some(dispute.id.clone());
        let body = Self::dispute_json(&dispute);
        let account = dispute.account.clone();
        self.disputes.insert(dispute.id.clone(), dispute);
        self.emit("charge.dispute.created", &account, body.clone(), None);
        Ok(body)
    }

    /// Lists, for the control endpoints.
    pub fn disputes_of_account(&self, account: &Acct) -> Vec<Value> {
        let mut v: Vec<_> = self.disputes.values().filter(|d| &d.account == account).collect();
        v.sort_by_key(|d| d.seq);
        v.into_iter().map(Self::dispute_json).collect()
    }

    pub fn charges_of_account(&self, account: &Acct) -> Vec<Value> {
        let mut v: Vec<_> = self.charges.values().filter(|c| &c.account == account).collect();
        v.sort_by_key(|c| c.seq);
        v.into_iter().map(|c| self.charge_json(c)).collect()
    }

    pub fn sessions_of_account(&self, account: &Acct) -> Vec<Value> {
        let mut v: Vec<_> = self.sessions.values().filter(|s| &s.account == account).collect();
        v.sort_by_key(|s| s.seq);
        v.into_iter().map(|s| self.session_json(s, false)).collect()
    }

    pub fn customers_of_account(&self, account: &Acct) -> Value {
        let mut v: Vec<_> = self.customers.values().filter(|c| &c.account == account).collect();
        v.sort_by_key(|c| c.seq);
        list("/v1/customers", v.into_iter().map(Self::customer_json).collect())
    }
}

/// What the pay page shows.
#[derive(Debug, Clone)]
pub struct PageSession {
    pub id: String,
    /// `None` only for a currency the shared domain doesn't know (the fake refuses those).
    pub amount: Option<Money>,
    pub currency: String,
    pub amount_minor: i64,
    pub label: String,
    pub open: bool,
    pub status: &'static str,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
}

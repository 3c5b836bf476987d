//! Checkout Sessions, in `payment`, `setup` or `subscription` mode: created, retrieved and
//! expired through the API; paid (or a card saved, or a subscription started) on the pay page.

mod payment;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{
    Acct, Currency, Expand, R, Reply, State, check_amount, check_known_params, invalid, metadata_json, missing,
    of_account, opt_string, owned, parse_amount, parse_currency, random_id, string_map,
};
use crate::form::Param;

pub use payment::{PageAmount, PagePurpose, PageSession};

/// Stripe's default and maximum Checkout Session lifetime.
pub const SESSION_LIFETIME_S: i64 = 24 * 60 * 60;
/// Stripe's minimum `expires_at`: 30 minutes from creation.
const SESSION_MIN_LIFETIME_S: i64 = 30 * 60;

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
pub(super) struct Session {
    seq: u64,
    id: String,
    account: Acct,
    created: i64,
    expires_at: i64,
    /// The line items' in `payment` mode; in `setup` mode, as given (Stripe needs it unless
    /// `payment_method_types` is set).
    currency: Option<String>,
    customer: Option<String>,
    client_reference_id: Option<String>,
    metadata: BTreeMap<String, String>,
    success_url: Option<String>,
    cancel_url: Option<String>,
    locale: Option<String>,
    status: SessionStatus,
    mode: Mode,
}

owned_by_account_field!(Session);

/// What the session is for, with what only that mode has.
#[derive(Debug, Clone)]
enum Mode {
    /// Line items paid for now.
    Payment(Purchase),
    /// A card saved for later payments, nothing charged: through this SetupIntent, made with
    /// the session.
    Setup { setup_intent: String },
    /// A subscription to recurring prices, its first invoice paid now.
    Subscription(SubscriptionPurchase),
}

/// A `subscription` session's prices and, once paid, what it made.
#[derive(Debug, Clone)]
pub(super) struct SubscriptionPurchase {
    /// Price and quantity of each line item.
    pub(super) line_items: Vec<(String, u64)>,
    /// What the first period costs: each price x quantity.
    pub(super) amount_total: i64,
    /// `subscription_data[metadata]`: the subscription's.
    pub(super) metadata: BTreeMap<String, String>,
    pub(super) subscription: Option<String>,
    /// Its first invoice (`subscription_create`).
    pub(super) invoice: Option<String>,
}

impl Mode {
    fn name(&self) -> &'static str {
        match self {
            Self::Payment(_) => "payment",
            Self::Setup { .. } => "setup",
            Self::Subscription(_) => "subscription",
        }
    }
}

/// A new session's mode, checked, before anything is made for it.
enum NewMode {
    Payment(Purchase),
    /// The SetupIntent's description and metadata (`setup_intent_data`).
    Setup {
        description: Option<String>,
        metadata: BTreeMap<String, String>,
    },
    Subscription(SubscriptionPurchase),
}

/// A `payment` session's purchase and, once paid, its PaymentIntent.
#[derive(Debug, Clone)]
pub(super) struct Purchase {
    amount_total: i64,
    line_items: Vec<LineItem>,
    setup_future_usage: Option<String>,
    pi_metadata: BTreeMap<String, String>,
    pi_description: Option<String>,
    /// "paid" | "unpaid".
    payment_status: &'static str,
    payment_intent: Option<String>,
    /// Set by the control endpoint: the payment completes later (`async_payment_*` events).
    async_payment: bool,
    /// `invoice_creation[enabled]`: a paid invoice is made when the payment succeeds.
    invoice_creation: bool,
    /// That invoice, once made.
    invoice: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct LineItem {
    name: String,
    unit_amount: i64,
    quantity: i64,
}

/// Parameters only `payment` mode takes: Stripe refuses them in `setup` mode.
const PAYMENT_ONLY: [&str; 2] = ["line_items", "payment_intent_data"];
/// Stripe's own refusal of `invoice_creation` outside `payment` mode.
const INVOICE_CREATION_MODE: &str = "You can only enable invoice creation when `mode` is set to `payment`. Invoices are created automatically when `mode` is set to `subscription`, and are unsupported when set to `setup`. To learn more visit https://stripe.com/docs/payments/checkout/post-payment-invoices.";
/// And those only `setup` mode takes.
const SETUP_ONLY: [&str; 1] = ["setup_intent_data"];
/// And those only `subscription` mode takes.
const SUBSCRIPTION_ONLY: [&str; 1] = ["subscription_data"];
/// What `subscription` mode refuses.
const NOT_IN_SUBSCRIPTION: [&str; 2] = ["payment_intent_data", "setup_intent_data"];

/// Refuses the first of `names` given, as Stripe does in `mode`.
fn only_in_other_mode(p: &Param, names: &[&str], mode: &str) -> R<()> {
    match names.iter().find(|n| p.get(n).is_some()) {
        Some(name) => Err(invalid(None, &format!("You can not pass `{name}` in `{mode}` mode."), Some(name))),
        None => Ok(()),
    }
}

/// The line items (`price_data` only) and their one currency.
fn line_items_param(p: &Param) -> R<(Currency, Vec<LineItem>)> {
    let items = p.get("line_items").map(Param::items).unwrap_or_default();
    if items.is_empty() {
        return Err(invalid(Some("parameter_missing"), "You must provide at least one line item.", Some("line_items")));
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
        let name = item.str_at(&["price_data", "product_data", "name"]).filter(|n| !n.is_empty()).ok_or_else(|| {
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
    Ok((currency.expect("at least one line item"), line_items))
}

/// `invoice_creation[enabled]`, the one part of `invoice_creation` the fake takes (its
/// `invoice_data` customizes an invoice the fake does not render): `false` when not given.
fn invoice_creation_param(p: &Param) -> R<bool> {
    let Some(given) = p.get("invoice_creation") else { return Ok(false) };
    if let Some(other) = given.names().into_iter().find(|n| *n != "enabled") {
        let param = format!("invoice_creation[{other}]");
        return Err(invalid(Some("parameter_unknown"), &format!("Received unknown parameter: {param}"), Some(&param)));
    }
    match given.str_at(&["enabled"]) {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(invalid(
            Some("parameter_invalid_boolean"),
            &format!("Invalid boolean: {other}"),
            Some("invoice_creation[enabled]"),
        )),
        None => Err(invalid(
            Some("parameter_missing"),
            "Missing required param: invoice_creation[enabled].",
            Some("invoice_creation[enabled]"),
        )),
    }
}

/// A `payment` session's line items and PaymentIntent data: the purchase and its currency.
fn purchase_param(p: &Param) -> R<(Currency, Purchase)> {
    let (currency, line_items) = line_items_param(p)?;
    if p.get("currency").is_some() && parse_currency(p, &["currency"], "currency")? != currency {
        return Err(invalid(None, "currency must be the line items' currency.", Some("currency")));
    }
    let amount_total = line_items
        .iter()
        .try_fold(0i64, |sum, li| li.unit_amount.checked_mul(li.quantity).and_then(|a| sum.checked_add(a)))
        .ok_or_else(|| invalid(Some("amount_too_large"), "Amount too large.", Some("line_items")))?;
    check_amount(amount_total, currency, "line_items[0][price_data][unit_amount]")?;
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
    let purchase = Purchase {
        amount_total,
        line_items,
        setup_future_usage,
        pi_metadata,
        pi_description: opt_string(p, &["payment_intent_data", "description"]),
        payment_status: "unpaid",
        payment_intent: None,
        async_payment: false,
        invoice_creation: invoice_creation_param(p)?,
        invoice: None,
    };
    Ok((currency, purchase))
}

/// A `setup` session's SetupIntent data (`setup_intent_data[description]`,
/// `setup_intent_data[metadata][k]`).
fn setup_intent_param(p: &Param) -> R<(Option<String>, BTreeMap<String, String>)> {
    let names = p.get("setup_intent_data").map(Param::names).unwrap_or_default();
    if let Some(unknown) = names.into_iter().find(|n| !["description", "metadata"].contains(n)) {
        let param = format!("setup_intent_data[{unknown}]");
        return Err(invalid(Some("parameter_unknown"), &format!("Received unknown parameter: {param}"), Some(&param)));
    }
    let metadata = match p.at(&["setup_intent_data", "metadata"]) {
        None => BTreeMap::new(),
        Some(m) => m.string_map().ok_or_else(|| invalid(None, "Invalid hash", Some("setup_intent_data[metadata]")))?,
    };
    Ok((opt_string(p, &["setup_intent_data", "description"]), metadata))
}

/// A `setup` session's currency: required unless `payment_method_types` says what to save.
fn setup_currency_param(p: &Param) -> R<Option<Currency>> {
    if p.get("currency").is_none() && p.get("payment_method_types").is_some() {
        return Ok(None);
    }
    parse_currency(p, &["currency"], "currency").map(Some)
}

impl State {
    /// A `subscription` session's line items (`line_items[n][price]`: one of the account's prices
    /// recurring by the month, all in one currency; `quantity`, default 1) and
    /// `subscription_data[metadata]`.
    fn subscription_purchase_param(&self, acct: &Acct, p: &Param) -> R<(Currency, SubscriptionPurchase)> {
        let items = p.get("line_items").map(Param::items).unwrap_or_default();
        if items.is_empty() {
            return Err(invalid(
                Some("parameter_missing"),
                "You must provide at least one line item.",
                Some("line_items"),
            ));
        }
        let mut currency: Option<Currency> = None;
        let mut line_items = Vec::with_capacity(items.len());
        let mut amount_total = 0i64;
        for (i, item) in items.iter().enumerate() {
            let at = |field: &str| format!("line_items[{i}][{field}]");
            if item.get("price_data").is_some() {
                return Err(invalid(
                    None,
                    "The fake takes price, not price_data, in subscription mode.",
                    Some(&at("price_data")),
                ));
            }
            let id = item.str_at(&["price"]).ok_or_else(|| {
                invalid(
                    Some("parameter_missing"),
                    &format!("Missing required param: {}.", at("price")),
                    Some(&at("price")),
                )
            })?;
            let price = self.price(acct, id, Some(&at("price")))?;
            if price.interval.as_deref() != Some("month") {
                return Err(invalid(
                    None,
                    "The fake's subscriptions take prices recurring by the month only.",
                    Some(&at("price")),
                ));
            }
            let c =
                Currency::parse(&price.currency).map_err(|_| invalid(None, "Invalid currency", Some(&at("price"))))?;
            if currency.is_some_and(|cur| cur != c) {
                return Err(invalid(None, "All line items must use the same currency.", Some(&at("price"))));
            }
            currency = Some(c);
            let quantity = match item.str_at(&["quantity"]) {
                None => 1,
                Some(q) => q
                    .parse::<u64>()
                    .ok()
                    .filter(|q| (1..=999_999).contains(q))
                    .ok_or_else(|| invalid(None, &format!("Invalid quantity: {q}"), Some(&at("quantity"))))?,
            };
            let line = i64::try_from(quantity).ok().and_then(|q| price.unit_amount.checked_mul(q));
            amount_total = line
                .and_then(|l| amount_total.checked_add(l))
                .ok_or_else(|| invalid(Some("amount_too_large"), "Amount too large.", Some("line_items")))?;
            line_items.push((price.id.clone(), quantity));
        }
        if let Some(other) =
            p.get("subscription_data").map(Param::names).unwrap_or_default().into_iter().find(|n| *n != "metadata")
        {
            let param = format!("subscription_data[{other}]");
            return Err(invalid(
                Some("parameter_unknown"),
                &format!("Received unknown parameter: {param}"),
                Some(&param),
            ));
        }
        let metadata = match p.at(&["subscription_data", "metadata"]) {
            None => BTreeMap::new(),
            Some(m) => {
                m.string_map().ok_or_else(|| invalid(None, "Invalid hash", Some("subscription_data[metadata]")))?
            }
        };
        let purchase = SubscriptionPurchase { line_items, amount_total, metadata, subscription: None, invoice: None };
        Ok((currency.expect("at least one line item"), purchase))
    }

    /// The session as the API shows it; `expand` may ask for `payment_intent` and
    /// `setup_intent` (and its `payment_method`).
    fn session_json(&self, s: &Session, expand: &Expand) -> Value {
        let (invoice, invoice_creation) = match &s.mode {
            Mode::Payment(p) => (
                json!(p.invoice),
                json!({
                    "enabled": p.invoice_creation,
                    "invoice_data": {
                        "account_tax_ids": null, "custom_fields": null, "description": null, "footer": null,
                        "issuer": null, "metadata": {}, "rendering_options": null,
                    },
                }),
            ),
            Mode::Setup { .. } => (Value::Null, Value::Null),
            Mode::Subscription(p) => (json!(p.invoice), Value::Null),
        };
        let (amount, payment_status, payment_intent, setup_intent) = match &s.mode {
            Mode::Payment(p) => {
                let pi = match (&p.payment_intent, expand.has("payment_intent")) {
                    (Some(pi), true) => {
                        self.payment_intents.get(pi).map_or(json!(pi), |pi| self.payment_intent_json(pi))
                    }
                    (pi, _) => json!(pi),
                };
                (json!(p.amount_total), p.payment_status, pi, Value::Null)
            }
            Mode::Setup { setup_intent } => {
                let si = match (self.setup_intents.get(setup_intent), expand.has("setup_intent")) {
                    (Some(si), true) => self.setup_intent_json(si, &expand.within("setup_intent")),
                    _ => json!(setup_intent),
                };
                (Value::Null, "no_payment_required", Value::Null, si)
            }
            Mode::Subscription(p) => {
                let status = if p.subscription.is_some() { "paid" } else { "unpaid" };
                (json!(p.amount_total), status, Value::Null, Value::Null)
            }
        };
        let subscription = match &s.mode {
            Mode::Subscription(p) => json!(p.subscription),
            _ => Value::Null,
        };
        // A setup session has no amount, so no breakdown of one.
        let total_details = match s.mode {
            Mode::Payment(_) | Mode::Subscription(_) => {
                json!({ "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 })
            }
            Mode::Setup { .. } => Value::Null,
        };
        let url = (s.status == SessionStatus::Open).then(|| format!("{}/pay/{}", self.base_url, s.id));
        json!({
            "id": s.id,
            "object": "checkout.session",
            "adaptive_pricing": null,
            "after_expiration": null,
            "allow_promotion_codes": null,
            "amount_subtotal": amount,
            "amount_total": amount,
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
            "invoice": invoice,
            "invoice_creation": invoice_creation,
            "livemode": false,
            "locale": s.locale,
            "metadata": metadata_json(&s.metadata),
            "mode": s.mode.name(),
            "payment_intent": payment_intent,
            "payment_link": null,
            "payment_method_collection": match s.mode { Mode::Payment(_) => "if_required", _ => "always" },
            "payment_method_types": ["card"],
            "payment_status": payment_status,
            "phone_number_collection": { "enabled": false },
            "recovered_from": null,
            "setup_intent": setup_intent,
            "shipping_address_collection": null,
            "shipping_cost": null,
            "shipping_options": [],
            "status": s.status.as_str(),
            "submit_type": null,
            "subscription": subscription,
            "success_url": s.success_url,
            "total_details": total_details,
            "url": url,
        })
    }

    /// `POST /v1/checkout/sessions`, in `payment` mode (line items paid now) or `setup` mode (a
    /// card saved for later; its SetupIntent is made with the session).
    pub fn create_session(&mut self, acct: &Acct, p: &Param) -> R<Reply> {
        check_known_params(
            p,
            &[
                "cancel_url",
                "client_reference_id",
                "currency",
                "customer",
                "customer_email",
                "expand",
                "expires_at",
                "invoice_creation",
                "line_items",
                "locale",
                "metadata",
                "mode",
                "payment_intent_data",
                "payment_method_types",
                "setup_intent_data",
                "submit_type",
                "subscription_data",
                "success_url",
            ],
        )?;
        let (currency, mode) = match p.str_at(&["mode"]) {
            Some("payment") => {
                only_in_other_mode(p, &SETUP_ONLY, "payment")?;
                only_in_other_mode(p, &SUBSCRIPTION_ONLY, "payment")?;
                let (currency, purchase) = purchase_param(p)?;
                (Some(currency), NewMode::Payment(purchase))
            }
            Some("setup") => {
                only_in_other_mode(p, &PAYMENT_ONLY, "setup")?;
                only_in_other_mode(p, &SUBSCRIPTION_ONLY, "setup")?;
                if p.get("invoice_creation").is_some() {
                    return Err(invalid(None, INVOICE_CREATION_MODE, Some("invoice_creation")));
                }
                let currency = setup_currency_param(p)?;
                let (description, metadata) = setup_intent_param(p)?;
                (currency, NewMode::Setup { description, metadata })
            }
            Some("subscription") => {
                only_in_other_mode(p, &NOT_IN_SUBSCRIPTION, "subscription")?;
                if p.get("invoice_creation").is_some() {
                    return Err(invalid(None, INVOICE_CREATION_MODE, Some("invoice_creation")));
                }
                let (currency, purchase) = self.subscription_purchase_param(acct, p)?;
                (Some(currency), NewMode::Subscription(purchase))
            }
            Some(other) => {
                return Err(invalid(
                    None,
                    &format!("The fake only does mode=payment, mode=setup and mode=subscription, not {other}."),
                    Some("mode"),
                ));
            }
            None => return Err(invalid(Some("parameter_missing"), "Missing required param: mode.", Some("mode"))),
        };
        let customer = self.customer_param(acct, p)?;
        let created = self.now();
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
        let metadata = string_map(p, "metadata")?;
        // Everything is checked: only now is anything made.
        let mode = match mode {
            NewMode::Payment(purchase) => Mode::Payment(purchase),
            NewMode::Setup { description, metadata } => {
                Mode::Setup { setup_intent: self.new_setup_intent(acct, customer.clone(), description, metadata) }
            }
            NewMode::Subscription(purchase) => {
                if customer.is_none() {
                    return Err(invalid(
                        Some("parameter_missing"),
                        "The fake needs `customer` in subscription mode (it does not create customers).",
                        Some("customer"),
                    ));
                }
                Mode::Subscription(purchase)
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
            currency: currency.map(|c| c.code().to_owned()),
            customer,
            client_reference_id: opt_string(p, &["client_reference_id"]),
            metadata,
            success_url: opt_string(p, &["success_url"]),
            cancel_url: opt_string(p, &["cancel_url"]),
            locale: opt_string(p, &["locale"]),
            status: SessionStatus::Open,
            mode,
        };
        let body = self.session_json(&session, &Expand::none());
        self.sessions.insert(session.id.clone(), session);
        Ok(Reply::ok(body))
    }

    fn session(&self, acct: &Acct, id: &str) -> R<&Session> {
        owned(&self.sessions, acct, "checkout.session", id, None)
    }

    /// `GET /v1/checkout/sessions/{id}` (`expand[]=payment_intent`, `expand[]=setup_intent`).
    pub fn retrieve_session(&self, acct: &Acct, id: &str, expand: &Expand) -> R<Reply> {
        let s = self.session(acct, id)?;
        Ok(Reply::ok(self.session_json(s, expand)))
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
        self.sessions.get_mut(id).expect("found above").status = SessionStatus::Expired;
        Ok(Reply::ok(self.emit_session(id, "checkout.session.expired")))
    }

    /// Event `type_` with session `id` as it is now; the call answers the same JSON.
    fn emit_session(&mut self, id: &str, type_: &str) -> Value {
        let s = self.sessions.get(id).expect("the caller found the session");
        let (body, account) = (self.session_json(s, &Expand::none()), s.account.clone());
        self.emit(type_, &account, body.clone(), None);
        body
    }

    pub fn sessions_of_account(&self, account: &Acct) -> Vec<Value> {
        of_account(&self.sessions, account, |s| s.seq)
            .into_iter()
            .map(|s| self.session_json(s, &Expand::none()))
            .collect()
    }
}

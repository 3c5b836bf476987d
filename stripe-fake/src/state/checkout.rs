//! Checkout Sessions: created, retrieved and expired through the API; paid in `payment`.

mod payment;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{
    Acct, Currency, R, Reply, State, check_amount, check_known_params, invalid, metadata_json, missing, now_s,
    of_account, opt_string, owned, parse_amount, parse_currency, random_id, string_map,
};
use crate::form::Param;

pub use payment::PageSession;

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

owned_by_account_field!(Session);

#[derive(Debug, Clone)]
pub(super) struct LineItem {
    name: String,
    unit_amount: i64,
    quantity: i64,
}

impl State {
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
        let customer = self.customer_param(acct, p)?;
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
        owned(&self.sessions, acct, "checkout.session", id, None)
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
        self.sessions.get_mut(id).expect("found above").status = SessionStatus::Expired;
        Ok(Reply::ok(self.emit_session(id, "checkout.session.expired")))
    }

    /// Event `type_` with session `id` as it is now; the call answers the same JSON.
    fn emit_session(&mut self, id: &str, type_: &str) -> Value {
        let s = self.sessions.get(id).expect("the caller found the session");
        let (body, account) = (self.session_json(s, false), s.account.clone());
        self.emit(type_, &account, body.clone(), None);
        body
    }

    pub fn sessions_of_account(&self, account: &Acct) -> Vec<Value> {
        of_account(&self.sessions, account, |s| s.seq).into_iter().map(|s| self.session_json(s, false)).collect()
    }
}

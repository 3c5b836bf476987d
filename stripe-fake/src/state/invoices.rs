//! Invoices and invoice items:
//! - the paid invoice a `payment` Checkout Session makes when it was created with
//!   `invoice_creation[enabled]=true` (Stripe's post-payment invoice, emailed to the customer as
//!   the receipt);
//! - a subscription's invoices: its first (`subscription_create`, paid when its Checkout Session
//!   is) and its renewals (`subscription_cycle`, see `renewals.rs`);
//! - invoices made through the API: `POST /v1/invoices` (a draft), `POST /v1/invoiceitems` (on a
//!   draft, or pending until the subscription's next invoice), `POST /v1/invoices/{id}/pay`
//!   (finalizes a draft, charges the subscription's default payment method),
//!   `POST /v1/invoices/{id}/void`, `GET /v1/invoices/{id}`, `GET /v1/invoices`;
//! - their hosted page and PDF.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::payment_intents::CardDecline;
use super::{
    Acct, PaymentIntent, R, Reply, State, bool_param, check_amount, check_known_params, invalid, metadata_json,
    missing, of_account, opt_string, owned, parse_amount, parse_currency, random_id, string_map,
};
use crate::form::Param;

/// `GET /v1/invoices`'s page size when `limit` is not given, and the largest it takes (Stripe's).
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InvoiceStatus {
    Draft,
    Open,
    Paid,
    Void,
}

impl InvoiceStatus {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Open => "open",
            Self::Paid => "paid",
            Self::Void => "void",
        }
    }
}

/// Where a line comes from.
#[derive(Debug, Clone)]
pub(super) enum LineSource {
    /// A Checkout Session's line item.
    Checkout,
    /// A subscription item's price for the invoice's period.
    SubscriptionItem { subscription: String, item: String, price: String, product: String },
    /// An invoice item.
    InvoiceItem { invoice_item: String, subscription: Option<String> },
}

#[derive(Debug, Clone)]
pub(super) struct InvoiceLine {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) unit_amount: i64,
    pub(super) quantity: i64,
    pub(super) period: (i64, i64),
    pub(super) source: LineSource,
    pub(super) metadata: BTreeMap<String, String>,
}

impl InvoiceLine {
    fn amount(&self) -> i64 {
        self.unit_amount * self.quantity
    }

    /// A Checkout line item's line.
    pub(super) fn checkout(name: String, unit_amount: i64, quantity: i64, at: i64) -> Self {
        Self {
            id: random_id("il_", 24),
            name,
            unit_amount,
            quantity,
            period: (at, at),
            source: LineSource::Checkout,
            metadata: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Invoice {
    seq: u64,
    pub(super) id: String,
    pub(super) account: Acct,
    created: i64,
    /// The account's `<prefix>-<count>`, given when it is finalized, as Stripe numbers them.
    number: Option<String>,
    pub(super) customer: Option<String>,
    pub(super) currency: String,
    pub(super) lines: Vec<InvoiceLine>,
    pub(super) status: InvoiceStatus,
    finalized_at: Option<i64>,
    paid_at: Option<i64>,
    voided_at: Option<i64>,
    billing_reason: &'static str,
    pub(super) subscription: Option<String>,
    auto_advance: bool,
    metadata: BTreeMap<String, String>,
    description: Option<String>,
    period: (i64, i64),
    attempt_count: u32,
    /// The PaymentIntent of its last charge attempt.
    payment_intent: Option<String>,
}

owned_by_account_field!(Invoice);

impl Invoice {
    pub(super) fn total(&self) -> i64 {
        self.lines.iter().map(InvoiceLine::amount).sum()
    }
}

/// An invoice item: on a draft invoice, or pending until the next invoice of its customer's
/// subscription.
#[derive(Debug, Clone)]
pub(super) struct InvoiceItem {
    seq: u64,
    id: String,
    account: Acct,
    created: i64,
    customer: String,
    pub(super) invoice: Option<String>,
    pub(super) subscription: Option<String>,
    amount: i64,
    currency: String,
    description: Option<String>,
    metadata: BTreeMap<String, String>,
}

owned_by_account_field!(InvoiceItem);

/// A new invoice, before it is numbered or charged.
pub(super) struct NewInvoice {
    pub(super) account: Acct,
    pub(super) customer: Option<String>,
    pub(super) currency: String,
    pub(super) lines: Vec<InvoiceLine>,
    pub(super) billing_reason: &'static str,
    pub(super) subscription: Option<String>,
    pub(super) auto_advance: bool,
    pub(super) metadata: BTreeMap<String, String>,
    pub(super) description: Option<String>,
    pub(super) period: (i64, i64),
}

/// How a charge of an invoice ended.
#[derive(Debug)]
pub(super) enum ChargeResult {
    Paid,
    /// Declined: the card error Stripe answers (HTTP 402).
    Declined(Value),
}

/// What a session's payment hands the invoice.
pub(super) struct PaidPurchase {
    pub(super) account: Acct,
    pub(super) customer: Option<String>,
    pub(super) currency: String,
    pub(super) lines: Vec<InvoiceLine>,
}

impl State {
    /// Where the customer reads an invoice: its hosted page, and its PDF.
    pub fn hosted_invoice_url(&self, id: &str) -> String {
        format!("{}/i/{id}", self.base_url)
    }

    fn invoice_line_json(&self, i: &Invoice, l: &InvoiceLine) -> Value {
        let amount = l.amount();
        let (parent, pricing) = match &l.source {
            LineSource::Checkout => (Value::Null, Value::Null),
            LineSource::SubscriptionItem { subscription, item, price, product } => (
                json!({
                    "type": "subscription_item_details",
                    "invoice_item_details": null,
                    "subscription_item_details": {
                        "invoice_item": null,
                        "proration": false,
                        "proration_details": { "credited_items": null },
                        "subscription": subscription,
                        "subscription_item": item,
                    },
                }),
                json!({
                    "type": "price_details",
                    "price_details": { "price": price, "product": product },
                    "unit_amount_decimal": l.unit_amount.to_string(),
                }),
            ),
            LineSource::InvoiceItem { invoice_item, subscription } => (
                json!({
                    "type": "invoice_item_details",
                    "invoice_item_details": {
                        "invoice_item": invoice_item,
                        "proration": false,
                        "proration_details": { "credited_items": null },
                        "subscription": subscription,
                    },
                    "subscription_item_details": null,
                }),
                Value::Null,
            ),
        };
        json!({
            "id": l.id,
            "object": "line_item",
            "amount": amount,
            "currency": i.currency,
            "description": l.name,
            "discount_amounts": [],
            "discountable": true,
            "discounts": [],
            "invoice": i.id,
            "livemode": false,
            "metadata": metadata_json(&l.metadata),
            "parent": parent,
            "period": { "end": l.period.1, "start": l.period.0 },
            "pretax_credit_amounts": [],
            "pricing": pricing,
            "quantity": l.quantity,
            "subtotal": amount,
            "taxes": [],
        })
    }

    pub(super) fn invoice_json(&self, i: &Invoice) -> Value {
        let total = i.total();
        let paid = i.status == InvoiceStatus::Paid;
        let lines: Vec<Value> = i.lines.iter().map(|l| self.invoice_line_json(i, l)).collect();
        let parent = i.subscription.as_ref().map(|sub| {
            let metadata = self.subscriptions.get(sub).map(|s| self.subscription_json(s)["metadata"].clone());
            json!({
                "type": "subscription_details",
                "quote_details": null,
                "subscription_details": { "metadata": metadata, "subscription": sub },
            })
        });
        let (hosted, pdf) = match i.status {
            InvoiceStatus::Draft => (Value::Null, Value::Null),
            _ => (json!(self.hosted_invoice_url(&i.id)), json!(format!("{}/pdf", self.hosted_invoice_url(&i.id)))),
        };
        let amount_due = if i.status == InvoiceStatus::Void { 0 } else { total };
        json!({
            "id": i.id,
            "object": "invoice",
            "account_country": "US",
            "account_name": null,
            "account_tax_ids": null,
            "amount_due": amount_due,
            "amount_overpaid": 0,
            "amount_paid": if paid { total } else { 0 },
            "amount_remaining": if paid { 0 } else { amount_due },
            "amount_shipping": 0,
            "application": null,
            "attempt_count": i.attempt_count,
            "attempted": i.attempt_count > 0 || paid,
            "auto_advance": i.auto_advance && matches!(i.status, InvoiceStatus::Draft | InvoiceStatus::Open),
            "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null },
            "automatically_finalizes_at": null,
            "billing_reason": i.billing_reason,
            "collection_method": "charge_automatically",
            "created": i.created,
            "currency": i.currency,
            "custom_fields": null,
            "customer": i.customer,
            "customer_address": null,
            "customer_email": null,
            "customer_name": null,
            "customer_phone": null,
            "customer_shipping": null,
            "customer_tax_exempt": "none",
            "customer_tax_ids": [],
            "default_payment_method": null,
            "default_source": null,
            "default_tax_rates": [],
            "description": i.description,
            "discounts": [],
            "due_date": null,
            "effective_at": i.finalized_at,
            "ending_balance": i.finalized_at.map(|_| 0),
            "footer": null,
            "from_invoice": null,
            "hosted_invoice_url": hosted,
            "invoice_pdf": pdf,
            "issuer": { "type": "self" },
            "last_finalization_error": null,
            "latest_revision": null,
            "lines": { "object": "list", "data": lines, "has_more": false, "url": format!("/v1/invoices/{}/lines", i.id) },
            "livemode": false,
            "metadata": metadata_json(&i.metadata),
            "next_payment_attempt": null,
            "number": i.number,
            "on_behalf_of": null,
            "parent": parent,
            "payment_settings": { "default_mandate": null, "payment_method_options": null, "payment_method_types": null },
            "period_end": i.period.1,
            "period_start": i.period.0,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": null,
            "rendering": null,
            "shipping_cost": null,
            "shipping_details": null,
            "starting_balance": 0,
            "statement_descriptor": null,
            "status": i.status.as_str(),
            "status_transitions": {
                "finalized_at": i.finalized_at,
                "marked_uncollectible_at": null,
                "paid_at": i.paid_at,
                "voided_at": i.voided_at,
            },
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "test_clock": null,
            "threshold_reason": null,
            "total": total,
            "total_discount_amounts": [],
            "total_excluding_tax": total,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "webhooks_delivered_at": i.created,
        })
    }

    fn invoice_item_json(&self, ii: &InvoiceItem) -> Value {
        let parent = ii.subscription.as_ref().map(|sub| {
            json!({
                "type": "subscription_details",
                "subscription_details": { "subscription": sub, "subscription_item": null },
            })
        });
        json!({
            "id": ii.id,
            "object": "invoiceitem",
            "amount": ii.amount,
            "currency": ii.currency,
            "customer": ii.customer,
            "date": ii.created,
            "description": ii.description,
            "discountable": true,
            "discounts": [],
            "invoice": ii.invoice,
            "livemode": false,
            "metadata": metadata_json(&ii.metadata),
            "net_amount": ii.amount,
            "parent": parent,
            "period": { "end": ii.created, "start": ii.created },
            "pricing": null,
            "proration": false,
            "quantity": 1,
            "tax_rates": [],
            "test_clock": null,
        })
    }

    /// A new invoice, a draft; event `invoice.created`. Its id.
    pub(super) fn new_invoice(&mut self, new: NewInvoice) -> String {
        let invoice = Invoice {
            seq: self.next_seq(),
            id: random_id("in_", 24),
            account: new.account,
            created: self.now(),
            number: None,
            customer: new.customer,
            currency: new.currency,
            lines: new.lines,
            status: InvoiceStatus::Draft,
            finalized_at: None,
            paid_at: None,
            voided_at: None,
            billing_reason: new.billing_reason,
            subscription: new.subscription,
            auto_advance: new.auto_advance,
            metadata: new.metadata,
            description: new.description,
            period: new.period,
            attempt_count: 0,
            payment_intent: None,
        };
        let id = invoice.id.clone();
        let body = self.invoice_json(&invoice);
        let account = invoice.account.clone();
        self.invoices.insert(id.clone(), invoice);
        self.emit("invoice.created", &account, body, None);
        id
    }

    /// Emits `type_` with the invoice as it is now; answers the same JSON.
    pub(super) fn emit_invoice(&mut self, id: &str, type_: &str, previous: Option<Value>) -> Value {
        let i = &self.invoices[id];
        let (body, account) = (self.invoice_json(i), i.account.clone());
        self.emit(type_, &account, body.clone(), previous);
        body
    }

    /// A draft is finalized: numbered, open; event `invoice.finalized`.
    pub(super) fn finalize_invoice(&mut self, id: &str) {
        let now = self.now();
        let account = self.invoices[id].account.clone();
        let count = self.invoices.values().filter(|i| i.account == account && i.number.is_some()).count() + 1;
        let prefix = self.invoice_prefix(&self.invoices[id]);
        let invoice = self.invoices.get_mut(id).expect("the caller found the invoice");
        assert_eq!(invoice.status, InvoiceStatus::Draft, "only a draft is finalized");
        invoice.status = InvoiceStatus::Open;
        invoice.finalized_at = Some(now);
        invoice.number = Some(format!("{prefix}-{count:04}"));
        self.emit_invoice(id, "invoice.finalized", None);
    }

    /// The customer's invoice prefix, as Stripe numbers a customer's invoices.
    fn invoice_prefix(&self, i: &Invoice) -> String {
        match &i.customer {
            Some(c) => c.trim_start_matches("cus_").chars().take(8).collect::<String>().to_uppercase(),
            None => random_id("", 8).to_uppercase(),
        }
    }

    /// The session's payment succeeded: its invoice, finalized and paid at once, as Checkout
    /// makes it, with `invoice.finalized` then `invoice.paid`. Returns its id.
    pub(super) fn invoice_paid_purchase(&mut self, paid: PaidPurchase) -> String {
        let now = self.now();
        let id = self.new_invoice_quietly(NewInvoice {
            account: paid.account,
            customer: paid.customer,
            currency: paid.currency,
            lines: paid.lines,
            billing_reason: "manual",
            subscription: None,
            auto_advance: false,
            metadata: BTreeMap::new(),
            description: None,
            period: (now, now),
        });
        self.finalize_invoice(&id);
        self.mark_paid(&id, None);
        id
    }

    /// A new draft without its `invoice.created` (Checkout's post-payment invoice sends none).
    pub(super) fn new_invoice_quietly(&mut self, new: NewInvoice) -> String {
        let before = self.events.len();
        let id = self.new_invoice(new);
        if self.events.len() > before {
            let event = self.events.pop().expect("just emitted");
            self.outbox.retain(|e| *e != event.id);
        }
        id
    }

    /// The invoice is paid (by `payment_intent`, or nothing to charge): events `invoice.paid` and,
    /// for a subscription's invoice, `invoice.payment_succeeded`, as Stripe sends both.
    pub(super) fn mark_paid(&mut self, id: &str, payment_intent: Option<String>) {
        let now = self.now();
        let invoice = self.invoices.get_mut(id).expect("the caller found the invoice");
        invoice.status = InvoiceStatus::Paid;
        invoice.paid_at = Some(now);
        if payment_intent.is_some() {
            invoice.attempt_count += 1;
            invoice.payment_intent = payment_intent;
        }
        let subscription = invoice.subscription.is_some();
        self.emit_invoice(id, "invoice.paid", None);
        if subscription {
            self.emit_invoice(id, "invoice.payment_succeeded", None);
        }
    }

    /// Charges an open invoice with its subscription's default payment method (a `PaymentIntent`
    /// confirmed off-session, and its charge). The outcome: the subscription's own (a control),
    /// else the next queued one, else the card's expiry. Paid: `invoice.paid` (and
    /// `invoice.payment_succeeded`); declined: the invoice stays open, `invoice.payment_failed`.
    /// `force_success` is a retry after the customer fixed the card (a control).
    pub(super) fn charge_invoice(&mut self, id: &str, force_success: bool) -> R<ChargeResult> {
        let invoice = self.invoices[id].clone();
        assert_eq!(invoice.status, InvoiceStatus::Open, "only an open invoice is charged");
        let total = invoice.total();
        if total == 0 {
            self.mark_paid(id, None);
            return Ok(ChargeResult::Paid);
        }
        let subscription = invoice.subscription.as_ref().and_then(|s| self.subscriptions.get(s));
        let payment_method = subscription.and_then(|s| s.default_payment_method.clone()).ok_or_else(|| {
            invalid(
                None,
                "This customer has no attached payment source or default payment method. Please consider adding a default payment method.",
                None,
            )
        })?;
        let sticky = subscription.and_then(|s| s.payment_outcome.clone());
        let mut pi = PaymentIntent {
            id: random_id("pi_", 24),
            account: invoice.account.clone(),
            created: self.now(),
            amount: total,
            currency: invoice.currency.clone(),
            customer: invoice.customer.clone(),
            payment_method: Some(payment_method),
            description: Some(format!("Subscription {}", invoice.billing_reason.replace('_', " "))),
            metadata: BTreeMap::new(),
            setup_future_usage: None,
            status: "processing",
            latest_charge: None,
            last_payment_error: None,
        };
        let decline = match (force_success, sticky) {
            (true, _) => None,
            (false, Some(outcome)) => CardDecline::queued(outcome),
            (false, None) => self.confirmation_outcome(&pi),
        };
        match decline {
            None => {
                self.succeed_payment_intent(&mut pi);
                let body = self.payment_intent_json(&pi);
                let pi_id = pi.id.clone();
                self.payment_intents.insert(pi.id.clone(), pi);
                self.emit("payment_intent.succeeded", &invoice.account, body, None);
                self.mark_paid(id, Some(pi_id));
                Ok(ChargeResult::Paid)
            }
            Some(decline) => {
                let error = self.decline_payment_intent_error(pi.clone(), &decline);
                let i = self.invoices.get_mut(id).expect("found above");
                i.attempt_count += 1;
                i.payment_intent = Some(pi.id);
                self.emit_invoice(id, "invoice.payment_failed", None);
                Ok(ChargeResult::Declined(error))
            }
        }
    }

    fn invoice(&self, acct: &Acct, id: &str) -> R<&Invoice> {
        owned(&self.invoices, acct, "invoice", id, None)
    }

    /// `GET /v1/invoices/{id}`: only on the account it was made on.
    pub fn retrieve_invoice(&self, acct: &Acct, id: &str) -> R<Reply> {
        Ok(Reply::ok(self.invoice_json(self.invoice(acct, id)?)))
    }

    /// `POST /v1/invoices`: a draft for `customer` (required), of its `subscription` if given
    /// (one of the customer's, not cancelled), `collection_method=charge_automatically` only,
    /// `auto_advance`, `pending_invoice_items_behavior` (`exclude`, the default of the API
    /// versions from 2022-08-01, or `include`: the customer's pending items of that
    /// subscription, or of none), `currency` (default: the subscription's), `description`,
    /// `metadata`. Event `invoice.created`. The fake never finalizes a draft by itself
    /// (`auto_advance` is shown, not acted on): `POST /v1/invoices/{id}/pay` does.
    pub fn create_invoice(&mut self, acct: &Acct, p: &Param) -> R<Reply> {
        check_known_params(
            p,
            &[
                "auto_advance",
                "collection_method",
                "currency",
                "customer",
                "description",
                "expand",
                "metadata",
                "pending_invoice_items_behavior",
                "subscription",
            ],
        )?;
        let customer = self
            .customer_param(acct, p)?
            .ok_or_else(|| invalid(Some("parameter_missing"), "Missing required param: customer.", Some("customer")))?;
        match p.str_at(&["collection_method"]) {
            None | Some("charge_automatically") => {}
            Some(other) => {
                return Err(invalid(
                    None,
                    &format!("The fake only takes collection_method=charge_automatically, not {other}."),
                    Some("collection_method"),
                ));
            }
        }
        let subscription = match p.str_at(&["subscription"]) {
            None => None,
            Some(id) => {
                let s = self.customer_subscription(acct, id, &customer)?;
                if s.status == super::subscriptions::SubscriptionStatus::Canceled {
                    return Err(invalid(
                        None,
                        &format!("The subscription {id} is canceled: it can't be invoiced."),
                        Some("subscription"),
                    ));
                }
                Some(s)
            }
        };
        let include = match p.str_at(&["pending_invoice_items_behavior"]) {
            None | Some("exclude") => false,
            Some("include") => true,
            Some(other) => {
                return Err(invalid(
                    None,
                    &format!("Invalid pending_invoice_items_behavior: must be one of exclude or include, not {other}"),
                    Some("pending_invoice_items_behavior"),
                ));
            }
        };
        let currency = match (p.get("currency"), subscription) {
            (Some(_), _) => parse_currency(p, &["currency"], "currency")?.code().to_owned(),
            (None, Some(s)) => s.currency.clone(),
            (None, None) => {
                return Err(invalid(
                    Some("parameter_missing"),
                    "The fake needs currency (or subscription) on an invoice.",
                    Some("currency"),
                ));
            }
        };
        let subscription = subscription.map(|s| s.id.clone());
        let auto_advance = bool_param(p, "auto_advance")?;
        let metadata = string_map(p, "metadata")?;
        let now = self.now();
        let id = self.new_invoice(NewInvoice {
            account: acct.clone(),
            customer: Some(customer.clone()),
            currency,
            lines: Vec::new(),
            billing_reason: "manual",
            subscription: subscription.clone(),
            auto_advance,
            metadata,
            description: opt_string(p, &["description"]),
            period: (now, now),
        });
        if include {
            self.attach_pending_items(&id, &customer, subscription.as_deref());
        }
        Ok(Reply::ok(self.invoice_json(&self.invoices[&id])))
    }

    /// The customer's pending invoice items of `subscription` (or of none) in the invoice's
    /// currency become its lines.
    pub(super) fn attach_pending_items(&mut self, invoice: &str, customer: &str, subscription: Option<&str>) {
        let currency = self.invoices[invoice].currency.clone();
        let mut pending: Vec<&InvoiceItem> = self
            .invoice_items
            .values()
            .filter(|ii| {
                ii.invoice.is_none()
                    && ii.customer == customer
                    && ii.subscription.as_deref() == subscription
                    && ii.currency == currency
            })
            .collect();
        pending.sort_by_key(|ii| ii.seq);
        let ids: Vec<String> = pending.iter().map(|ii| ii.id.clone()).collect();
        for id in ids {
            self.put_item_on_invoice(&id, invoice);
        }
    }

    fn put_item_on_invoice(&mut self, item: &str, invoice: &str) {
        let ii = self.invoice_items.get_mut(item).expect("the caller found the item");
        ii.invoice = Some(invoice.to_owned());
        let period = self.invoices[invoice].period;
        let ii = &self.invoice_items[item];
        let line = InvoiceLine {
            id: random_id("il_", 24),
            name: ii.description.clone().unwrap_or_default(),
            unit_amount: ii.amount,
            quantity: 1,
            period: (ii.created.min(period.0), ii.created.max(period.0)),
            source: LineSource::InvoiceItem { invoice_item: ii.id.clone(), subscription: ii.subscription.clone() },
            metadata: ii.metadata.clone(),
        };
        self.invoices.get_mut(invoice).expect("the caller found the invoice").lines.push(line);
    }

    /// `POST /v1/invoiceitems`: `customer` (required), `amount`, `currency`, `description`,
    /// `metadata`, and `invoice` (a draft of that customer's: the item is a line of it) or
    /// `subscription` (the item waits for that subscription's next invoice); with neither, it
    /// waits for the customer's next invoice that includes pending items. Event
    /// `invoiceitem.created`.
    pub fn create_invoice_item(&mut self, acct: &Acct, p: &Param) -> R<Reply> {
        check_known_params(
            p,
            &["amount", "currency", "customer", "description", "expand", "invoice", "metadata", "subscription"],
        )?;
        let customer = self
            .customer_param(acct, p)?
            .ok_or_else(|| invalid(Some("parameter_missing"), "Missing required param: customer.", Some("customer")))?;
        let amount = parse_amount(p, &["amount"], "amount")?;
        let currency = parse_currency(p, &["currency"], "currency")?;
        if amount > 0 {
            check_amount(amount, currency, "amount")?;
        }
        let currency = currency.code().to_owned();
        let (invoice, mut subscription) = match p.str_at(&["invoice"]) {
            None => (None, None),
            Some(id) => {
                let i = owned(&self.invoices, acct, "invoice", id, Some("invoice"))?;
                if i.customer.as_deref() != Some(customer.as_str()) {
                    return Err(invalid(
                        None,
                        &format!("The invoice {id} belongs to another customer than {customer}."),
                        Some("invoice"),
                    ));
                }
                if i.status != InvoiceStatus::Draft {
                    return Err(invalid(
                        Some("invoice_not_editable"),
                        &format!(
                            "You can only add invoice items to draft invoices, and {id} is {}.",
                            i.status.as_str()
                        ),
                        Some("invoice"),
                    ));
                }
                if i.currency != currency {
                    return Err(invalid(
                        None,
                        &format!("The invoice item's currency ({currency}) must be the invoice's ({}).", i.currency),
                        Some("currency"),
                    ));
                }
                (Some(i.id.clone()), i.subscription.clone())
            }
        };
        if let Some(id) = p.str_at(&["subscription"]) {
            let s = self.customer_subscription(acct, id, &customer)?;
            if invoice.is_some() && subscription.as_deref() != Some(id) {
                return Err(invalid(None, "The invoice bills another subscription.", Some("subscription")));
            }
            subscription = Some(s.id.clone());
        }
        let ii = InvoiceItem {
            seq: self.next_seq(),
            id: random_id("ii_", 24),
            account: acct.clone(),
            created: self.now(),
            customer,
            invoice: None,
            subscription,
            amount,
            currency,
            description: opt_string(p, &["description"]),
            metadata: string_map(p, "metadata")?,
        };
        let id = ii.id.clone();
        self.invoice_items.insert(id.clone(), ii);
        if let Some(invoice) = invoice {
            self.put_item_on_invoice(&id, &invoice);
        }
        let body = self.invoice_item_json(&self.invoice_items[&id]);
        self.emit("invoiceitem.created", acct, body.clone(), None);
        Ok(Reply::ok(body))
    }

    /// `POST /v1/invoices/{id}/pay`: a draft is finalized first, then the invoice is charged
    /// ([`State::charge_invoice`]). A decline answers 402 `card_error` as Stripe does, the
    /// invoice left open; a paid or void invoice is refused.
    pub fn pay_invoice(&mut self, acct: &Acct, id: &str, p: &Param) -> R<Reply> {
        check_known_params(p, &["expand", "off_session"])?;
        let status = self.invoice(acct, id)?.status;
        match status {
            InvoiceStatus::Paid => return Err(invalid(Some("invoice_already_paid"), "Invoice is already paid", None)),
            InvoiceStatus::Void => {
                return Err(invalid(Some("invoice_not_editable"), "You cannot pay a void invoice.", None));
            }
            InvoiceStatus::Draft => {
                if self.invoices[id].subscription.as_ref().is_none_or(|s| !self.subscriptions.contains_key(s)) {
                    return Err(invalid(
                        None,
                        "The fake pays invoices of a subscription only (with its default payment method).",
                        None,
                    ));
                }
                self.finalize_invoice(id);
            }
            InvoiceStatus::Open => {}
        }
        match self.charge_invoice(id, false)? {
            ChargeResult::Paid => Ok(Reply::ok(self.invoice_json(&self.invoices[id]))),
            ChargeResult::Declined(error) => Ok(Reply { status: 402, body: json!({ "error": error }) }),
        }
    }

    /// `POST /v1/invoices/{id}/void`: an open invoice is void (never collected); event
    /// `invoice.voided`. A draft is deleted in Stripe, not voided: refused, as is a paid one.
    pub fn void_invoice(&mut self, acct: &Acct, id: &str, p: &Param) -> R<Reply> {
        check_known_params(p, &["expand"])?;
        let status = self.invoice(acct, id)?.status;
        if status != InvoiceStatus::Open {
            return Err(invalid(
                Some("invoice_not_editable"),
                &format!("You can only pass in open invoices. This invoice isn't open (status: {}).", status.as_str()),
                None,
            ));
        }
        let now = self.now();
        let invoice = self.invoices.get_mut(id).expect("found above");
        invoice.status = InvoiceStatus::Void;
        invoice.voided_at = Some(now);
        Ok(Reply::ok(self.emit_invoice(id, "invoice.voided", None)))
    }

    /// `GET /v1/invoices`: the account's invoices, newest first, of `customer` and/or
    /// `subscription`, of `status`; `limit` (1 to 100, default 10), `starting_after`.
    pub fn list_invoices(&self, acct: &Acct, p: &Param) -> R<Reply> {
        check_known_params(p, &["customer", "expand", "limit", "starting_after", "status", "subscription"])?;
        let limit = match p.str_at(&["limit"]) {
            None => DEFAULT_LIMIT,
            Some(raw) => raw.parse::<usize>().ok().filter(|l| (1..=MAX_LIMIT).contains(l)).ok_or_else(|| {
                invalid(None, &format!("Invalid limit: must be between 1 and {MAX_LIMIT}, not {raw}"), Some("limit"))
            })?,
        };
        let (customer, subscription, status) =
            (p.str_at(&["customer"]), p.str_at(&["subscription"]), p.str_at(&["status"]));
        let mut invoices: Vec<&Invoice> = self
            .invoices
            .values()
            .filter(|i| &i.account == acct)
            .filter(|i| customer.is_none_or(|c| i.customer.as_deref() == Some(c)))
            .filter(|i| subscription.is_none_or(|s| i.subscription.as_deref() == Some(s)))
            .filter(|i| status.is_none_or(|s| i.status.as_str() == s))
            .collect();
        invoices.sort_by_key(|i| std::cmp::Reverse((i.created, i.seq)));
        let start = match p.str_at(&["starting_after"]) {
            None => 0,
            Some(after) => {
                invoices
                    .iter()
                    .position(|i| i.id == after)
                    .ok_or_else(|| missing("invoice", after, Some("starting_after")))?
                    + 1
            }
        };
        let rest = &invoices[start..];
        let page: Vec<Value> = rest.iter().take(limit).map(|i| self.invoice_json(i)).collect();
        Ok(Reply::ok(json!({ "object": "list", "data": page, "has_more": rest.len() > limit, "url": "/v1/invoices" })))
    }

    pub fn invoices_of_account(&self, account: &Acct) -> Vec<Value> {
        of_account(&self.invoices, account, |i| i.seq).into_iter().map(|i| self.invoice_json(i)).collect()
    }

    /// What the hosted invoice page and its PDF show; `None` for no such invoice (or a draft,
    /// which has no page yet).
    pub fn invoice_for_page(&self, id: &str) -> Option<InvoicePage> {
        let i = self.invoices.get(id).filter(|i| i.status != InvoiceStatus::Draft)?;
        Some(InvoicePage {
            number: i.number.clone().unwrap_or_default(),
            status: i.status.as_str(),
            amount: i.total(),
            currency: i.currency.clone(),
            lines: i.lines.iter().map(|l| (l.name.clone(), l.quantity, l.amount())).collect(),
        })
    }
}

/// An invoice as its hosted page shows it.
#[derive(Debug, Clone)]
pub struct InvoicePage {
    pub number: String,
    pub status: &'static str,
    /// Minor units.
    pub amount: i64,
    pub currency: String,
    /// Name, quantity, amount (minor units).
    pub lines: Vec<(String, i64, i64)>,
}

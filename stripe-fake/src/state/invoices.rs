//! Invoices: the paid invoice a `payment` Checkout Session makes when it was created with
//! `invoice_creation[enabled]=true` (Stripe's post-payment invoice, emailed to the customer as
//! the receipt), its hosted page and PDF, and `GET /v1/invoices/{id}`.

use serde_json::{Value, json};

use super::{Acct, R, Reply, State, now_s, of_account, owned, random_id};

/// A line as the session's line items had it.
#[derive(Debug, Clone)]
pub(super) struct InvoiceLine {
    pub(super) name: String,
    pub(super) unit_amount: i64,
    pub(super) quantity: i64,
}

#[derive(Debug, Clone)]
pub(super) struct Invoice {
    seq: u64,
    pub(super) id: String,
    pub(super) account: Acct,
    created: i64,
    /// The account's `<prefix>-<count>`, as Stripe numbers an account's invoices.
    number: String,
    pub(super) customer: Option<String>,
    pub(super) currency: String,
    pub(super) amount: i64,
    pub(super) lines: Vec<InvoiceLine>,
    /// `open` once finalized, `paid` once its payment is applied: a Checkout invoice is both at
    /// once, its two events in that order.
    status: &'static str,
    paid_at: Option<i64>,
}

owned_by_account_field!(Invoice);

/// What a session's payment hands the invoice.
pub(super) struct PaidPurchase {
    pub(super) account: Acct,
    pub(super) customer: Option<String>,
    pub(super) currency: String,
    pub(super) amount: i64,
    pub(super) lines: Vec<InvoiceLine>,
}

impl State {
    /// Where the customer reads an invoice: its hosted page, and its PDF.
    pub fn hosted_invoice_url(&self, id: &str) -> String {
        format!("{}/i/{id}", self.base_url)
    }

    pub(super) fn invoice_json(&self, i: &Invoice) -> Value {
        let paid = i.status == "paid";
        let lines: Vec<Value> = i
            .lines
            .iter()
            .map(|l| {
                let amount = l.unit_amount * l.quantity;
                json!({
                    "id": random_id("il_", 24),
                    "object": "line_item",
                    "amount": amount,
                    "currency": i.currency,
                    "description": l.name,
                    "discount_amounts": [],
                    "discountable": true,
                    "discounts": [],
                    "invoice": i.id,
                    "livemode": false,
                    "metadata": {},
                    "parent": null,
                    "period": { "end": i.created, "start": i.created },
                    "pretax_credit_amounts": [],
                    "pricing": null,
                    "quantity": l.quantity,
                    "subtotal": amount,
                    "taxes": [],
                })
            })
            .collect();
        json!({
            "id": i.id,
            "object": "invoice",
            "account_country": "US",
            "account_name": null,
            "account_tax_ids": null,
            "amount_due": i.amount,
            "amount_overpaid": 0,
            "amount_paid": if paid { i.amount } else { 0 },
            "amount_remaining": if paid { 0 } else { i.amount },
            "amount_shipping": 0,
            "application": null,
            "attempt_count": 0,
            "attempted": paid,
            "auto_advance": false,
            "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null },
            "automatically_finalizes_at": null,
            "billing_reason": "manual",
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
            "description": null,
            "discounts": [],
            "due_date": null,
            "effective_at": i.created,
            "ending_balance": 0,
            "footer": null,
            "from_invoice": null,
            "hosted_invoice_url": self.hosted_invoice_url(&i.id),
            "invoice_pdf": format!("{}/pdf", self.hosted_invoice_url(&i.id)),
            "issuer": { "type": "self" },
            "last_finalization_error": null,
            "latest_revision": null,
            "lines": { "object": "list", "data": lines, "has_more": false, "url": format!("/v1/invoices/{}/lines", i.id) },
            "livemode": false,
            "metadata": {},
            "next_payment_attempt": null,
            "number": i.number,
            "on_behalf_of": null,
            "parent": null,
            "payment_settings": { "default_mandate": null, "payment_method_options": null, "payment_method_types": null },
            "period_end": i.created,
            "period_start": i.created,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": null,
            "rendering": null,
            "shipping_cost": null,
            "shipping_details": null,
            "starting_balance": 0,
            "statement_descriptor": null,
            "status": i.status,
            "status_transitions": {
                "finalized_at": i.created, "marked_uncollectible_at": null, "paid_at": i.paid_at, "voided_at": null,
            },
            "subtotal": i.amount,
            "subtotal_excluding_tax": i.amount,
            "test_clock": null,
            "threshold_reason": null,
            "total": i.amount,
            "total_discount_amounts": [],
            "total_excluding_tax": i.amount,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "webhooks_delivered_at": i.created,
        })
    }

    /// The session's payment succeeded: its invoice, finalized and paid at once, as Checkout
    /// makes it, with `invoice.finalized` then `invoice.paid`. Returns its id.
    pub(super) fn invoice_paid_purchase(&mut self, paid: PaidPurchase) -> String {
        let count = self.invoices.values().filter(|i| i.account == paid.account).count() + 1;
        let created = now_s();
        let mut invoice = Invoice {
            seq: self.next_seq(),
            id: random_id("in_", 24),
            number: format!("{}-{count:04}", random_id("", 8).to_uppercase()),
            account: paid.account,
            created,
            customer: paid.customer,
            currency: paid.currency,
            amount: paid.amount,
            lines: paid.lines,
            status: "open",
            paid_at: None,
        };
        let finalized = self.invoice_json(&invoice);
        self.emit("invoice.finalized", &invoice.account.clone(), finalized, None);
        invoice.status = "paid";
        invoice.paid_at = Some(created);
        let body = self.invoice_json(&invoice);
        self.emit("invoice.paid", &invoice.account.clone(), body, None);
        let id = invoice.id.clone();
        self.invoices.insert(id.clone(), invoice);
        id
    }

    /// `GET /v1/invoices/{id}`: only on the account it was made on.
    pub fn retrieve_invoice(&self, acct: &Acct, id: &str) -> R<Reply> {
        let i = owned(&self.invoices, acct, "invoice", id, None)?;
        Ok(Reply::ok(self.invoice_json(i)))
    }

    pub fn invoices_of_account(&self, account: &Acct) -> Vec<Value> {
        of_account(&self.invoices, account, |i| i.seq).into_iter().map(|i| self.invoice_json(i)).collect()
    }

    /// What the hosted invoice page and its PDF show; `None` for no such invoice.
    pub fn invoice_for_page(&self, id: &str) -> Option<InvoicePage> {
        let i = self.invoices.get(id)?;
        Some(InvoicePage {
            number: i.number.clone(),
            status: i.status,
            amount: i.amount,
            currency: i.currency.clone(),
            lines: i.lines.iter().map(|l| (l.name.clone(), l.quantity, l.unit_amount * l.quantity)).collect(),
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

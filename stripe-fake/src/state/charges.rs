//! Charges: what a succeeded PaymentIntent leaves, refunded and disputed against.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Acct, PaymentIntent, R, Reply, State, metadata_json, of_account, owned, random_id};

#[derive(Debug, Clone)]
pub(super) struct Charge {
    seq: u64,
    pub(super) id: String,
    pub(super) account: Acct,
    created: i64,
    pub(super) amount: i64,
    pub(super) amount_refunded: i64,
    pub(super) currency: String,
    customer: Option<String>,
    pub(super) payment_intent: String,
    payment_method: Option<String>,
    metadata: BTreeMap<String, String>,
    /// The dispute's id once the cardholder has disputed it (once: the fake keeps one per charge).
    pub(super) dispute: Option<String>,
}

owned_by_account_field!(Charge);

impl Charge {
    /// What is left to refund or dispute.
    pub(super) fn unrefunded(&self) -> i64 {
        self.amount - self.amount_refunded
    }
}

fn billing_details() -> Value {
    json!({ "address": null, "email": null, "name": null, "phone": null, "tax_id": null })
}

impl State {
    /// The PaymentIntent succeeds: it leaves a charge, its `latest_charge`.
    pub(super) fn succeed_payment_intent(&mut self, pi: &mut PaymentIntent) {
        let charge = Charge {
            seq: self.next_seq(),
            id: random_id("ch_", 24),
            account: pi.account.clone(),
            created: self.now(),
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

    pub(super) fn charge_json(&self, c: &Charge) -> Value {
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
            "receipt_url": self.receipt_url(&c.id),
            "refunded": c.amount_refunded == c.amount,
            "status": "succeeded",
        })
    }

    /// Where a charge's receipt is read (Stripe's `receipt_url`): a page of the fake's.
    pub fn receipt_url(&self, id: &str) -> String {
        format!("{}/receipts/payment/{id}", self.base_url)
    }

    /// What a charge's receipt page shows; `None` for no such charge.
    pub fn charge_for_page(&self, id: &str) -> Option<ReceiptPage> {
        let c = self.charges.get(id)?;
        Some(ReceiptPage {
            amount: c.amount,
            amount_refunded: c.amount_refunded,
            currency: c.currency.clone(),
            created: c.created,
        })
    }

    pub fn retrieve_charge(&self, acct: &Acct, id: &str) -> R<Reply> {
        let c = owned(&self.charges, acct, "charge", id, None)?;
        Ok(Reply::ok(self.charge_json(c)))
    }

    pub fn charges_of_account(&self, account: &Acct) -> Vec<Value> {
        of_account(&self.charges, account, |c| c.seq).into_iter().map(|c| self.charge_json(c)).collect()
    }
}

/// A charge as its receipt page shows it.
#[derive(Debug, Clone)]
pub struct ReceiptPage {
    /// Minor units.
    pub amount: i64,
    pub amount_refunded: i64,
    pub currency: String,
    /// Unix seconds.
    pub created: i64,
}

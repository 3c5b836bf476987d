//! Charges: what a succeeded PaymentIntent leaves, refunded and disputed against.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Acct, R, Reply, State, metadata_json, missing};

#[derive(Debug, Clone)]
pub(super) struct Charge {
    pub(super) seq: u64,
    pub(super) id: String,
    pub(super) account: Acct,
    pub(super) created: i64,
    pub(super) amount: i64,
    pub(super) amount_refunded: i64,
    pub(super) currency: String,
    pub(super) customer: Option<String>,
    pub(super) payment_intent: String,
    pub(super) payment_method: Option<String>,
    pub(super) metadata: BTreeMap<String, String>,
    /// The dispute's id once the cardholder has disputed it (once: the fake keeps one per charge).
    pub(super) dispute: Option<String>,
}

fn billing_details() -> Value {
    json!({ "address": null, "email": null, "name": null, "phone": null, "tax_id": null })
}

impl State {
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
            "receipt_url": null,
            "refunded": c.amount_refunded == c.amount,
            "status": "succeeded",
        })
    }

    pub fn retrieve_charge(&self, acct: &Acct, id: &str) -> R<Reply> {
        let c = self.charges.get(id).filter(|c| &c.account == acct).ok_or_else(|| missing("charge", id, None))?;
        Ok(Reply::ok(self.charge_json(c)))
    }

    pub fn charges_of_account(&self, account: &Acct) -> Vec<Value> {
        let mut v: Vec<_> = self.charges.values().filter(|c| &c.account == account).collect();
        v.sort_by_key(|c| c.seq);
        v.into_iter().map(|c| self.charge_json(c)).collect()
    }
}

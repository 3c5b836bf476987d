//! Disputes: chargebacks the control endpoint opens against a charge.

use serde_json::{Value, json};

use super::{Acct, R, State, invalid, missing, of_account, random_id};

/// How long a merchant has to answer a new dispute (`evidence_details.due_by`): Stripe's usual
/// window, so code that shows or acts on the deadline sees a realistic one.
pub const DISPUTE_RESPONSE_WINDOW_S: i64 = 7 * 24 * 60 * 60;

/// A chargeback opened by the cardholder's bank (control endpoint): waiting for a response until
/// the control endpoint closes it, won or lost.
#[derive(Debug, Clone)]
pub(super) struct Dispute {
    seq: u64,
    id: String,
    account: Acct,
    created: i64,
    amount: i64,
    currency: String,
    charge: String,
    payment_intent: String,
    reason: String,
    /// `needs_response` until closed: then `won` or `lost`.
    status: &'static str,
}

owned_by_account_field!(Dispute);

impl State {
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
            "status": d.status,
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
        let left = c.unrefunded();
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
            created: self.now(),
            amount,
            currency: c.currency,
            charge: c.id,
            payment_intent: c.payment_intent,
            reason: reason.unwrap_or("fraudulent").to_owned(),
            status: "needs_response",
        };
        self.charges.get_mut(charge_id).expect("found above").dispute = Some(dispute.id.clone());
        let body = Self::dispute_json(&dispute);
        let account = dispute.account.clone();
        self.disputes.insert(dispute.id.clone(), dispute);
        self.emit("charge.dispute.created", &account, body.clone(), None);
        Ok(body)
    }

    /// The bank decides an open dispute: won, it sends `charge.dispute.funds_reinstated` (the
    /// money is back) and then `charge.dispute.closed`; lost, only the latter. Both carry the
    /// dispute with its final status, `won` or `lost`. A dispute is closed once.
    pub fn close_dispute(&mut self, id: &str, won: bool) -> R<Value> {
        let d = self.disputes.get_mut(id).ok_or_else(|| missing("dispute", id, None))?;
        if d.status != "needs_response" {
            let message = format!("Dispute {id} is already closed ({}).", d.status);
            return Err(invalid(Some("dispute_already_closed"), &message, None));
        }
        d.status = if won { "won" } else { "lost" };
        let (body, account) = (Self::dispute_json(d), d.account.clone());
        if won {
            self.emit("charge.dispute.funds_reinstated", &account, body.clone(), None);
        }
        self.emit("charge.dispute.closed", &account, body.clone(), None);
        Ok(body)
    }

    /// Lists, for the control endpoints.
    pub fn disputes_of_account(&self, account: &Acct) -> Vec<Value> {
        of_account(&self.disputes, account, |d| d.seq).into_iter().map(Self::dispute_json).collect()
    }
}

//! Refunds of a charge, in full or in part.

use serde_json::{Value, json};

use super::{Acct, R, Reply, State, check_known_params, invalid, missing, owned, parse_amount, random_id};
use crate::form::Param;

#[derive(Debug, Clone)]
pub(super) struct Refund {
    id: String,
    account: Acct,
    created: i64,
    amount: i64,
    currency: String,
    charge: String,
    payment_intent: String,
}

owned_by_account_field!(Refund);

impl State {
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

    pub fn retrieve_refund(&self, acct: &Acct, id: &str) -> R<Reply> {
        let r = owned(&self.refunds, acct, "refund", id, None)?;
        Ok(Reply::ok(Self::refund_json(r)))
    }

    /// `POST /v1/refunds` (`charge` or `payment_intent`, optional `amount`).
    pub fn create_refund(&mut self, acct: &Acct, p: &Param) -> R<Reply> {
        check_known_params(p, &["amount", "charge", "expand", "metadata", "payment_intent", "reason"])?;
        let charge = match (p.str_at(&["charge"]), p.str_at(&["payment_intent"])) {
            (Some(ch), _) => owned(&self.charges, acct, "charge", ch, Some("charge"))?,
            (None, Some(pi)) => {
                let pi = owned(&self.payment_intents, acct, "payment_intent", pi, Some("payment_intent"))?;
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
        let left = c.unrefunded();
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
            created: self.now(),
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
}

//! PaymentIntents created through the API (off-session charges; the pay page makes its own) and
//! the outcome queued for the next one.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{
    Acct, R, Reply, State, bool_param, check_amount, check_known_params, doc_url, invalid, metadata_json, opt_string,
    owned, parse_amount, parse_currency, random_id, string_map,
};
use crate::form::Param;

/// What the next confirmed PaymentIntent does (control endpoint), else it succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextPaymentIntent {
    Succeed,
    /// `card_declined` with this `decline_code` (`generic_decline`, `insufficient_funds`...).
    Decline(String),
    AuthenticationRequired,
}

#[derive(Debug, Clone)]
pub(super) struct PaymentIntent {
    pub(super) id: String,
    pub(super) account: Acct,
    pub(super) created: i64,
    pub(super) amount: i64,
    pub(super) currency: String,
    pub(super) customer: Option<String>,
    pub(super) payment_method: Option<String>,
    pub(super) description: Option<String>,
    pub(super) metadata: BTreeMap<String, String>,
    pub(super) setup_future_usage: Option<String>,
    /// Stripe's status names.
    pub(super) status: &'static str,
    pub(super) latest_charge: Option<String>,
    pub(super) last_payment_error: Option<Value>,
}

owned_by_account_field!(PaymentIntent);

/// A card error a confirmation answers (HTTP 402), as Stripe words it.
pub(super) struct CardDecline {
    code: &'static str,
    /// The issuer's reason, for a `card_declined`.
    decline_code: Option<String>,
    message: &'static str,
    param: Option<&'static str>,
}

impl CardDecline {
    /// What a queued outcome makes of a confirmation: `None` is a success.
    pub(super) fn queued(outcome: NextPaymentIntent) -> Option<Self> {
        match outcome {
            NextPaymentIntent::Succeed => None,
            NextPaymentIntent::Decline(code) => Some(Self {
                code: "card_declined",
                decline_code: Some(code),
                message: "Your card was declined.",
                param: None,
            }),
            NextPaymentIntent::AuthenticationRequired => Some(Self {
                code: "authentication_required",
                decline_code: Some("authentication_required".to_owned()),
                message: "Your card was declined. This transaction requires authentication.",
                param: None,
            }),
        }
    }

    /// A card past its expiry month: `expired_card`, the code alone saying why (no `decline_code`).
    fn expired() -> Self {
        Self { code: "expired_card", decline_code: None, message: "Your card has expired.", param: Some("exp_month") }
    }

    fn error_json(&self) -> Value {
        let mut e =
            json!({ "type": "card_error", "code": self.code, "message": self.message, "doc_url": doc_url(self.code) });
        if let Some(decline_code) = &self.decline_code {
            e["decline_code"] = json!(decline_code);
        }
        if let Some(param) = self.param {
            e["param"] = json!(param);
        }
        e
    }
}

/// Stripe's refusal of a payment method that is not saved on the customer charged.
const NOT_ATTACHED: &str = "The provided PaymentMethod was previously used with a PaymentIntent without Customer attachment, shared with a connected account without Customer attachment, or was detached from a Customer. It may not be used again. To use a PaymentMethod multiple times, you must attach it to a Customer first.";

impl State {
    pub(super) fn payment_intent_json(&self, pi: &PaymentIntent) -> Value {
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

    /// `POST /v1/payment_intents`. A payment method charged with a customer must be saved on
    /// that customer. With `confirm=true` the next queued outcome decides; with none queued, a
    /// card past its expiry month is declined (`expired_card`) and any other succeeds. A
    /// decline or an authentication request answers 402 with the PaymentIntent in the error,
    /// as Stripe does, and is kept under the idempotency key.
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
        let customer = self.customer_param(acct, p)?;
        let payment_method = match p.str_at(&["payment_method"]) {
            Some(id) => {
                let pm = owned(&self.payment_methods, acct, "PaymentMethod", id, Some("payment_method"))?;
                if customer.is_some() && pm.customer != customer {
                    return Err(invalid(None, NOT_ATTACHED, Some("payment_method")));
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
            created: self.now(),
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
        match self.confirmation_outcome(&pi) {
            None => {
                self.succeed_payment_intent(&mut pi);
                let body = self.payment_intent_json(&pi);
                self.payment_intents.insert(pi.id.clone(), pi);
                self.emit("payment_intent.succeeded", acct, body.clone(), None);
                Ok(Reply::ok(body))
            }
            Some(decline) => Ok(self.decline_payment_intent(pi, &decline)),
        }
    }

    /// How a confirmation ends: as the next queued outcome says; with none queued, declined if
    /// the card has expired. `None` is a success.
    pub(super) fn confirmation_outcome(&mut self, pi: &PaymentIntent) -> Option<CardDecline> {
        if let Some(queued) = self.next_payment_intents.pop_front() {
            return CardDecline::queued(queued);
        }
        let card = pi.payment_method.as_ref().and_then(|pm| self.payment_methods.get(pm)).map(|pm| &pm.card);
        let month = self.this_month();
        card.is_some_and(|c| c.expired_in(month)).then(CardDecline::expired)
    }

    /// The confirmation failed: the PaymentIntent waits for another card, event
    /// `payment_intent.payment_failed`, and a 402 with the PaymentIntent in the error.
    fn decline_payment_intent(&mut self, pi: PaymentIntent, decline: &CardDecline) -> Reply {
        let error = self.decline_payment_intent_error(pi, decline);
        Reply { status: 402, body: json!({ "error": error }) }
    }

    /// The PaymentIntent waits for another card, event `payment_intent.payment_failed`; the
    /// card error Stripe answers, with the PaymentIntent in it.
    pub(super) fn decline_payment_intent_error(&mut self, mut pi: PaymentIntent, decline: &CardDecline) -> Value {
        let error_body = decline.error_json();
        pi.status = "requires_payment_method";
        pi.last_payment_error = Some(error_body.clone());
        let pi_body = self.payment_intent_json(&pi);
        let account = pi.account.clone();
        self.payment_intents.insert(pi.id.clone(), pi);
        self.emit("payment_intent.payment_failed", &account, pi_body.clone(), None);
        let mut error = error_body;
        error["payment_intent"] = pi_body;
        error
    }

    pub fn retrieve_payment_intent(&self, acct: &Acct, id: &str) -> R<Reply> {
        let pi = owned(&self.payment_intents, acct, "payment_intent", id, None)?;
        Ok(Reply::ok(self.payment_intent_json(pi)))
    }
}

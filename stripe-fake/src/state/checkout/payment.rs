//! A Checkout Session's payment: the pay page's view, paying, asynchronous payments that
//! settle later, and the control endpoint's view of the whole.

use serde_json::{Value, json};

use super::SessionStatus;
use crate::state::{Currency, Money, PaymentIntent, PaymentMethod, State, now_s, random_id};

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

impl State {
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
        Ok(self.emit_session(id, "checkout.session.completed"))
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
        Ok(self.emit_session(id, session_event))
    }
}

//! A Checkout Session's payment, or the card it saves: the pay page's view, paying, saving a
//! card, asynchronous payments that settle later, and the control endpoint's view of the whole.

use serde_json::{Value, json};

use super::{Mode, Purchase, Session, SessionStatus, SubscriptionPurchase};
use crate::state::invoices::{ChargeResult, InvoiceLine, NewInvoice, PaidPurchase};
use crate::state::subscriptions::NewSubscription;
use crate::state::{Card, Currency, Expand, Money, NextPaymentIntent, PaymentIntent, State, random_id};

/// What the pay page shows.
#[derive(Debug, Clone)]
pub struct PageSession {
    pub id: String,
    pub purpose: PagePurpose,
    pub open: bool,
    pub status: &'static str,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
}

/// What the customer is asked for.
#[derive(Debug, Clone)]
pub enum PagePurpose {
    /// An amount for the line items (`label`: their names).
    Pay { label: String, amount: PageAmount },
    /// A card to save, nothing charged now.
    SaveCard,
}

/// An amount as the pay page writes it.
#[derive(Debug, Clone)]
pub struct PageAmount {
    /// `None` only for a currency the shared domain doesn't know (the fake refuses those).
    pub money: Option<Money>,
    pub currency: String,
    pub minor: i64,
}

impl std::fmt::Display for PageAmount {
    /// `10.00 USD`, `1000 JPY`, `5.120 KWD`: the currency's own number of decimals.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.money {
            Some(m) => write!(f, "{} {}", m.format_major(), self.currency.to_uppercase()),
            None => write!(f, "{} {} (minor units)", self.minor, self.currency.to_uppercase()),
        }
    }
}

impl PageSession {
    /// What the page is about: the line items, or saving a card.
    pub fn label(&self) -> &str {
        match &self.purpose {
            PagePurpose::Pay { label, .. } => label,
            PagePurpose::SaveCard => "Save a card for later payments",
        }
    }
}

impl State {
    /// The pay page's view of a session: what it asks for, status, URLs.
    pub fn session_for_page(&self, id: &str) -> Option<PageSession> {
        let s = self.sessions.get(id)?;
        let purpose = match &s.mode {
            Mode::Payment(p) => {
                let currency = s.currency.clone().unwrap_or_default();
                let money = Currency::parse(&currency).ok().and_then(|c| Money::from_minor(p.amount_total, c).ok());
                PagePurpose::Pay {
                    label: p.line_items.iter().map(|li| li.name.as_str()).collect::<Vec<_>>().join(", "),
                    amount: PageAmount { money, currency, minor: p.amount_total },
                }
            }
            Mode::Setup { .. } => PagePurpose::SaveCard,
            Mode::Subscription(p) => {
                let currency = s.currency.clone().unwrap_or_default();
                let money = Currency::parse(&currency).ok().and_then(|c| Money::from_minor(p.amount_total, c).ok());
                let names: Vec<String> = p
                    .line_items
                    .iter()
                    .map(|(price, _)| {
                        let product = self.prices.get(price).and_then(|pr| self.product(&s.account, &pr.product));
                        product.map_or_else(|| price.clone(), |pr| pr.name.clone())
                    })
                    .collect();
                PagePurpose::Pay {
                    label: format!("{}, every month", names.join(", ")),
                    amount: PageAmount { money, currency, minor: p.amount_total },
                }
            }
        };
        Some(PageSession {
            id: s.id.clone(),
            purpose,
            open: s.status == SessionStatus::Open && self.now() < s.expires_at,
            status: s.status.as_str(),
            success_url: s.success_url.as_ref().map(|u| u.replace("{CHECKOUT_SESSION_ID}", &s.id)),
            cancel_url: s.cancel_url.clone(),
        })
    }

    /// The whole session as the control endpoint shows it: the API's JSON with its
    /// PaymentIntent or SetupIntent expanded, plus `fake`: its account, charge, saved payment
    /// method and SetupIntent.
    pub fn session_control_view(&self, id: &str) -> Option<Value> {
        let s = self.sessions.get(id)?;
        let mut v = self.session_json(s, &Expand::all(&["payment_intent", "setup_intent"]));
        v["fake"] = match &s.mode {
            Mode::Payment(p) => {
                let pi = p.payment_intent.as_ref().and_then(|pi| self.payment_intents.get(pi));
                json!({
                    "account": s.account,
                    "async_payment": p.async_payment,
                    "charge": pi.and_then(|pi| pi.latest_charge.clone()),
                    "payment_method": pi.and_then(|pi| pi.payment_method.clone()),
                    "setup_intent": null,
                })
            }
            Mode::Subscription(p) => json!({
                "account": s.account,
                "async_payment": false,
                "charge": null,
                "payment_method": p.subscription.as_ref().and_then(|id| self.subscriptions.get(id)).and_then(|sub| sub.default_payment_method.clone()),
                "setup_intent": null,
                "subscription": p.subscription,
            }),
            Mode::Setup { setup_intent } => json!({
                "account": s.account,
                "async_payment": false,
                "charge": null,
                "payment_method": self.setup_intents.get(setup_intent).and_then(|si| si.payment_method()),
                "setup_intent": setup_intent,
            }),
        };
        Some(v)
    }

    /// The session's purchase, to change; `Err` for a setup session, which has none.
    fn purchase_mut(&mut self, id: &str) -> Result<&mut Purchase, String> {
        let s = self.sessions.get_mut(id).ok_or_else(|| format!("no session {id}"))?;
        match &mut s.mode {
            Mode::Payment(p) => Ok(p),
            Mode::Setup { .. } => Err(format!("session {id} is in setup mode: it saves a card and takes no payment")),
            Mode::Subscription(_) => {
                Err(format!("session {id} is in subscription mode: its payment is its first invoice"))
            }
        }
    }

    pub fn set_async_payment(&mut self, id: &str) -> Result<(), String> {
        let status = self.sessions.get(id).ok_or_else(|| format!("no session {id}"))?.status;
        let purchase = self.purchase_mut(id)?;
        if status != SessionStatus::Open {
            return Err(format!("session {id} is {}", status.as_str()));
        }
        purchase.async_payment = true;
        Ok(())
    }

    /// The customer pays, or saves a card, on the pay page with `card` (by default Stripe's
    /// test Visa 4242): see [`State::pay_purchase`] and [`State::save_card`]. The card is
    /// taken as given, expired or not, so a test can make any card it needs.
    pub fn pay(&mut self, id: &str, card: Option<Card>) -> Result<Value, String> {
        let s = self.sessions.get(id).ok_or_else(|| format!("no session {id}"))?.clone();
        if s.status != SessionStatus::Open {
            return Err(format!("this checkout session is {}", s.status.as_str()));
        }
        if self.now() >= s.expires_at {
            return Err("this checkout session has expired".into());
        }
        let card = card.unwrap_or_default();
        card.check()?;
        match &s.mode {
            Mode::Payment(purchase) => Ok(self.pay_purchase(&s, purchase, card)),
            Mode::Setup { setup_intent } => Ok(self.save_card(&s, setup_intent, card)),
            Mode::Subscription(purchase) => self.start_subscription(&s, purchase, card),
        }
    }

    /// A `payment` session is paid: a card payment method (saved on the customer when
    /// `setup_future_usage` asked for it), a PaymentIntent and, unless the payment is
    /// asynchronous, a charge (and the invoice `invoice_creation` asked for); the session
    /// completes. Events: `payment_method.attached` (when the card is saved),
    /// `payment_intent.succeeded`, `invoice.finalized` and `invoice.paid` (not for an
    /// asynchronous payment; the last two with `invoice_creation`) and
    /// `checkout.session.completed`.
    fn pay_purchase(&mut self, s: &Session, purchase: &Purchase, card: Card) -> Value {
        let saved_on = purchase.setup_future_usage.as_ref().and(s.customer.clone());
        let saved = saved_on.is_some();
        let pm = self.new_payment_method(&s.account, saved_on, card);
        if saved {
            let body = Self::payment_method_json(&self.payment_methods[&pm]);
            self.emit("payment_method.attached", &s.account, body, None);
        }
        let mut pi = PaymentIntent {
            id: random_id("pi_", 24),
            account: s.account.clone(),
            created: self.now(),
            amount: purchase.amount_total,
            currency: s.currency.clone().expect("a payment session has the line items' currency"),
            customer: s.customer.clone(),
            payment_method: Some(pm),
            description: purchase.pi_description.clone(),
            metadata: purchase.pi_metadata.clone(),
            setup_future_usage: purchase.setup_future_usage.clone(),
            status: "processing",
            latest_charge: None,
            last_payment_error: None,
        };
        if !purchase.async_payment {
            self.succeed_payment_intent(&mut pi);
        }
        self.sessions.get_mut(&s.id).expect("the caller found the session").status = SessionStatus::Complete;
        let paid = pi.status == "succeeded";
        let p = self.purchase_mut(&s.id).expect("the caller found a payment session");
        p.payment_status = if paid { "paid" } else { "unpaid" };
        p.payment_intent = Some(pi.id.clone());
        let pi_body = self.payment_intent_json(&pi);
        self.payment_intents.insert(pi.id.clone(), pi);
        if paid {
            self.emit("payment_intent.succeeded", &s.account, pi_body, None);
            self.invoice_if_asked(&s.id);
        }
        self.emit_session(&s.id, "checkout.session.completed")
    }

    /// The session's payment succeeded: the paid invoice its `invoice_creation` asked for,
    /// named on the session (whose completing event then carries it).
    fn invoice_if_asked(&mut self, id: &str) {
        let now = self.now();
        let s = self.sessions.get(id).expect("the caller found the session");
        let Mode::Payment(p) = &s.mode else { return };
        if !p.invoice_creation || p.invoice.is_some() {
            return;
        }
        let paid = PaidPurchase {
            account: s.account.clone(),
            customer: s.customer.clone(),
            currency: s.currency.clone().expect("a payment session has the line items' currency"),
            lines: p
                .line_items
                .iter()
                .map(|l| InvoiceLine::checkout(l.name.clone(), l.unit_amount, l.quantity, now))
                .collect(),
        };
        let invoice = self.invoice_paid_purchase(paid);
        self.purchase_mut(id).expect("a payment session").invoice = Some(invoice);
    }

    /// A `setup` session saves the card: a payment method saved on the session's customer (if
    /// it has one), its SetupIntent succeeds with it, the session completes with nothing to
    /// pay. Events, in this order: `payment_method.attached` (only with a customer),
    /// `setup_intent.succeeded`, `checkout.session.completed`.
    fn save_card(&mut self, s: &Session, setup_intent: &str, card: Card) -> Value {
        let pm = self.new_payment_method(&s.account, s.customer.clone(), card);
        if s.customer.is_some() {
            let body = Self::payment_method_json(&self.payment_methods[&pm]);
            self.emit("payment_method.attached", &s.account, body, None);
        }
        self.succeed_setup_intent(setup_intent, pm);
        self.sessions.get_mut(&s.id).expect("the caller found the session").status = SessionStatus::Complete;
        self.emit_session(&s.id, "checkout.session.completed")
    }

    /// An asynchronous payment settles: `checkout.session.async_payment_succeeded` (with
    /// `payment_intent.succeeded`) or `..._failed` (with `payment_intent.payment_failed`).
    pub fn finish_async_payment(&mut self, id: &str, succeeded: bool) -> Result<Value, String> {
        let status = self.sessions.get(id).ok_or_else(|| format!("no session {id}"))?.status;
        let purchase = self.purchase_mut(id)?;
        let waiting =
            status == SessionStatus::Complete && purchase.payment_status == "unpaid" && purchase.async_payment;
        let pi_id = purchase.payment_intent.clone().filter(|_| waiting).ok_or_else(|| {
            format!("session {id} has no asynchronous payment waiting (make it async, then pay it, first)")
        })?;
        let mut pi = self.payment_intents.get(&pi_id).expect("sessions name their PaymentIntent").clone();
        if pi.status != "processing" {
            return Err(format!("the payment of session {id} has already settled"));
        }
        if succeeded {
            self.succeed_payment_intent(&mut pi);
            self.purchase_mut(id)?.payment_status = "paid";
        } else {
            pi.status = "requires_payment_method";
            pi.last_payment_error = Some(json!({
                "type": "invalid_request_error",
                "code": "payment_intent_payment_attempt_failed",
                "message": "The payment failed.",
            }));
        }
        let pi_body = self.payment_intent_json(&pi);
        let account = pi.account.clone();
        self.payment_intents.insert(pi.id.clone(), pi);
        let (pi_event, session_event) = if succeeded {
            ("payment_intent.succeeded", "checkout.session.async_payment_succeeded")
        } else {
            ("payment_intent.payment_failed", "checkout.session.async_payment_failed")
        };
        self.emit(pi_event, &account, pi_body, None);
        if succeeded {
            self.invoice_if_asked(id);
        }
        Ok(self.emit_session(id, session_event))
    }

    /// A `subscription` session is paid: the card is saved on the customer
    /// (`payment_method.attached`), the subscription starts (`customer.subscription.created`,
    /// active, anchored now, the card its default payment method), its first invoice
    /// (`subscription_create`) is made, finalized and paid (`invoice.created`,
    /// `invoice.finalized`, `payment_intent.succeeded`, `invoice.paid`,
    /// `invoice.payment_succeeded`), and the session completes (`checkout.session.completed`,
    /// naming the subscription and the invoice). A decline (the next queued outcome, an expired
    /// card) makes nothing and leaves the session open, as Checkout asks for another card.
    fn start_subscription(
        &mut self,
        s: &Session,
        purchase: &SubscriptionPurchase,
        card: Card,
    ) -> Result<Value, String> {
        let queued = self.next_payment_intents.pop_front();
        if let Some(outcome @ (NextPaymentIntent::Decline(_) | NextPaymentIntent::AuthenticationRequired)) = queued {
            return Err(format!("the card was declined ({outcome:?}): try another card"));
        }
        if card.expired_in(self.this_month()) {
            return Err("the card has expired: try another card".into());
        }
        let customer = s.customer.clone().expect("a subscription session has a customer");
        let currency = s.currency.clone().expect("a subscription session has its prices' currency");
        let pm = self.new_payment_method(&s.account, Some(customer.clone()), card);
        let body = Self::payment_method_json(&self.payment_methods[&pm]);
        self.emit("payment_method.attached", &s.account, body, None);
        let sub = self.new_subscription(NewSubscription {
            account: s.account.clone(),
            customer: customer.clone(),
            currency: currency.clone(),
            items: purchase.line_items.clone(),
            metadata: purchase.metadata.clone(),
            default_payment_method: pm,
        });
        let subscription = self.subscriptions[&sub].clone();
        let period = subscription.current_period();
        let lines = self.subscription_lines(&subscription, period);
        let invoice = self.new_invoice_quietly(NewInvoice {
            account: s.account.clone(),
            customer: Some(customer),
            currency,
            lines,
            billing_reason: "subscription_create",
            subscription: Some(sub.clone()),
            auto_advance: false,
            metadata: Default::default(),
            description: None,
            period: (period.0, period.0),
        });
        self.subscriptions.get_mut(&sub).expect("just made").latest_invoice = Some(invoice.clone());
        self.emit_subscription(&sub, "customer.subscription.created", None);
        self.emit_invoice(&invoice, "invoice.created", None);
        self.finalize_invoice(&invoice);
        // The card was judged above: this charge goes through.
        let charged = self.charge_invoice(&invoice, true);
        assert!(matches!(charged, Ok(ChargeResult::Paid)), "a forced charge with a default payment method is paid");
        let session = self.sessions.get_mut(&s.id).expect("the caller found the session");
        session.status = SessionStatus::Complete;
        if let Mode::Subscription(p) = &mut session.mode {
            p.subscription = Some(sub);
            p.invoice = Some(invoice);
        }
        Ok(self.emit_session(&s.id, "checkout.session.completed"))
    }
}

//! The webhook events the product acts on, read from a verified payload.
//!
//! Only the fields the product uses are read; everything else in Stripe's objects is ignored,
//! so a new field (or API version) never breaks the webhook. A field the product needs that is
//! missing or malformed is an error: the event is refused rather than half understood.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::gateway::PaymentStatus;
use super::ids::{AccountId, ChargeId, CheckoutId, CustomerId, InvoiceId, PaymentIntentId, PaymentMethodId};

/// Metadata keys the product writes on its Checkout Sessions (and, through
/// `payment_intent_data.metadata`, on their PaymentIntents and charges).
pub mod metadata {
    pub const WORKSPACE: &str = "workspace_id";
    pub const PARTNER: &str = "partner_id";
    pub const POINTS: &str = "points";
    pub const TOPUP_OPTION: &str = "topup_option_id";
    /// `checkout` for a Checkout Session's payment, `auto_topup` for an off-session one.
    pub const SOURCE: &str = "source";
    pub const SOURCE_CHECKOUT: &str = "checkout";
}

/// An event as Stripe sends it: the envelope, and the object by type.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub type_: String,
    pub livemode: bool,
    /// When it happened (unix s, Stripe's clock): a redelivery keeps it.
    pub created: i64,
    /// The connected account the event happened on (Connect webhooks); `None` for events of
    /// the platform's own account.
    pub account: Option<AccountId>,
    pub object: EventObject,
}

/// The `data.object` of the event types the product handles.
#[derive(Debug, Clone, PartialEq)]
pub enum EventObject {
    /// `checkout.session.completed | async_payment_succeeded | async_payment_failed | expired`.
    CheckoutSession(SessionObject),
    /// `payment_intent.succeeded | payment_failed`.
    PaymentIntent(PaymentIntentObject),
    /// `setup_intent.succeeded`: a card saved without a payment.
    SetupIntent(SetupIntentObject),
    /// `payment_method.attached | updated | automatically_updated`: a card's details, when it
    /// is saved and when they change (a new expiry from the card's network).
    PaymentMethod(PaymentMethodObject),
    /// `charge.refunded`.
    Charge(ChargeObject),
    /// `charge.dispute.created | funds_withdrawn | funds_reinstated | closed`, with what the
    /// event means for the disputed money.
    Dispute(DisputeObject, DisputeFunds),
    /// `account.application.deauthorized` (the object is the application: nothing in it is used).
    Deauthorized,
    /// Any other type: acknowledged and ignored.
    Other,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SessionObject {
    pub id: CheckoutId,
    #[serde(deserialize_with = "payment_status")]
    pub payment_status: PaymentStatus,
    #[serde(default)]
    pub payment_intent: Option<PaymentIntentId>,
    /// What the session charged, in the currency's minor unit: checked against the checkout
    /// record before anything is credited (absent: nothing is).
    #[serde(default)]
    pub amount_total: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    /// What the session was created with: never trusted over the checkout record, only a hint
    /// of which wallet to read with it.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The paid invoice Stripe made for the session (`invoice_creation[enabled]`), the receipt
    /// its top-up names. See [`lenient_id`].
    #[serde(default, deserialize_with = "lenient_id")]
    pub invoice: Option<InvoiceId>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PaymentIntentObject {
    pub id: PaymentIntentId,
    pub created: i64,
    pub status: String,
    /// In the currency's minor unit.
    pub amount: i64,
    /// What was actually paid (a succeeded PaymentIntent's), in the currency's minor unit.
    #[serde(default)]
    pub amount_received: Option<i64>,
    pub currency: String,
    #[serde(default)]
    pub last_payment_error: Option<PaymentError>,
    #[serde(default)]
    pub customer: Option<CustomerId>,
    #[serde(default)]
    pub payment_method: Option<PaymentMethodId>,
    #[serde(default)]
    pub setup_future_usage: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The charge a succeeded PaymentIntent made, whose receipt an off-session top-up names.
    /// See [`lenient_id`].
    #[serde(default, deserialize_with = "lenient_id")]
    pub latest_charge: Option<ChargeId>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SetupIntentObject {
    pub id: String,
    #[serde(default)]
    pub customer: Option<CustomerId>,
    #[serde(default)]
    pub payment_method: Option<PaymentMethodId>,
    /// `off_session` for a card saved to be charged later without the customer.
    #[serde(default)]
    pub usage: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PaymentMethodObject {
    pub id: PaymentMethodId,
    /// The customer it is attached to; `None` once detached.
    #[serde(default)]
    pub customer: Option<CustomerId>,
    /// A card's details; `None` for a payment method of another type.
    #[serde(default)]
    pub card: Option<CardObject>,
}

/// A card as Stripe describes it: never more of the number than its last 4.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CardObject {
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: u32,
}

/// Why a PaymentIntent's last attempt failed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PaymentError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
}

impl PaymentIntentObject {
    /// The bank's decline code if it gave one, else Stripe's error code.
    pub fn failure_code(&self) -> Option<&str> {
        let e = self.last_payment_error.as_ref()?;
        e.decline_code.as_deref().or(e.code.as_deref())
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChargeObject {
    pub id: ChargeId,
    #[serde(default)]
    pub payment_intent: Option<PaymentIntentId>,
    /// In the currency's minor unit, like every Stripe amount.
    pub amount: i64,
    pub amount_refunded: i64,
    pub currency: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DisputeObject {
    /// `dp_...` (or `du_...`).
    pub id: String,
    #[serde(default)]
    pub payment_intent: Option<PaymentIntentId>,
    pub amount: i64,
    pub currency: String,
    /// `warning_needs_response | warning_under_review | warning_closed | needs_response |
    /// under_review | won | lost`.
    pub status: String,
}

/// Where a dispute event leaves the disputed money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeFunds {
    /// With the cardholder: a chargeback opened (`created`, `funds_withdrawn`) or lost
    /// (`closed` with status `lost`).
    Withdrawn,
    /// Back with the merchant: the dispute was won (`closed` or `funds_reinstated` with status
    /// `won`).
    Reinstated,
    /// Never moved, or not by this event: an inquiry (`warning_*`: the bank asks, no money is
    /// withdrawn unless it becomes a chargeback, which sends `funds_withdrawn`), or a
    /// reinstatement of a dispute not won (Stripe reinstates what a partial refund had
    /// already returned).
    Untouched,
}

impl DisputeFunds {
    fn of(type_: &str, status: &str) -> DisputeFunds {
        let inquiry = status.starts_with("warning_");
        match (type_, status) {
            ("charge.dispute.created" | "charge.dispute.funds_withdrawn", _) if !inquiry => DisputeFunds::Withdrawn,
            ("charge.dispute.closed", "lost") => DisputeFunds::Withdrawn,
            ("charge.dispute.closed" | "charge.dispute.funds_reinstated", "won") => DisputeFunds::Reinstated,
            _ => DisputeFunds::Untouched,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the event can't be read: {0}")]
pub struct MalformedEvent(pub String);

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    type_: String,
    livemode: bool,
    created: i64,
    #[serde(default)]
    account: Option<AccountId>,
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    object: Value,
}

fn payment_status<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PaymentStatus, D::Error> {
    match String::deserialize(d)?.as_str() {
        "paid" => Ok(PaymentStatus::Paid),
        "unpaid" => Ok(PaymentStatus::Unpaid),
        "no_payment_required" => Ok(PaymentStatus::NoPaymentRequired),
        other => Err(serde::de::Error::custom(format!("unknown payment_status {other:?}"))),
    }
}

/// An id that only names a receipt: one that is not the id we expect (a `py_...` charge of
/// another payment method, an object expanded by some other integration's API version) is none,
/// rather than a refusal of the event. Crediting never depends on it, and a refused event would
/// be delivered again for days, its money uncredited.
fn lenient_id<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: for<'a> TryFrom<&'a str>,
{
    Ok(match Value::deserialize(d)? {
        Value::String(s) => T::try_from(s.as_str()).ok(),
        _ => None,
    })
}

fn object<T: for<'de> Deserialize<'de>>(type_: &str, v: Value) -> Result<T, MalformedEvent> {
    serde_path_to_error::deserialize(v).map_err(|e| MalformedEvent(format!("{type_}: data.object.{e}")))
}

impl Event {
    /// Reads a payload whose signature was verified.
    pub fn parse(payload: &[u8]) -> Result<Event, MalformedEvent> {
        let mut de = serde_json::Deserializer::from_slice(payload);
        let envelope: Envelope =
            serde_path_to_error::deserialize(&mut de).map_err(|e| MalformedEvent(e.to_string()))?;
        let Envelope { id, type_, livemode, created, account, data } = envelope;
        let object = match type_.as_str() {
            "checkout.session.completed"
            | "checkout.session.async_payment_succeeded"
            | "checkout.session.async_payment_failed"
            | "checkout.session.expired" => EventObject::CheckoutSession(object(&type_, data.object)?),
            "payment_intent.succeeded" | "payment_intent.payment_failed" => {
                EventObject::PaymentIntent(object(&type_, data.object)?)
            }
            "setup_intent.succeeded" => EventObject::SetupIntent(object(&type_, data.object)?),
            "payment_method.attached" | "payment_method.updated" | "payment_method.automatically_updated" => {
                EventObject::PaymentMethod(object(&type_, data.object)?)
            }
            "charge.refunded" => EventObject::Charge(object(&type_, data.object)?),
            "charge.dispute.created"
            | "charge.dispute.funds_withdrawn"
            | "charge.dispute.funds_reinstated"
            | "charge.dispute.closed" => {
                let dispute: DisputeObject = object(&type_, data.object)?;
                let funds = DisputeFunds::of(&type_, &dispute.status);
                EventObject::Dispute(dispute, funds)
            }
            "account.application.deauthorized" => EventObject::Deauthorized,
            _ => EventObject::Other,
        };
        Ok(Event { id, type_, livemode, created, account, object })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Result<Event, MalformedEvent> {
        Event::parse(v.to_string().as_bytes())
    }

    #[test]
    fn reads_a_completed_session() {
        let e = parse(json!({
            "id": "evt_1", "type": "checkout.session.completed", "livemode": false, "created": 1_777_000_000, "account": "acct_1",
            "data": { "object": { "id": "cs_test_1", "payment_status": "paid", "payment_intent": "pi_1",
                                  "amount_total": 1000, "anything": { "else": true } } }
        }))
        .unwrap();
        assert_eq!(e.account, Some(AccountId::parse("acct_1").unwrap()));
        let EventObject::CheckoutSession(s) = e.object else { panic!("{e:?}") };
        assert_eq!((s.id.as_str(), s.payment_status), ("cs_test_1", PaymentStatus::Paid));
        assert_eq!(s.payment_intent, Some(PaymentIntentId::parse("pi_1").unwrap()));
        assert_eq!((s.amount_total, s.currency), (Some(1000), None));
        assert_eq!(s.invoice, None);
    }

    #[test]
    fn reads_what_a_receipt_is_for() {
        let session = |invoice: Value| {
            let e = parse(json!({
                "id": "evt_1", "type": "checkout.session.completed", "livemode": false, "created": 1_777_000_000,
                "account": "acct_1",
                "data": { "object": { "id": "cs_test_1", "payment_status": "paid", "invoice": invoice } }
            }))
            .unwrap();
            let EventObject::CheckoutSession(s) = e.object else { panic!("{e:?}") };
            s.invoice
        };
        assert_eq!(session(json!("in_1Abc")), Some(InvoiceId::parse("in_1Abc").unwrap()));
        // Not an id we know: no receipt, and the event is still read.
        assert_eq!(session(json!(null)), None);
        assert_eq!(session(json!({ "id": "in_1Abc", "object": "invoice" })), None);
        assert_eq!(session(json!("pi_1")), None);
        let intent = |charge: Value| {
            let e = parse(json!({
                "id": "evt_2", "type": "payment_intent.succeeded", "livemode": false, "created": 1_777_000_000,
                "account": "acct_1",
                "data": { "object": { "id": "pi_1", "created": 1_777_000_000, "status": "succeeded", "amount": 500,
                                      "amount_received": 500, "currency": "usd", "latest_charge": charge } }
            }))
            .unwrap();
            let EventObject::PaymentIntent(pi) = e.object else { panic!("{e:?}") };
            pi.latest_charge
        };
        assert_eq!(intent(json!("ch_3Xyz")), Some(ChargeId::parse("ch_3Xyz").unwrap()));
        assert_eq!(intent(json!("py_3Xyz")), None);
        assert_eq!(intent(json!(null)), None);
    }

    #[test]
    fn reads_a_saved_card() {
        let e = parse(json!({
            "id": "evt_5", "type": "setup_intent.succeeded", "livemode": false, "created": 1_777_000_123,
            "account": "acct_1",
            "data": { "object": { "id": "seti_1", "object": "setup_intent", "customer": "cus_1",
                                  "payment_method": "pm_1", "usage": "off_session", "status": "succeeded",
                                  "metadata": { "workspace_id": "ws-1" } } }
        }))
        .unwrap();
        assert_eq!(e.created, 1_777_000_123);
        let EventObject::SetupIntent(si) = e.object else { panic!("{e:?}") };
        assert_eq!(si.customer, Some(CustomerId::parse("cus_1").unwrap()));
        assert_eq!(si.payment_method, Some(PaymentMethodId::parse("pm_1").unwrap()));
        assert_eq!(
            (si.usage.as_deref(), si.metadata.get("workspace_id").map(String::as_str)),
            (Some("off_session"), Some("ws-1"))
        );
    }

    #[test]
    fn reads_a_card() {
        let e = parse(json!({
            "id": "evt_6", "type": "payment_method.automatically_updated", "livemode": false, "created": 1_777_000_200,
            "account": "acct_1",
            "data": { "object": { "id": "pm_1", "object": "payment_method", "type": "card", "customer": "cus_1",
                                  "card": { "brand": "visa", "last4": "4242", "exp_month": 3, "exp_year": 2031,
                                            "funding": "credit" } } }
        }))
        .unwrap();
        let EventObject::PaymentMethod(pm) = e.object else { panic!("{e:?}") };
        assert_eq!((pm.id.as_str(), pm.customer.as_ref().map(CustomerId::as_str)), ("pm_1", Some("cus_1")));
        let card = pm.card.unwrap();
        assert_eq!(
            (card.brand.as_str(), card.last4.as_str(), card.exp_month, card.exp_year),
            ("visa", "4242", 3, 2031)
        );
    }

    #[test]
    fn a_dispute_event_says_where_the_money_is() {
        let funds = |type_: &str, status: &str| {
            let e = parse(json!({
                "id": "evt_1", "type": type_, "livemode": false, "created": 1_777_000_000, "account": "acct_1",
                "data": { "object": { "id": "dp_1", "payment_intent": "pi_1", "amount": 700, "currency": "usd",
                                      "status": status } }
            }))
            .unwrap();
            let EventObject::Dispute(d, funds) = e.object else { panic!("{type_}: {e:?}") };
            assert_eq!((d.id.as_str(), d.amount, d.status.as_str()), ("dp_1", 700, status));
            funds
        };
        use DisputeFunds::*;
        assert_eq!(funds("charge.dispute.created", "needs_response"), Withdrawn);
        assert_eq!(funds("charge.dispute.funds_withdrawn", "needs_response"), Withdrawn);
        assert_eq!(funds("charge.dispute.closed", "lost"), Withdrawn);
        assert_eq!(funds("charge.dispute.closed", "won"), Reinstated);
        assert_eq!(funds("charge.dispute.funds_reinstated", "won"), Reinstated);
        // An inquiry withdraws nothing; a reinstatement of a dispute not won gives nothing back.
        assert_eq!(funds("charge.dispute.created", "warning_needs_response"), Untouched);
        assert_eq!(funds("charge.dispute.closed", "warning_closed"), Untouched);
        assert_eq!(funds("charge.dispute.funds_reinstated", "under_review"), Untouched);
    }

    #[test]
    fn unknown_types_are_other_and_bad_objects_are_refused() {
        let other =
            parse(json!({ "id": "evt_2", "type": "customer.created", "livemode": true, "created": 1_777_000_000,
                                  "data": { "object": { "id": 7 } } }))
            .unwrap();
        assert_eq!((other.object, other.account), (EventObject::Other, None));
        let bad = parse(json!({ "id": "evt_3", "type": "charge.refunded", "livemode": false, "created": 1_777_000_000,
                                "data": { "object": { "id": "ch_1", "amount": "10" } } }))
        .unwrap_err();
        assert!(bad.0.contains("data.object.amount"), "{bad}");
        assert!(Event::parse(b"not json").is_err());
        let bad_status = parse(
            json!({ "id": "evt_4", "type": "checkout.session.expired", "livemode": false, "created": 1_777_000_000,
                                       "data": { "object": { "id": "cs_1", "payment_status": "maybe" } } }),
        );
        assert!(bad_status.is_err());
    }
}

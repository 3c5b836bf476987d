//! The webhook events the product acts on, read from a verified payload.
//!
//! Only the fields the product uses are read; everything else in Stripe's objects is ignored,
//! so a new field (or API version) never breaks the webhook. A field the product needs that is
//! missing or malformed is an error: the event is refused rather than half understood.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::gateway::PaymentStatus;
use super::ids::{
    AccountId, ChargeId, CheckoutId, CustomerId, InvoiceId, PaymentIntentId, PaymentMethodId, SubscriptionId,
};

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
    /// `customer.subscription.created | updated | deleted`: a plan billed in money changed. Only
    /// which subscription it is, is read: the handler reads the subscription as it is now, so
    /// events that come late or twice apply nothing stale.
    Subscription(SubscriptionObject),
    /// `invoice.paid | invoice.payment_failed`: a subscription's invoice was paid or not.
    Invoice(InvoiceObject),
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
    /// `payment`, `setup` or `subscription` (absent in an old payload: `payment`).
    #[serde(default)]
    pub mode: Option<String>,
    /// The subscription a completed session in subscription mode created.
    #[serde(default, deserialize_with = "lenient_id")]
    pub subscription: Option<SubscriptionId>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SubscriptionObject {
    pub id: SubscriptionId,
    /// What the product wrote on it (`subscription_data[metadata]`): which workspace, a hint
    /// checked against the stored subscription.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InvoiceObject {
    pub id: InvoiceId,
    /// The subscription it bills: `parent.subscription_details.subscription` in the API versions
    /// from 2025-03-31, `subscription` before them. `None`: an invoice of no subscription.
    #[serde(default, deserialize_with = "invoice_subscription", rename = "parent")]
    pub parent_subscription: Option<SubscriptionId>,
    #[serde(default, deserialize_with = "lenient_id")]
    pub subscription: Option<SubscriptionId>,
    /// `subscription_create`, `subscription_cycle`, `manual`...
    #[serde(default)]
    pub billing_reason: Option<String>,
}

impl InvoiceObject {
    /// The subscription the invoice bills, whichever API version wrote it.
    pub fn subscription(&self) -> Option<&SubscriptionId> {
        self.parent_subscription.as_ref().or(self.subscription.as_ref())
    }
}

/// `parent.subscription_details.subscription` of an invoice, when it is a subscription's id.
fn invoice_subscription<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SubscriptionId>, D::Error> {
    let parent = Value::deserialize(d)?;
    Ok(parent
        .get("subscription_details")
        .and_then(|x| x.get("subscription"))
        .and_then(Value::as_str)
        .and_then(|s| SubscriptionId::try_from(s).ok()))
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
            "customer.subscription.created" | "customer.subscription.updated" | "customer.subscription.deleted" => {
                EventObject::Subscription(object(&type_, data.object)?)
            }
            "invoice.paid" | "invoice.payment_failed" => EventObject::Invoice(object(&type_, data.object)?),
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

    /// A `customer.subscription.updated` as Stripe sends it from API version 2025-03-31: the
    /// period on the items, the old values in `previous_attributes`.
    #[test]
    fn reads_which_subscription_changed() {
        let e = parse(json!({
            "id": "evt_1QxSubUpdated", "object": "event", "api_version": "2026-09-30.endive", "type": "customer.subscription.updated",
            "livemode": false, "created": 1_777_000_000, "account": "acct_1", "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
            "data": {
                "object": {
                    "id": "sub_1QxPlanStarter0001", "object": "subscription", "status": "past_due",
                    "customer": "cus_QxWorkspace1", "billing_cycle_anchor": 1_754_935_036, "cancel_at_period_end": false,
                    "collection_method": "charge_automatically", "currency": "usd", "latest_invoice": "in_1QxFirst",
                    "items": { "object": "list", "has_more": false, "data": [{
                        "id": "si_QxItemStarter01", "object": "subscription_item", "quantity": 1,
                        "current_period_start": 1_757_613_436, "current_period_end": 1_760_205_436,
                        "price": { "id": "price_1QxStarter", "object": "price", "product": "plan_starter", "unit_amount": 5000,
                                   "currency": "usd", "recurring": { "interval": "month", "interval_count": 1 } }
                    }] },
                    "metadata": { "workspace_id": "ws-1" }
                },
                "previous_attributes": { "status": "active" }
            }
        }))
        .unwrap();
        let EventObject::Subscription(sub) = e.object else { panic!("{e:?}") };
        assert_eq!(sub.id, SubscriptionId::parse("sub_1QxPlanStarter0001").unwrap());
        assert_eq!(sub.metadata.get("workspace_id").map(String::as_str), Some("ws-1"));
        for type_ in ["customer.subscription.created", "customer.subscription.deleted"] {
            let e = parse(json!({ "id": "evt_2", "type": type_, "livemode": false, "created": 1, "account": "acct_1",
                                  "data": { "object": { "id": "sub_1", "object": "subscription" } } }))
            .unwrap();
            assert!(
                matches!(e.object, EventObject::Subscription(SubscriptionObject { ref id, .. }) if id.as_str() == "sub_1")
            );
        }
        let not_a_subscription =
            parse(json!({ "id": "evt_3", "type": "customer.subscription.updated", "livemode": false,
                                               "created": 1, "data": { "object": { "id": "cus_1" } } }));
        assert!(not_a_subscription.is_err());
    }

    /// `invoice.paid` and `invoice.payment_failed` name their subscription in
    /// `parent.subscription_details` from API version 2025-03-31, at the top level before it.
    #[test]
    fn reads_which_subscription_an_invoice_bills_in_either_shape() {
        let invoice = |type_: &str, object: Value| {
            let e = parse(json!({ "id": "evt_1", "type": type_, "livemode": false, "created": 1_777_000_000,
                                  "account": "acct_1", "data": { "object": object } }))
            .unwrap();
            let EventObject::Invoice(i) = e.object else { panic!("{e:?}") };
            i
        };
        let basil = invoice(
            "invoice.paid",
            json!({
                "id": "in_1QxCycleInvoice0001", "object": "invoice", "billing_reason": "subscription_cycle",
                "status": "paid", "amount_paid": 5000, "currency": "usd",
                "parent": { "type": "subscription_details", "quote_details": null,
                            "subscription_details": { "metadata": { "workspace_id": "ws-1" }, "subscription": "sub_1QxPlanStarter0001" } },
                "lines": { "object": "list", "data": [{ "id": "il_1", "object": "line_item", "amount": 5000,
                    "parent": { "type": "subscription_item_details", "invoice_item_details": null,
                                "subscription_item_details": { "invoice_item": null, "proration": false,
                                    "proration_details": { "credited_items": null },
                                    "subscription": "sub_1QxPlanStarter0001", "subscription_item": "si_QxItemStarter01" } } }] }
            }),
        );
        assert_eq!(basil.id, InvoiceId::parse("in_1QxCycleInvoice0001").unwrap());
        assert_eq!(basil.subscription().map(SubscriptionId::as_str), Some("sub_1QxPlanStarter0001"));
        assert_eq!(basil.billing_reason.as_deref(), Some("subscription_cycle"));
        let older = invoice(
            "invoice.payment_failed",
            json!({
                "id": "in_1Old", "object": "invoice", "billing_reason": "subscription_create", "status": "open",
                "subscription": "sub_1Old", "attempt_count": 1
            }),
        );
        assert_eq!(older.subscription().map(SubscriptionId::as_str), Some("sub_1Old"));
        // An invoice of no subscription (a quote's, a one-off), or one whose parent is null.
        let quote = invoice(
            "invoice.paid",
            json!({ "id": "in_2", "parent": { "type": "quote_details",
            "quote_details": { "quote": "qt_1" }, "subscription_details": null } }),
        );
        assert_eq!((quote.subscription(), quote.billing_reason.as_deref()), (None, None));
        assert_eq!(
            invoice("invoice.paid", json!({ "id": "in_3", "parent": null, "subscription": null })).subscription(),
            None
        );
        // Other invoice events are not read.
        let finalized = parse(json!({ "id": "evt_4", "type": "invoice.finalized", "livemode": false, "created": 1,
                                      "data": { "object": { "id": "in_3" } } }))
        .unwrap();
        assert_eq!(finalized.object, EventObject::Other);
    }

    #[test]
    fn reads_a_completed_subscription_session() {
        let e = parse(json!({
            "id": "evt_1", "type": "checkout.session.completed", "livemode": false, "created": 1_777_000_000, "account": "acct_1",
            "data": { "object": { "id": "cs_test_1", "object": "checkout.session", "mode": "subscription",
                                  "payment_status": "paid", "payment_intent": null, "amount_total": 1500, "currency": "usd",
                                  "subscription": "sub_1QxPlanStarter0001", "invoice": "in_1QxFirst",
                                  "metadata": { "workspace_id": "ws-1" } } }
        }))
        .unwrap();
        let EventObject::CheckoutSession(s) = e.object else { panic!("{e:?}") };
        assert_eq!((s.mode.as_deref(), s.payment_intent), (Some("subscription"), None));
        assert_eq!(s.subscription, Some(SubscriptionId::parse("sub_1QxPlanStarter0001").unwrap()));
        // An older payload without `mode`, and a payment session's null subscription.
        let e = parse(json!({ "id": "evt_2", "type": "checkout.session.completed", "livemode": false, "created": 1,
                              "data": { "object": { "id": "cs_test_2", "payment_status": "paid", "subscription": null } } }))
        .unwrap();
        let EventObject::CheckoutSession(s) = e.object else { panic!("{e:?}") };
        assert_eq!((s.mode, s.subscription), (None, None));
    }
}

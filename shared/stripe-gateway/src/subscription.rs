//! The gateway's words for plans billed in money: products and monthly prices on a partner's
//! connected account, a workspace's subscription and its items, and invoices charged now.
//!
//! The product decides what is charged (the domain's proration, never Stripe's per-second one):
//! every change of a subscription's items is made with `proration_behavior=none`, and what the
//! rest of a cycle costs is charged as one invoice item of the domain's amount.

use time::OffsetDateTime;

use super::gateway::Metadata;
use super::ids::{CustomerId, InvoiceId, PaymentMethodId, PriceId, SubscriptionId, SubscriptionItemId};
use domain::Money;

/// A monthly price of one of our products on a connected account. The product has an id of ours
/// (`product`, e.g. `plan_starter`, `addon_extra_member`: Stripe takes a product's id at
/// creation), created if missing and renamed to `product_name` if it was named otherwise; the
/// price is then created on it. Prices can't change in Stripe: a new amount is a new price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceSpec {
    /// Letters, digits, `_` and `-`, at most 64 characters.
    pub product: String,
    /// Shown on the Checkout page and on invoices: the partner's label.
    pub product_name: String,
    /// Per month (`recurring[interval]=month`).
    pub unit_amount: Money,
    pub metadata: Metadata,
}

/// A hosted Checkout Session in subscription mode: `customer`, one line item (`price`,
/// quantity 1), `subscription_data[metadata]` and the session's `metadata` both `metadata`.
/// Completing it creates the subscription (status `active` once its first invoice is paid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscriptionCheckout {
    pub customer: CustomerId,
    pub price: PriceId,
    /// Our reference for the session (Stripe allows 200 characters).
    pub client_reference_id: String,
    pub metadata: Metadata,
    pub success_url: String,
    pub cancel_url: String,
}

/// Stripe's subscription statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Unpaid => "unpaid",
            Self::Paused => "paused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Incomplete,
            Self::IncompleteExpired,
            Self::Trialing,
            Self::Active,
            Self::PastDue,
            Self::Canceled,
            Self::Unpaid,
            Self::Paused,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// One price on a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionItem {
    pub id: SubscriptionItemId,
    pub price: PriceId,
    /// The price's product (our id, as in [`PriceSpec::product`]).
    pub product: String,
    pub unit_amount: Money,
    pub quantity: u32,
    pub metadata: Metadata,
}

/// A subscription as Stripe holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub customer: CustomerId,
    pub status: SubscriptionStatus,
    /// The period paid (or being paid) for: `[start, end)`. Stripe's API versions from 2025-03-31
    /// hold it on each item; every item of a subscription shares it.
    pub current_period_start: OffsetDateTime,
    pub current_period_end: OffsetDateTime,
    /// When the billing periods are anchored (the day of the month they start on).
    pub billing_cycle_anchor: OffsetDateTime,
    /// Cancelled by the customer or the partner: it ends when the current period does.
    pub cancel_at_period_end: bool,
    /// Set once it has ended.
    pub ended_at: Option<OffsetDateTime>,
    pub default_payment_method: Option<PaymentMethodId>,
    pub latest_invoice: Option<InvoiceId>,
    pub items: Vec<SubscriptionItem>,
    pub metadata: Metadata,
}

/// One change of a subscription's items, made with `proration_behavior=none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemChange {
    /// A new item (`items[n][price]`, `items[n][quantity]`, `items[n][metadata]`).
    Add { price: PriceId, quantity: u32, metadata: Metadata },
    /// Another quantity on an item, and another price if `Some` (`items[n][id]`,
    /// `items[n][price]`, `items[n][quantity]`).
    Set { item: SubscriptionItemId, price: Option<PriceId>, quantity: u32 },
    /// Off the subscription (`items[n][id]`, `items[n][deleted]=true`): not on the next invoice.
    Remove { item: SubscriptionItemId },
}

/// A change of a subscription (`POST /v1/subscriptions/{id}`, `proration_behavior=none`): its
/// items, and whether it ends at the period's end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscriptionChange {
    pub items: Vec<ItemChange>,
    pub cancel_at_period_end: Option<bool>,
}

/// Something charged now, apart from the subscription's own invoices: an invoice of the
/// customer's for the subscription (`POST /v1/invoices`: `customer`, `subscription`,
/// `collection_method=charge_automatically`, `auto_advance=false`,
/// `pending_invoice_items_behavior=exclude`, `metadata`), one invoice item on it (`POST
/// /v1/invoiceitems`: `invoice`, `amount`, `currency`, `description`, `metadata`), then paid
/// (`POST /v1/invoices/{id}/pay`, with the subscription's default payment method). Each of the
/// three requests has its own idempotency key derived from the call's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceCharge {
    pub customer: CustomerId,
    pub subscription: SubscriptionId,
    /// Chargeable ([`Money::check_chargeable`]) by the caller's check.
    pub amount: Money,
    /// The invoice item's text: "Extra member x1, 15 of 30 days".
    pub description: String,
    /// On the invoice and its item.
    pub metadata: Metadata,
}

/// What a charge now came to. A decline is an outcome, not an error: the invoice stays open
/// (unpaid) and the caller changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvoiceOutcome {
    Paid {
        invoice: InvoiceId,
    },
    /// The card was declined (`code`: the decline code), or it needs the customer present
    /// (`code` = `authentication_required`). The open invoice is voided by the call, so it is
    /// never collected later.
    Declined {
        invoice: InvoiceId,
        code: String,
    },
}

/// Stripe's invoice statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceStatus {
    Draft,
    Open,
    Paid,
    Uncollectible,
    Void,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Open => "open",
            Self::Paid => "paid",
            Self::Uncollectible => "uncollectible",
            Self::Void => "void",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Draft, Self::Open, Self::Paid, Self::Uncollectible, Self::Void].into_iter().find(|x| x.as_str() == s)
    }
}

/// An invoice, as listed for a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub id: InvoiceId,
    pub number: Option<String>,
    pub status: InvoiceStatus,
    /// `subscription_create`, `subscription_cycle`, `subscription_update`, `manual`...
    pub billing_reason: Option<String>,
    pub subscription: Option<SubscriptionId>,
    pub total: Money,
    pub amount_paid: Money,
    pub amount_due: Money,
    pub created: OffsetDateTime,
    pub period_start: OffsetDateTime,
    pub period_end: OffsetDateTime,
    pub hosted_invoice_url: Option<String>,
    pub metadata: Metadata,
}

/// A page of a customer's invoices, newest first (`GET /v1/invoices?customer=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoicePage {
    pub invoices: Vec<Invoice>,
    pub has_more: bool,
}

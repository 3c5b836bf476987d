//! Plans billed in money: the plans a workspace may choose, its subscription, what a change of
//! plan or an add-on on the plan's bill charged, and its invoices.

use serde::Serialize;
use time::{Date, OffsetDateTime};

use billing::{
    AddonBilled, ChargedNow, Invoice, InvoicePage, PlanChanged, PlanOffers, Reply, SubscriptionCheckout,
    SubscriptionDetails,
};
use domain::{Money, PlanChange, PlanPayment, PlanSubscription};

use super::partners::PlanBody;
use super::workspaces::WorkspaceStateBody;
use super::{CycleBody, OwnedAddon, date, instant, reply};

/// The 201 of `POST /workspace/subscription`: send the customer to `url`.
#[derive(Serialize)]
struct SubscriptionCheckoutBody<'a> {
    plan: &'static str,
    url: &'a str,
    #[serde(serialize_with = "instant")]
    expires_at: OffsetDateTime,
}

pub fn subscription_checkout(c: &SubscriptionCheckout) -> Reply {
    reply(201, &SubscriptionCheckoutBody { plan: c.plan.as_str(), url: &c.url, expires_at: c.expires_at })
}

/// A workspace's subscription: its plan's price, the cycle paid for, whether it is paid.
#[derive(Serialize)]
pub struct SubscriptionBody<'a> {
    id: &'a str,
    plan_price: Money,
    cycle: CycleBody,
    /// `paid`, `past_due` (the cycle's invoice failed; the grace days run) or `unpaid` (paused).
    payment: &'static str,
    #[serde(serialize_with = "optional_date")]
    payment_failed_on: Option<Date>,
    cancel_at_cycle_end: bool,
    /// A cheaper plan chosen for the next cycle.
    next_plan: Option<&'static str>,
}

fn optional_date<S: serde::Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => date(d, s),
        None => s.serialize_none(),
    }
}

impl<'a> From<&'a PlanSubscription> for SubscriptionBody<'a> {
    fn from(s: &'a PlanSubscription) -> Self {
        let failed = match s.payment {
            PlanPayment::Paid => None,
            PlanPayment::PastDue { since } | PlanPayment::Unpaid { since } => Some(since),
        };
        Self {
            id: s.id.as_str(),
            plan_price: s.plan_price,
            cycle: CycleBody::between(s.cycle_start, s.cycle_end),
            payment: s.payment.as_str(),
            payment_failed_on: failed,
            cancel_at_cycle_end: s.cancel_at_cycle_end,
            next_plan: s.next_plan.map(|p| p.as_str()),
        }
    }
}

/// What choosing a plan now does.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ChangeBody {
    /// Its limits now; the difference for the rest of the cycle charged now.
    Upgrade { charge_now: Money, days_remaining: u32, days_in_cycle: u32 },
    /// Billed from the next invoice; its limits from `effective`.
    Downgrade {
        #[serde(serialize_with = "date")]
        effective: Date,
    },
}

impl From<&PlanChange> for ChangeBody {
    fn from(c: &PlanChange) -> Self {
        match c {
            PlanChange::Upgrade { charge } => Self::Upgrade {
                charge_now: charge.amount,
                days_remaining: charge.days_remaining,
                days_in_cycle: charge.days_in_cycle,
            },
            PlanChange::Downgrade { from } => Self::Downgrade { effective: *from },
        }
    }
}

#[derive(Serialize)]
struct PlanOfferBody<'a> {
    #[serde(flatten)]
    plan: PlanBody<'a>,
    current: bool,
    next: bool,
    change: Option<ChangeBody>,
}

/// `GET /workspace/plans`.
#[derive(Serialize)]
pub struct PlanOffersBody<'a> {
    data: Vec<PlanOfferBody<'a>>,
    subscription: Option<SubscriptionBody<'a>>,
}

impl<'a> From<&'a PlanOffers> for PlanOffersBody<'a> {
    fn from(o: &'a PlanOffers) -> Self {
        Self {
            data: o
                .plans
                .iter()
                .map(|p| PlanOfferBody {
                    plan: (&p.plan).into(),
                    current: p.current,
                    next: p.next,
                    change: p.change.as_ref().map(ChangeBody::from),
                })
                .collect(),
            subscription: o.subscription.as_ref().map(SubscriptionBody::from),
        }
    }
}

/// What was charged now for the rest of a cycle, and on which invoice.
#[derive(Serialize)]
struct ChargedBody<'a> {
    amount: Money,
    full_price: Money,
    days_remaining: u32,
    days_in_cycle: u32,
    /// `null` when nothing was charged (on the cycle's last day).
    invoice: Option<&'a str>,
}

impl<'a> From<&'a ChargedNow> for ChargedBody<'a> {
    fn from(c: &'a ChargedNow) -> Self {
        Self {
            amount: c.prorated.amount,
            full_price: c.prorated.full_price,
            days_remaining: c.prorated.days_remaining,
            days_in_cycle: c.prorated.days_in_cycle,
            invoice: c.invoice.as_ref().map(|i| i.as_str()),
        }
    }
}

#[derive(Serialize)]
struct PlanChangedBody<'a> {
    from: &'static str,
    to: &'static str,
    #[serde(serialize_with = "date")]
    effective: Date,
    charged: Option<ChargedBody<'a>>,
    workspace: WorkspaceStateBody<'a>,
}

/// `POST /workspace/plan`.
pub fn plan_changed(c: &PlanChanged) -> Reply {
    reply(
        200,
        &PlanChangedBody {
            from: c.from.as_str(),
            to: c.to.as_str(),
            effective: c.effective,
            charged: c.charged.as_ref().map(ChargedBody::from),
            workspace: (&c.after).into(),
        },
    )
}

#[derive(Serialize)]
struct AddonBilledBody<'a> {
    addon: OwnedAddon<'a>,
    charged: ChargedBody<'a>,
    cycle: CycleBody,
    workspace: WorkspaceStateBody<'a>,
}

/// The 201 of `POST /workspace/subscription/addons`.
pub fn addon_billed(a: &AddonBilled) -> Reply {
    reply(
        201,
        &AddonBilledBody {
            addon: (&a.addon).into(),
            charged: (&a.charged).into(),
            cycle: (&a.cycle).into(),
            workspace: (&a.after).into(),
        },
    )
}

#[derive(Serialize)]
struct NextInvoiceBody {
    #[serde(serialize_with = "date")]
    date: Date,
    amount: Money,
}

/// `GET /workspace/subscription` and `GET /partner/workspaces/{id}/subscription`.
#[derive(Serialize)]
pub struct SubscriptionDetailsBody<'a> {
    workspace_id: &'a str,
    plan: &'static str,
    subscription: SubscriptionBody<'a>,
    next_plan: PlanBody<'a>,
    /// `null`: the subscription ends with this cycle.
    next_invoice: Option<NextInvoiceBody>,
}

impl<'a> From<&'a SubscriptionDetails> for SubscriptionDetailsBody<'a> {
    fn from(d: &'a SubscriptionDetails) -> Self {
        Self {
            workspace_id: d.workspace.id.as_str(),
            plan: d.workspace.plan.as_str(),
            subscription: (&d.subscription).into(),
            next_plan: (&d.next_plan).into(),
            next_invoice: d.next_invoice.map(|(date, amount)| NextInvoiceBody { date, amount }),
        }
    }
}

/// `DELETE /workspace/subscription`: the subscription, ending with its cycle.
pub fn subscription_cancelled(d: &SubscriptionDetails) -> Reply {
    reply(200, &SubscriptionDetailsBody::from(d))
}

#[derive(Serialize)]
struct InvoiceBody<'a> {
    id: &'a str,
    number: Option<&'a str>,
    status: &'static str,
    billing_reason: Option<&'a str>,
    subscription: Option<&'a str>,
    total: Money,
    amount_paid: Money,
    amount_due: Money,
    #[serde(serialize_with = "instant")]
    created: OffsetDateTime,
    #[serde(serialize_with = "instant")]
    period_start: OffsetDateTime,
    #[serde(serialize_with = "instant")]
    period_end: OffsetDateTime,
    hosted_invoice_url: Option<&'a str>,
}

impl<'a> From<&'a Invoice> for InvoiceBody<'a> {
    fn from(i: &'a Invoice) -> Self {
        Self {
            id: i.id.as_str(),
            number: i.number.as_deref(),
            status: i.status.as_str(),
            billing_reason: i.billing_reason.as_deref(),
            subscription: i.subscription.as_ref().map(|s| s.as_str()),
            total: i.total,
            amount_paid: i.amount_paid,
            amount_due: i.amount_due,
            created: i.created,
            period_start: i.period_start,
            period_end: i.period_end,
            hosted_invoice_url: i.hosted_invoice_url.as_deref(),
        }
    }
}

/// `GET /workspace/invoices` and `GET /partner/workspaces/{id}/invoices`: a page, newest first;
/// `next_cursor` is the last invoice's id while Stripe has more.
#[derive(Serialize)]
pub struct InvoicesBody<'a> {
    data: Vec<InvoiceBody<'a>>,
    next_cursor: Option<&'a str>,
}

impl<'a> From<&'a InvoicePage> for InvoicesBody<'a> {
    fn from(p: &'a InvoicePage) -> Self {
        let next_cursor = if p.has_more { p.invoices.last().map(|i| i.id.as_str()) } else { None };
        Self { data: p.invoices.iter().map(InvoiceBody::from).collect(), next_cursor }
    }
}

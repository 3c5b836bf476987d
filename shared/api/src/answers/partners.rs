//! What a partner manages (its catalog, plans, top-up terms, wallet, Stripe account, events) and
//! what the platform sees of its partners; the checkouts both kinds of payer start.

use serde::Serialize;
use time::{Date, OffsetDateTime};

use billing::{
    BillingModeSet, CheckoutCreated, ManagersChanged, PartnerDetails, PartnerEvent, PartnerTopupTerms, PartnerWallet,
    Reply, TopupOffers,
};
use domain::{
    Balance, CreditRateTerms, Currency, Limits, Money, PartnerAddon, PartnerSettings, PartnerTopupOption, Plan, Points,
    WholesaleFloors, WorkspaceId,
};
use store::Listed;
use store::records::{BillingManagers, PartnerRef, PartnerStatus, StripeConnection};

use super::workspaces::{AutoRefillBody, ledger_page};
use super::{AddonOffer, EntryBody, Page, StatusBody, date, instant, optional_instant, reply};

/// An add-on as its partner manages it: its offer, with the platform's cost price.
#[derive(Serialize)]
pub struct PartnerAddonBody<'a> {
    #[serde(flatten)]
    offer: AddonOffer<'a>,
    cost_price: Money,
    enabled: bool,
}

impl<'a> From<&'a PartnerAddon> for PartnerAddonBody<'a> {
    fn from(a: &'a PartnerAddon) -> Self {
        Self { offer: a.into(), cost_price: a.code.cost_price(), enabled: a.enabled }
    }
}

pub fn partner_addon_set(a: &PartnerAddon) -> Reply {
    reply(200, &PartnerAddonBody::from(a))
}

#[derive(Serialize)]
pub struct PlanBody<'a> {
    id: &'static str,
    label: &'a str,
    limits: &'a Limits,
    monthly_price: Money,
}

impl<'a> From<&'a Plan> for PlanBody<'a> {
    fn from(p: &'a Plan) -> Self {
        Self { id: p.id.as_str(), label: &p.label, limits: &p.limits, monthly_price: p.monthly_price }
    }
}

pub fn plan_set(p: &Plan) -> Reply {
    reply(200, &PlanBody::from(p))
}

pub fn settings_set(s: &PartnerSettings) -> Reply {
    reply(200, s)
}

pub fn credit_rate_set(t: &CreditRateTerms) -> Reply {
    reply(200, t)
}

/// A top-up option as its partner manages it: exactly the fields `PUT /partner/topup-options`
/// takes, so a partner can send back what it read.
#[derive(Serialize)]
pub struct PartnerTopupBody<'a> {
    id: &'a str,
    label: &'a str,
    currency: Currency,
    amount_minor: i64,
    points: Points,
}

impl<'a> From<&'a PartnerTopupOption> for PartnerTopupBody<'a> {
    fn from(o: &'a PartnerTopupOption) -> Self {
        let amount = o.option.amount();
        Self {
            id: o.id.as_str(),
            label: o.option.label(),
            currency: amount.currency(),
            amount_minor: amount.amount_minor(),
            points: o.option.points(),
        }
    }
}

/// A top-up option on offer, as a workspace sees it: with the amount in major units for display
/// ("10.00" usd, "1000" jpy, "5.120" kwd).
#[derive(Serialize)]
struct TopupOfferBody<'a> {
    #[serde(flatten)]
    option: PartnerTopupBody<'a>,
    amount_major: String,
}

pub fn topup_options_set(options: &[PartnerTopupOption]) -> Reply {
    reply(200, &super::List::new(options.iter().map(PartnerTopupBody::from).collect()))
}

/// `GET /partner/topup-options`.
#[derive(Serialize)]
pub struct PartnerTopupTermsBody<'a> {
    data: Vec<PartnerTopupBody<'a>>,
    credit_rate: Option<&'a CreditRateTerms>,
    wholesale_floors: &'a WholesaleFloors,
}

impl<'a> From<&'a PartnerTopupTerms> for PartnerTopupTermsBody<'a> {
    fn from(t: &'a PartnerTopupTerms) -> Self {
        Self {
            data: t.options.iter().map(PartnerTopupBody::from).collect(),
            credit_rate: t.credit_rate.as_ref(),
            wholesale_floors: &t.floors,
        }
    }
}

/// `GET /workspace/topup-options`.
#[derive(Serialize)]
pub struct TopupOffersBody<'a> {
    credit_billing: bool,
    unit_name: &'a str,
    data: Vec<TopupOfferBody<'a>>,
    credit_rate: Option<&'a CreditRateTerms>,
}

impl<'a> From<&'a TopupOffers> for TopupOffersBody<'a> {
    fn from(t: &'a TopupOffers) -> Self {
        let offer = |o: &'a PartnerTopupOption| TopupOfferBody {
            option: o.into(),
            amount_major: o.option.amount().format_major(),
        };
        Self {
            credit_billing: t.credit_billing,
            unit_name: &t.unit_name,
            data: t.options.iter().map(offer).collect(),
            credit_rate: t.credit_rate.as_ref(),
        }
    }
}

/// A partner's listing entry of one of its workspaces: with its points, and why it is paused.
#[derive(Serialize)]
pub struct ListedBody<'a> {
    id: &'a str,
    name: &'a str,
    plan: &'static str,
    balance: Balance,
    #[serde(flatten)]
    status: StatusBody<'a>,
    #[serde(serialize_with = "date")]
    renews_on: Date,
    #[serde(serialize_with = "instant")]
    created_at: OffsetDateTime,
}

impl<'a> From<&'a Listed> for ListedBody<'a> {
    fn from(l: &'a Listed) -> Self {
        let ws = &l.workspace;
        Self {
            id: ws.id.as_str(),
            name: &ws.name,
            plan: ws.plan.as_str(),
            balance: l.balance,
            status: (&ws.status).into(),
            renews_on: ws.renews_on,
            created_at: ws.created_at,
        }
    }
}

/// A workspace's billing managers: the users its partner lets pay beside its admins.
#[derive(Serialize)]
pub struct ManagersBody<'a> {
    workspace_id: &'a str,
    managers: Vec<ManagerBody<'a>>,
}

#[derive(Serialize)]
struct ManagerBody<'a> {
    sub: &'a str,
    granted_by: &'a str,
    #[serde(serialize_with = "instant")]
    granted_at: OffsetDateTime,
}

impl<'a> ManagersBody<'a> {
    pub fn new(w: &'a WorkspaceId, m: &'a BillingManagers) -> Self {
        let managers = m
            .managers
            .iter()
            .map(|g| ManagerBody { sub: &g.sub, granted_by: &g.granted_by, granted_at: g.granted_at })
            .collect();
        Self { workspace_id: w.as_str(), managers }
    }
}

/// A grant: 201 when it gave access, 200 when the user held it already.
pub fn billing_granted(c: &ManagersChanged) -> Reply {
    reply(if c.changed { 201 } else { 200 }, &ManagersBody::new(&c.workspace, &c.managers))
}

pub fn billing_revoked(c: &ManagersChanged) -> Reply {
    reply(200, &ManagersBody::new(&c.workspace, &c.managers))
}

/// The partner's Stripe account as connected.
#[derive(Serialize)]
pub struct ConnectionBody<'a> {
    account: &'a str,
    livemode: bool,
    #[serde(serialize_with = "instant")]
    connected_at: OffsetDateTime,
    #[serde(serialize_with = "optional_instant")]
    deauthorized_at: Option<OffsetDateTime>,
}

impl<'a> From<&'a StripeConnection> for ConnectionBody<'a> {
    fn from(c: &'a StripeConnection) -> Self {
        Self {
            account: c.account.as_str(),
            livemode: c.livemode,
            connected_at: c.connected_at,
            deauthorized_at: c.deauthorized_at,
        }
    }
}

pub fn stripe_connected(c: &StripeConnection) -> Reply {
    reply(200, &ConnectionBody::from(c))
}

/// `GET /partner/stripe`: the connection, `null` if the partner has none.
#[derive(Serialize)]
pub struct StripeBody<'a> {
    connection: Option<ConnectionBody<'a>>,
}

impl<'a> StripeBody<'a> {
    pub fn new(connection: Option<&'a StripeConnection>) -> Self {
        Self { connection: connection.map(ConnectionBody::from) }
    }
}

/// One of a partner's events.
#[derive(Serialize)]
pub struct EventBody<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    workspace_id: Option<&'a str>,
    data: &'a serde_json::Value,
    created_at: &'a str,
}

impl<'a> From<&'a PartnerEvent> for EventBody<'a> {
    fn from(e: &'a PartnerEvent) -> Self {
        Self {
            id: &e.id,
            kind: &e.kind,
            workspace_id: e.workspace.as_deref(),
            data: &e.data,
            created_at: &e.created_at,
        }
    }
}

/// `GET /partner/wallet`.
#[derive(Serialize)]
pub struct PartnerWalletBody<'a> {
    partner_id: &'a str,
    currency: &'static str,
    balance: Balance,
    unfolded: Points,
    mode: &'static str,
    auto_refill: AutoRefillBody<'a>,
    ledger: Page<EntryBody<'a>>,
}

impl<'a> From<&'a PartnerWallet> for PartnerWalletBody<'a> {
    fn from(w: &'a PartnerWallet) -> Self {
        Self {
            partner_id: w.partner.as_str(),
            currency: w.currency.code(),
            balance: w.balance,
            unfolded: w.unfolded,
            mode: w.mode.as_str(),
            auto_refill: (&w.auto_refill).into(),
            ledger: ledger_page(&w.ledger),
        }
    }
}

/// A Checkout Session made: send the payer to `url`.
#[derive(Serialize)]
struct CheckoutBody<'a> {
    id: &'a str,
    url: &'a str,
    status: &'static str,
    points: Points,
    currency: Currency,
    amount_minor: i64,
    amount_major: String,
    topup_option_id: Option<&'a str>,
    #[serde(serialize_with = "instant")]
    expires_at: OffsetDateTime,
}

pub fn checkout_created(c: &CheckoutCreated) -> Reply {
    let record = &c.checkout;
    let body = CheckoutBody {
        id: record.id.as_str(),
        url: &c.url,
        status: record.status.as_str(),
        points: record.points,
        currency: record.amount.currency(),
        amount_minor: record.amount.amount_minor(),
        amount_major: record.amount.format_major(),
        topup_option_id: record.topup_option_id.as_ref().map(|o| o.as_str()),
        expires_at: c.expires_at,
    };
    reply(201, &body)
}

/// The platform's view of a partner: name, status (with the suspension's reason and time), terms
/// (the floors in force and whether they are the deployment's default), version, creation time.
#[derive(Serialize)]
pub struct PartnerBody<'a> {
    id: &'a str,
    name: &'a str,
    status: &'static str,
    suspension: Option<Suspension<'a>>,
    terms: Terms<'a>,
    version: u64,
    #[serde(serialize_with = "instant")]
    created_at: OffsetDateTime,
}

#[derive(Serialize)]
struct Suspension<'a> {
    reason: &'a str,
    #[serde(serialize_with = "instant")]
    suspended_at: OffsetDateTime,
}

#[derive(Serialize)]
struct Terms<'a> {
    wholesale_floors: &'a WholesaleFloors,
    default_floors: bool,
    billing_mode: &'static str,
}

impl<'a> From<&'a PartnerDetails> for PartnerBody<'a> {
    fn from(d: &'a PartnerDetails) -> Self {
        let profile = &d.profile;
        let suspension = match &profile.status {
            PartnerStatus::Active => None,
            PartnerStatus::Suspended { reason, at } => Some(Suspension { reason, suspended_at: *at }),
        };
        Self {
            id: profile.id.as_str(),
            name: &profile.name,
            status: profile.status.as_str(),
            suspension,
            terms: Terms {
                wholesale_floors: &d.floors,
                default_floors: profile.floors.is_none(),
                billing_mode: d.billing.mode.as_str(),
            },
            version: profile.version,
            created_at: profile.created_at,
        }
    }
}

pub fn partner_created(d: &PartnerDetails) -> Reply {
    reply(201, &PartnerBody::from(d))
}

pub fn partner_changed(d: &PartnerDetails) -> Reply {
    reply(200, &PartnerBody::from(d))
}

/// The platform's listing entry of a partner.
#[derive(Serialize)]
pub struct PartnerRefBody<'a> {
    id: &'a str,
    name: &'a str,
    status: &'a str,
    #[serde(serialize_with = "instant")]
    created_at: OffsetDateTime,
}

impl<'a> From<&'a PartnerRef> for PartnerRefBody<'a> {
    fn from(r: &'a PartnerRef) -> Self {
        Self { id: r.id.as_str(), name: &r.name, status: &r.status, created_at: r.created_at }
    }
}

/// `PUT /platform/partners/{id}/billing`.
#[derive(Serialize)]
struct BillingModeBody<'a> {
    partner_id: &'a str,
    mode: &'static str,
}

pub fn billing_mode_set(b: &BillingModeSet) -> Reply {
    reply(200, &BillingModeBody { partner_id: b.partner.as_str(), mode: b.mode.as_str() })
}

//! What a workspace is shown, and what its changes answer.

use serde::Serialize;
use time::{Date, OffsetDateTime};

use billing::{
    AddonAdded, CardSession, LabelledAddon, LedgerPage, Receipt, RefillState, RemovedCard, Reply, SavedCard,
    UsageRecorded, WorkspaceAddons, WorkspaceDetails, WorkspaceState,
};
use domain::{Balance, CardDetails, LedgerEntry, Limits, Money, Points, Usage, Workspace};

use super::{
    AddonOffer, CycleBody, EntryBody, OwnedAddon, Page, StatusBody, date, instant, named, optional_instant, reply,
};

/// `GET /workspace` and `GET /partner/workspaces/{id}`; the 201 of `POST /partner/workspaces`.
#[derive(Serialize)]
pub struct WorkspaceBody<'a> {
    id: &'a str,
    partner_id: &'a str,
    name: &'a str,
    plan: &'static str,
    cycle: CycleBody,
    #[serde(serialize_with = "date")]
    renews_on: Date,
    limits: &'a Limits,
    usage: &'a Usage,
    balance: Balance,
    addons: Vec<OwnedAddon<'a>>,
    auto_topup: AutoTopupBody<'a>,
    /// What the partner calls its points, for the workspace's screens.
    unit_name: &'a str,
    /// The partner's brand, for a white-label page: never the platform's.
    brand: BrandBody<'a>,
    #[serde(flatten)]
    status: StatusBody<'a>,
}

#[derive(Serialize)]
struct BrandBody<'a> {
    name: &'a str,
    logo_url: Option<&'a str>,
    primary_color: Option<&'a str>,
    accent_color: Option<&'a str>,
    embed_origins: &'a [String],
}

impl<'a> From<&'a WorkspaceDetails> for WorkspaceBody<'a> {
    fn from(d: &'a WorkspaceDetails) -> Self {
        let ws = &d.workspace;
        Self {
            id: ws.id.as_str(),
            partner_id: ws.partner.as_str(),
            name: &ws.name,
            plan: ws.plan.as_str(),
            cycle: (&d.cycle).into(),
            renews_on: ws.renews_on,
            limits: &d.limits,
            usage: &ws.usage,
            balance: d.balance,
            addons: d.addons.iter().map(OwnedAddon::from).collect(),
            auto_topup: AutoTopupBody::from(&d.auto_topup),
            unit_name: &d.unit_name,
            brand: BrandBody {
                name: &d.brand.name,
                logo_url: d.brand.brand.logo_url.as_deref(),
                primary_color: d.brand.brand.primary_color.as_deref(),
                accent_color: d.brand.brand.accent_color.as_deref(),
                embed_origins: &d.brand.brand.embed_origins,
            },
            status: (&ws.status).into(),
        }
    }
}

pub fn workspace_created(d: &WorkspaceDetails) -> Reply {
    reply(201, &WorkspaceBody::from(d))
}

/// A refill setting as its payer sees it: what the workspace's auto top-up and the partner
/// wallet's auto-refill share.
#[derive(Serialize)]
struct RefillBody<'a> {
    enabled: bool,
    card_saved: bool,
    consecutive_failures: u32,
    last_failure: Option<FailureBody<'a>>,
    #[serde(serialize_with = "optional_instant")]
    next_attempt_after: Option<OffsetDateTime>,
    disabled_reason: Option<&'a str>,
    payment_pending: bool,
    threshold: Option<Points>,
    monthly_cap: Option<Money>,
    spent_this_month: Option<Money>,
}

#[derive(Serialize)]
struct FailureBody<'a> {
    code: &'a str,
    #[serde(serialize_with = "instant")]
    at: OffsetDateTime,
}

impl<'a> From<&'a RefillState> for RefillBody<'a> {
    fn from(r: &'a RefillState) -> Self {
        let a = &r.setting;
        Self {
            enabled: a.enabled,
            card_saved: r.card_saved,
            consecutive_failures: a.consecutive_failures,
            last_failure: a.last_failure.as_ref().map(|f| FailureBody { code: &f.code, at: f.at }),
            next_attempt_after: a.next_attempt_after,
            disabled_reason: a.disabled_reason.as_deref(),
            payment_pending: a.in_flight.as_ref().is_some_and(|f| f.payment_intent.is_some()),
            threshold: a.threshold,
            monthly_cap: a.monthly_cap,
            spent_this_month: r.spent_this_month,
        }
    }
}

/// A workspace's auto top-up: the refill and the top-up option it buys.
#[derive(Serialize)]
pub struct AutoTopupBody<'a> {
    #[serde(flatten)]
    refill: RefillBody<'a>,
    topup_option_id: Option<&'a str>,
    points: Option<Points>,
}

impl<'a> From<&'a RefillState> for AutoTopupBody<'a> {
    fn from(r: &'a RefillState) -> Self {
        let s = &r.setting;
        Self { refill: r.into(), topup_option_id: s.option.as_ref().map(|o| o.as_str()), points: s.points }
    }
}

pub fn auto_topup_set(r: &RefillState) -> Reply {
    reply(200, &AutoTopupBody::from(r))
}

/// The partner wallet's auto-refill: the refill and what one refill buys.
#[derive(Serialize)]
pub struct AutoRefillBody<'a> {
    #[serde(flatten)]
    refill: RefillBody<'a>,
    amount: Option<Money>,
}

impl<'a> From<&'a RefillState> for AutoRefillBody<'a> {
    fn from(r: &'a RefillState) -> Self {
        Self { refill: r.into(), amount: r.amount }
    }
}

pub fn auto_refill_set(r: &RefillState) -> Reply {
    reply(200, &AutoRefillBody::from(r))
}

/// `GET /workspace/addons`: what the workspace may buy, and what it holds.
#[derive(Serialize)]
pub struct WorkspaceAddonsBody<'a> {
    available: Vec<AddonOffer<'a>>,
    owned: Vec<OwnedAddon<'a>>,
}

impl<'a> From<&'a WorkspaceAddons> for WorkspaceAddonsBody<'a> {
    fn from(a: &'a WorkspaceAddons) -> Self {
        Self {
            available: a.offers.iter().map(AddonOffer::from).collect(),
            owned: a.owned.iter().map(OwnedAddon::from).collect(),
        }
    }
}

/// A workspace's plan, effective limits, usage and status: what its changes and its
/// entitlements show.
#[derive(Serialize)]
struct Standing<'a> {
    plan: &'static str,
    limits: &'a Limits,
    usage: &'a Usage,
    #[serde(flatten)]
    status: StatusBody<'a>,
}

impl<'a> From<&'a WorkspaceState> for Standing<'a> {
    fn from(s: &'a WorkspaceState) -> Self {
        let ws: &Workspace = &s.workspace;
        Self { plan: ws.plan.as_str(), limits: &s.limits, usage: &ws.usage, status: (&ws.status).into() }
    }
}

/// A workspace after a change.
#[derive(Serialize)]
pub struct WorkspaceStateBody<'a> {
    id: &'a str,
    #[serde(flatten)]
    standing: Standing<'a>,
}

impl<'a> From<&'a WorkspaceState> for WorkspaceStateBody<'a> {
    fn from(s: &'a WorkspaceState) -> Self {
        Self { id: s.workspace.id.as_str(), standing: s.into() }
    }
}

/// `{"workspace": {...}}`: what a change of plan, usage counts or add-ons answers.
pub fn workspace_changed(s: &WorkspaceState) -> Reply {
    named(200, "workspace", WorkspaceStateBody::from(s))
}

/// `GET /platform/workspaces/{id}/entitlements`.
#[derive(Serialize)]
pub struct EntitlementsBody<'a> {
    workspace_id: &'a str,
    paused: bool,
    #[serde(flatten)]
    standing: Standing<'a>,
}

impl<'a> From<&'a WorkspaceState> for EntitlementsBody<'a> {
    fn from(s: &'a WorkspaceState) -> Self {
        Self { workspace_id: s.workspace.id.as_str(), paused: s.workspace.status.is_paused(), standing: s.into() }
    }
}

/// `POST /workspace/addons` and the partner's grant.
#[derive(Serialize)]
struct AddonAddedBody<'a> {
    addon: OwnedAddon<'a>,
    charged: Points,
    full_price: Points,
    days_remaining: u32,
    days_in_cycle: u32,
    cycle: CycleBody,
    balance: Balance,
    ledger_entry: String,
    workspace: WorkspaceStateBody<'a>,
}

pub fn addon_added(a: &AddonAdded) -> Reply {
    reply(
        201,
        &AddonAddedBody {
            addon: (&a.addon).into(),
            charged: a.charged,
            full_price: a.prorated.full_price(),
            days_remaining: a.prorated.days_remaining(),
            days_in_cycle: a.prorated.days_in_cycle(),
            cycle: (&a.cycle).into(),
            balance: a.entry.balance_after,
            ledger_entry: a.entry.id.to_string(),
            workspace: (&a.after).into(),
        },
    )
}

/// `{"addon": {...}}`: an add-on the workspace cancelled.
pub fn addon_cancelled(a: &LabelledAddon) -> Reply {
    named(200, "addon", OwnedAddon::from(a))
}

/// A change of points by hand (a partner's to a workspace, the platform's to a partner wallet):
/// the entry and the balance after it.
#[derive(Serialize)]
struct Adjusted<'a> {
    entry: EntryBody<'a>,
    balance: Balance,
}

pub fn points_adjusted(e: &LedgerEntry) -> Reply {
    reply(201, &Adjusted { entry: EntryBody::new(e), balance: e.balance_after })
}

/// A page of one wallet's ledger.
pub fn ledger_page(page: &LedgerPage) -> Page<EntryBody<'_>> {
    Page::of(page, EntryBody::new)
}

/// A page of a partner's ledger across its workspaces: each entry names its workspace.
pub fn partner_ledger_page(page: &LedgerPage) -> Page<EntryBody<'_>> {
    Page::of(page, EntryBody::naming_workspace)
}

/// `POST /platform/usage`.
#[derive(Serialize)]
struct UsageBody<'a> {
    event_id: &'a str,
    workspace_id: &'a str,
    meter: &'a str,
    quantity: domain::UsageQuantity,
    wholesale: Wholesale,
    rebilled: bool,
    workspace_charge: Option<UsageChargeBody>,
}

#[derive(Serialize)]
struct Wholesale {
    amount: Points,
    currency: &'static str,
}

#[derive(Serialize)]
struct UsageChargeBody {
    rate: domain::UnitRate,
    points: Points,
    balance: Balance,
    ledger_entry: String,
}

pub fn usage_recorded(u: &UsageRecorded) -> Reply {
    let e = &u.event;
    let charge = u.workspace_charge.as_ref().map(|c| UsageChargeBody {
        rate: c.rate,
        points: c.points,
        balance: c.entry.balance_after,
        ledger_entry: c.entry.id.to_string(),
    });
    let body = UsageBody {
        event_id: &e.event_id,
        workspace_id: e.workspace_id.as_str(),
        meter: e.meter.as_str(),
        quantity: e.quantity,
        wholesale: Wholesale { amount: u.wholesale, currency: u.currency.code() },
        rebilled: charge.is_some(),
        workspace_charge: charge,
    };
    reply(200, &body)
}

/// `GET /platform/workspaces/{id}/access?meter=`: the answer when the workspace may.
#[derive(Serialize)]
pub struct AccessBody<'a> {
    allowed: bool,
    workspace_id: &'a str,
    meter: &'a str,
}

impl<'a> AccessBody<'a> {
    pub fn allowed(workspace: &'a domain::WorkspaceId, meter: &'a domain::MeterCode) -> Self {
        Self { allowed: true, workspace_id: workspace.as_str(), meter: meter.as_str() }
    }
}

/// `PUT /partner/workspaces/{id}/rebilling`.
#[derive(Serialize)]
struct RebillingBody<'a> {
    workspace_id: &'a str,
    rebilling: &'a domain::Rebilling,
}

pub fn rebilling_set(ws: &Workspace) -> Reply {
    reply(200, &RebillingBody { workspace_id: ws.id.as_str(), rebilling: &ws.rebilling })
}

/// `GET /workspace/card` and `GET /partner/wallet/card`: the saved card, or `null`.
#[derive(Serialize)]
pub struct CardBody<'a> {
    card: Option<CardView<'a>>,
}

impl<'a> From<Option<&'a SavedCard>> for CardBody<'a> {
    fn from(card: Option<&'a SavedCard>) -> Self {
        Self { card: card.map(CardView::from) }
    }
}

/// A saved card as its owner sees it: never more of the number than its last 4. The details
/// are `null` for a card saved before they were kept.
#[derive(Serialize)]
struct CardView<'a> {
    brand: Option<&'a str>,
    last4: Option<&'a str>,
    exp_month: Option<u32>,
    exp_year: Option<u32>,
    /// It lapses before the wallet needs it: before the next renewal, or within a month, while
    /// auto top-up is on.
    expiring: bool,
}

impl<'a> From<&'a SavedCard> for CardView<'a> {
    fn from(c: &'a SavedCard) -> Self {
        let d = c.details.as_ref();
        Self {
            brand: d.map(CardDetails::brand),
            last4: d.map(CardDetails::last4),
            exp_month: d.map(CardDetails::exp_month),
            exp_year: d.map(CardDetails::exp_year),
            expiring: c.expiring,
        }
    }
}

/// `POST /workspace/card`, `POST /partner/wallet/card`: the page where the card is saved.
#[derive(Serialize)]
struct CardSessionBody<'a> {
    id: &'a str,
    url: &'a str,
    #[serde(serialize_with = "instant")]
    expires_at: OffsetDateTime,
}

pub fn card_session_created(s: &CardSession) -> Reply {
    reply(201, &CardSessionBody { id: s.checkout.as_str(), url: &s.url, expires_at: s.expires_at })
}

/// `DELETE /workspace/card`, `DELETE /partner/wallet/card`.
#[derive(Serialize)]
struct CardRemovedBody<'a> {
    removed: CardView<'a>,
    auto_topup_turned_off: bool,
}

pub fn card_removed(r: &RemovedCard) -> Reply {
    reply(200, &CardRemovedBody { removed: CardView::from(&r.removed), auto_topup_turned_off: r.auto_topup_turned_off })
}

/// `GET /workspace/receipts/{id}` and `GET /partner/wallet/receipts/{id}`: where Stripe serves
/// the receipt of a top-up now.
#[derive(Serialize)]
pub struct ReceiptBody<'a> {
    receipt: ReceiptView<'a>,
}

#[derive(Serialize)]
struct ReceiptView<'a> {
    /// The invoice (`in_...`) or the charge (`ch_...`) the top-up's ledger entry names.
    id: &'a str,
    url: &'a str,
    pdf: Option<&'a str>,
}

impl<'a> From<&'a Receipt> for ReceiptBody<'a> {
    fn from(r: &'a Receipt) -> Self {
        Self { receipt: ReceiptView { id: r.id.as_str(), url: &r.url, pdf: r.pdf.as_deref() } }
    }
}

/// `GET /workspace/addons/quote`: the price before the purchase.
#[derive(Serialize)]
pub struct AddonQuoteBody<'a> {
    addon: &'a str,
    label: &'a str,
    quantity: u32,
    unit_points: Points,
    /// Debited now: the rest of this cycle.
    now: Points,
    /// Each month after this one.
    per_month: Points,
    days_remaining: u32,
    days_in_cycle: u32,
    cycle: CycleBody,
    balance: Balance,
    balance_after: Option<Balance>,
    enough_points: bool,
    limits_after: &'a Limits,
    status_after: StatusBody<'a>,
}

impl<'a> From<&'a billing::AddonQuote> for AddonQuoteBody<'a> {
    fn from(q: &'a billing::AddonQuote) -> Self {
        Self {
            addon: q.code.as_str(),
            label: &q.label,
            quantity: q.quantity,
            unit_points: q.unit_points,
            now: q.now,
            per_month: q.per_month,
            days_remaining: q.days_remaining,
            days_in_cycle: q.days_in_cycle,
            cycle: (&q.cycle).into(),
            balance: q.balance,
            balance_after: q.balance_after,
            enough_points: q.balance_after.is_some(),
            limits_after: &q.limits_after,
            status_after: (&q.status_after).into(),
        }
    }
}

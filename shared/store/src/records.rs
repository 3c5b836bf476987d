//! Item <-> type mapping for the partner and workspace records, in one place.

use std::collections::BTreeMap;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use domain::{
    AddonCode, AddonId, AddonStatus, AnchorDay, AutoTopup, CardDetails, CheckoutId, CheckoutStatus, CreditRate,
    CreditRateTerms, Currency, LimitKind, Limits, Money, PartnerAddon, PartnerId, PartnerSettings, Plan, PlanId,
    Points, Rebilling, TopupAttempt, TopupFailure, TopupOption, Usage, UsageQuantity, WalletId, WalletMode,
    WholesaleFloors, Workspace, WorkspaceAddon, WorkspaceId, WorkspaceStatus,
};
// The top-up option id sits in `ops` until `domain::ids` can take it.
use domain::stripe_ids::{AccountId, CustomerId, PaymentIntentId, PaymentMethodId, ReceiptId};
use domain::{PartnerTopupOption, TopupOptionId, TopupOptionList};

use serde::{Deserialize, Serialize};

use super::attrs::{self, number, word};
use super::item::{Attr, ENTITY_TYPE, Item, MalformedItem, Write};
use super::{keys, schema};

pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("every OffsetDateTime within years 0-9999 formats as RFC 3339")
}

fn parse_time(s: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(s, &Rfc3339)
}

const DATE: &[time::format_description::BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

pub fn format_date(d: Date) -> String {
    d.format(DATE).expect("dates format")
}

pub(crate) fn parse_date(s: &str) -> Result<Date, time::error::Parse> {
    Date::parse(s, DATE)
}

fn opt_str(v: &Option<String>) -> Attr {
    v.as_ref().map_or(Attr::Null, Attr::s)
}

fn get_opt_str(item: &Item, name: &str) -> Result<Option<String>, MalformedItem> {
    match item.get(name) {
        None | Some(Attr::Null) => Ok(None),
        Some(Attr::S(s)) => Ok(Some(s.clone())),
        _ => Err(MalformedItem { key: item.key(), attr: name.into() }),
    }
}

fn get_bool(item: &Item, name: &str) -> Result<bool, MalformedItem> {
    match item.get(name) {
        Some(Attr::Bool(b)) => Ok(*b),
        _ => Err(MalformedItem { key: item.key(), attr: name.into() }),
    }
}

fn get_u32(item: &Item, name: &str) -> Result<u32, MalformedItem> {
    u32::try_from(item.u64(name)?).map_err(|_| MalformedItem { key: item.key(), attr: name.into() })
}

fn points_attr(p: Points) -> Attr {
    Attr::N(p.as_decimal())
}

fn get_points(item: &Item, name: &str) -> Result<Points, MalformedItem> {
    Points::from_decimal(item.num(name)?).map_err(|_| MalformedItem { key: item.key(), attr: name.into() })
}

fn get_opt_points(item: &Item, name: &str) -> Result<Option<Points>, MalformedItem> {
    match item.get(name) {
        None | Some(Attr::Null) => Ok(None),
        Some(_) => get_points(item, name).map(Some),
    }
}

fn sub_item(item: &Item, name: &str) -> Result<Item, MalformedItem> {
    match item.get(name) {
        Some(Attr::M(m)) => Ok(Item(m.clone())),
        _ => Err(MalformedItem { key: item.key(), attr: name.into() }),
    }
}

// ---- partner ----

/// Whether the platform lets a partner work. Suspension deletes nothing: reinstating restores
/// everything as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartnerStatus {
    Active,
    Suspended { reason: String, at: OffsetDateTime },
}

impl PartnerStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            PartnerStatus::Active => "active",
            PartnerStatus::Suspended { .. } => "suspended",
        }
    }

    pub fn is_suspended(&self) -> bool {
        matches!(self, PartnerStatus::Suspended { .. })
    }
}

/// A partner's profile item: its own settings, and the platform's part (name, status, terms),
/// which only the platform's routes change, under `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerProfile {
    pub id: PartnerId,
    pub name: String,
    pub settings: PartnerSettings,
    pub status: PartnerStatus,
    /// `None`: the deployment's default floors (`PlatformConfig`), for a partner provisioned
    /// without its own.
    pub floors: Option<WholesaleFloors>,
    /// Of the platform's part; 0 on items written before it was versioned.
    pub version: u64,
    pub created_at: OffsetDateTime,
}

pub fn partner_item(profile: &PartnerProfile) -> Item {
    let s = &profile.settings;
    let item = Item::new(&keys::partner_profile(&profile.id), "partner")
        .with("partner_id", Attr::s(profile.id.as_str()))
        .with("credit_billing", Attr::Bool(s.credit_billing))
        .with("success_url", opt_str(&s.success_url))
        .with("cancel_url", opt_str(&s.cancel_url))
        .with("grace_days", Attr::n(s.grace_days))
        .with("default_rebilling", rebilling_attr(&s.default_rebilling))
        .with("unit_name", Attr::s(&s.unit_name))
        .with("brand", brand_attr(&s.brand))
        .with("created_at", Attr::s(rfc3339(profile.created_at)));
    partner_platform_attrs(profile).into_iter().fold(item, |item, (name, value)| item.with(&name, value))
}

/// The attributes of the platform's part.
fn partner_platform_attrs(profile: &PartnerProfile) -> Vec<(String, Attr)> {
    let (reason, at) = match &profile.status {
        PartnerStatus::Active => (Attr::Null, Attr::Null),
        PartnerStatus::Suspended { reason, at } => (Attr::s(reason), Attr::s(rfc3339(*at))),
    };
    vec![
        ("name".into(), Attr::s(&profile.name)),
        ("status".into(), Attr::s(profile.status.as_str())),
        ("suspended_reason".into(), reason),
        ("suspended_at".into(), at),
        ("wholesale_floors".into(), profile.floors.as_ref().map_or(Attr::Null, floors_attr)),
        ("version".into(), Attr::n(profile.version)),
    ]
}

fn floors_attr(f: &WholesaleFloors) -> Attr {
    Attr::M(f.iter().map(|r| (r.currency().code().to_owned(), Attr::N(r.price_per_point()))).collect())
}

fn get_floors(item: &Item) -> Result<Option<WholesaleFloors>, MalformedItem> {
    let bad = || MalformedItem { key: item.key(), attr: "wholesale_floors".into() };
    match item.get("wholesale_floors") {
        None | Some(Attr::Null) => Ok(None),
        Some(Attr::M(m)) => {
            let texts = m
                .iter()
                .map(|(code, v)| match v {
                    Attr::N(d) => Ok((code.as_str(), d.to_string())),
                    _ => Err(bad()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            WholesaleFloors::from_pairs(texts.iter().map(|(c, d)| (*c, d.as_str()))).map(Some).map_err(|_| bad())
        }
        Some(_) => Err(bad()),
    }
}

/// Items written before the platform's part existed read as an active partner named by its
/// id, on the deployment's floors, at version 0.
pub fn partner_profile_from(item: &Item) -> Result<PartnerProfile, MalformedItem> {
    let id = item.parsed("partner_id", PartnerId::parse)?;
    let status = match get_opt_str(item, "status")?.as_deref() {
        None | Some("active") => PartnerStatus::Active,
        Some("suspended") => PartnerStatus::Suspended {
            reason: item.str("suspended_reason")?.to_owned(),
            at: item.parsed("suspended_at", parse_time)?,
        },
        Some(_) => return Err(MalformedItem { key: item.key(), attr: "status".into() }),
    };
    Ok(PartnerProfile {
        name: get_opt_str(item, "name")?.unwrap_or_else(|| id.as_str().to_owned()),
        id,
        settings: partner_settings_from(item)?,
        status,
        floors: get_floors(item)?,
        version: match item.get("version") {
            None => 0,
            Some(_) => item.u64("version")?,
        },
        created_at: item.parsed("created_at", parse_time)?,
    })
}

/// The platform's index of its partners, one item each under one partition, in id order: what
/// `GET /platform/partners` pages through. Rewritten with every change of name or status.
pub fn partner_ref_item(profile: &PartnerProfile) -> Item {
    let r = PartnerRef {
        id: profile.id.clone(),
        name: profile.name.clone(),
        status: profile.status.as_str().to_owned(),
        created_at: profile.created_at,
    };
    Item::record(&keys::partner_ref(&profile.id), "partner_ref", &r)
}

/// A partner as the platform's list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerRef {
    #[serde(rename = "partner_id")]
    pub id: PartnerId,
    pub name: String,
    /// `active` or `suspended`.
    pub status: String,
    #[serde(with = "super::attrs::rfc3339")]
    pub created_at: OffsetDateTime,
}

pub fn partner_ref_from(item: &Item) -> Result<PartnerRef, MalformedItem> {
    let r: PartnerRef = item.read()?;
    match r.status.as_str() {
        "active" | "suspended" => Ok(r),
        _ => Err(MalformedItem { key: item.key(), attr: "status".into() }),
    }
}

fn rebilling_attr(r: &Rebilling) -> Attr {
    Attr::s(serde_json::to_string(r).expect("re-billing serializes"))
}

/// Absent on items written before re-billing existed: off.
fn get_rebilling(item: &Item, name: &str) -> Result<Rebilling, MalformedItem> {
    match item.get(name) {
        None => Ok(Rebilling::default()),
        Some(_) => item.parsed(name, |s| serde_json::from_str(s)),
    }
}

pub fn partner_settings_from(item: &Item) -> Result<PartnerSettings, MalformedItem> {
    Ok(PartnerSettings {
        credit_billing: get_bool(item, "credit_billing")?,
        success_url: get_opt_str(item, "success_url")?,
        cancel_url: get_opt_str(item, "cancel_url")?,
        grace_days: get_u32(item, "grace_days")?,
        default_rebilling: get_rebilling(item, "default_rebilling")?,
        // Absent on items written before partners named their points.
        unit_name: get_opt_str(item, "unit_name")?.unwrap_or_else(|| domain::DEFAULT_UNIT_NAME.to_owned()),
        brand: get_brand(item)?,
    })
}

/// A partner's brand, as JSON text: one attribute, read and written whole with the settings.
fn brand_attr(brand: &domain::Brand) -> Attr {
    Attr::s(serde_json::to_string(brand).expect("a brand serializes"))
}

/// Absent on items written before partners set their brand: none.
fn get_brand(item: &Item) -> Result<domain::Brand, MalformedItem> {
    match item.get("brand") {
        None => Ok(domain::Brand::default()),
        Some(_) => item.parsed("brand", |s| serde_json::from_str(s)),
    }
}

/// How a partner's add-on terms are stored.
#[derive(Serialize, Deserialize)]
#[serde(remote = "PartnerAddon")]
struct PartnerAddonDef {
    #[serde(with = "word")]
    code: AddonCode,
    label: String,
    #[serde(with = "number")]
    points: Points,
    /// Written only when the partner sells the add-on in money: terms stored before have none.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "super::plan_billing::money_map::optional")]
    price: Option<Money>,
    enabled: bool,
}

pub fn partner_addon_item(p: &PartnerId, a: &PartnerAddon) -> Item {
    Item::record_with(&keys::partner_addon(p, a.code), "partner_addon", |s| PartnerAddonDef::serialize(a, s))
}

pub fn partner_addon_from(item: &Item) -> Result<PartnerAddon, MalformedItem> {
    item.read_with(PartnerAddonDef::deserialize)
}

fn limits_attr(l: &Limits) -> Attr {
    let m: BTreeMap<String, Attr> = [
        LimitKind::Bots,
        LimitKind::Members,
        LimitKind::BotUsers,
        LimitKind::InboundWebhookRequestsPerMonth,
        LimitKind::ExternalRequestTimeoutS,
    ]
    .into_iter()
    .map(|k| (k.as_str().to_owned(), Attr::n(l.get(k))))
    .collect();
    Attr::M(m)
}

fn limits_from(item: &Item, name: &str) -> Result<Limits, MalformedItem> {
    let m = sub_item(item, name)?;
    Ok(Limits {
        bots: get_u32(&m, "bots")?,
        members: get_u32(&m, "members")?,
        bot_users: get_u32(&m, "bot_users")?,
        inbound_webhook_requests_per_month: get_u32(&m, "inbound_webhook_requests_per_month")?,
        external_request_timeout_s: get_u32(&m, "external_request_timeout_s")?,
    })
}

pub fn plan_item(p: &PartnerId, plan: &Plan) -> Item {
    Item::new(&keys::partner_plan(p, plan.id), "plan")
        .with("plan_id", Attr::s(plan.id.as_str()))
        .with("label", Attr::s(&plan.label))
        .with("limits", limits_attr(&plan.limits))
        .with("price_minor", Attr::n(plan.monthly_price.amount_minor()))
        .with("currency", Attr::s(plan.monthly_price.currency().code()))
}

pub fn plan_from(item: &Item) -> Result<Plan, MalformedItem> {
    let bad = |attr: &str| MalformedItem { key: item.key(), attr: attr.into() };
    let currency = item.parsed("currency", Currency::parse)?;
    let minor = i64::try_from(item.num("price_minor")?).map_err(|_| bad("price_minor"))?;
    Ok(Plan {
        id: item.parsed("plan_id", PlanId::parse)?,
        label: item.str("label")?.to_owned(),
        limits: limits_from(item, "limits")?,
        monthly_price: Money::from_minor(minor, currency).map_err(|_| bad("price_minor"))?,
    })
}

/// A plan edit whose workspaces the pass has yet to settle (`PLAN_EDITS / <partner>#<plan>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanEdit {
    #[serde(rename = "partner_id")]
    pub partner: PartnerId,
    #[serde(rename = "plan_id", with = "word")]
    pub plan: PlanId,
    /// Drawn anew by every edit, so that the pass deletes the edit it settled and not a newer one.
    pub edit_id: String,
    /// The last workspace settled, when a pass stopped part way; the next one goes on after it.
    pub after: Option<WorkspaceId>,
    #[serde(with = "super::attrs::rfc3339")]
    pub edited_at: OffsetDateTime,
}

pub fn plan_edit_item(e: &PlanEdit) -> Item {
    Item::record(&keys::plan_edit(&e.partner, e.plan), "plan_edit", e)
}

pub fn plan_edit_from(item: &Item) -> Result<PlanEdit, MalformedItem> {
    item.read()
}

/// A refill that a debit or a renewal asked for, which the charging pass has yet to make
/// (`REFILLS / <wallet>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefillRequest {
    pub wallet: WalletId,
    /// A renewal's request: the points the renewal lacks. `None`: a debit left the balance under
    /// the refill threshold.
    pub renewal_shortfall: Option<Points>,
    /// Drawn anew by every request, so that the pass takes the request it read and not a newer
    /// one.
    pub request_id: String,
    pub requested_at: OffsetDateTime,
}

pub fn refill_request_item(r: &RefillRequest) -> Item {
    let item = Item::new(&keys::refill_request(&r.wallet), "refill_request");
    let item = match &r.wallet {
        WalletId::Workspace(w) => item.with("workspace_id", Attr::s(w.as_str())),
        WalletId::Partner(p) => item.with("partner_id", Attr::s(p.as_str())),
    };
    item.with("renewal_shortfall", r.renewal_shortfall.map_or(Attr::Null, points_attr))
        .with("request_id", Attr::s(&r.request_id))
        .with("requested_at", Attr::s(rfc3339(r.requested_at)))
}

pub fn refill_request_from(item: &Item) -> Result<RefillRequest, MalformedItem> {
    let bad = |attr: &str| MalformedItem { key: item.key(), attr: attr.into() };
    let wallet = match (get_opt_str(item, "workspace_id")?, get_opt_str(item, "partner_id")?) {
        (Some(w), None) => WalletId::Workspace(WorkspaceId::parse(&w).map_err(|_| bad("workspace_id"))?),
        (None, Some(p)) => WalletId::Partner(PartnerId::parse(&p).map_err(|_| bad("partner_id"))?),
        _ => return Err(bad("workspace_id")),
    };
    Ok(RefillRequest {
        wallet,
        renewal_shortfall: get_opt_points(item, "renewal_shortfall")?,
        request_id: item.str("request_id")?.to_owned(),
        requested_at: item.parsed("requested_at", parse_time)?,
    })
}

/// The partner's whole list of top-up options, in its order, as one item.
pub fn topup_options_item(p: &PartnerId, list: &TopupOptionList, updated_at: OffsetDateTime) -> Item {
    let options = list
        .options
        .iter()
        .map(|o| {
            let amount = o.option.amount();
            Attr::M(BTreeMap::from([
                ("id".to_owned(), Attr::s(o.id.as_str())),
                ("label".to_owned(), Attr::s(o.option.label())),
                ("currency".to_owned(), Attr::s(amount.currency().code())),
                ("amount_minor".to_owned(), Attr::n(amount.amount_minor())),
                ("points".to_owned(), points_attr(o.option.points())),
            ]))
        })
        .collect();
    Item::new(&keys::partner_topups(p), "topup_options")
        .with("options", Attr::L(options))
        .with("version", Attr::n(list.version))
        .with("updated_at", Attr::s(rfc3339(updated_at)))
}

/// Each option is checked again as it is read: what Stripe would refuse never leaves storage.
pub fn topup_options_from(item: &Item) -> Result<TopupOptionList, MalformedItem> {
    let Some(Attr::L(list)) = item.get("options") else {
        return Err(MalformedItem { key: item.key(), attr: "options".into() });
    };
    let options = list
        .iter()
        .enumerate()
        .map(|(i, attr)| {
            let bad = || MalformedItem { key: item.key(), attr: format!("options[{i}]") };
            let Attr::M(m) = attr else { return Err(bad()) };
            let o = Item(m.clone());
            let currency = o.parsed("currency", Currency::parse).map_err(|_| bad())?;
            let minor = o.num("amount_minor").ok().and_then(|n| i64::try_from(n).ok()).ok_or_else(bad)?;
            let amount = Money::from_minor(minor, currency).map_err(|_| bad())?;
            let points = get_points(&o, "points").map_err(|_| bad())?;
            let option = TopupOption::new(o.str("label").map_err(|_| bad())?, amount, points).map_err(|_| bad())?;
            Ok(PartnerTopupOption { id: o.parsed("id", TopupOptionId::parse).map_err(|_| bad())?, option })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TopupOptionList { version: item.u64("version")?, options })
}

/// The rate and its bounds, one item; a bound not set is `NULL`.
pub fn credit_rate_item(p: &PartnerId, t: &CreditRateTerms, updated_at: OffsetDateTime) -> Item {
    let r = t.rate();
    Item::new(&keys::partner_credit_rate(p), "credit_rate")
        .with("currency", Attr::s(r.currency().code()))
        .with("price_per_point", Attr::N(r.price_per_point()))
        .with("min_points", t.min_points().map_or(Attr::Null, points_attr))
        .with("max_points", t.max_points().map_or(Attr::Null, points_attr))
        .with("updated_at", Attr::s(rfc3339(updated_at)))
}

/// Items written before rates had bounds have no `min_points`/`max_points`: no bound.
pub fn credit_rate_from(item: &Item) -> Result<CreditRateTerms, MalformedItem> {
    let bad = |attr: &str| MalformedItem { key: item.key(), attr: attr.into() };
    let currency = item.parsed("currency", Currency::parse)?;
    let rate = CreditRate::new(currency, item.num("price_per_point")?).map_err(|_| bad("price_per_point"))?;
    let min_points = get_opt_points(item, "min_points")?;
    let max_points = get_opt_points(item, "max_points")?;
    CreditRateTerms::new(rate, min_points, max_points).map_err(|e| bad(e.param()))
}

// ---- workspace ----

fn usage_attr(u: &Usage) -> Attr {
    Attr::M(BTreeMap::from([
        ("bots".to_owned(), Attr::n(u.bots)),
        ("members".to_owned(), Attr::n(u.members)),
        ("bot_users".to_owned(), Attr::n(u.bot_users)),
    ]))
}

fn usage_from(item: &Item) -> Result<Usage, MalformedItem> {
    let m = sub_item(item, "usage")?;
    Ok(Usage { bots: get_u32(&m, "bots")?, members: get_u32(&m, "members")?, bot_users: get_u32(&m, "bot_users")? })
}

pub fn workspace_item(w: &Workspace) -> Item {
    let (status, exceeded) = match &w.status {
        WorkspaceStatus::Active => ("active", Vec::new()),
        WorkspaceStatus::Paused { exceeded, .. } => ("paused", exceeded.clone()),
    };
    let unpaid = matches!(w.status, WorkspaceStatus::Paused { unpaid: true, .. });
    let item = Item::new(&keys::workspace_profile(&w.id), "workspace")
        .with("workspace_id", Attr::s(w.id.as_str()))
        .with("partner_id", Attr::s(w.partner.as_str()))
        .with("name", Attr::s(&w.name))
        .with("plan", Attr::s(w.plan.as_str()))
        .with("anchor_day", Attr::n(w.anchor.get()))
        .with("usage", usage_attr(&w.usage))
        .with("status", Attr::s(status))
        .with("exceeded", Attr::L(exceeded.iter().map(|k| Attr::s(k.as_str())).collect()))
        .with("renews_on", Attr::s(format_date(w.renews_on)))
        .with(schema::DUE_INDEX.partition, Attr::s(keys::due_pk(keys::due_shard(&w.id))))
        .with(schema::DUE_INDEX.sort, Attr::s(keys::due_sk(&format_date(w.renews_on), &w.id)))
        .with(schema::WORKSPACE_LIST_INDEX.partition, Attr::s(keys::partner_pk(&w.partner)))
        .with(schema::WORKSPACE_LIST_INDEX.sort, Attr::s(keys::workspace_list_sk(&w.id, keys::ListedPart::Profile)))
        .with("rebilling", rebilling_attr(&w.rebilling))
        .with("addons", held_addons_attr(&w.addons))
        .with("version", Attr::n(w.version))
        .with("created_at", Attr::s(rfc3339(w.created_at)));
    // Only on a workspace whose plan is billed in money: a profile stored before has neither.
    let item = if unpaid { item.with("unpaid", Attr::Bool(true)) } else { item };
    match &w.subscription {
        Some(sub) => item.with("subscription", super::plan_billing::subscription_attr(sub)),
        None => item,
    }
}

/// The add-ons a workspace holds, in its profile: one read finds them with it, and every
/// change of them is a write of the profile under its version. Only those that count toward
/// its limits: an ended one is kept as a history item ([`workspace_addon_item`]).
fn held_addons_attr(addons: &[WorkspaceAddon]) -> Attr {
    let held = addons.iter().filter(|a| a.status.counts_toward_limits());
    Attr::L(held.map(|a| attrs::to_attr_with(|s| WorkspaceAddonDef::serialize(a, s)).expect("add-ons store")).collect())
}

/// Whether a workspace profile holds its add-ons. One written before they moved into the
/// profile does not: its add-ons are its add-on items, and the store reads them into the
/// profile as it reads it ([`Store::get`](crate::Store::get)).
pub fn holds_addons(item: &Item) -> bool {
    item.get("addons").is_some()
}

/// A profile written before the add-ons moved into it, with `addons` (read from its add-on
/// items) added.
pub fn with_held_addons(item: Item, addons: &[WorkspaceAddon]) -> Item {
    item.with("addons", held_addons_attr(addons))
}

fn held_addons_from(item: &Item) -> Result<Vec<WorkspaceAddon>, MalformedItem> {
    let bad = |e: attrs::Error| MalformedItem { key: item.key(), attr: format!("addons.{}", e.attr()) };
    match item.get("addons") {
        Some(Attr::L(l)) => {
            l.iter().map(|a| attrs::from_attr_with(a, WorkspaceAddonDef::deserialize).map_err(bad)).collect()
        }
        _ => Err(MalformedItem { key: item.key(), attr: "addons".into() }),
    }
}

fn limit_kind(s: &str) -> Option<LimitKind> {
    LimitKind::USAGE_COUNTED.into_iter().find(|k| k.as_str() == s)
}

pub fn workspace_from(item: &Item) -> Result<Workspace, MalformedItem> {
    let bad = |attr: &str| MalformedItem { key: item.key(), attr: attr.into() };
    let status = status_from(item)?;
    let anchor = u8::try_from(get_u32(item, "anchor_day")?).ok().and_then(|d| AnchorDay::new(d).ok());
    Ok(Workspace {
        id: item.parsed("workspace_id", WorkspaceId::parse)?,
        partner: item.parsed("partner_id", PartnerId::parse)?,
        name: item.str("name")?.to_owned(),
        plan: item.parsed("plan", PlanId::parse)?,
        anchor: anchor.ok_or_else(|| bad("anchor_day"))?,
        usage: usage_from(item)?,
        status,
        renews_on: item.parsed("renews_on", parse_date)?,
        rebilling: get_rebilling(item, "rebilling")?,
        addons: held_addons_from(item)?,
        subscription: super::plan_billing::subscription_from(item)?,
        version: item.u64("version")?,
        created_at: item.parsed("created_at", parse_time)?,
    })
}

fn status_from(item: &Item) -> Result<WorkspaceStatus, MalformedItem> {
    let bad = |attr: &str| MalformedItem { key: item.key(), attr: attr.into() };
    let exceeded = match item.get("exceeded") {
        Some(Attr::L(l)) => l
            .iter()
            .map(|a| match a {
                Attr::S(s) => limit_kind(s).ok_or_else(|| bad("exceeded")),
                _ => Err(bad("exceeded")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(bad("exceeded")),
    };
    let unpaid = match item.get("unpaid") {
        None => false,
        Some(Attr::Bool(b)) => *b,
        Some(_) => return Err(bad("unpaid")),
    };
    match item.str("status")? {
        "active" if exceeded.is_empty() && !unpaid => Ok(WorkspaceStatus::Active),
        "paused" if !exceeded.is_empty() || unpaid => Ok(WorkspaceStatus::Paused { exceeded, unpaid }),
        _ => Err(bad("status")),
    }
}

/// A workspace as its partner's workspace list shows it: read from its profile's index entry,
/// whatever the profile's shape (one from before the add-ons moved into it lists the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedWorkspace {
    pub id: WorkspaceId,
    pub name: String,
    pub plan: PlanId,
    pub status: WorkspaceStatus,
    pub renews_on: Date,
    pub created_at: OffsetDateTime,
}

pub fn listed_workspace_from(item: &Item) -> Result<ListedWorkspace, MalformedItem> {
    Ok(ListedWorkspace {
        id: item.parsed("workspace_id", WorkspaceId::parse)?,
        name: item.str("name")?.to_owned(),
        plan: item.parsed("plan", PlanId::parse)?,
        status: status_from(item)?,
        renews_on: item.parsed("renews_on", parse_date)?,
        created_at: item.parsed("created_at", parse_time)?,
    })
}

/// The users a workspace's partner lets manage its billing (top up, save a card, auto top-up,
/// buy and cancel add-ons) beside the workspace's admins: one item, replaced whole under its
/// version, read with every payment a member asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingManagers {
    pub managers: Vec<BillingManager>,
    pub version: u64,
}

/// One user granted billing access: the token's `sub`, who granted it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingManager {
    pub sub: String,
    pub granted_by: String,
    #[serde(with = "super::attrs::rfc3339")]
    pub granted_at: OffsetDateTime,
}

impl BillingManagers {
    pub fn holds(&self, sub: &str) -> bool {
        self.managers.iter().any(|m| m.sub == sub)
    }
}

pub fn billing_managers_item(w: &WorkspaceId, m: &BillingManagers) -> Item {
    Item::record(&keys::billing_managers(w), "billing_managers", m)
}

/// The list as read; none granted yet (version 0) when there is no item.
pub fn billing_managers_from(item: Option<&Item>) -> Result<BillingManagers, MalformedItem> {
    item.map_or(Ok(BillingManagers::default()), Item::read)
}

/// A partner's pointer to one of its workspaces, with what a listing shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceRef {
    #[serde(rename = "workspace_id")]
    pub id: WorkspaceId,
    pub name: String,
    #[serde(with = "super::attrs::rfc3339")]
    pub created_at: OffsetDateTime,
}

pub fn workspace_ref_item(p: &PartnerId, w: &Workspace) -> Item {
    let r = WorkspaceRef { id: w.id.clone(), name: w.name.clone(), created_at: w.created_at };
    Item::record(&keys::workspace_ref(p, &w.id), "workspace_ref", &r)
}

pub fn workspace_ref_from(item: &Item) -> Result<WorkspaceRef, MalformedItem> {
    item.read()
}

/// How an add-on a workspace holds is stored: its history item (and, in profiles written before
/// the add-ons moved into them, every add-on's item), or one entry of its profile's `addons`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "WorkspaceAddon")]
struct WorkspaceAddonDef {
    #[serde(rename = "addon_id")]
    id: AddonId,
    #[serde(with = "word")]
    code: AddonCode,
    quantity: u32,
    #[serde(with = "number")]
    unit_points: Points,
    status: AddonStatus,
    #[serde(with = "super::attrs::date")]
    period_end: Date,
    #[serde(with = "super::attrs::rfc3339")]
    created_at: OffsetDateTime,
    /// Only on an add-on billed in money.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "super::plan_billing::billed")]
    billed: Option<domain::BilledAddon>,
}

/// An add-on's own item: the history of one that ended.
pub fn workspace_addon_item(w: &WorkspaceId, a: &WorkspaceAddon) -> Item {
    Item::record_with(&keys::workspace_addon(w, &a.id), "workspace_addon", |s| WorkspaceAddonDef::serialize(a, s))
}

pub fn workspace_addon_from(item: &Item) -> Result<WorkspaceAddon, MalformedItem> {
    item.read_with(WorkspaceAddonDef::deserialize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn records_round_trip() {
        let p = PartnerId::parse("p1").unwrap();
        let s = PartnerSettings {
            credit_billing: true,
            success_url: Some("https://x.example/ok".into()),
            ..Default::default()
        };
        let mut profile = PartnerProfile {
            id: p.clone(),
            name: "Acme Agency".into(),
            settings: s.clone(),
            status: PartnerStatus::Active,
            floors: None,
            version: 1,
            created_at: datetime!(2026-01-01 0:00 UTC),
        };
        assert_eq!(partner_settings_from(&partner_item(&profile)).unwrap(), s);
        assert_eq!(partner_profile_from(&partner_item(&profile)).unwrap(), profile);
        profile.status = PartnerStatus::Suspended { reason: "Unpaid".into(), at: datetime!(2026-02-01 0:00 UTC) };
        profile.floors = Some(WholesaleFloors::parse_setting("usd=0.12,eur=0.1050").unwrap());
        profile.version = 7;
        assert_eq!(partner_profile_from(&partner_item(&profile)).unwrap(), profile);
        let r = partner_ref_from(&partner_ref_item(&profile)).unwrap();
        assert_eq!((r.id, r.name.as_str(), r.status.as_str()), (p.clone(), "Acme Agency", "suspended"));
        // An item from before the platform's part: active, named by its id, the default floors.
        let mut old = partner_item(&profile);
        for name in ["name", "status", "suspended_reason", "suspended_at", "wholesale_floors", "version"] {
            old.0.remove(name);
        }
        let read = partner_profile_from(&old).unwrap();
        assert_eq!(
            (read.name.as_str(), &read.status, &read.floors, read.version),
            ("p1", &PartnerStatus::Active, &None, 0)
        );
        // An item from before partners named their points calls them points.
        profile.settings.unit_name = "credits".into();
        let mut unnamed = partner_item(&profile);
        assert_eq!(partner_settings_from(&unnamed).unwrap().unit_name, "credits");
        unnamed.0.remove("unit_name");
        assert_eq!(partner_settings_from(&unnamed).unwrap().unit_name, "points");
        // Before partners set their brand: none, the page's own look.
        unnamed.0.remove("brand");
        assert_eq!(partner_settings_from(&unnamed).unwrap().brand, domain::Brand::default());
        let plan = Plan::default_for(PlanId::Growth);
        assert_eq!(plan_from(&plan_item(&p, &plan)).unwrap(), plan);
        let a = PartnerAddon::default_for(AddonCode::ExtraMember);
        assert_eq!(partner_addon_from(&partner_addon_item(&p, &a)).unwrap(), a);
        let at = datetime!(2026-01-01 0:00 UTC);
        let topups = TopupOptionList {
            version: 3,
            options: vec![
                PartnerTopupOption {
                    id: TopupOptionId::generate(),
                    option: TopupOption::parse("Dinar pack", "kwd", 5120, "20.5").unwrap(),
                },
                PartnerTopupOption {
                    id: TopupOptionId::generate(),
                    option: TopupOption::parse("Yen pack", "jpy", 1000, "12").unwrap(),
                },
            ],
        };
        let item = topup_options_item(&p, &topups, at);
        assert_eq!(item.str("entity_type").unwrap(), "topup_options");
        assert_eq!(topup_options_from(&item).unwrap(), topups);
        // What Stripe would refuse is refused on the way out too: 5.125 KWD.
        let mut bad = topup_options_item(&p, &topups, at);
        if let Some(Attr::L(options)) = bad.0.get_mut("options")
            && let Some(Attr::M(first)) = options.first_mut()
        {
            first.insert("amount_minor".into(), Attr::n(5125));
        }
        assert_eq!(topup_options_from(&bad).unwrap_err().attr, "options[0]");
        let empty = TopupOptionList { version: 1, options: vec![] };
        assert_eq!(topup_options_from(&topup_options_item(&p, &empty, at)).unwrap(), empty);
        let rate = CreditRateTerms::parse("usd", "0.0333", Some("100"), Some("5000.50")).unwrap();
        let item = credit_rate_item(&p, &rate, at);
        assert_eq!(item.str("entity_type").unwrap(), "credit_rate");
        assert_eq!(credit_rate_from(&item).unwrap(), rate);
        let unbounded = CreditRateTerms::unbounded(CreditRate::parse("usd", "0.05").unwrap());
        let item = credit_rate_item(&p, &unbounded, at);
        assert_eq!((item.get("min_points"), item.get("max_points")), (Some(&Attr::Null), Some(&Attr::Null)));
        assert_eq!(credit_rate_from(&item).unwrap(), unbounded);
        let only_max = CreditRateTerms::parse("usd", "0.05", None, Some("10")).unwrap();
        assert_eq!(credit_rate_from(&credit_rate_item(&p, &only_max, at)).unwrap(), only_max);
        // An item written before rates had bounds: no bound.
        let mut old = credit_rate_item(&p, &unbounded, at);
        old.0.remove("min_points");
        old.0.remove("max_points");
        assert_eq!(credit_rate_from(&old).unwrap(), unbounded);
        // Bounds that could not have been saved are refused on the way out too.
        let mut crossed = credit_rate_item(&p, &rate, at);
        crossed.set("min_points", Attr::n(6000));
        assert_eq!(credit_rate_from(&crossed).unwrap_err().attr, "min_points");
        let mut text = credit_rate_item(&p, &rate, at);
        text.set("max_points", Attr::s("5000"));
        assert_eq!(credit_rate_from(&text).unwrap_err().attr, "max_points");
        let wa = WorkspaceAddon {
            id: AddonId::generate(),
            code: AddonCode::Extra10kBotUsers,
            quantity: 2,
            unit_points: Points::parse("60").unwrap(),
            status: AddonStatus::Cancelling,
            period_end: date!(2026 - 04 - 30),
            created_at: datetime!(2026-04-15 10:00 UTC),
            billed: None,
        };
        let w = Workspace {
            id: WorkspaceId::parse("w1").unwrap(),
            partner: p.clone(),
            name: "Acme".into(),
            plan: PlanId::Starter,
            anchor: AnchorDay::new(31).unwrap(),
            usage: Usage { bots: 2, members: 1, bot_users: 5 },
            status: WorkspaceStatus::Paused { exceeded: vec![LimitKind::Bots], unpaid: false },
            addons: vec![wa.clone()],
            renews_on: time::macros::date!(2026 - 04 - 30),
            rebilling: Default::default(),
            subscription: None,
            version: 3,
            created_at: datetime!(2026-04-01 10:00 UTC),
        };
        assert_eq!(workspace_from(&workspace_item(&w)).unwrap(), w);
        // An ended add-on is history, not held.
        let ended = WorkspaceAddon { status: AddonStatus::Removed, ..wa.clone() };
        let with_ended = Workspace { addons: vec![wa.clone(), ended], ..w.clone() };
        assert_eq!(workspace_from(&workspace_item(&with_ended)).unwrap(), w);
        // A profile from before add-ons moved into it is not read as holding none.
        let mut earlier = workspace_item(&w);
        earlier.0.remove("addons");
        assert!(!holds_addons(&earlier));
        assert_eq!(workspace_from(&earlier).unwrap_err().attr, "addons");
        assert_eq!(workspace_from(&with_held_addons(earlier, &w.addons)).unwrap(), w);
        assert_eq!(workspace_addon_from(&workspace_addon_item(&w.id, &wa)).unwrap(), wa);
    }
}

// ---- Stripe: connected accounts, customers, checkouts, payments ----

/// A partner's connected Stripe account (Connect OAuth).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeConnection {
    pub account: AccountId,
    pub livemode: bool,
    #[serde(with = "super::attrs::rfc3339")]
    pub connected_at: OffsetDateTime,
    /// Set when the partner revoked our access (`account.application.deauthorized`).
    #[serde(default, with = "super::attrs::rfc3339::optional")]
    pub deauthorized_at: Option<OffsetDateTime>,
}

pub fn stripe_connection_item(p: &PartnerId, c: &StripeConnection) -> Item {
    Item::record(&keys::partner_stripe(p), "stripe_connection", c)
}

pub fn stripe_connection_from(item: &Item) -> Result<StripeConnection, MalformedItem> {
    item.read()
}

/// Which partner connected an account: events of `account.application.deauthorized` name only it.
pub fn stripe_account_item(account: &AccountId, p: &PartnerId) -> Item {
    Item::new(&keys::stripe_account(account), "stripe_account").with("partner_id", Attr::s(p.as_str()))
}

pub fn stripe_account_partner(item: &Item) -> Result<PartnerId, MalformedItem> {
    item.parsed("partner_id", PartnerId::parse)
}

/// A workspace's customer on a connected account, and the card it saved last (paying at
/// checkout, or saving one without paying).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeCustomer {
    pub account: AccountId,
    pub customer: CustomerId,
    pub payment_method: Option<PaymentMethodId>,
    /// When the saved card last changed (unix s, Stripe's clock): when Stripe reported it saved,
    /// or when it was removed. A save that Stripe reported earlier, arriving late, changes
    /// nothing.
    pub payment_method_created: Option<i64>,
    /// The saved card's brand, last 4 digits and expiry; `None` for a card saved before they
    /// were kept.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "card_details")]
    pub card: Option<CardDetails>,
    /// Its partner has been told that the saved card is expiring: once per card.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expiry_noticed: bool,
    pub version: u64,
}

pub fn stripe_customer_item(w: &WorkspaceId, c: &StripeCustomer) -> Item {
    Item::record(&keys::workspace_customer(w), "stripe_customer", c)
}

/// What a workspace's customer key holds: a customer, or, from the workspace's creation until
/// its first customer, an empty slot that says there is none (and none kept anywhere else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSlot {
    pub customer: Option<StripeCustomer>,
    pub version: u64,
}

/// The empty slot a new workspace is created with.
pub fn empty_customer_slot_item(w: &WorkspaceId) -> Item {
    Item::new(&keys::workspace_customer(w), "stripe_customer").with("version", Attr::n(1))
}

pub fn customer_slot_from(item: &Item) -> Result<CustomerSlot, MalformedItem> {
    let customer = item.get("customer").is_some().then(|| stripe_customer_from(item)).transpose()?;
    Ok(CustomerSlot { customer, version: item.u64("version")? })
}

pub fn stripe_customer_from(item: &Item) -> Result<StripeCustomer, MalformedItem> {
    item.read()
}

/// A Checkout Session we created, with the points it promises: a workspace buying points on its
/// partner's connected account, or a partner paying into its partner wallet on the platform's
/// own account (`account: None`; `points` is then the amount in the wallet's currency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRecord {
    pub id: CheckoutId,
    pub wallet: WalletId,
    pub partner: PartnerId,
    pub account: Option<AccountId>,
    pub points: Points,
    pub amount: Money,
    pub topup_option_id: Option<TopupOptionId>,
    pub status: CheckoutStatus,
    pub payment_intent: Option<PaymentIntentId>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Whose wallet a payment credits: `workspace_id` for a workspace's, `wallet = "partner"` (and
/// the item's `partner_id`) for the partner's own.
fn with_wallet(item: Item, wallet: &WalletId) -> Item {
    match wallet {
        WalletId::Workspace(w) => item.with("workspace_id", Attr::s(w.as_str())),
        WalletId::Partner(_) => item.with("wallet", Attr::s("partner")),
    }
}

fn get_wallet(item: &Item, partner: &PartnerId) -> Result<WalletId, MalformedItem> {
    if let Some(w) = get_opt_parsed(item, "workspace_id", WorkspaceId::parse)? {
        return Ok(WalletId::Workspace(w));
    }
    match get_opt_str(item, "wallet")?.as_deref() {
        Some("partner") => Ok(WalletId::Partner(partner.clone())),
        _ => Err(MalformedItem { key: item.key(), attr: "workspace_id".into() }),
    }
}

fn opt_account(account: &Option<AccountId>) -> Attr {
    account.as_ref().map_or(Attr::Null, |a| Attr::s(a.as_str()))
}

pub fn checkout_item(c: &CheckoutRecord) -> Item {
    let item = Item::new(&keys::checkout(&c.id), "checkout").with("checkout_id", Attr::s(c.id.as_str()));
    with_wallet(item, &c.wallet)
        .with("partner_id", Attr::s(c.partner.as_str()))
        .with("account", opt_account(&c.account))
        .with("points", points_attr(c.points))
        .with("currency", Attr::s(c.amount.currency().code()))
        .with("amount_minor", Attr::n(c.amount.amount_minor()))
        .with("topup_option_id", c.topup_option_id.as_ref().map_or(Attr::Null, |o| Attr::s(o.as_str())))
        .with("status", Attr::s(c.status.as_str()))
        .with("payment_intent", c.payment_intent.as_ref().map_or(Attr::Null, |p| Attr::s(p.as_str())))
        .with("created_at", Attr::s(rfc3339(c.created_at)))
        .with("updated_at", Attr::s(rfc3339(c.updated_at)))
}

fn get_money(item: &Item) -> Result<Money, MalformedItem> {
    let currency = item.parsed("currency", Currency::parse)?;
    let minor = i64::try_from(item.num("amount_minor")?)
        .map_err(|_| MalformedItem { key: item.key(), attr: "amount_minor".into() })?;
    Money::from_minor(minor, currency).map_err(|_| MalformedItem { key: item.key(), attr: "amount_minor".into() })
}

fn get_opt_parsed<T, E>(
    item: &Item,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, MalformedItem> {
    get_opt_str(item, name)?
        .map(|s| parse(&s).map_err(|_| MalformedItem { key: item.key(), attr: name.into() }))
        .transpose()
}

pub fn checkout_from(item: &Item) -> Result<CheckoutRecord, MalformedItem> {
    let partner = item.parsed("partner_id", PartnerId::parse)?;
    Ok(CheckoutRecord {
        id: item.parsed("checkout_id", CheckoutId::parse)?,
        wallet: get_wallet(item, &partner)?,
        partner,
        account: get_opt_parsed(item, "account", AccountId::parse)?,
        points: get_points(item, "points")?,
        amount: get_money(item)?,
        topup_option_id: get_opt_parsed(item, "topup_option_id", TopupOptionId::parse)?,
        status: item.parsed("status", |s| CheckoutStatus::parse(s).ok_or(()))?,
        payment_intent: get_opt_parsed(item, "payment_intent", PaymentIntentId::parse)?,
        created_at: item.parsed("created_at", parse_time)?,
        updated_at: item.parsed("updated_at", parse_time)?,
    })
}

/// A credited payment, by its PaymentIntent: what refunds and disputes of it have taken back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    pub payment_intent: PaymentIntentId,
    /// The Checkout Session it paid; `None` for an off-session auto top-up.
    pub checkout: Option<CheckoutId>,
    pub wallet: WalletId,
    pub partner: PartnerId,
    /// `None`: the platform's own account (a partner wallet's payment).
    pub account: Option<AccountId>,
    pub points: Points,
    pub amount: Money,
    /// Stripe's `amount_refunded` of the charge, the highest seen (minor units).
    pub refunded_minor: i64,
    /// The sum of the disputes in `disputes` (minor units).
    pub disputed_minor: i64,
    pub disputes: Vec<String>,
    /// The disputes of `disputes` the merchant won: their money came back.
    pub disputes_won: Vec<String>,
    /// The sum of the disputes in `disputes_won` (minor units).
    pub won_minor: i64,
    /// The points taken back so far.
    pub clawed_back: Points,
    pub version: u64,
}

impl PaymentRecord {
    /// A payment just credited, off-session (no checkout): nothing refunded, disputed or
    /// taken back yet, version 1.
    pub fn credited(
        payment_intent: PaymentIntentId,
        wallet: WalletId,
        partner: PartnerId,
        account: Option<AccountId>,
        points: Points,
        amount: Money,
    ) -> Self {
        PaymentRecord {
            payment_intent,
            checkout: None,
            wallet,
            partner,
            account,
            points,
            amount,
            refunded_minor: 0,
            disputed_minor: 0,
            disputes: Vec::new(),
            disputes_won: Vec::new(),
            won_minor: 0,
            clawed_back: Points::ZERO,
            version: 1,
        }
    }
}

pub fn payment_item(r: &PaymentRecord) -> Item {
    let item = Item::new(&keys::payment(&r.payment_intent), "payment")
        .with("payment_intent", Attr::s(r.payment_intent.as_str()))
        .with("checkout_id", r.checkout.as_ref().map_or(Attr::Null, |c| Attr::s(c.as_str())));
    let item = with_wallet(item, &r.wallet)
        .with("partner_id", Attr::s(r.partner.as_str()))
        .with("account", opt_account(&r.account))
        .with("points", points_attr(r.points))
        .with("currency", Attr::s(r.amount.currency().code()))
        .with("amount_minor", Attr::n(r.amount.amount_minor()))
        .with("refunded_minor", Attr::n(r.refunded_minor))
        .with("disputed_minor", Attr::n(r.disputed_minor))
        .with("disputes", Attr::L(r.disputes.iter().map(Attr::s).collect()))
        .with("clawed_back", points_attr(r.clawed_back))
        .with("version", Attr::n(r.version));
    // Written once a dispute is won: a payment record from before has neither.
    if r.disputes_won.is_empty() {
        return item;
    }
    item.with("disputes_won", Attr::L(r.disputes_won.iter().map(Attr::s).collect()))
        .with("won_minor", Attr::n(r.won_minor))
}

pub fn payment_from(item: &Item) -> Result<PaymentRecord, MalformedItem> {
    let bad = |attr: &str| MalformedItem { key: item.key(), attr: attr.into() };
    let minor = |name: &str| i64::try_from(item.num(name)?).map_err(|_| bad(name));
    let ids = |name: &str| match item.get(name) {
        Some(Attr::L(l)) => l
            .iter()
            .map(|a| match a {
                Attr::S(s) => Ok(s.clone()),
                _ => Err(bad(name)),
            })
            .collect::<Result<Vec<_>, _>>(),
        _ => Err(bad(name)),
    };
    let (disputes_won, won_minor) = match item.get("disputes_won") {
        None => (Vec::new(), 0),
        Some(_) => (ids("disputes_won")?, minor("won_minor")?),
    };
    let partner = item.parsed("partner_id", PartnerId::parse)?;
    Ok(PaymentRecord {
        payment_intent: item.parsed("payment_intent", PaymentIntentId::parse)?,
        checkout: get_opt_parsed(item, "checkout_id", CheckoutId::parse)?,
        wallet: get_wallet(item, &partner)?,
        partner,
        account: get_opt_parsed(item, "account", AccountId::parse)?,
        points: get_points(item, "points")?,
        amount: get_money(item)?,
        refunded_minor: minor("refunded_minor")?,
        disputed_minor: minor("disputed_minor")?,
        disputes: ids("disputes")?,
        disputes_won,
        won_minor,
        clawed_back: get_points(item, "clawed_back")?,
        version: item.u64("version")?,
    })
}

/// Whose receipt a Stripe invoice or charge is: written with its payment's credit, so that a
/// request for the receipt reads in one item whether it is the caller's, and on which account
/// Stripe keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRecord {
    pub id: ReceiptId,
    /// The wallet the payment credited: only its owner may read the receipt.
    pub wallet: WalletId,
    pub partner: PartnerId,
    /// Where Stripe keeps it: the partner's connected account, `None` for the platform's own.
    pub account: Option<AccountId>,
    pub payment_intent: PaymentIntentId,
}

pub fn receipt_item(r: &ReceiptRecord) -> Item {
    let item = Item::new(&keys::receipt(&r.id), "receipt").with("receipt_id", Attr::s(r.id.as_str()));
    with_wallet(item, &r.wallet)
        .with("partner_id", Attr::s(r.partner.as_str()))
        .with("account", opt_account(&r.account))
        .with("payment_intent", Attr::s(r.payment_intent.as_str()))
}

pub fn receipt_from(item: &Item) -> Result<ReceiptRecord, MalformedItem> {
    let partner = item.parsed("partner_id", PartnerId::parse)?;
    Ok(ReceiptRecord {
        id: item.parsed("receipt_id", ReceiptId::parse)?,
        wallet: get_wallet(item, &partner)?,
        partner,
        account: get_opt_parsed(item, "account", AccountId::parse)?,
        payment_intent: item.parsed("payment_intent", PaymentIntentId::parse)?,
    })
}

// ---- auto top-up ----

fn opt_time(t: Option<OffsetDateTime>) -> Attr {
    t.map_or(Attr::Null, |t| Attr::s(rfc3339(t)))
}

fn get_opt_time(item: &Item, name: &str) -> Result<Option<OffsetDateTime>, MalformedItem> {
    get_opt_parsed(item, name, parse_time)
}

pub fn auto_topup_item(w: &WorkspaceId, a: &AutoTopup) -> Item {
    auto_topup_attrs(Item::new(&keys::workspace_auto_topup(w), "auto_topup"), a)
}

/// A partner wallet's auto-refill: the auto top-up rails (attempts, failures, the cap) over the
/// partner's card on the platform account, charging `amount` (or a multiple) at a time.
pub fn partner_refill_item(p: &PartnerId, a: &AutoTopup, amount: Option<&Money>) -> Item {
    auto_topup_attrs(Item::new(&keys::partner_refill(p), "partner_refill"), a)
        .with("amount", amount.map_or(Attr::Null, money_attr))
}

pub fn partner_refill_from(item: &Item) -> Result<(AutoTopup, Option<Money>), MalformedItem> {
    let amount = get_opt_money_map(item, "amount")?.map(|m| get_money(&m)).transpose()?;
    Ok((auto_topup_from(item)?, amount))
}

/// The partner as the platform's own Stripe customer (it pays into its partner wallet), and
/// the card it saved last (paying into the wallet, or saving one without paying).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformCustomer {
    pub customer: CustomerId,
    pub payment_method: Option<PaymentMethodId>,
    /// When the saved card last changed (unix s), as [`StripeCustomer::payment_method_created`].
    pub payment_method_created: Option<i64>,
    /// As [`StripeCustomer::card`].
    #[serde(default, skip_serializing_if = "Option::is_none", with = "card_details")]
    pub card: Option<CardDetails>,
    /// As [`StripeCustomer::expiry_noticed`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expiry_noticed: bool,
    pub version: u64,
}

/// Where the reconciliation sweep goes on in an account's events: the start (unix s, Stripe's
/// clock) of the next window it lists, under a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepPosition {
    pub position: i64,
    pub version: u64,
}

pub fn sweep_position_item(account: Option<&AccountId>, p: &SweepPosition) -> Item {
    Item::record(&keys::sweep_position(account), "sweep_position", p)
}

pub fn sweep_position_from(item: &Item) -> Result<SweepPosition, MalformedItem> {
    item.read()
}

/// The partner the last sweep run stopped after (its time ran out); none: start from the first.
pub fn sweep_cursor_item(after: Option<&PartnerId>) -> Item {
    Item::new(&keys::sweep_cursor(), "sweep_cursor").with("after", after.map_or(Attr::Null, |p| Attr::s(p.as_str())))
}

pub fn sweep_cursor_from(item: &Item) -> Result<Option<PartnerId>, MalformedItem> {
    match item.get("after") {
        None | Some(Attr::Null) => Ok(None),
        Some(_) => item.parsed("after", PartnerId::parse).map(Some),
    }
}

/// A saved payment method, by id, as Stripe's events told of it: its card's details (from
/// `payment_method.attached|updated|automatically_updated`, with when Stripe reported them) and
/// whose it is (from the event that saved it). Either event may come first: the second finds
/// the first's half here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethodRecord {
    /// The connected account it is on; `None`: the platform's own.
    pub account: Option<AccountId>,
    pub customer: CustomerId,
    /// The workspace that saved it, on its partner's account...
    pub workspace_id: Option<WorkspaceId>,
    /// ...or the partner, on the platform's; neither until the save is heard of.
    pub partner_id: Option<PartnerId>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "card_details")]
    pub card: Option<CardDetails>,
    /// When Stripe reported the details (unix s): an older report changes nothing.
    pub card_at: Option<i64>,
    /// Set while nobody saved it (DynamoDB's TTL, unix s): a card another integration attached
    /// on a partner's account is forgotten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    pub version: u64,
}

pub fn payment_method_item(pm: &PaymentMethodId, r: &PaymentMethodRecord) -> Item {
    Item::record(&keys::payment_method(pm), "payment_method", r)
}

pub fn payment_method_from(item: &Item) -> Result<PaymentMethodRecord, MalformedItem> {
    item.read()
}

/// A saved card's details as stored: a map of its four fields, checked again when read.
mod card_details {
    use domain::CardDetails;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Stored {
        brand: String,
        last4: String,
        exp_month: u32,
        exp_year: u32,
    }

    pub fn serialize<S: Serializer>(card: &Option<CardDetails>, s: S) -> Result<S::Ok, S::Error> {
        card.as_ref()
            .map(|c| Stored {
                brand: c.brand().to_owned(),
                last4: c.last4().to_owned(),
                exp_month: c.exp_month(),
                exp_year: c.exp_year(),
            })
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CardDetails>, D::Error> {
        Option::<Stored>::deserialize(d)?
            .map(|c| CardDetails::new(&c.brand, &c.last4, c.exp_month, c.exp_year))
            .transpose()
            .map_err(serde::de::Error::custom)
    }
}

pub fn platform_customer_item(p: &PartnerId, c: &PlatformCustomer) -> Item {
    Item::record(&keys::partner_customer(p), "platform_customer", c)
}

pub fn platform_customer_from(item: &Item) -> Result<PlatformCustomer, MalformedItem> {
    item.read()
}

fn auto_topup_attrs(item: Item, a: &AutoTopup) -> Item {
    let in_flight = a.in_flight.as_ref().map_or(Attr::Null, |f| {
        let mut attempt = BTreeMap::from([
            ("number".to_owned(), Attr::n(f.number)),
            ("option".to_owned(), Attr::s(f.option.as_str())),
            ("quantity".to_owned(), Attr::n(f.quantity)),
            ("points".to_owned(), points_attr(f.points)),
            ("currency".to_owned(), Attr::s(f.amount.currency().code())),
            ("amount_minor".to_owned(), Attr::n(f.amount.amount_minor())),
            ("started_at".to_owned(), Attr::s(rfc3339(f.started_at))),
            ("payment_intent".to_owned(), opt_str(&f.payment_intent)),
        ]);
        // Written only when there is one: an attempt stored before descriptions has none.
        if let Some(d) = &f.description {
            attempt.insert("description".to_owned(), Attr::s(d));
        }
        Attr::M(attempt)
    });
    let item = item
        .with("enabled", Attr::Bool(a.enabled))
        .with("option", a.option.as_ref().map_or(Attr::Null, |o| Attr::s(o.as_str())))
        .with("consecutive_failures", Attr::n(a.consecutive_failures))
        .with("last_failure_code", opt_str(&a.last_failure.as_ref().map(|f| f.code.clone())))
        .with("last_failure_at", opt_time(a.last_failure.as_ref().map(|f| f.at)))
        .with("next_attempt_after", opt_time(a.next_attempt_after))
        .with("disabled_reason", opt_str(&a.disabled_reason))
        .with("attempts", Attr::n(a.attempts))
        .with("in_flight", in_flight)
        .with("threshold", a.threshold.map_or(Attr::Null, points_attr))
        .with("monthly_cap", a.monthly_cap.as_ref().map_or(Attr::Null, money_attr))
        .with(
            "spent",
            a.spent.as_ref().map_or(Attr::Null, |(month, m)| {
                Attr::M(BTreeMap::from([
                    ("month".to_owned(), Attr::s(month)),
                    ("currency".to_owned(), Attr::s(m.currency().code())),
                    ("amount_minor".to_owned(), Attr::n(m.amount_minor())),
                ]))
            }),
        )
        .with("version", Attr::n(a.version));
    // Written only when a workspace buys by the point: a setting stored before has none.
    match a.points {
        Some(p) => item.with("points", points_attr(p)),
        None => item,
    }
}

fn money_attr(m: &Money) -> Attr {
    Attr::M(BTreeMap::from([
        ("currency".to_owned(), Attr::s(m.currency().code())),
        ("amount_minor".to_owned(), Attr::n(m.amount_minor())),
    ]))
}

/// A map attribute holding `currency` and `amount_minor`; absent or null is `None` (items
/// written before the attribute existed).
fn get_opt_money_map(item: &Item, name: &str) -> Result<Option<Item>, MalformedItem> {
    match item.get(name) {
        None | Some(Attr::Null) => Ok(None),
        Some(Attr::M(m)) => Ok(Some(Item(m.clone()))),
        _ => Err(MalformedItem { key: item.key(), attr: name.into() }),
    }
}

pub fn auto_topup_from(item: &Item) -> Result<AutoTopup, MalformedItem> {
    let in_flight = match item.get("in_flight") {
        None | Some(Attr::Null) => None,
        Some(Attr::M(m)) => {
            let f = Item(m.clone());
            Some(TopupAttempt {
                number: f.u64("number")?,
                option: f.parsed("option", TopupOptionId::parse)?,
                quantity: get_u32(&f, "quantity")?,
                points: get_points(&f, "points")?,
                amount: get_money(&f)?,
                started_at: f.parsed("started_at", parse_time)?,
                payment_intent: get_opt_str(&f, "payment_intent")?,
                description: get_opt_str(&f, "description")?,
            })
        }
        _ => return Err(MalformedItem { key: item.key(), attr: "in_flight".into() }),
    };
    let last_failure = match (get_opt_str(item, "last_failure_code")?, get_opt_time(item, "last_failure_at")?) {
        (Some(code), Some(at)) => Some(TopupFailure { code, at }),
        (None, None) => None,
        _ => return Err(MalformedItem { key: item.key(), attr: "last_failure_at".into() }),
    };
    Ok(AutoTopup {
        enabled: get_bool(item, "enabled")?,
        option: get_opt_parsed(item, "option", TopupOptionId::parse)?,
        points: get_opt_points(item, "points")?,
        consecutive_failures: get_u32(item, "consecutive_failures")?,
        last_failure,
        next_attempt_after: get_opt_time(item, "next_attempt_after")?,
        disabled_reason: get_opt_str(item, "disabled_reason")?,
        attempts: item.u64("attempts")?,
        in_flight,
        threshold: get_opt_points(item, "threshold")?,
        monthly_cap: get_opt_money_map(item, "monthly_cap")?.map(|m| get_money(&m)).transpose()?,
        spent: match get_opt_money_map(item, "spent")? {
            None => None,
            Some(m) => Some((m.str("month")?.to_owned(), get_money(&m)?)),
        },
        version: item.u64("version")?,
    })
}

// ---- wholesale charges waiting to be folded, and how a partner pays ----

/// A wholesale charge owed by a partner, written in the same transaction as what caused it (a
/// usage event, an add-on bought or renewed), and deleted by the fold that moves it into the
/// partner's wallet (`keys::ACCRUAL_SHARDS` explains why it is not written to the wallet itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accrual {
    #[serde(rename = "partner_id")]
    pub partner: PartnerId,
    #[serde(rename = "workspace_id")]
    pub workspace: WorkspaceId,
    /// What it is for, as the fold's lines name it: `usage:<meter>`, `addon_purchase:<add-on>`,
    /// `renewal`.
    pub source: String,
    /// What made it, unique within the partner: `usage#<w>#<event id>`, `addon#<w>#<add-on id>`,
    /// `renewal#<w>#<renews_on>`. Part of the item's key.
    pub reference: String,
    /// In the platform's currency, 4 places at most.
    #[serde(with = "number")]
    pub amount: Points,
    /// Units of the meter, for usage (no attribute otherwise).
    #[serde(default, with = "number::optional", skip_serializing_if = "Option::is_none")]
    pub quantity: Option<UsageQuantity>,
    #[serde(with = "super::attrs::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Added to its shard's sum ([`keys::accrued`]) when it was written, so the fold takes it
    /// off; an accrual written before the sums existed was not (no attribute).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub counted: bool,
}

/// Adds `amount` (negative: takes it off) to partner `p`'s sum of unfolded accruals in `shard`.
pub fn accrued_write(p: &PartnerId, shard: u32, amount: rust_decimal::Decimal) -> Write {
    Write::Add {
        key: keys::accrued(p, shard),
        add: vec![("amount".into(), amount)],
        set: vec![(ENTITY_TYPE.into(), Attr::s("accrued")), ("partner_id".into(), Attr::s(p.as_str()))],
        set_if_absent: Vec::new(),
    }
}

/// The sum of the [`keys::accrued_all`] items read (absent ones hold nothing).
pub fn accrued_from<'a>(items: impl IntoIterator<Item = Option<&'a Item>>) -> Result<Points, MalformedItem> {
    let mut sum = rust_decimal::Decimal::ZERO;
    for item in items.into_iter().flatten() {
        sum += item.num("amount")?;
    }
    Points::from_decimal(sum).map_err(|_| MalformedItem { key: None, attr: "amount".into() })
}

pub fn accrual_item(a: &Accrual) -> Item {
    Item::record(&keys::accrual(&a.workspace, &a.partner, &a.reference), "accrual", a)
}

pub fn accrual_from(item: &Item) -> Result<Accrual, MalformedItem> {
    item.read()
}

/// How a partner pays the platform, with the version its replacement is checked against
/// (0: never set, postpaid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PartnerBilling {
    /// Its own serde names: `prepaid`, `postpaid`.
    pub mode: WalletMode,
    pub version: u64,
}

pub fn partner_billing_item(p: &PartnerId, b: &PartnerBilling, updated_at: OffsetDateTime) -> Item {
    Item::record(&keys::partner_billing(p), "partner_billing", b).with("updated_at", Attr::s(rfc3339(updated_at)))
}

/// `None` (never set) is postpaid at version 0.
pub fn partner_billing_from(item: Option<&Item>) -> Result<PartnerBilling, MalformedItem> {
    item.map_or(Ok(PartnerBilling::default()), Item::read)
}

#[cfg(test)]
mod usage_records {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn accruals_and_billing_round_trip() {
        let a = Accrual {
            partner: PartnerId::parse("p-1").unwrap(),
            workspace: WorkspaceId::parse("w-1").unwrap(),
            source: "usage:voice_minutes".into(),
            reference: "usage#w-1#evt-1".into(),
            amount: Points::parse("0.035").unwrap(),
            quantity: Some(UsageQuantity::parse("0.5").unwrap()),
            created_at: datetime!(2026-12-01 10:00 UTC),
            counted: true,
        };
        let item = accrual_item(&a);
        assert_eq!(item.key().unwrap(), keys::accrual(&a.workspace, &a.partner, "usage#w-1#evt-1"));
        assert_eq!(accrual_from(&item).unwrap(), a);
        let without = Accrual { quantity: None, source: "renewal".into(), ..a };
        assert_eq!(accrual_from(&accrual_item(&without)).unwrap(), without);

        let p = PartnerId::parse("p-1").unwrap();
        let b = PartnerBilling { mode: WalletMode::Prepaid, version: 2 };
        let item = partner_billing_item(&p, &b, datetime!(2026-12-01 10:00 UTC));
        assert_eq!(partner_billing_from(Some(&item)).unwrap(), b);
        assert_eq!(partner_billing_from(None).unwrap(), PartnerBilling { mode: WalletMode::Postpaid, version: 0 });
    }

    #[test]
    fn a_plan_edit_round_trips_with_and_without_its_cursor() {
        let mut edit = PlanEdit {
            partner: PartnerId::parse("p1").unwrap(),
            plan: PlanId::Growth,
            edit_id: "edit_00000000000000ff".into(),
            after: None,
            edited_at: datetime!(2026-04-15 10:00 UTC),
        };
        let item = plan_edit_item(&edit);
        assert_eq!(item.key(), Some(crate::Key::new("PLAN_EDITS", "p1#growth")));
        assert_eq!(plan_edit_from(&item).unwrap(), edit);
        edit.after = Some(WorkspaceId::parse("ws-7").unwrap());
        assert_eq!(plan_edit_from(&plan_edit_item(&edit)).unwrap(), edit);
    }

    #[test]
    fn a_refill_request_round_trips_for_either_wallet() {
        let mut request = RefillRequest {
            wallet: WalletId::Workspace(WorkspaceId::parse("ws-1").unwrap()),
            renewal_shortfall: Some(Points::parse("12.50").unwrap()),
            request_id: "refill_00000000000000ff".into(),
            requested_at: datetime!(2026-05-01 06:00 UTC),
        };
        let item = refill_request_item(&request);
        assert_eq!(item.key(), Some(crate::Key::new("REFILLS", "WS#ws-1")));
        assert_eq!(refill_request_from(&item).unwrap(), request);
        request.wallet = WalletId::Partner(PartnerId::parse("p1").unwrap());
        request.renewal_shortfall = None;
        let item = refill_request_item(&request);
        assert_eq!(item.key(), Some(crate::Key::new("REFILLS", "PARTNER#p1")));
        assert_eq!(refill_request_from(&item).unwrap(), request);
    }
}

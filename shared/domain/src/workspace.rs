//! Workspaces, their add-ons and their partner's settings: the rules that decide whether a
//! workspace is active or paused.
//!
//! A workspace's effective limits are its partner's version of its plan plus the add-ons that
//! still count (active, or cancelled but running to the end of the cycle). Usage above an
//! effective limit pauses the workspace; the same evaluation resumes it once usage is within
//! them, whatever brought it back (an add-on bought, a plan upgraded, usage reduced).

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::stripe_ids::SubscriptionItemId;
use super::{
    AddonCode, AddonId, AnchorDay, CatalogError, LimitKind, Limits, Money, PartnerId, PlanId, PlanPayment,
    PlanSubscription, Points, Rebilling, Usage, WorkspaceId, effective_limits, exceeded_limits,
};

/// Longest label or name a partner may set.
pub const LABEL_MAX_CHARS: usize = 80;
/// Longest name a partner may give its points.
pub const UNIT_NAME_MAX_CHARS: usize = 20;
/// What points are called in every text a customer reads, until the partner names them.
pub const DEFAULT_UNIT_NAME: &str = "points";
/// Longest grace period a partner may set for unpaid renewals.
pub const GRACE_DAYS_MAX: u32 = 30;
/// Longest URL we store (Stripe's own limit for Checkout URLs is higher; ours is a sanity cap).
pub const URL_MAX_LEN: usize = 2048;
/// Most add-ons of one kind bought in one request.
pub const ADDON_QUANTITY_MAX: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("must be 1 to {LABEL_MAX_CHARS} characters, without control characters")]
    Label,
    #[error("must be an https URL with a host (http is accepted for localhost) of at most {URL_MAX_LEN} characters")]
    Url,
    #[error("must be at most {GRACE_DAYS_MAX}")]
    GraceDays,
    #[error("must be 1 to {ADDON_QUANTITY_MAX}")]
    Quantity,
    #[error("must be 1 to {UNIT_NAME_MAX_CHARS} characters, without control characters or spaces at either end")]
    UnitName,
    #[error(transparent)]
    Brand(#[from] super::BrandError),
}

/// Checks a label or name and returns it trimmed.
pub fn check_label(s: &str) -> Result<String, SettingError> {
    let t = s.trim();
    let ok = !t.is_empty() && t.chars().count() <= LABEL_MAX_CHARS && !t.chars().any(char::is_control);
    if ok { Ok(t.to_owned()) } else { Err(SettingError::Label) }
}

/// Checks a redirect URL a partner gives for Checkout: `https://host[:port][/path][?query][#frag]`,
/// or `http://` to `localhost`, `127.0.0.1` or `[::1]` for a partner testing locally.
///
/// The host must be there and be one Stripe can redirect to: DNS labels (letters, digits, `-`,
/// not at either end of a label) joined by dots, or a bracketed IPv6 address. Stripe refuses a
/// Checkout Session whose URL has no host, so `https://`, `https:///path` or `https://@x` are
/// refused here, when the partner sends them, not on every checkout later. No user info (`@`):
/// `https://good.example@evil.example` goes to evil.example.
pub fn check_url(s: &str) -> Result<(), SettingError> {
    let ok = s.len() <= URL_MAX_LEN && !s.chars().any(|c| c.is_whitespace() || c.is_control()) && url_host_ok(s);
    if ok { Ok(()) } else { Err(SettingError::Url) }
}

/// Longest host name DNS allows, and longest label in it.
const HOST_MAX_LEN: usize = 253;
const LABEL_MAX_LEN: usize = 63;

fn url_host_ok(s: &str) -> bool {
    let lower = |n: usize| s.get(..n).map(str::to_ascii_lowercase);
    let (rest, https) = if lower(8).as_deref() == Some("https://") {
        (&s[8..], true)
    } else if lower(7).as_deref() == Some("http://") {
        (&s[7..], false)
    } else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let Some((host, port)) = split_port(authority) else {
        return false;
    };
    let port_ok = port.is_none_or(|p| {
        p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n != 0)
    });
    let host_ok = if host.starts_with('[') { ipv6_literal_ok(host) } else { dns_name_ok(host) };
    let local = ["localhost", "127.0.0.1", "[::1]"].iter().any(|l| host.eq_ignore_ascii_case(l));
    port_ok && host_ok && (https || local)
}

/// `host[:port]` or `[v6][:port]`; `None` when something other than a port follows the host.
fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    // A bracketed host ends at its `]` (it holds `:`s of its own); without one, the whole rest is
    // the host, and the IPv6 check refuses it.
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    let after = authority.get(host.len()..)?;
    match after.strip_prefix(':') {
        Some(port) => Some((host, Some(port))),
        None if after.is_empty() => Some((host, None)),
        None => None,
    }
}

fn dns_name_ok(host: &str) -> bool {
    let label_ok = |l: &str| {
        (1..=LABEL_MAX_LEN).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (1..=HOST_MAX_LEN).contains(&host.len()) && host.split('.').all(label_ok)
}

/// `[` hex digits, `:` and `.` (an embedded IPv4) `]`, with at least one `:`.
fn ipv6_literal_ok(host: &str) -> bool {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).is_some_and(|inner| {
        inner.contains(':') && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    })
}

pub fn check_quantity(q: u32) -> Result<u32, SettingError> {
    if (1..=ADDON_QUANTITY_MAX).contains(&q) { Ok(q) } else { Err(SettingError::Quantity) }
}

/// What a partner has decided about selling add-ons and points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerSettings {
    /// Add-on credit billing on: workspaces may buy add-ons and points.
    pub credit_billing: bool,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    /// Days an unpaid add-on is kept after its renewal failed (0: it lapses at once).
    pub grace_days: u32,
    /// The re-billing every new workspace starts with (the partner's agency-wide setting).
    #[serde(default)]
    pub default_rebilling: Rebilling,
    /// What the partner calls its points ("credits", "tokens"), in every text its customers read:
    /// the Checkout page, the off-session charge, the answers a white-label page shows.
    #[serde(default = "default_unit_name")]
    pub unit_name: String,
    /// The name, logo and colours its workspaces' billing page shows, and the sites that may
    /// embed it.
    #[serde(default)]
    pub brand: super::Brand,
}

fn default_unit_name() -> String {
    DEFAULT_UNIT_NAME.to_owned()
}

impl PartnerSettings {
    pub fn validate(&self) -> Result<(), (&'static str, SettingError)> {
        for (param, url) in [("success_url", &self.success_url), ("cancel_url", &self.cancel_url)] {
            if let Some(u) = url {
                check_url(u).map_err(|e| (param, e))?;
            }
        }
        if self.grace_days > GRACE_DAYS_MAX {
            return Err(("grace_days", SettingError::GraceDays));
        }
        let unit = &self.unit_name;
        let unit_ok = !unit.is_empty()
            && unit.chars().count() <= UNIT_NAME_MAX_CHARS
            && unit.trim() == unit
            && !unit.chars().any(char::is_control);
        if !unit_ok {
            return Err(("unit_name", SettingError::UnitName));
        }
        self.brand.validate().map_err(|(param, e)| (param, e.into()))
    }
}

impl Default for PartnerSettings {
    /// A new partner starts with credit billing off: selling is something a partner turns on.
    fn default() -> Self {
        Self {
            credit_billing: false,
            success_url: None,
            cancel_url: None,
            grace_days: 0,
            default_rebilling: Rebilling::default(),
            unit_name: default_unit_name(),
            brand: super::Brand::default(),
        }
    }
}

/// A partner's selling terms for one add-on: what its workspaces see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerAddon {
    pub code: AddonCode,
    pub label: String,
    /// Selling price per month, in points (a partner-set price: at most 2 decimals).
    pub points: Points,
    /// Selling price per month in money, for workspaces whose plan is billed in money (its
    /// partner's credit billing off): on the plan's bill. `None`: not sold in money.
    pub price: Option<Money>,
    pub enabled: bool,
}

impl PartnerAddon {
    /// Before a partner edits it: the platform's label and suggested price, on sale.
    pub fn default_for(code: AddonCode) -> Self {
        Self { code, label: code.default_label().to_owned(), points: code.default_points(), price: None, enabled: true }
    }
}

/// A partner's version of one of the three plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub id: PlanId,
    pub label: String,
    pub limits: Limits,
    pub monthly_price: Money,
}

impl Plan {
    pub fn default_for(id: PlanId) -> Self {
        let d = id.defaults();
        Self { id, label: d.label.to_owned(), limits: d.limits, monthly_price: d.monthly_price }
    }
}

/// Where an add-on is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddonStatus {
    /// Counts toward limits and renews at the cycle end.
    Active,
    /// Cancelled by the workspace: counts until its period ends, then ends instead of renewing.
    Cancelling,
    /// Removed by the partner: no longer counts.
    Removed,
    /// Not paid at renewal (after any grace period): no longer counts.
    Lapsed,
}

impl AddonStatus {
    pub fn counts_toward_limits(self) -> bool {
        matches!(self, AddonStatus::Active | AddonStatus::Cancelling)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AddonStatus::Active => "active",
            AddonStatus::Cancelling => "cancelling",
            AddonStatus::Removed => "removed",
            AddonStatus::Lapsed => "lapsed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Cancelling, Self::Removed, Self::Lapsed].into_iter().find(|x| x.as_str() == s)
    }
}

/// An add-on a workspace holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceAddon {
    pub id: AddonId,
    pub code: AddonCode,
    pub quantity: u32,
    /// The price per unit that renews at the next cycle (the full monthly price in points).
    pub unit_points: Points,
    pub status: AddonStatus,
    /// Last day of the period paid for.
    pub period_end: Date,
    pub created_at: OffsetDateTime,
    /// Billed in money, on the workspace's subscription (then `unit_points` is zero and the
    /// points renewal passes it by); `None`: paid in points.
    pub billed: Option<BilledAddon>,
}

/// An add-on on a workspace's plan bill: its subscription item and price per unit a month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BilledAddon {
    pub item: SubscriptionItemId,
    pub unit_price: Money,
}

/// Active, or paused with the limits it is over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum WorkspaceStatus {
    Active,
    /// Over the limits in `exceeded`, or (`unpaid`) its plan's invoice unpaid past the grace
    /// days; either keeps it paused.
    Paused {
        exceeded: Vec<LimitKind>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unpaid: bool,
    },
}

impl WorkspaceStatus {
    pub fn is_paused(&self) -> bool {
        matches!(self, WorkspaceStatus::Paused { .. })
    }
}

/// A workspace (sub-account) of a partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub partner: PartnerId,
    pub name: String,
    pub plan: PlanId,
    pub anchor: AnchorDay,
    pub usage: Usage,
    pub status: WorkspaceStatus,
    /// The add-ons it holds: those that count toward its limits (active or cancelling). An
    /// add-on that ends (removed, lapsed) leaves this list for the workspace's history.
    pub addons: Vec<WorkspaceAddon>,
    /// The day its add-ons renew next: the first day after the cycle they are paid through.
    /// It moves on only when that renewal is done (paid, or lapsed after the grace days), so a
    /// workspace stays due until it is renewed.
    pub renews_on: Date,
    /// Whether, and at what rates, the partner re-bills the workspace's metered usage.
    pub rebilling: Rebilling,
    /// Its plan billed in money on its partner's Stripe account; `None`: the plan is not
    /// charged (points only, or not subscribed yet).
    pub subscription: Option<PlanSubscription>,
    /// Optimistic-concurrency version of the workspace's profile.
    pub version: u64,
    pub created_at: OffsetDateTime,
}

impl Workspace {
    /// Its plan's invoice is unpaid past the grace days: paused whatever its limits.
    pub fn unpaid(&self) -> bool {
        self.subscription.as_ref().is_some_and(|s| matches!(s.payment, PlanPayment::Unpaid { .. }))
    }
}

/// Effective limits and status of a workspace with `plan`, `addons` and `usage`, and whether its
/// plan is `unpaid` past the grace days ([`Workspace::unpaid`]).
pub fn evaluate(
    plan: &Plan,
    addons: &[WorkspaceAddon],
    usage: &Usage,
    unpaid: bool,
) -> Result<(Limits, WorkspaceStatus), CatalogError> {
    let counted = addons.iter().filter(|a| a.status.counts_toward_limits()).map(|a| (a.code, a.quantity));
    let limits = effective_limits(&plan.limits, counted)?;
    let exceeded = exceeded_limits(&limits, usage);
    let status = if exceeded.is_empty() && !unpaid {
        WorkspaceStatus::Active
    } else {
        WorkspaceStatus::Paused { exceeded, unpaid }
    };
    Ok((limits, status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn addon(code: AddonCode, quantity: u32, status: AddonStatus) -> WorkspaceAddon {
        WorkspaceAddon {
            id: AddonId::generate(),
            code,
            quantity,
            unit_points: code.default_points(),
            status,
            period_end: date!(2026 - 04 - 30),
            created_at: datetime!(2026-04-15 0:00 UTC),
            billed: None,
        }
    }

    #[test]
    fn pause_and_resume_follow_the_limits() {
        let starter = Plan::default_for(PlanId::Starter);
        let two_bots = Usage { bots: 2, members: 1, bot_users: 10 };
        let (_, status) = evaluate(&starter, &[], &two_bots, false).unwrap();
        assert_eq!(status, WorkspaceStatus::Paused { exceeded: vec![LimitKind::Bots], unpaid: false });
        let bought = [addon(AddonCode::ExtraBot, 1, AddonStatus::Active)];
        let (limits, status) = evaluate(&starter, &bought, &two_bots, false).unwrap();
        assert_eq!((limits.bots, status), (2, WorkspaceStatus::Active));
        // A cancelled add-on still counts until its period ends; a removed or lapsed one not.
        for (s, paused) in [(AddonStatus::Cancelling, false), (AddonStatus::Removed, true), (AddonStatus::Lapsed, true)]
        {
            let (_, status) = evaluate(&starter, &[addon(AddonCode::ExtraBot, 1, s)], &two_bots, false).unwrap();
            assert_eq!(status.is_paused(), paused, "{s:?}");
        }
        // A plan upgrade alone resumes it.
        let (_, status) = evaluate(&Plan::default_for(PlanId::Growth), &[], &two_bots, false).unwrap();
        assert_eq!(status, WorkspaceStatus::Active);
    }

    #[test]
    fn status_json() {
        let paused = WorkspaceStatus::Paused { exceeded: vec![LimitKind::Bots, LimitKind::BotUsers], unpaid: false };
        assert_eq!(serde_json::to_string(&paused).unwrap(), r#"{"status":"paused","exceeded":["bots","bot_users"]}"#);
        assert_eq!(serde_json::to_string(&WorkspaceStatus::Active).unwrap(), r#"{"status":"active"}"#);
    }

    #[test]
    fn settings_are_checked() {
        let mut s = PartnerSettings { success_url: Some("https://agency.example/ok".into()), ..Default::default() };
        assert_eq!(s.validate(), Ok(()));
        s.cancel_url = Some("ftp://x".into());
        assert_eq!(s.validate(), Err(("cancel_url", SettingError::Url)));
        s.cancel_url = Some("http://localhost:3000/cancel".into());
        s.grace_days = 31;
        assert_eq!(s.validate(), Err(("grace_days", SettingError::GraceDays)));
        s.grace_days = 3;
        assert_eq!(s.unit_name, "points", "points until the partner names them");
        for good in ["credits", "Tokens", "minutes de voix", "クレジット"] {
            s.unit_name = good.into();
            assert_eq!(s.validate(), Ok(()), "{good}");
        }
        for bad in ["", " credits", "credits ", "a\tb", "twenty-one characters"] {
            s.unit_name = bad.into();
            assert_eq!(s.validate(), Err(("unit_name", SettingError::UnitName)), "{bad:?}");
        }
        let parsed: PartnerSettings = serde_json::from_str(
            r#"{"credit_billing": false, "success_url": null, "cancel_url": null, "grace_days": 0}"#,
        )
        .unwrap();
        assert_eq!(parsed.unit_name, "points", "a PUT without it names them points");
        assert_eq!(check_label("  Extra bot "), Ok("Extra bot".into()));
        assert!(check_label("").is_err() && check_label("a\nb").is_err());
        assert!(check_quantity(0).is_err() && check_quantity(1001).is_err() && check_quantity(3).is_ok());
    }

    #[test]
    fn a_url_needs_a_scheme_and_a_host() {
        let good = [
            "https://agency.example/ok",
            "https://agency.example",
            "HTTPS://Agency.Example:8443/ok?session={CHECKOUT_SESSION_ID}#top",
            "https://console.agency-1.example/wallet/paid",
            "https://intranet/ok",
            "https://192.0.2.10/ok",
            "https://[2001:db8::1]:443/ok",
            "http://localhost:3000/cancel",
            "http://127.0.0.1/ok",
            "http://[::1]:8080",
            "https://x.example?next=https://other.example/@home",
        ];
        for u in good {
            assert_eq!(check_url(u), Ok(()), "{u}");
        }
        let long_label = format!("https://{}.example", "a".repeat(64));
        let too_long = format!("https://x.example/{}", "a".repeat(URL_MAX_LEN));
        let bad = [
            "https://",
            "https:///ok",
            "https://?x=1",
            "https://#x",
            "https://:443/ok",
            "https://@",
            "https://@agency.example",
            "https://user:pass@agency.example/ok",
            "https://agency.example@evil.example/ok",
            "https://.example",
            "https://agency..example",
            "https://-agency.example",
            "https://agency-.example",
            "https://agency_1.example",
            "https://agency.example:",
            "https://agency.example:0",
            "https://agency.example:65536",
            "https://agency.example:+443",
            "https://agency.example:443:1",
            "https://[2001:db8::1",
            "https://[]/ok",
            "https://[2001:db8::g]/ok",
            "https://[2001:db8::1]x/ok",
            "https://agence.exämple/ok",
            "https://agency example/ok",
            "http://agency.example/ok",
            "http://localhost.evil.example/ok",
            "http://127.0.0.1.evil.example/ok",
            "ftp://agency.example",
            "agency.example/ok",
            "//agency.example/ok",
            "https:agency.example",
            "",
            &long_label,
            &too_long,
        ];
        for u in bad {
            assert_eq!(check_url(u), Err(SettingError::Url), "{u}");
        }
    }
}

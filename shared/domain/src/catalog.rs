//! The platform's catalog: the six add-ons with their wholesale cost prices, the three default
//! plans, and the limit rules.
//!
//! Effective limits = plan limits + active add-ons. A workspace whose usage (bots, members, bot
//! users) exceeds its effective limits is paused, and resumes by itself as soon as it is within
//! them again.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Currency, Money, Points};

/// One kind of limit a plan sets and an add-on raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    Bots,
    Members,
    BotUsers,
    InboundWebhookRequestsPerMonth,
    ExternalRequestTimeoutS,
}

impl LimitKind {
    /// The limits that usage is counted against; exceeding one pauses the workspace. The other two
    /// are enforced where the request happens (webhook quota, timeout), not by pausing.
    pub const USAGE_COUNTED: [LimitKind; 3] = [LimitKind::Bots, LimitKind::Members, LimitKind::BotUsers];
    pub const ALL: [LimitKind; 5] = [
        LimitKind::Bots,
        LimitKind::Members,
        LimitKind::BotUsers,
        LimitKind::InboundWebhookRequestsPerMonth,
        LimitKind::ExternalRequestTimeoutS,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            LimitKind::Bots => "bots",
            LimitKind::Members => "members",
            LimitKind::BotUsers => "bot_users",
            LimitKind::InboundWebhookRequestsPerMonth => "inbound_webhook_requests_per_month",
            LimitKind::ExternalRequestTimeoutS => "external_request_timeout_s",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a plan allows, or a workspace's effective limits (plan + add-ons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub bots: u32,
    pub members: u32,
    pub bot_users: u32,
    pub inbound_webhook_requests_per_month: u32,
    pub external_request_timeout_s: u32,
}

/// The most a plan may give of any limit: a billion, far above any real plan, and low enough that
/// add-ons on top of it (each purchase checked to stay within `u32`) leave room to spare. A plan
/// at `u32::MAX` made every later evaluation of its workspaces overflow: found by fuzzing.
pub const PLAN_LIMIT_MAX: u32 = 1_000_000_000;

impl Limits {
    /// The first limit above [`PLAN_LIMIT_MAX`], if any.
    pub fn above_plan_maximum(&self) -> Option<LimitKind> {
        LimitKind::ALL.into_iter().find(|&k| self.get(k) > PLAN_LIMIT_MAX)
    }

    pub fn get(&self, kind: LimitKind) -> u32 {
        match kind {
            LimitKind::Bots => self.bots,
            LimitKind::Members => self.members,
            LimitKind::BotUsers => self.bot_users,
            LimitKind::InboundWebhookRequestsPerMonth => self.inbound_webhook_requests_per_month,
            LimitKind::ExternalRequestTimeoutS => self.external_request_timeout_s,
        }
    }

    fn get_mut(&mut self, kind: LimitKind) -> &mut u32 {
        match kind {
            LimitKind::Bots => &mut self.bots,
            LimitKind::Members => &mut self.members,
            LimitKind::BotUsers => &mut self.bot_users,
            LimitKind::InboundWebhookRequestsPerMonth => &mut self.inbound_webhook_requests_per_month,
            LimitKind::ExternalRequestTimeoutS => &mut self.external_request_timeout_s,
        }
    }
}

/// What a workspace uses of the usage-counted limits, as the platform reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    pub bots: u32,
    pub members: u32,
    pub bot_users: u32,
}

impl Usage {
    /// The usage of a usage-counted limit; `None` for the two limits usage isn't counted against.
    pub fn get(&self, kind: LimitKind) -> Option<u32> {
        match kind {
            LimitKind::Bots => Some(self.bots),
            LimitKind::Members => Some(self.members),
            LimitKind::BotUsers => Some(self.bot_users),
            LimitKind::InboundWebhookRequestsPerMonth | LimitKind::ExternalRequestTimeoutS => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error(
        "unknown add-on code; expected one of extra_bot, extra_member, extra_1k_bot_users, extra_10k_bot_users, extra_1k_webhook_requests, extra_10s_timeout"
    )]
    UnknownAddonCode,
    #[error("unknown plan; expected one of starter, growth, agency")]
    UnknownPlan,
    #[error("the {kind} limit would exceed {}", u32::MAX)]
    LimitOverflow { kind: LimitKind },
}

/// The platform's add-ons. Codes are stable (they are stored and sent over the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AddonCode {
    ExtraBot,
    ExtraMember,
    Extra1kBotUsers,
    Extra10kBotUsers,
    Extra1kWebhookRequests,
    Extra10sTimeout,
}

impl AddonCode {
    pub const ALL: [AddonCode; 6] = [
        AddonCode::ExtraBot,
        AddonCode::ExtraMember,
        AddonCode::Extra1kBotUsers,
        AddonCode::Extra10kBotUsers,
        AddonCode::Extra1kWebhookRequests,
        AddonCode::Extra10sTimeout,
    ];

    pub fn parse(s: &str) -> Result<Self, CatalogError> {
        Self::ALL.into_iter().find(|c| c.as_str() == s).ok_or(CatalogError::UnknownAddonCode)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            AddonCode::ExtraBot => "extra_bot",
            AddonCode::ExtraMember => "extra_member",
            AddonCode::Extra1kBotUsers => "extra_1k_bot_users",
            AddonCode::Extra10kBotUsers => "extra_10k_bot_users",
            AddonCode::Extra1kWebhookRequests => "extra_1k_webhook_requests",
            AddonCode::Extra10sTimeout => "extra_10s_timeout",
        }
    }

    /// The platform's wholesale cost per unit per month, in USD:
    /// extra bot $5, extra member $5, extra 1,000 bot users $5, extra 10,000 bot users $30,
    /// extra 1,000 inbound webhook requests $20, +10 s external request timeout $20.
    /// A workspace never sees it.
    pub fn cost_price(&self) -> Money {
        let dollars: u32 = match self {
            AddonCode::ExtraBot | AddonCode::ExtraMember | AddonCode::Extra1kBotUsers => 5,
            AddonCode::Extra10kBotUsers => 30,
            AddonCode::Extra1kWebhookRequests | AddonCode::Extra10sTimeout => 20,
        };
        let cents = i64::from(dollars).checked_mul(Currency::USD.minor_per_major()).expect("a few dollars in cents");
        Money::from_minor(cents, Currency::USD).expect("a whole-dollar USD amount is valid")
    }

    /// The limit one unit raises, and by how much.
    pub fn effect(&self) -> (LimitKind, u32) {
        match self {
            AddonCode::ExtraBot => (LimitKind::Bots, 1),
            AddonCode::ExtraMember => (LimitKind::Members, 1),
            AddonCode::Extra1kBotUsers => (LimitKind::BotUsers, 1_000),
            AddonCode::Extra10kBotUsers => (LimitKind::BotUsers, 10_000),
            AddonCode::Extra1kWebhookRequests => (LimitKind::InboundWebhookRequestsPerMonth, 1_000),
            AddonCode::Extra10sTimeout => (LimitKind::ExternalRequestTimeoutS, 10),
        }
    }

    /// The label a partner starts with (partners rename add-ons; workspaces see the label).
    pub fn default_label(&self) -> &'static str {
        match self {
            AddonCode::ExtraBot => "Extra bot",
            AddonCode::ExtraMember => "Extra member",
            AddonCode::Extra1kBotUsers => "Extra 1,000 bot users",
            AddonCode::Extra10kBotUsers => "Extra 10,000 bot users",
            AddonCode::Extra1kWebhookRequests => "Extra 1,000 inbound webhook requests",
            AddonCode::Extra10sTimeout => "Extra 10 s external request timeout",
        }
    }

    /// The selling price in points a partner starts with, per unit per month: twice the cost
    /// price in dollars (10 points for an extra bot, a "$10/month" member), which at a
    /// "$10 -> 10 points" top-up is a 100% markup. Partners change it.
    pub fn default_points(&self) -> Points {
        let dollars = self.cost_price().as_major();
        Points::from_decimal(dollars.checked_mul(Decimal::TWO).expect("a few dollars twice"))
            .expect("twice a small cost price is valid points")
    }
}

impl fmt::Display for AddonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AddonCode {
    type Err = CatalogError;
    fn from_str(s: &str) -> Result<Self, CatalogError> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for AddonCode {
    type Error = CatalogError;
    fn try_from(s: &str) -> Result<Self, CatalogError> {
        Self::parse(s)
    }
}

impl Serialize for AddonCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AddonCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The three plans every partner starts with. Their limits and prices here are only the
/// defaults a new partner gets; each partner edits its own (stored with the partner), so code
/// that decides about a workspace reads the partner's plan, never these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PlanId {
    Starter,
    Growth,
    Agency,
}

/// A default plan: what a partner's plan is before the partner edits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanDefaults {
    pub label: &'static str,
    pub limits: Limits,
    pub monthly_price: Money,
}

impl PlanId {
    pub const ALL: [PlanId; 3] = [PlanId::Starter, PlanId::Growth, PlanId::Agency];

    pub fn parse(s: &str) -> Result<Self, CatalogError> {
        Self::ALL.into_iter().find(|p| p.as_str() == s).ok_or(CatalogError::UnknownPlan)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            PlanId::Starter => "starter",
            PlanId::Growth => "growth",
            PlanId::Agency => "agency",
        }
    }

    /// Default limits and monthly price (USD):
    ///
    /// | plan    | bots | members | bot users | webhook requests/month | timeout | price |
    /// |---------|------|---------|-----------|------------------------|---------|-------|
    /// | starter | 1    | 2       | 1,000     | 1,000                  | 10 s    | $49   |
    /// | growth  | 5    | 5       | 10,000    | 10,000                 | 20 s    | $99   |
    /// | agency  | 20   | 15      | 50,000    | 50,000                 | 30 s    | $249  |
    ///
    /// Starter is the $49/month plan; agency is the higher plan, with 50,000 bot users.
    pub fn defaults(&self) -> PlanDefaults {
        let (label, bots, members, bot_users, webhooks, timeout_s, dollars) = match self {
            PlanId::Starter => ("Starter", 1, 2, 1_000, 1_000, 10, 49),
            PlanId::Growth => ("Growth", 5, 5, 10_000, 10_000, 20, 99),
            PlanId::Agency => ("Agency", 20, 15, 50_000, 50_000, 30, 249),
        };
        PlanDefaults {
            label,
            limits: Limits {
                bots,
                members,
                bot_users,
                inbound_webhook_requests_per_month: webhooks,
                external_request_timeout_s: timeout_s,
            },
            monthly_price: Money::from_minor(
                i64::checked_mul(dollars, Currency::USD.minor_per_major()).expect("a default plan's price in cents"),
                Currency::USD,
            )
            .expect("a whole-dollar USD amount is valid"),
        }
    }
}

impl fmt::Display for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PlanId {
    type Err = CatalogError;
    fn from_str(s: &str) -> Result<Self, CatalogError> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for PlanId {
    type Error = CatalogError;
    fn try_from(s: &str) -> Result<Self, CatalogError> {
        Self::parse(s)
    }
}

impl Serialize for PlanId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PlanId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Plan limits plus every active add-on (code, quantity): three `extra_bot` on a 1-bot plan
/// allow 4 bots; two `extra_10k_bot_users` add 20,000 bot users. Exact: a limit that would pass
/// `u32::MAX` is an error, never saturated (a saturated limit would silently differ from what
/// was bought).
pub fn effective_limits(
    plan_limits: &Limits,
    active_addons: impl IntoIterator<Item = (AddonCode, u32)>,
) -> Result<Limits, CatalogError> {
    let mut limits = *plan_limits;
    for (code, quantity) in active_addons {
        let (kind, per_unit) = code.effect();
        let limit = limits.get_mut(kind);
        *limit = per_unit
            .checked_mul(quantity)
            .and_then(|extra| limit.checked_add(extra))
            .ok_or(CatalogError::LimitOverflow { kind })?;
    }
    Ok(limits)
}

/// The usage-counted limits (bots, members, bot users, in that order) that `usage` exceeds.
/// Empty means the workspace is active; anything else pauses it. Using exactly the limit is
/// within it: 1 bot on a 1-bot plan is fine, 2 are not.
pub fn exceeded_limits(limits: &Limits, usage: &Usage) -> Vec<LimitKind> {
    LimitKind::USAGE_COUNTED
        .into_iter()
        .filter(|&kind| usage.get(kind).is_some_and(|used| used > limits.get(kind)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn starter() -> Limits {
        PlanId::Starter.defaults().limits
    }

    #[test]
    fn addon_codes_are_stable() {
        let codes: Vec<&str> = AddonCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            codes,
            [
                "extra_bot",
                "extra_member",
                "extra_1k_bot_users",
                "extra_10k_bot_users",
                "extra_1k_webhook_requests",
                "extra_10s_timeout"
            ]
        );
        for c in AddonCode::ALL {
            assert_eq!(AddonCode::parse(c.as_str()), Ok(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
            assert_eq!(serde_json::from_str::<AddonCode>(&format!("\"{c}\"")).unwrap(), c);
        }
        for bad in ["", "extra_bots", "EXTRA_BOT", "Extra bot", "extra_10s_timeout "] {
            assert_eq!(AddonCode::parse(bad), Err(CatalogError::UnknownAddonCode), "{bad:?}");
        }
        assert!(serde_json::from_str::<AddonCode>("\"ssl_certificate\"").is_err());
    }

    #[test]
    fn cost_prices_and_effects() {
        let usd = |cents: i64| Money::from_minor(cents, Currency::USD).unwrap();
        let expected = [
            (AddonCode::ExtraBot, 500, LimitKind::Bots, 1, "10.00"),
            (AddonCode::ExtraMember, 500, LimitKind::Members, 1, "10.00"),
            (AddonCode::Extra1kBotUsers, 500, LimitKind::BotUsers, 1_000, "10.00"),
            (AddonCode::Extra10kBotUsers, 3000, LimitKind::BotUsers, 10_000, "60.00"),
            (AddonCode::Extra1kWebhookRequests, 2000, LimitKind::InboundWebhookRequestsPerMonth, 1_000, "40.00"),
            (AddonCode::Extra10sTimeout, 2000, LimitKind::ExternalRequestTimeoutS, 10, "40.00"),
        ];
        for (code, cents, kind, amount, points) in expected {
            assert_eq!(code.cost_price(), usd(cents), "{code}");
            assert_eq!(code.effect(), (kind, amount), "{code}");
            assert_eq!(code.default_points().to_string(), points, "{code}");
            assert!(code.default_points().check_price().is_ok());
            assert!(!code.default_label().is_empty());
        }
        assert_eq!(AddonCode::ExtraBot.default_label(), "Extra bot");
    }

    #[test]
    fn default_plans() {
        let s = PlanId::Starter.defaults();
        assert_eq!(
            s.limits,
            Limits {
                bots: 1,
                members: 2,
                bot_users: 1_000,
                inbound_webhook_requests_per_month: 1_000,
                external_request_timeout_s: 10
            }
        );
        assert_eq!(s.monthly_price.to_string(), "49.00 usd");
        assert_eq!(PlanId::Growth.defaults().monthly_price.to_string(), "99.00 usd");
        assert_eq!(PlanId::Agency.defaults().monthly_price.to_string(), "249.00 usd");
        // Each plan is at least as generous as the one below it, on every limit.
        for pair in PlanId::ALL.windows(2) {
            let (lower, higher) = (pair[0].defaults(), pair[1].defaults());
            for kind in [
                LimitKind::Bots,
                LimitKind::Members,
                LimitKind::BotUsers,
                LimitKind::InboundWebhookRequestsPerMonth,
                LimitKind::ExternalRequestTimeoutS,
            ] {
                assert!(higher.limits.get(kind) > lower.limits.get(kind), "{} {kind}", pair[1]);
            }
            assert!(higher.monthly_price.amount_minor() > lower.monthly_price.amount_minor());
        }
        for p in PlanId::ALL {
            assert_eq!(PlanId::parse(p.as_str()), Ok(p));
            assert_eq!(serde_json::from_str::<PlanId>(&format!("\"{p}\"")).unwrap(), p);
        }
        assert_eq!(PlanId::parse("enterprise"), Err(CatalogError::UnknownPlan));
    }

    #[test]
    fn two_bots_on_a_one_bot_plan_pause_until_an_extra_bot() {
        let usage = Usage { bots: 2, members: 1, bot_users: 500 };
        assert_eq!(exceeded_limits(&starter(), &usage), vec![LimitKind::Bots]);
        let with_addon = effective_limits(&starter(), [(AddonCode::ExtraBot, 1)]).unwrap();
        assert_eq!(with_addon.bots, 2);
        assert_eq!(exceeded_limits(&with_addon, &usage), vec![]);
        // Exactly at the limit is within it.
        assert_eq!(exceeded_limits(&starter(), &Usage { bots: 1, members: 2, bot_users: 1_000 }), vec![]);
    }

    #[test]
    fn several_limits_exceeded_in_a_stable_order() {
        let usage = Usage { bots: 9, members: 9, bot_users: 1_001 };
        assert_eq!(exceeded_limits(&starter(), &usage), vec![LimitKind::Bots, LimitKind::Members, LimitKind::BotUsers]);
        // The two limits that aren't usage-counted never pause.
        let zero = Limits { inbound_webhook_requests_per_month: 0, external_request_timeout_s: 0, ..starter() };
        assert_eq!(exceeded_limits(&zero, &Usage::default()), vec![]);
    }

    #[test]
    fn addons_add_up() {
        let l = effective_limits(
            &starter(),
            [
                (AddonCode::Extra10kBotUsers, 2),
                (AddonCode::Extra1kBotUsers, 1),
                (AddonCode::Extra1kWebhookRequests, 3),
                (AddonCode::Extra10sTimeout, 1),
                (AddonCode::ExtraMember, 0),
            ],
        )
        .unwrap();
        assert_eq!(l.bot_users, 1_000 + 20_000 + 1_000);
        assert_eq!(l.inbound_webhook_requests_per_month, 4_000);
        assert_eq!(l.external_request_timeout_s, 20);
        assert_eq!((l.bots, l.members), (1, 2));
        let only_10k = effective_limits(&starter(), [(AddonCode::Extra10kBotUsers, 2)]).unwrap();
        assert_eq!(only_10k.bot_users - starter().bot_users, 20_000);
        assert_eq!(effective_limits(&starter(), []).unwrap(), starter());
    }

    #[test]
    fn overflow_is_an_error_not_a_saturation() {
        assert_eq!(
            effective_limits(&starter(), [(AddonCode::Extra10kBotUsers, u32::MAX / 10_000 + 1)]),
            Err(CatalogError::LimitOverflow { kind: LimitKind::BotUsers })
        );
        let full = Limits { bots: u32::MAX, ..starter() };
        assert_eq!(
            effective_limits(&full, [(AddonCode::ExtraBot, 1)]),
            Err(CatalogError::LimitOverflow { kind: LimitKind::Bots })
        );
        assert_eq!(effective_limits(&full, [(AddonCode::ExtraBot, 0)]).unwrap().bots, u32::MAX);
    }

    #[test]
    fn limits_json() {
        let json = serde_json::to_string(&starter()).unwrap();
        assert_eq!(
            json,
            r#"{"bots":1,"members":2,"bot_users":1000,"inbound_webhook_requests_per_month":1000,"external_request_timeout_s":10}"#
        );
        assert_eq!(serde_json::from_str::<Limits>(&json).unwrap(), starter());
        assert!(serde_json::from_str::<Limits>(r#"{"bots":-1}"#).is_err());
        assert_eq!(serde_json::to_string(&LimitKind::BotUsers).unwrap(), "\"bot_users\"");
    }

    fn any_addons() -> impl Strategy<Value = Vec<(AddonCode, u32)>> {
        proptest::collection::vec((proptest::sample::select(AddonCode::ALL.to_vec()), 0u32..1_000), 0..8)
    }

    proptest! {
        #[test]
        fn effective_limits_is_plan_plus_sum_of_effects(addons in any_addons()) {
            let l = effective_limits(&starter(), addons.clone()).unwrap();
            let mut expected = [0u64; 5];
            for (code, q) in &addons {
                let (kind, per_unit) = code.effect();
                expected[kind as usize] += u64::from(per_unit) * u64::from(*q);
            }
            for kind in [
                LimitKind::Bots,
                LimitKind::Members,
                LimitKind::BotUsers,
                LimitKind::InboundWebhookRequestsPerMonth,
                LimitKind::ExternalRequestTimeoutS,
            ] {
                prop_assert_eq!(u64::from(l.get(kind)), u64::from(starter().get(kind)) + expected[kind as usize]);
            }
        }

        #[test]
        fn buying_addons_never_pauses(addons in any_addons(), bots in 0u32..50, members in 0u32..50, bot_users in 0u32..100_000) {
            let usage = Usage { bots, members, bot_users };
            let before = exceeded_limits(&starter(), &usage);
            let after = exceeded_limits(&effective_limits(&starter(), addons).unwrap(), &usage);
            prop_assert!(after.iter().all(|k| before.contains(k)));
        }
    }
}

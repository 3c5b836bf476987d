//! Metered usage and re-billing with two wallets.
//!
//! The platform meters what a workspace consumes (voice minutes, say) and charges it twice:
//! - to the partner's wallet, always, at the platform's wholesale unit cost (in the platform's
//!   currency: voice minutes at 0.07 USD);
//! - to the workspace's wallet, in points, at the partner's resale rate, when the partner
//!   re-bills that workspace for that meter.
//!
//! Each charge is `rate x quantity`, rounded once, half up, to 4 places (the balance's places):
//! half a minute at 0.07 USD is 0.035; 1.5 minutes at 0.15 points is 0.225.
//!
//! Usage that happened is always recorded, even when it takes a wallet below zero (minutes
//! already spoken can't be refused afterwards). What is refused is the next call: the access
//! check ([`check_access`]) answers 403 while the workspace is paused, while a re-billed
//! workspace's wallet is at or below zero, or while a prepaid partner's wallet is.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{
    AmountSyntax, AmountTextError, BALANCE_DP, Balance, CreditRate, Currency, InvalidId, Points, WorkspaceStatus,
    parse_amount, round_half_up,
};

/// Longest meter code.
pub const METER_CODE_MAX_LEN: usize = 40;
/// Most meters the platform defines, and most rates one workspace's re-billing carries.
pub const MAX_METERS: usize = 20;
/// Largest quantity one usage event may report (a million minutes is a bug, not a call).
pub const USAGE_QUANTITY_MAX: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
/// Largest unit cost or resale rate: a million per unit.
pub const UNIT_RATE_MAX: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
/// Decimal places of a quantity, a unit cost or a resale rate.
pub const USAGE_DP: u32 = 4;

/// Rounds a usage charge once, half up, to [`BALANCE_DP`] = 4 places: the published rule.
///
/// `0.07 x 0.5 = 0.035`; `0.15 x 1.5 = 0.225`; `0.0333 x 0.5 = 0.01665 -> 0.0167`.
pub fn usage_charge(rate: UnitRate, quantity: UsageQuantity) -> Points {
    // Both at most 1e6 with 4 places: the product is exact in `Decimal` and below POINTS_MAX.
    let exact = rate.0.checked_mul(quantity.0).expect("two values of at most 1e6 multiply exactly");
    Points::from_decimal(round_half_up(exact, BALANCE_DP)).expect("a usage charge is at most 1e12")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("must be a decimal number written as a string, like \"1.5\"")]
    NotADecimal,
    #[error("must be greater than 0")]
    NotPositive,
    #[error("must have at most {USAGE_DP} decimal places")]
    TooManyDecimals,
    #[error("must be at most {max}")]
    TooLarge { max: Decimal },
    #[error("unknown meter {0:?}")]
    UnknownMeter(String),
    #[error("at most {MAX_METERS} meters")]
    TooManyMeters,
    /// The resale rate, priced through the partner's credit rate, is below the platform's cost.
    #[error(
        "{rate} points per unit at {price_per_point} {currency} per point is {resale} {currency}, below the \
         wholesale cost of {cost} {currency} per unit"
    )]
    BelowWholesale { rate: String, price_per_point: Decimal, resale: Decimal, cost: Decimal, currency: Currency },
}

/// Digits before the point of a quantity or a rate: [`USAGE_QUANTITY_MAX`] and [`UNIT_RATE_MAX`] have 7.
const USAGE_INT_DIGITS: u32 = 7;

/// The text checked by the shared amount parser (at most 4 places, zeros past them are not
/// precision), then more than 0 and at most `max`.
fn parse_positive(s: &str, max: Decimal) -> Result<Decimal, UsageError> {
    let syntax = AmountSyntax::new(USAGE_DP, USAGE_INT_DIGITS).zeros_past_dp();
    let v = parse_amount(s, syntax).map_err(|e| match e {
        AmountTextError::NotADecimal => UsageError::NotADecimal,
        AmountTextError::Negative => UsageError::NotPositive,
        AmountTextError::TooManyDecimals => UsageError::TooManyDecimals,
        AmountTextError::TooManyDigits => UsageError::TooLarge { max },
    })?;
    check_positive(v, max)
}

fn check_positive(v: Decimal, max: Decimal) -> Result<Decimal, UsageError> {
    let v = v.normalize();
    if v <= Decimal::ZERO {
        return Err(UsageError::NotPositive);
    }
    if v.scale() > USAGE_DP {
        return Err(UsageError::TooManyDecimals);
    }
    if v > max {
        return Err(UsageError::TooLarge { max });
    }
    Ok(v)
}

macro_rules! positive_decimal {
    ($(#[$doc:meta])* $name:ident, $max:expr, $min_dp:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Decimal);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, UsageError> {
                parse_positive(s, $max).map(Self)
            }

            pub fn from_decimal(v: Decimal) -> Result<Self, UsageError> {
                check_positive(v, $max).map(Self)
            }

            pub fn as_decimal(&self) -> Decimal {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut v = self.0;
                v.rescale(v.scale().max($min_dp));
                write!(f, "{v}")
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            /// Only a string, like every amount in this API.
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

positive_decimal!(
    /// How much of a meter one usage event used: more than 0, at most 4 places (`"0.5"` minutes).
    UsageQuantity,
    USAGE_QUANTITY_MAX,
    0
);
positive_decimal!(
    /// A price per unit of a meter: the platform's wholesale cost (in its currency) or a
    /// partner's resale rate (in points). More than 0, at most 4 places; shown with at least 2,
    /// like points (`"0.20"`).
    UnitRate,
    UNIT_RATE_MAX,
    2
);

crate::ids::string_id!(
    /// A meter the platform charges by: `voice_minutes`.
    MeterCode,
    check_meter_code
);

fn check_meter_code(s: &str) -> Result<(), InvalidId> {
    let ok = !s.is_empty()
        && s.len() <= METER_CODE_MAX_LEN
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok { Ok(()) } else { Err(InvalidId::new("meter", "a-z, 0-9 or '_'", METER_CODE_MAX_LEN)) }
}

/// One of the platform's meters and what a unit costs the partner, in [`Meters::currency`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meter {
    pub code: MeterCode,
    pub unit_cost: UnitRate,
}

/// The platform's meters (configuration), all priced in one currency: the platform's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meters {
    currency: Currency,
    meters: Vec<Meter>,
}

impl Meters {
    pub fn new(currency: Currency, meters: Vec<Meter>) -> Result<Self, UsageError> {
        if meters.len() > MAX_METERS {
            return Err(UsageError::TooManyMeters);
        }
        Ok(Self { currency, meters })
    }

    /// The default: voice minutes at 0.07 USD each.
    pub fn default_usd() -> Self {
        let voice = Meter {
            code: MeterCode::parse("voice_minutes").expect("a valid meter code"),
            unit_cost: UnitRate::parse("0.07").expect("a valid unit cost"),
        };
        Self { currency: Currency::USD, meters: vec![voice] }
    }

    /// From configuration text: `voice_minutes=0.07,sms=0.0100` (codes and unit costs).
    pub fn parse(currency: Currency, text: &str) -> Result<Self, String> {
        let mut meters = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (code, cost) = part.split_once('=').ok_or_else(|| format!("{part:?} is not code=unit_cost"))?;
            let code = MeterCode::parse(code.trim()).map_err(|e| e.to_string())?;
            let unit_cost = UnitRate::parse(cost.trim()).map_err(|e| format!("{code}: {e}"))?;
            if meters.iter().any(|m: &Meter| m.code == code) {
                return Err(format!("meter {code} is defined twice"));
            }
            meters.push(Meter { code, unit_cost });
        }
        Self::new(currency, meters).map_err(|e| e.to_string())
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn get(&self, code: &MeterCode) -> Option<&Meter> {
        self.meters.iter().find(|m| &m.code == code)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Meter> {
        self.meters.iter()
    }
}

/// Whether a partner re-bills a workspace's usage, and at what rate per meter (points per unit).
/// A meter without a rate costs the partner only, as does every meter while re-billing is off.
///
/// JSON: `{"enabled": true, "rates": {"voice_minutes": "0.15"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rebilling {
    pub enabled: bool,
    #[serde(default)]
    pub rates: BTreeMap<MeterCode, UnitRate>,
}

impl Rebilling {
    /// The points a workspace is charged per unit of `meter`, if it is re-billed for it.
    pub fn rate(&self, meter: &MeterCode) -> Option<UnitRate> {
        if self.enabled { self.rates.get(meter).copied() } else { None }
    }

    /// Every rate is for a meter the platform has, and, where the partner's points have a
    /// price in the platform's currency (its credit rate), sells a unit at or above what it
    /// costs: 0.15 points at 0.50 USD a point is 0.075 USD a minute, above 0.07; 0.10 points is
    /// 0.05 USD, below, and refused. Where points have no price in that currency there is
    /// nothing to compare with, and the rate is the partner's business.
    pub fn validate(&self, meters: &Meters, credit_rate: Option<&CreditRate>) -> Result<(), (String, UsageError)> {
        if self.rates.len() > MAX_METERS {
            return Err(("rates".into(), UsageError::TooManyMeters));
        }
        for (code, rate) in &self.rates {
            let param = format!("rates.{code}");
            let meter = meters.get(code).ok_or_else(|| (param.clone(), UsageError::UnknownMeter(code.to_string())))?;
            let Some(price) = credit_rate.filter(|r| r.currency() == meters.currency()) else { continue };
            // Both at most 1e6 with 4 places (their types' bounds): the product is exact.
            let resale = rate.as_decimal().checked_mul(price.price_per_point()).expect("two values of at most 1e6");
            if resale < meter.unit_cost.as_decimal() {
                return Err((
                    param,
                    UsageError::BelowWholesale {
                        rate: rate.to_string(),
                        price_per_point: price.price_per_point(),
                        resale: resale.normalize(),
                        cost: meter.unit_cost.as_decimal(),
                        currency: meters.currency(),
                    },
                ));
            }
        }
        Ok(())
    }
}

/// How a partner pays the platform, set by the platform. Prepaid: usage and add-on purchases
/// are refused while its wallet (less what it owes unfolded) is at or below zero: a new partner's
/// mode. Postpaid (a partner's without a mode stored, from before): its wallet may go
/// negative, and its ledger is the statement the platform bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WalletMode {
    Prepaid,
    #[default]
    Postpaid,
}

impl WalletMode {
    pub fn as_str(self) -> &'static str {
        match self {
            WalletMode::Prepaid => "prepaid",
            WalletMode::Postpaid => "postpaid",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [WalletMode::Prepaid, WalletMode::Postpaid].into_iter().find(|m| m.as_str() == s)
    }

    /// Whether a partner wallet at `balance` may take more usage or purchases.
    pub fn allows(self, balance: Balance) -> bool {
        match self {
            WalletMode::Prepaid => balance.as_decimal() > Decimal::ZERO,
            WalletMode::Postpaid => true,
        }
    }
}

/// Why a workspace may not use a meter now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessDenied {
    /// The platform suspended the workspace's partner (nothing is deleted; reinstating it
    /// restores everything).
    #[error("the partner is suspended by the platform")]
    PartnerSuspended,
    #[error("the workspace is paused: its usage is over its limits")]
    Paused,
    #[error("the workspace's wallet is at or below zero")]
    WalletDepleted,
    #[error("the partner's wallet is at or below zero")]
    PartnerWalletDepleted,
}

impl AccessDenied {
    pub fn code(self) -> &'static str {
        match self {
            AccessDenied::PartnerSuspended => "partner_suspended",
            AccessDenied::Paused => "paused",
            AccessDenied::WalletDepleted => "wallet_depleted",
            AccessDenied::PartnerWalletDepleted => "partner_wallet_depleted",
        }
    }
}

/// What the access check knows about a workspace and its partner.
#[derive(Debug, Clone, Copy)]
pub struct AccessFacts<'a> {
    pub partner_suspended: bool,
    pub status: &'a WorkspaceStatus,
    /// Whether the workspace pays for this meter itself (re-billed at a rate).
    pub rebilled: bool,
    pub workspace_balance: Balance,
    pub partner_mode: WalletMode,
    /// The partner wallet's balance less the wholesale charges it owes that are not folded
    /// into it yet.
    pub partner_balance: Balance,
}

/// May the workspace use the meter now? Not under a suspended partner; then not paused (nothing
/// runs while over limits); then the wallet that would pay: the workspace's own when it is re-billed (at or below zero is
/// refused), then a prepaid partner's.
pub fn check_access(f: AccessFacts<'_>) -> Result<(), AccessDenied> {
    if f.partner_suspended {
        return Err(AccessDenied::PartnerSuspended);
    }
    if matches!(f.status, WorkspaceStatus::Paused { .. }) {
        return Err(AccessDenied::Paused);
    }
    if f.rebilled && f.workspace_balance.as_decimal() <= Decimal::ZERO {
        return Err(AccessDenied::WalletDepleted);
    }
    if !f.partner_mode.allows(f.partner_balance) {
        return Err(AccessDenied::PartnerWalletDepleted);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LimitKind;

    fn q(s: &str) -> UsageQuantity {
        UsageQuantity::parse(s).unwrap()
    }
    fn r(s: &str) -> UnitRate {
        UnitRate::parse(s).unwrap()
    }
    fn b(s: &str) -> Balance {
        Balance::parse(s).unwrap()
    }

    #[test]
    fn charges_round_once_half_up_to_four_places() {
        assert_eq!(usage_charge(r("0.07"), q("0.5")).to_string(), "0.035");
        assert_eq!(usage_charge(r("0.07"), q("10")).to_string(), "0.70");
        assert_eq!(usage_charge(r("0.15"), q("1.5")).to_string(), "0.225");
        assert_eq!(usage_charge(r("0.0333"), q("0.5")).to_string(), "0.0167");
        assert_eq!(usage_charge(r("0.0001"), q("0.4")).to_string(), "0.00");
        assert_eq!(usage_charge(r("0.0001"), q("0.5")).to_string(), "0.0001");
    }

    #[test]
    fn quantities_and_rates_are_checked() {
        assert_eq!(UsageQuantity::parse("0"), Err(UsageError::NotPositive));
        assert_eq!(UsageQuantity::parse("1.23456"), Err(UsageError::TooManyDecimals));
        assert_eq!(UsageQuantity::parse("1000000.0001"), Err(UsageError::TooLarge { max: USAGE_QUANTITY_MAX }));
        // Past 28 digits `Decimal::from_str` would round these to 1 and 0: refused, not rounded.
        assert_eq!(UsageQuantity::parse("0.99999999999999999999999999999"), Err(UsageError::TooManyDecimals));
        assert_eq!(UnitRate::parse("0.000000000000000000000000000001"), Err(UsageError::TooManyDecimals));
        assert_eq!(
            UsageQuantity::parse("99999999999999999999999"),
            Err(UsageError::TooLarge { max: USAGE_QUANTITY_MAX })
        );
        assert_eq!(UsageQuantity::parse("-1"), Err(UsageError::NotPositive));
        for bad in ["", "-1", "1e3", ".5", "5.", " 1", "NaN"] {
            assert!(UsageQuantity::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(q("1.5000").to_string(), "1.5");
        assert_eq!(
            (r("0.2").to_string(), r("7").to_string(), r("0.0333").to_string()),
            ("0.20".into(), "7.00".into(), "0.0333".into())
        );
        assert!(serde_json::from_str::<UnitRate>("0.15").is_err(), "a JSON number is refused");
        assert_eq!(serde_json::from_str::<UnitRate>("\"0.15\"").unwrap(), r("0.15"));
    }

    #[test]
    fn meters_parse_from_configuration() {
        let m = Meters::parse(Currency::USD, "voice_minutes=0.07, sms=0.0100").unwrap();
        assert_eq!(m.get(&MeterCode::parse("sms").unwrap()).unwrap().unit_cost, r("0.01"));
        assert!(Meters::parse(Currency::USD, "voice_minutes=0.07,voice_minutes=0.08").is_err());
        assert!(Meters::parse(Currency::USD, "Voice=0.07").is_err());
        assert!(Meters::parse(Currency::USD, "voice_minutes").is_err());
        assert!(Meters::parse(Currency::USD, "voice_minutes=-1").is_err());
        assert_eq!(Meters::default_usd(), Meters::parse(Currency::USD, "voice_minutes=0.07").unwrap());
    }

    #[test]
    fn resale_rates_stay_above_wholesale_where_points_have_a_price() {
        let meters = Meters::default_usd();
        let voice = MeterCode::parse("voice_minutes").unwrap();
        let at = |rate: &str| Rebilling { enabled: true, rates: BTreeMap::from([(voice.clone(), r(rate))]) };
        let half_dollar = CreditRate::parse("usd", "0.50").unwrap();
        // 0.15 x 0.50 = 0.075 >= 0.07; 0.14 x 0.50 = 0.07, equal, fine; 0.13 x 0.50 = 0.065, below.
        assert!(at("0.15").validate(&meters, Some(&half_dollar)).is_ok());
        assert!(at("0.14").validate(&meters, Some(&half_dollar)).is_ok());
        let (param, err) = at("0.13").validate(&meters, Some(&half_dollar)).unwrap_err();
        assert_eq!(param, "rates.voice_minutes");
        assert!(matches!(err, UsageError::BelowWholesale { .. }), "{err:?}");
        // No price for points in USD: nothing to compare with.
        assert!(at("0.01").validate(&meters, None).is_ok());
        assert!(at("0.01").validate(&meters, Some(&CreditRate::parse("eur", "0.50").unwrap())).is_ok());
        let unknown = Rebilling { enabled: true, rates: BTreeMap::from([(MeterCode::parse("sms").unwrap(), r("1"))]) };
        assert_eq!(unknown.validate(&meters, None).unwrap_err().0, "rates.sms");
        assert_eq!(at("0.15").rate(&voice), Some(r("0.15")));
        assert_eq!(Rebilling { enabled: false, ..at("0.15") }.rate(&voice), None);
    }

    #[test]
    fn access_is_refused_in_order() {
        let active = WorkspaceStatus::Active;
        let paused = WorkspaceStatus::Paused { exceeded: vec![LimitKind::Bots], unpaid: false };
        let facts = |status, rebilled, ws: &str, mode, partner: &str| {
            check_access(AccessFacts {
                partner_suspended: false,
                status,
                rebilled,
                workspace_balance: b(ws),
                partner_mode: mode,
                partner_balance: b(partner),
            })
        };
        use WalletMode::*;
        assert_eq!(facts(&active, true, "0.0001", Prepaid, "0.0001"), Ok(()));
        assert_eq!(facts(&paused, true, "10", Postpaid, "10"), Err(AccessDenied::Paused));
        assert_eq!(facts(&active, true, "0", Postpaid, "10"), Err(AccessDenied::WalletDepleted));
        assert_eq!(facts(&active, true, "-0.035", Postpaid, "10"), Err(AccessDenied::WalletDepleted));
        assert_eq!(facts(&active, false, "-5", Postpaid, "-100"), Ok(()), "not re-billed, postpaid partner");
        assert_eq!(facts(&active, false, "-5", Prepaid, "0"), Err(AccessDenied::PartnerWalletDepleted));
        assert_eq!(facts(&active, true, "1", Prepaid, "-0.01"), Err(AccessDenied::PartnerWalletDepleted));
        // A suspended partner's workspaces are refused before anything else is looked at.
        let suspended = |status| AccessFacts {
            partner_suspended: true,
            status,
            rebilled: false,
            workspace_balance: b("10"),
            partner_mode: Postpaid,
            partner_balance: b("10"),
        };
        assert_eq!(check_access(suspended(&active)), Err(AccessDenied::PartnerSuspended));
        assert_eq!(check_access(suspended(&paused)), Err(AccessDenied::PartnerSuspended));
    }
}

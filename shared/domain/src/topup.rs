//! How a workspace buys points from its partner:
//! - a [`TopupOption`]: pay this amount, get these points (bonus tiers: $10 -> 10 points,
//!   $100 -> 150 points), in any currency Stripe supports;
//! - a [`CreditRate`]: a price per point, so a workspace can buy any number of points. It must stay
//!   at or above the platform's wholesale cost per point. The partner's rate comes as
//!   [`CreditRateTerms`], with optional bounds on the points one purchase may buy at it.
//!
//! Both are checked when the partner saves them, so an option Stripe would refuse never reaches a
//! workspace.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{
    AmountSyntax, AmountTextError, Currency, Money, MoneyError, Points, PointsError, TopupOptionId, UnknownCurrency,
    parse_amount,
};

/// Longest top-up label, in characters (it becomes the Stripe Checkout line item's name).
pub const TOPUP_LABEL_MAX_CHARS: usize = 80;
/// Decimal places a price per point may carry (0.0333 USD per point).
pub const PRICE_PER_POINT_DP: u32 = 4;
/// Largest price per point, in major units: far above any real rate, and small enough that
/// `points x rate` for the largest points amount stays well inside `Decimal`.
pub const PRICE_PER_POINT_MAX: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// What is wrong with a top-up option. Each variant names the field ([`TopupError::param`]) so
/// the HTTP layer can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopupError {
    #[error("label must be 1 to {TOPUP_LABEL_MAX_CHARS} characters, not blank, without control characters")]
    Label,
    #[error("currency: {0}")]
    Currency(UnknownCurrency),
    #[error("amount: {0}")]
    Amount(MoneyError),
    #[error("points: {0}")]
    Points(PointsError),
    #[error("points: must be greater than 0")]
    PointsZero,
}

impl TopupError {
    /// The request field at fault.
    pub fn param(&self) -> &'static str {
        match self {
            TopupError::Label => "label",
            TopupError::Currency(_) => "currency",
            TopupError::Amount(_) => "amount_minor",
            TopupError::Points(_) | TopupError::PointsZero => "points",
        }
    }
}

/// The label trimmed: 1 to 80 characters, no control characters (it is shown on Stripe's page).
fn check_label(label: &str) -> Result<&str, TopupError> {
    let label = label.trim();
    let chars = label.chars().count();
    if chars == 0 || chars > TOPUP_LABEL_MAX_CHARS || label.chars().any(char::is_control) {
        return Err(TopupError::Label);
    }
    Ok(label)
}

/// A partner's top-up option: pay `amount`, get `points`. Always chargeable as it stands: the
/// amount is at least the currency's minimum charge and at most its maximum (see
/// [`super::MinCharge`] for currencies where Stripe publishes no minimum), and valid for the
/// currency's decimals (5.120 KWD, not 5.123; 1000 ISK, not 1000.50).
///
/// JSON: `{"label": "Starter pack", "currency": "usd", "amount_minor": 1000, "points": "10.00"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TopupOptionRepr", into = "TopupOptionRepr")]
pub struct TopupOption {
    label: String,
    amount: Money,
    points: Points,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopupOptionRepr {
    label: String,
    currency: Currency,
    amount_minor: i64,
    points: Points,
}

impl TryFrom<TopupOptionRepr> for TopupOption {
    type Error = TopupError;
    fn try_from(r: TopupOptionRepr) -> Result<Self, TopupError> {
        let amount = Money::from_minor(r.amount_minor, r.currency).map_err(TopupError::Amount)?;
        TopupOption::new(&r.label, amount, r.points)
    }
}

impl From<TopupOption> for TopupOptionRepr {
    fn from(t: TopupOption) -> Self {
        TopupOptionRepr {
            label: t.label,
            currency: t.amount.currency(),
            amount_minor: t.amount.amount_minor(),
            points: t.points,
        }
    }
}

impl TopupOption {
    /// Checks, in field order: the label (trimmed, 1 to 80 characters, no control characters),
    /// the amount (chargeable by Stripe), the points (more than 0, at most 2 decimal places).
    pub fn new(label: &str, amount: Money, points: Points) -> Result<Self, TopupError> {
        let label = check_label(label)?;
        amount.check_chargeable().map_err(TopupError::Amount)?;
        if points.is_zero() {
            return Err(TopupError::PointsZero);
        }
        points.check_price().map_err(TopupError::Points)?;
        Ok(Self { label: label.to_owned(), amount, points })
    }

    /// From the raw request fields: `parse("Starter pack", "USD", 1000, "10")`.
    pub fn parse(label: &str, currency: &str, amount_minor: i64, points: &str) -> Result<Self, TopupError> {
        // Fields in the order `new` checks them, so the first error is the same either way.
        check_label(label)?;
        let currency = Currency::parse(currency).map_err(TopupError::Currency)?;
        let amount = Money::from_minor(amount_minor, currency).map_err(TopupError::Amount)?;
        let points = Points::parse(points).map_err(TopupError::Points)?;
        Self::new(label, amount, points)
    }

    /// The label as the workspace sees it (trimmed).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// What the workspace pays.
    pub fn amount(&self) -> Money {
        self.amount
    }

    /// What the workspace gets.
    pub fn points(&self) -> Points {
        self.points
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditRateError {
    #[error("currency: {0}")]
    Currency(UnknownCurrency),
    #[error("price_per_point must be a decimal number written as a string, like \"0.10\"")]
    NotADecimal,
    #[error("price_per_point must be greater than 0")]
    NotPositive,
    #[error("price_per_point must have at most {PRICE_PER_POINT_DP} decimal places")]
    TooManyDecimals,
    #[error("price_per_point must be at most {PRICE_PER_POINT_MAX}")]
    TooLarge,
    /// We hold no exchange rates, so a rate in another currency than the wholesale one can't be
    /// compared, and is refused rather than guessed at.
    #[error("price_per_point must be in {wholesale}, the currency of the platform's wholesale cost, not {found}")]
    CurrencyMismatch { wholesale: Currency, found: Currency },
    #[error("price_per_point must be at least the wholesale cost of {wholesale} per point")]
    BelowWholesale { wholesale: CreditRate },
    /// The platform set no wholesale floor in this currency ([`super::WholesaleFloors`]), so
    /// nothing may be sold in it.
    #[error(
        "the platform sets no wholesale floor in {found}, so points can't be sold in it; currencies with a floor: {floors}"
    )]
    NoFloor { found: Currency, floors: String },
    #[error("points: {0}")]
    Points(PointsError),
    #[error("points: must be greater than 0")]
    PointsZero,
    #[error("amount: {0}")]
    Amount(MoneyError),
    #[error("min_points: {0}")]
    MinPoints(PointsError),
    #[error("min_points: must be greater than 0")]
    MinPointsZero,
    #[error("max_points: {0}")]
    MaxPoints(PointsError),
    #[error("max_points: must be greater than 0")]
    MaxPointsZero,
    #[error("min_points: {min} is more than max_points ({max}); the minimum must be at most the maximum")]
    MinAboveMax { min: Points, max: Points },
    #[error("points: must be at least {min}, the partner's minimum for points bought at its credit rate")]
    BelowMinPoints { min: Points },
    #[error("points: must be at most {max}, the partner's maximum for points bought at its credit rate")]
    AboveMaxPoints { max: Points },
}

impl CreditRateError {
    /// The request field at fault.
    pub fn param(&self) -> &'static str {
        match self {
            CreditRateError::Currency(_)
            | CreditRateError::CurrencyMismatch { .. }
            | CreditRateError::NoFloor { .. } => "currency",
            CreditRateError::NotADecimal
            | CreditRateError::NotPositive
            | CreditRateError::TooManyDecimals
            | CreditRateError::TooLarge
            | CreditRateError::BelowWholesale { .. } => "price_per_point",
            CreditRateError::Points(_)
            | CreditRateError::PointsZero
            | CreditRateError::BelowMinPoints { .. }
            | CreditRateError::AboveMaxPoints { .. } => "points",
            // The amount follows from the points asked for: too few points to reach the minimum.
            CreditRateError::Amount(_) => "points",
            // A minimum above the maximum: the minimum is what the partner is told to lower (the
            // maximum is usually the partner's risk limit, the one it means).
            CreditRateError::MinPoints(_) | CreditRateError::MinPointsZero | CreditRateError::MinAboveMax { .. } => {
                "min_points"
            }
            CreditRateError::MaxPoints(_) | CreditRateError::MaxPointsZero => "max_points",
        }
    }
}

/// A price per point in major units of a currency: `0.0333 usd` per point. More than 0, at most 4
/// decimal places. Used for a partner's credit rate and for the platform's wholesale cost per
/// point alike.
///
/// JSON: `{"currency": "usd", "price_per_point": "0.0333"}` (a string, never a JSON number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "CreditRateRepr", into = "CreditRateRepr")]
pub struct CreditRate {
    currency: Currency,
    price_per_point: Decimal,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreditRateRepr {
    currency: Currency,
    price_per_point: String,
}

impl TryFrom<CreditRateRepr> for CreditRate {
    type Error = CreditRateError;
    fn try_from(r: CreditRateRepr) -> Result<Self, CreditRateError> {
        CreditRate::new(r.currency, parse_plain_decimal(&r.price_per_point)?)
    }
}

impl From<CreditRate> for CreditRateRepr {
    fn from(r: CreditRate) -> Self {
        CreditRateRepr { currency: r.currency, price_per_point: r.price_text() }
    }
}

/// Digits before the point of a price per point: [`PRICE_PER_POINT_MAX`] has 7.
const PRICE_PER_POINT_INT_DIGITS: u32 = 7;

/// The text checked by the shared amount parser: at most [`PRICE_PER_POINT_DP`] places (zeros
/// past them are not precision), no sign (a negative price is refused as not positive).
fn parse_plain_decimal(s: &str) -> Result<Decimal, CreditRateError> {
    let syntax = AmountSyntax::new(PRICE_PER_POINT_DP, PRICE_PER_POINT_INT_DIGITS).zeros_past_dp();
    parse_amount(s, syntax).map_err(|e| match e {
        AmountTextError::NotADecimal => CreditRateError::NotADecimal,
        AmountTextError::Negative => CreditRateError::NotPositive,
        AmountTextError::TooManyDecimals => CreditRateError::TooManyDecimals,
        AmountTextError::TooManyDigits => CreditRateError::TooLarge,
    })
}

impl CreditRate {
    pub fn new(currency: Currency, price_per_point: Decimal) -> Result<Self, CreditRateError> {
        if price_per_point <= Decimal::ZERO {
            return Err(CreditRateError::NotPositive);
        }
        let price_per_point = price_per_point.normalize();
        if price_per_point.scale() > PRICE_PER_POINT_DP {
            return Err(CreditRateError::TooManyDecimals);
        }
        if price_per_point > PRICE_PER_POINT_MAX {
            return Err(CreditRateError::TooLarge);
        }
        Ok(Self { currency, price_per_point })
    }

    /// From the raw request fields: `parse("usd", "0.0333")`.
    pub fn parse(currency: &str, price_per_point: &str) -> Result<Self, CreditRateError> {
        let currency = Currency::parse(currency).map_err(CreditRateError::Currency)?;
        Self::new(currency, parse_plain_decimal(price_per_point)?)
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The price of one point, in major units of [`CreditRate::currency`].
    pub fn price_per_point(&self) -> Decimal {
        self.price_per_point
    }

    /// A partner's rate must be at least the platform's wholesale cost per point, in the same
    /// currency: selling at 0.0333 USD when wholesale is 0.0300 USD is fine, 0.0299 is refused,
    /// and a EUR rate against a USD wholesale cost is refused (no FX here to compare them).
    pub fn validate_against(&self, wholesale: &CreditRate) -> Result<(), CreditRateError> {
        if self.currency != wholesale.currency {
            return Err(CreditRateError::CurrencyMismatch { wholesale: wholesale.currency, found: self.currency });
        }
        if self.price_per_point < wholesale.price_per_point {
            return Err(CreditRateError::BelowWholesale { wholesale: *wholesale });
        }
        Ok(())
    }

    /// What `points` cost at this rate: `points x price_per_point`, rounded UP to the currency's
    /// smallest chargeable amount ([`Money::from_major_ceil`]), so the partner never gets less
    /// than its rate: 250 points x 0.0333 USD = 8.325 -> 8.33 USD (`833`). The points bought are
    /// more than 0 with at most 2 decimal places, like any price in points, and the amount must be
    /// chargeable: 10 points x 0.0333 USD = 0.333 -> 0.34 USD is below Stripe's 0.50 minimum and
    /// refused.
    pub fn amount_for(&self, points: Points) -> Result<Money, CreditRateError> {
        if points.is_zero() {
            return Err(CreditRateError::PointsZero);
        }
        points.check_price().map_err(CreditRateError::Points)?;
        // points <= 1e12 and rate <= 1e6 with 4 places: the product is exact in `Decimal`, and
        // were the bounds ever loosened, too large an amount is refused, not a panic.
        let major = points
            .as_decimal()
            .checked_mul(self.price_per_point)
            .ok_or(CreditRateError::Amount(MoneyError::TooLarge))?;
        let amount = Money::from_major_ceil(major, self.currency).map_err(CreditRateError::Amount)?;
        amount.check_chargeable().map_err(CreditRateError::Amount)?;
        Ok(amount)
    }

    /// At least the currency's decimals: "0.0333", "0.50" (USD), "3" (JPY), "0.100" (KWD).
    pub(crate) fn price_text(&self) -> String {
        let mut v = self.price_per_point;
        if v.scale() < self.currency.exponent() {
            v.rescale(self.currency.exponent());
        }
        v.to_string()
    }
}

/// `0.0333 usd`.
impl fmt::Display for CreditRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.price_text(), self.currency)
    }
}

/// A partner's credit rate with the bounds it sets on one purchase at it: buy any number of
/// points from `min_points` to `max_points` (both included; either may be absent, meaning no
/// bound). The bounds are the partner's, so they live here and not on [`CreditRate`], which is
/// also the platform's wholesale cost per point and has none.
///
/// Each bound is a price in points (more than 0, at most 2 decimal places) and the minimum is at
/// most the maximum; a minimum equal to the maximum sells exactly one quantity. A bound does not
/// lift Stripe's own limits: 10 points at 0.012 USD (0.12 USD) stays refused even with
/// `min_points` "1", because Stripe charges at least 0.50 USD.
///
/// JSON: `{"currency": "usd", "price_per_point": "0.05", "min_points": "100.00", "max_points": null}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "CreditRateTermsRepr", into = "CreditRateTermsRepr")]
pub struct CreditRateTerms {
    rate: CreditRate,
    min_points: Option<Points>,
    max_points: Option<Points>,
}

/// Every field always present (`null` for no bound), so what a partner reads it can send back.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreditRateTermsRepr {
    currency: Currency,
    price_per_point: String,
    min_points: Option<Points>,
    max_points: Option<Points>,
}

impl TryFrom<CreditRateTermsRepr> for CreditRateTerms {
    type Error = CreditRateError;
    fn try_from(r: CreditRateTermsRepr) -> Result<Self, CreditRateError> {
        let rate = CreditRate::new(r.currency, parse_plain_decimal(&r.price_per_point)?)?;
        CreditRateTerms::new(rate, r.min_points, r.max_points)
    }
}

impl From<CreditRateTerms> for CreditRateTermsRepr {
    fn from(t: CreditRateTerms) -> Self {
        CreditRateTermsRepr {
            currency: t.rate.currency,
            price_per_point: t.rate.price_text(),
            min_points: t.min_points,
            max_points: t.max_points,
        }
    }
}

fn check_min_points(min: Points) -> Result<Points, CreditRateError> {
    if min.is_zero() {
        return Err(CreditRateError::MinPointsZero);
    }
    min.check_price().map_err(CreditRateError::MinPoints)?;
    Ok(min)
}

fn check_max_points(max: Points) -> Result<Points, CreditRateError> {
    if max.is_zero() {
        return Err(CreditRateError::MaxPointsZero);
    }
    max.check_price().map_err(CreditRateError::MaxPoints)?;
    Ok(max)
}

impl CreditRateTerms {
    /// Checks, in field order: `min_points`, then `max_points` (each more than 0, at most 2
    /// decimal places), then that the minimum is at most the maximum.
    pub fn new(
        rate: CreditRate,
        min_points: Option<Points>,
        max_points: Option<Points>,
    ) -> Result<Self, CreditRateError> {
        min_points.map(check_min_points).transpose()?;
        max_points.map(check_max_points).transpose()?;
        if let (Some(min), Some(max)) = (min_points, max_points)
            && min > max
        {
            return Err(CreditRateError::MinAboveMax { min, max });
        }
        Ok(Self { rate, min_points, max_points })
    }

    /// A rate without bounds: any number of points Stripe can charge for.
    pub fn unbounded(rate: CreditRate) -> Self {
        Self { rate, min_points: None, max_points: None }
    }

    /// From the raw request fields: `parse("usd", "0.05", Some("100"), Some("5000"))`. The first
    /// fault is the first field's, in that order.
    pub fn parse(
        currency: &str,
        price_per_point: &str,
        min_points: Option<&str>,
        max_points: Option<&str>,
    ) -> Result<Self, CreditRateError> {
        let rate = CreditRate::parse(currency, price_per_point)?;
        let min_points = min_points
            .map(|s| Points::parse(s).map_err(CreditRateError::MinPoints).and_then(check_min_points))
            .transpose()?;
        let max_points = max_points
            .map(|s| Points::parse(s).map_err(CreditRateError::MaxPoints).and_then(check_max_points))
            .transpose()?;
        Self::new(rate, min_points, max_points)
    }

    pub fn rate(&self) -> &CreditRate {
        &self.rate
    }

    /// The fewest points one purchase may buy, if the partner set a minimum.
    pub fn min_points(&self) -> Option<Points> {
        self.min_points
    }

    /// The most points one purchase may buy, if the partner set a maximum.
    pub fn max_points(&self) -> Option<Points> {
        self.max_points
    }

    /// What `points` cost, within the bounds: the points are checked as a price (more than 0, at
    /// most 2 decimal places), then against the bounds (100 to 5000: 99.99 and 5000.01 are
    /// refused, 100 and 5000 are sold), then priced by [`CreditRate::amount_for`] (rounded up,
    /// chargeable by Stripe). Refusals name `points`.
    pub fn amount_for(&self, points: Points) -> Result<Money, CreditRateError> {
        if points.is_zero() {
            return Err(CreditRateError::PointsZero);
        }
        points.check_price().map_err(CreditRateError::Points)?;
        if let Some(min) = self.min_points
            && points < min
        {
            return Err(CreditRateError::BelowMinPoints { min });
        }
        if let Some(max) = self.max_points
            && points > max
        {
            return Err(CreditRateError::AboveMaxPoints { max });
        }
        self.rate.amount_for(points)
    }
}

/// One of a partner's top-up options, with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerTopupOption {
    pub id: TopupOptionId,
    pub option: TopupOption,
}

/// The stored list and its version (0: never saved), for the replace-with-version-check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopupOptionList {
    pub version: u64,
    pub options: Vec<PartnerTopupOption>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    fn money(s: &str, code: &str) -> Money {
        Money::parse_major(s, cur(code)).unwrap()
    }

    fn pts(s: &str) -> Points {
        Points::parse(s).unwrap()
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn rate(code: &str, price: &str) -> CreditRate {
        CreditRate::parse(code, price).unwrap()
    }

    #[test]
    fn bonus_tiers_and_other_currencies() {
        let ten = TopupOption::new("  Starter pack ", money("10.00", "usd"), pts("10")).unwrap();
        assert_eq!((ten.label(), ten.amount().amount_minor(), ten.points()), ("Starter pack", 1000, pts("10")));
        let hundred = TopupOption::new("Best value", money("100", "usd"), pts("150")).unwrap();
        assert_eq!(hundred.points().to_string(), "150.00");
        assert!(TopupOption::new("Yen", money("1000", "jpy"), pts("12.5")).is_ok());
        assert!(TopupOption::new("Dinar", money("5.120", "kwd"), pts("20")).is_ok());
        assert!(TopupOption::new(&"é".repeat(80), money("1", "eur"), pts("1")).is_ok());
    }

    #[test]
    fn refusals_name_the_field() {
        let ok = money("10.00", "usd");
        let cases = [
            (TopupOption::new("", ok, pts("10")), TopupError::Label, "label"),
            (TopupOption::new("   ", ok, pts("10")), TopupError::Label, "label"),
            (TopupOption::new(&"x".repeat(81), ok, pts("10")), TopupError::Label, "label"),
            (TopupOption::new("a\nb", ok, pts("10")), TopupError::Label, "label"),
            (
                TopupOption::new("Tiny", money("0.49", "usd"), pts("1")),
                TopupError::Amount(MoneyError::BelowMinimumCharge { minimum: money("0.50", "usd") }),
                "amount_minor",
            ),
            (
                TopupOption::new("Tiny", money("0.29", "gbp"), pts("1")),
                TopupError::Amount(MoneyError::BelowMinimumCharge { minimum: money("0.30", "gbp") }),
                "amount_minor",
            ),
            (
                TopupOption::new("Tiny", money("49", "jpy"), pts("1")),
                TopupError::Amount(MoneyError::BelowMinimumCharge { minimum: money("50", "jpy") }),
                "amount_minor",
            ),
            (
                TopupOption::new("Unpublished minimum", money("0.99", "mad"), pts("1")),
                TopupError::Amount(MoneyError::BelowMinimumCharge { minimum: money("1.00", "mad") }),
                "amount_minor",
            ),
            (
                TopupOption::new("Huge", money("1000000", "usd"), pts("1")),
                TopupError::Amount(MoneyError::AboveMaximumCharge { maximum: money("999999.99", "usd") }),
                "amount_minor",
            ),
            (TopupOption::new("Free", ok, Points::ZERO), TopupError::PointsZero, "points"),
            (
                TopupOption::new("Precise", ok, pts("10.125")),
                TopupError::Points(PointsError::TooManyDecimals { max_dp: 2 }),
                "points",
            ),
        ];
        for (got, want, param) in cases {
            assert_eq!(got.as_ref().unwrap_err(), &want);
            assert_eq!(want.param(), param);
        }
    }

    #[test]
    fn parse_from_raw_fields() {
        let t = TopupOption::parse("Pack", "USD", 1000, "10").unwrap();
        assert_eq!((t.amount(), t.points()), (money("10.00", "usd"), pts("10")));
        assert_eq!(TopupOption::parse("Pack", "xyz", 1000, "10").unwrap_err().param(), "currency");
        assert_eq!(TopupOption::parse("", "xyz", 1000, "10").unwrap_err(), TopupError::Label);
        let kwd = TopupOption::parse("Pack", "kwd", 5123, "10").unwrap_err();
        assert_eq!(
            kwd,
            TopupError::Amount(MoneyError::NotAMultipleOfStep { step: Money::from_minor(10, cur("kwd")).unwrap() })
        );
        assert_eq!(kwd.param(), "amount_minor");
        assert_eq!(TopupOption::parse("Pack", "isk", 100050, "10").unwrap_err().param(), "amount_minor");
        assert_eq!(
            TopupOption::parse("Pack", "usd", -1000, "10").unwrap_err(),
            TopupError::Amount(MoneyError::Negative)
        );
        assert_eq!(
            TopupOption::parse("Pack", "usd", 1000, "-10").unwrap_err(),
            TopupError::Points(PointsError::Negative)
        );
        assert_eq!(TopupOption::parse("Pack", "usd", 1000, "ten").unwrap_err().param(), "points");
    }

    #[test]
    fn topup_json() {
        let t = TopupOption::new("Pack", money("5.120", "kwd"), pts("20")).unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#"{"label":"Pack","currency":"kwd","amount_minor":5120,"points":"20.00"}"#);
        assert_eq!(serde_json::from_str::<TopupOption>(&json).unwrap(), t);
        let bad = r#"{"label":"Pack","currency":"usd","amount_minor":10,"points":"20"}"#;
        assert!(serde_json::from_str::<TopupOption>(bad).is_err());
        let float_points = r#"{"label":"Pack","currency":"usd","amount_minor":1000,"points":20.5}"#;
        assert!(serde_json::from_str::<TopupOption>(float_points).is_err());
    }

    #[test]
    fn credit_rate_is_checked() {
        assert_eq!(rate("USD", "0.0333").price_per_point(), d("0.0333"));
        assert_eq!(rate("usd", "0.03330").price_per_point(), d("0.0333"));
        assert_eq!(CreditRate::parse("usd", "0"), Err(CreditRateError::NotPositive));
        assert_eq!(CreditRate::parse("usd", "-0.1"), Err(CreditRateError::NotPositive));
        assert_eq!(CreditRate::parse("usd", "0.00001"), Err(CreditRateError::TooManyDecimals));
        // Past 28 digits `Decimal::from_str` would round these to 0.05 and 0: refused, not rounded.
        assert_eq!(
            CreditRate::parse("usd", "0.0499999999999999999999999999999"),
            Err(CreditRateError::TooManyDecimals)
        );
        assert_eq!(CreditRate::parse("usd", "0.000000000000000000000000000001"), Err(CreditRateError::TooManyDecimals));
        assert_eq!(
            CreditRate::parse("usd", "0.05000000000000000000000000000000").map(|r| r.price_text()),
            Ok("0.05".into())
        );
        assert_eq!(CreditRate::parse("usd", "99999999999999999999999999999"), Err(CreditRateError::TooLarge));
        assert_eq!(CreditRate::parse("usd", "1000000.0001"), Err(CreditRateError::TooLarge));
        assert!(CreditRate::parse("usd", "1000000").is_ok());
        assert_eq!(CreditRate::parse("usd", "1e-2"), Err(CreditRateError::NotADecimal));
        assert_eq!(CreditRate::parse("usd", ".5"), Err(CreditRateError::NotADecimal));
        assert_eq!(CreditRate::parse("zzz", "1").unwrap_err().param(), "currency");
        assert_eq!(CreditRate::parse("usd", "0").unwrap_err().param(), "price_per_point");
    }

    #[test]
    fn credit_rate_against_wholesale() {
        let wholesale = rate("usd", "0.03");
        assert_eq!(rate("usd", "0.0333").validate_against(&wholesale), Ok(()));
        assert_eq!(rate("usd", "0.03").validate_against(&wholesale), Ok(()));
        let below = rate("usd", "0.0299").validate_against(&wholesale).unwrap_err();
        assert_eq!(below, CreditRateError::BelowWholesale { wholesale });
        assert_eq!(below.to_string(), "price_per_point must be at least the wholesale cost of 0.03 usd per point");
        assert_eq!(below.param(), "price_per_point");
        let eur = rate("eur", "1").validate_against(&wholesale).unwrap_err();
        assert_eq!(eur, CreditRateError::CurrencyMismatch { wholesale: Currency::USD, found: cur("eur") });
        assert_eq!(eur.param(), "currency");
    }

    #[test]
    fn amount_for_rounds_up_and_respects_the_minimum() {
        let usd = rate("usd", "0.0333");
        assert_eq!(usd.amount_for(pts("250")).unwrap(), money("8.33", "usd"));
        assert_eq!(rate("usd", "0.05").amount_for(pts("200")).unwrap(), money("10.00", "usd"));
        assert_eq!(
            usd.amount_for(pts("10")),
            Err(CreditRateError::Amount(MoneyError::BelowMinimumCharge { minimum: money("0.50", "usd") }))
        );
        assert_eq!(usd.amount_for(pts("10")).unwrap_err().param(), "points");
        assert_eq!(usd.amount_for(pts("16")).unwrap(), money("0.54", "usd")); // 0.5328 -> 0.54
        assert_eq!(rate("kwd", "0.0123").amount_for(pts("100")).unwrap(), money("1.230", "kwd"));
        assert_eq!(rate("kwd", "0.0123").amount_for(pts("100.5")).unwrap(), money("1.240", "kwd")); // 1.23615
        assert_eq!(rate("isk", "4.5").amount_for(pts("1.5")).unwrap(), money("7.00", "isk")); // 6.75
        assert_eq!(rate("jpy", "3").amount_for(pts("33.33")).unwrap(), money("100", "jpy")); // 99.99
        assert_eq!(usd.amount_for(Points::ZERO), Err(CreditRateError::PointsZero));
        assert_eq!(
            usd.amount_for(pts("100.001")),
            Err(CreditRateError::Points(PointsError::TooManyDecimals { max_dp: 2 }))
        );
        let max_points = Points::parse("1000000000000").unwrap();
        assert!(matches!(
            rate("usd", "1").amount_for(max_points),
            Err(CreditRateError::Amount(MoneyError::AboveMaximumCharge { .. }))
        ));
    }

    #[test]
    fn credit_rate_json() {
        let r = rate("usd", "0.5");
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"currency":"usd","price_per_point":"0.50"}"#);
        assert_eq!(rate("usd", "0.0333").to_string(), "0.0333 usd");
        assert_eq!(rate("jpy", "3").to_string(), "3 jpy");
        assert_eq!(rate("kwd", "0.1").to_string(), "0.100 kwd");
        let back: CreditRate = serde_json::from_str(r#"{"currency":"USD","price_per_point":"0.50"}"#).unwrap();
        assert_eq!(back, r);
        assert!(serde_json::from_str::<CreditRate>(r#"{"currency":"usd","price_per_point":0.5}"#).is_err());
        assert!(serde_json::from_str::<CreditRate>(r#"{"currency":"usd","price_per_point":"0"}"#).is_err());
    }

    fn terms(min: Option<&str>, max: Option<&str>) -> Result<CreditRateTerms, CreditRateError> {
        CreditRateTerms::parse("usd", "0.05", min, max)
    }

    #[test]
    fn credit_rate_bounds_are_checked() {
        let t = terms(Some("100"), Some("5000")).unwrap();
        assert_eq!(
            (t.rate(), t.min_points(), t.max_points()),
            (&rate("usd", "0.05"), Some(pts("100")), Some(pts("5000")))
        );
        let none = terms(None, None).unwrap();
        assert_eq!((none.min_points(), none.max_points()), (None, None));
        assert_eq!(none, CreditRateTerms::unbounded(rate("usd", "0.05")));
        assert_eq!(terms(Some("250.5"), Some("250.50")).unwrap().min_points(), Some(pts("250.5")), "min = max is fine");
        assert_eq!(terms(None, Some("1")).unwrap().max_points(), Some(pts("1")));
        let cases = [
            (terms(Some("0"), None), CreditRateError::MinPointsZero, "min_points"),
            (terms(Some("0.00"), Some("10")), CreditRateError::MinPointsZero, "min_points"),
            (terms(Some("-1"), None), CreditRateError::MinPoints(PointsError::Negative), "min_points"),
            (
                terms(Some("10.001"), None),
                CreditRateError::MinPoints(PointsError::TooManyDecimals { max_dp: 2 }),
                "min_points",
            ),
            (terms(Some("1e3"), None), CreditRateError::MinPoints(PointsError::NotADecimal), "min_points"),
            (terms(Some("1000000000001"), None), CreditRateError::MinPoints(PointsError::TooLarge), "min_points"),
            (terms(None, Some("0")), CreditRateError::MaxPointsZero, "max_points"),
            (
                terms(None, Some("5000.005")),
                CreditRateError::MaxPoints(PointsError::TooManyDecimals { max_dp: 2 }),
                "max_points",
            ),
            (terms(Some("100"), Some("")), CreditRateError::MaxPoints(PointsError::NotADecimal), "max_points"),
            (
                terms(Some("5000.01"), Some("5000")),
                CreditRateError::MinAboveMax { min: pts("5000.01"), max: pts("5000") },
                "min_points",
            ),
            // The first fault in field order: the rate's, then the minimum's, then the maximum's.
            (CreditRateTerms::parse("usd", "0", Some("0"), Some("0")), CreditRateError::NotPositive, "price_per_point"),
            (terms(Some("0"), Some("x")), CreditRateError::MinPointsZero, "min_points"),
            (
                terms(Some("10.001"), Some("0")),
                CreditRateError::MinPoints(PointsError::TooManyDecimals { max_dp: 2 }),
                "min_points",
            ),
        ];
        for (got, want, param) in cases {
            assert_eq!(got.as_ref().unwrap_err(), &want);
            assert_eq!(want.param(), param, "{want}");
        }
        assert_eq!(
            terms(Some("6000"), Some("5000")).unwrap_err().to_string(),
            "min_points: 6000.00 is more than max_points (5000.00); the minimum must be at most the maximum"
        );
        // `new` checks what `parse` checks, for callers holding typed points.
        let r = rate("usd", "0.05");
        assert_eq!(CreditRateTerms::new(r, Some(Points::ZERO), None), Err(CreditRateError::MinPointsZero));
        assert_eq!(
            CreditRateTerms::new(r, None, Some(pts("0.125"))),
            Err(CreditRateError::MaxPoints(PointsError::TooManyDecimals { max_dp: 2 }))
        );
        assert_eq!(
            CreditRateTerms::new(r, Some(pts("2")), Some(pts("1"))),
            Err(CreditRateError::MinAboveMax { min: pts("2"), max: pts("1") })
        );
    }

    #[test]
    fn a_purchase_must_be_within_the_bounds() {
        let t = terms(Some("100"), Some("5000")).unwrap();
        assert_eq!(t.amount_for(pts("100")).unwrap(), money("5.00", "usd"));
        assert_eq!(t.amount_for(pts("250")).unwrap(), money("12.50", "usd"));
        assert_eq!(t.amount_for(pts("5000")).unwrap(), money("250.00", "usd"));
        assert_eq!(t.amount_for(pts("100.01")).unwrap(), money("5.01", "usd")); // 5.0005 -> 5.01
        let below = t.amount_for(pts("99.99")).unwrap_err();
        assert_eq!(below, CreditRateError::BelowMinPoints { min: pts("100") });
        assert_eq!(below.param(), "points");
        assert_eq!(
            below.to_string(),
            "points: must be at least 100.00, the partner's minimum for points bought at its credit rate"
        );
        let above = t.amount_for(pts("5000.01")).unwrap_err();
        assert_eq!(above, CreditRateError::AboveMaxPoints { max: pts("5000") });
        assert_eq!(above.param(), "points");
        assert_eq!(
            above.to_string(),
            "points: must be at most 5000.00, the partner's maximum for points bought at its credit rate"
        );
        // The points' own faults come first, whatever the bounds.
        assert_eq!(t.amount_for(Points::ZERO), Err(CreditRateError::PointsZero));
        assert_eq!(
            t.amount_for(pts("5000.001")),
            Err(CreditRateError::Points(PointsError::TooManyDecimals { max_dp: 2 }))
        );
        // A low minimum doesn't lift Stripe's: 1 point x 0.05 = 0.05 USD, below 0.50.
        let low = terms(Some("1"), None).unwrap();
        assert_eq!(
            low.amount_for(pts("1")),
            Err(CreditRateError::Amount(MoneyError::BelowMinimumCharge { minimum: money("0.50", "usd") }))
        );
        assert_eq!(low.amount_for(pts("10")).unwrap(), money("0.50", "usd"));
        // No bounds: exactly the rate's rules.
        let none = terms(None, None).unwrap();
        assert_eq!(none.amount_for(pts("1000000")).unwrap(), money("50000.00", "usd"));
        assert_eq!(none.amount_for(pts("9")), rate("usd", "0.05").amount_for(pts("9")));
    }

    #[test]
    fn credit_rate_terms_json() {
        let t = terms(Some("100"), None).unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#"{"currency":"usd","price_per_point":"0.05","min_points":"100.00","max_points":null}"#);
        assert_eq!(serde_json::from_str::<CreditRateTerms>(&json).unwrap(), t);
        let bare: CreditRateTerms = serde_json::from_str(r#"{"currency":"usd","price_per_point":"0.05"}"#).unwrap();
        assert_eq!(bare, CreditRateTerms::unbounded(rate("usd", "0.05")));
        for bad in [
            r#"{"currency":"usd","price_per_point":"0.05","min_points":"6000","max_points":"5000"}"#,
            r#"{"currency":"usd","price_per_point":"0.05","min_points":100}"#,
            r#"{"currency":"usd","price_per_point":"0.05","max_points":"0"}"#,
            r#"{"currency":"usd","price_per_point":"0.05","max_points":"1.005"}"#,
            r#"{"currency":"usd","price_per_point":"0.05","minimum":"1"}"#,
        ] {
            assert!(serde_json::from_str::<CreditRateTerms>(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn a_purchase_is_sold_exactly_when_within_the_bounds(
            min_cents in proptest::option::of(1i64..=1_000_000),
            span_cents in 0i64..=1_000_000,
            points_cents in 1i64..=3_000_000,
            no_max in any::<bool>(),
        ) {
            let cents = |c: i64| Points::from_decimal(Decimal::new(c, 2)).unwrap();
            let min = min_cents.map(cents);
            let max = (!no_max).then(|| cents(min_cents.unwrap_or(1) + span_cents));
            let r = CreditRate::parse("usd", "0.05").unwrap();
            let t = CreditRateTerms::new(r, min, max).unwrap();
            let p = cents(points_cents);
            let expected = if min.is_some_and(|m| p < m) {
                Err(CreditRateError::BelowMinPoints { min: min.unwrap() })
            } else if max.is_some_and(|m| p > m) {
                Err(CreditRateError::AboveMaxPoints { max: max.unwrap() })
            } else {
                r.amount_for(p)
            };
            prop_assert_eq!(t.amount_for(p), expected);
        }
    }

    proptest! {
        #[test]
        fn amount_covers_the_rate_within_one_step(rate_units in 1i64..=100_000, points_cents in 1i64..=100_000_000, idx in 0usize..139) {
            let c = Currency::all().nth(idx).unwrap();
            let r = CreditRate::new(c, Decimal::new(rate_units, PRICE_PER_POINT_DP)).unwrap();
            let p = Points::from_decimal(Decimal::new(points_cents, 2)).unwrap();
            let exact = p.as_decimal() * r.price_per_point();
            match r.amount_for(p) {
                Ok(m) => {
                    prop_assert!(m.as_major() >= exact);
                    let step = Decimal::new(c.step_minor(), c.exponent());
                    prop_assert!(m.as_major() - exact < step);
                    prop_assert!(m.check_chargeable().is_ok());
                }
                Err(CreditRateError::Amount(MoneyError::BelowMinimumCharge { minimum })) => {
                    prop_assert!(exact < minimum.as_major());
                }
                Err(CreditRateError::Amount(MoneyError::AboveMaximumCharge { maximum })) => {
                    prop_assert!(exact > maximum.as_major());
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }

        #[test]
        fn a_rate_at_or_above_wholesale_passes(w in 1i64..=1_000_000, extra in 0i64..=1_000_000) {
            let wholesale = CreditRate::new(Currency::USD, Decimal::new(w, 4)).unwrap();
            let r = CreditRate::new(Currency::USD, Decimal::new(w + extra, 4)).unwrap();
            prop_assert_eq!(r.validate_against(&wholesale), Ok(()));
            if w > 1 {
                let below = CreditRate::new(Currency::USD, Decimal::new(w - 1, 4)).unwrap();
                prop_assert_eq!(below.validate_against(&wholesale), Err(CreditRateError::BelowWholesale { wholesale }));
            }
        }
    }
}

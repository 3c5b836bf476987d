//! Points: the unit a workspace's wallet holds, always exact decimals, never floats.
//!
//! The rounding rules in one place:
//! - a balance or ledger amount carries at most [`BALANCE_DP`] = 4 decimal places;
//! - a price a partner sets (add-on points, top-up points) at most [`PRICE_DP`] = 2;
//! - proration rounds once, half up, to 2 places (see `proration`);
//! - a usage charge (rate x quantity) rounds once, half up, to 4 places.
//!
//! Nothing else rounds: every other operation is exact or refused.
//! In JSON, points travel as strings (`"10.50"`); a JSON number is refused.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

use super::{AmountSyntax, AmountTextError, parse_amount};

/// Decimal places a balance or ledger amount may carry.
pub const BALANCE_DP: u32 = 4;
/// Decimal places a price set by a partner may carry.
pub const PRICE_DP: u32 = 2;
/// Largest magnitude of any amount or balance: a trillion points. Far above any real wallet,
/// far below where `Decimal` (28 digits) could overflow in a sum of many entries.
pub const POINTS_MAX: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0); // 1e12

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointsError {
    #[error("must be a decimal number written as a string, like \"10.50\"")]
    NotADecimal,
    #[error("must have at most {max_dp} decimal places")]
    TooManyDecimals { max_dp: u32 },
    #[error("must not be negative")]
    Negative,
    #[error("must be at most 1000000000000 in magnitude")]
    TooLarge,
}

/// Rounds half up (away from zero at the midpoint): 5.165 -> 5.17, -0.00005 -> -0.0001.
pub fn round_half_up(value: Decimal, dp: u32) -> Decimal {
    value.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
}

/// Digits before the point in a points amount: [`POINTS_MAX`] has 13.
const POINTS_INT_DIGITS: u32 = 13;

/// The text of a points amount, checked by the shared amount parser: at most `max_dp` places
/// (zeros past them are not precision: `"1.2300"` is a valid price), a sign only if allowed.
fn parse_points(s: &str, max_dp: u32, allow_negative: bool) -> Result<Decimal, PointsError> {
    let syntax = AmountSyntax::new(max_dp, POINTS_INT_DIGITS).zeros_past_dp();
    let syntax = if allow_negative { syntax.signed() } else { syntax };
    parse_amount(s, syntax).map_err(|e| match e {
        AmountTextError::NotADecimal => PointsError::NotADecimal,
        AmountTextError::Negative => PointsError::Negative,
        AmountTextError::TooManyDecimals => PointsError::TooManyDecimals { max_dp },
        AmountTextError::TooManyDigits => PointsError::TooLarge,
    })
}

fn check(value: Decimal, max_dp: u32, allow_negative: bool) -> Result<Decimal, PointsError> {
    if value.normalize().scale() > max_dp {
        return Err(PointsError::TooManyDecimals { max_dp });
    }
    if !allow_negative && value.is_sign_negative() && !value.is_zero() {
        return Err(PointsError::Negative);
    }
    if value.abs() > POINTS_MAX {
        return Err(PointsError::TooLarge);
    }
    // Keep a canonical scale so equal values compare and print alike.
    let mut v = value;
    v.rescale(BALANCE_DP);
    Ok(v.normalize_zero())
}

trait NormalizeZero {
    fn normalize_zero(self) -> Self;
}
impl NormalizeZero for Decimal {
    /// `-0` prints as `-0.00`; we never want that.
    fn normalize_zero(mut self) -> Self {
        if self.is_zero() {
            self.set_sign_positive(true);
        }
        self
    }
}

/// Formats with at least 2 and at most 4 decimal places: 5 -> "5.00", 0.035 -> "0.035".
fn format_points(value: Decimal, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let mut v = value.normalize();
    if v.scale() < PRICE_DP {
        v.rescale(PRICE_DP);
    }
    write!(f, "{v}")
}

macro_rules! points_type {
    ($name:ident, $allow_negative:expr) => {
        impl $name {
            pub const ZERO: Self = Self(Decimal::ZERO);

            /// Parses a string such as `"10.5"` with at most 4 decimal places, exactly as
            /// written: more places are refused, never rounded.
            pub fn parse(s: &str) -> Result<Self, PointsError> {
                Self::from_decimal(parse_points(s, BALANCE_DP, $allow_negative)?)
            }

            pub fn from_decimal(value: Decimal) -> Result<Self, PointsError> {
                check(value, BALANCE_DP, $allow_negative).map(Self)
            }

            pub fn as_decimal(&self) -> Decimal {
                self.0
            }

            pub fn is_zero(&self) -> bool {
                self.0.is_zero()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                format_points(self.0, f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // Only a string: a JSON number would already have passed through a float
                // in many clients, and we never want to guess what was meant.
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A non-negative quantity of points: a price, a credit, a debit's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Points(Decimal);
points_type!(Points, false);

impl Points {
    /// A price set by a partner: at most 2 decimal places.
    pub fn parse_price(s: &str) -> Result<Self, PointsError> {
        Self::from_decimal(parse_points(s, PRICE_DP, false)?)
    }

    /// Refuses more than [`PRICE_DP`] decimal places.
    pub fn check_price(&self) -> Result<(), PointsError> {
        if self.0.normalize().scale() > PRICE_DP {
            return Err(PointsError::TooManyDecimals { max_dp: PRICE_DP });
        }
        Ok(())
    }

    pub fn checked_add(self, other: Points) -> Option<Points> {
        Self::from_decimal(self.0.checked_add(other.0)?).ok()
    }

    /// `self x n`, exact; `None` past [`POINTS_MAX`].
    pub fn checked_mul(self, n: u32) -> Option<Points> {
        Self::from_decimal(self.0.checked_mul(Decimal::from(n))?).ok()
    }
}

/// A signed change to a wallet: positive credits, negative debits. Zero is allowed: some
/// events are recorded without moving points (a purchase on the last day of a cycle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PointsDelta(Decimal);
points_type!(PointsDelta, true);

impl PointsDelta {
    pub fn credit(p: Points) -> Self {
        Self(p.0)
    }

    pub fn debit(p: Points) -> Self {
        // Negating a `Decimal` flips its sign bit: it cannot overflow.
        #[allow(clippy::arithmetic_side_effects)]
        let negated = -p.0;
        Self(negated.normalize_zero())
    }

    pub fn is_debit(&self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    /// The size of the change, without its sign.
    pub fn magnitude(&self) -> Points {
        Points(self.0.abs())
    }
}

/// A wallet balance. Signed: usage (and a partner's explicit `allow_negative` deduction, or a
/// refund claw-back) may take it below zero; purchases never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Balance(Decimal);
points_type!(Balance, true);

impl Balance {
    /// The balance after `delta`, or `None` if it would leave the representable range.
    pub fn apply(self, delta: PointsDelta) -> Option<Balance> {
        Self::from_decimal(self.0.checked_add(delta.0)?).ok()
    }

    pub fn is_negative(&self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    #[test]
    fn parses_and_formats() {
        assert_eq!(Points::parse("10").unwrap().to_string(), "10.00");
        assert_eq!(Points::parse("10.5").unwrap().to_string(), "10.50");
        assert_eq!(Points::parse("0.035").unwrap().to_string(), "0.035");
        assert_eq!(Points::parse("1.2345").unwrap().to_string(), "1.2345");
        assert_eq!(PointsDelta::parse("-25.50").unwrap().to_string(), "-25.50");
        assert_eq!(PointsDelta::parse("-0").unwrap().to_string(), "0.00");
        assert_eq!(Points::parse("10.50").unwrap(), Points::parse("10.5").unwrap());
    }

    #[test]
    fn refuses_what_it_should() {
        assert_eq!(Points::parse("1.23456"), Err(PointsError::TooManyDecimals { max_dp: 4 }));
        assert_eq!(Points::parse_price("1.234"), Err(PointsError::TooManyDecimals { max_dp: 2 }));
        assert_eq!(Points::parse("-1"), Err(PointsError::Negative));
        assert_eq!(Points::parse("1000000000000.0001"), Err(PointsError::TooLarge));
        assert!(Points::parse("1000000000000").is_ok());
        for bad in ["", "abc", "1e3", "+1", " 1", ".5", "5.", "1,5", "NaN", "--1"] {
            assert_eq!(Points::parse(bad), Err(PointsError::NotADecimal), "{bad:?}");
        }
        // Trailing zeros beyond the limit are not extra precision.
        assert!(Points::parse_price("1.2300").is_ok());
        assert_eq!(Points::parse_price("1.230000000000000000000000000000000"), Points::parse("1.23"));
    }

    /// Past 28 digits `Decimal::from_str` rounds: these would be 1.00 and 0.00, few enough places to
    /// pass a scale check made afterwards. The text is checked first, so they are refused.
    #[test]
    fn many_places_are_refused_not_rounded() {
        let nines = "0.99999999999999999999999999999";
        let tiny = "0.000000000000000000000000000001";
        assert_eq!(Points::parse(nines), Err(PointsError::TooManyDecimals { max_dp: 4 }));
        assert_eq!(PointsDelta::parse(nines), Err(PointsError::TooManyDecimals { max_dp: 4 }));
        assert_eq!(PointsDelta::parse(&format!("-{nines}")), Err(PointsError::TooManyDecimals { max_dp: 4 }));
        assert_eq!(Balance::parse(tiny), Err(PointsError::TooManyDecimals { max_dp: 4 }));
        assert_eq!(Points::parse_price(tiny), Err(PointsError::TooManyDecimals { max_dp: 2 }));
        assert_eq!(Points::parse_price("0.999"), Err(PointsError::TooManyDecimals { max_dp: 2 }));
        assert_eq!(Points::parse("99999999999999999999999999999999"), Err(PointsError::TooLarge));
        let err = serde_json::from_str::<Points>(&format!("\"{tiny}\"")).unwrap_err();
        assert!(err.to_string().starts_with("must have at most 4 decimal places"), "{err}");
    }

    #[test]
    fn json_is_a_string_only() {
        let p: Points = serde_json::from_str("\"10.50\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"10.50\"");
        assert!(serde_json::from_str::<Points>("10.5").is_err());
        assert!(serde_json::from_str::<Points>("\"-1\"").is_err());
    }

    #[test]
    fn rounding_is_half_up() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(round_half_up(d("5.165"), 2), d("5.17"));
        assert_eq!(round_half_up(d("5.1649"), 2), d("5.16"));
        assert_eq!(round_half_up(d("0.00005"), 4), d("0.0001"));
        assert_eq!(round_half_up(d("-0.00005"), 4), d("-0.0001"));
    }

    #[test]
    fn balance_arithmetic_is_exact_and_bounded() {
        let b = Balance::parse("10.10").unwrap();
        let after = b.apply(PointsDelta::debit(Points::parse("10.1").unwrap())).unwrap();
        assert!(after.is_zero());
        assert_eq!(after.to_string(), "0.00");
        let neg = after.apply(PointsDelta::parse("-0.035").unwrap()).unwrap();
        assert!(neg.is_negative());
        let max = Balance::parse("1000000000000").unwrap();
        assert_eq!(max.apply(PointsDelta::parse("0.0001").unwrap()), None);
    }

    proptest! {
        #[test]
        fn display_parse_round_trips(units in -10_000_000_000_000_000i64..10_000_000_000_000_000i64) {
            let d = PointsDelta::from_decimal(Decimal::new(units, 4)).unwrap();
            prop_assert_eq!(PointsDelta::parse(&d.to_string()).unwrap(), d);
        }

        #[test]
        fn credit_then_debit_is_identity(b in -1_000_000_000i64..1_000_000_000, p in 0i64..1_000_000_000) {
            let bal = Balance::from_decimal(Decimal::new(b, 4)).unwrap();
            let pts = Points::from_decimal(Decimal::new(p, 4)).unwrap();
            let back = bal.apply(PointsDelta::credit(pts)).unwrap().apply(PointsDelta::debit(pts)).unwrap();
            prop_assert_eq!(back, bal);
        }
    }
}

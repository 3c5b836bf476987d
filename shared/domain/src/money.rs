//! Money: an integer amount in the currency's minor unit plus a lowercase ISO code, exactly the
//! shape Stripe's API takes (`amount: 1000, currency: "usd"` is 10.00 USD). Never a float.
//!
//! The currency rules, from Stripe's "Supported currencies" page:
//! - most currencies are two-decimal: 10.00 USD is `1000`;
//! - zero-decimal currencies (BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF) take
//!   the major amount as is: 1000 JPY is `1000`;
//! - three-decimal currencies (BHD JOD KWD OMR TND) have 3 minor digits, but Stripe requires the
//!   last one to be 0: 5.120 KWD is `5120`, 5.123 KWD is refused;
//! - ISK and UGX are two-decimal in the API for backwards compatibility, but only whole units can
//!   be charged: 10.00 ISK is `1000`, 10.50 ISK is refused;
//! - a charge has a minimum and a maximum amount (see [`MinCharge`] and [`Currency::max_charge`]).
//!
//! A [`Money`] always satisfies the first four rules (it can't be built otherwise); whether it is
//! large enough to be charged is a separate question, [`Money::check_chargeable`], because a sum
//! or a price may legitimately be below Stripe's minimum.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{AmountSyntax, AmountTextError, parse_amount};

/// What Stripe does with one presentment currency. Built only in [`CURRENCIES`].
#[derive(Debug)]
struct CurrencyInfo {
    code: &'static str,
    /// Minor digits in the API amount: 0, 2 or 3.
    exponent: u32,
    /// Every API amount must be a multiple of this: 1, 10 (three-decimal) or 100 (ISK, UGX).
    step_minor: i64,
    min_charge: MinCharge,
    max_charge_minor: i64,
}

/// Stripe's minimum charge amount for a currency.
///
/// Stripe publishes a minimum for some currencies (USD 0.50, GBP 0.30, JPY 50, HUF 175.00...).
/// For every other currency its rule is "the amount must convert to at least the minimum of the
/// account's settlement currency" (USD 0.50 or equivalent), which depends on the exchange rate of
/// the day and the connected account's settlement currency: it can't be known offline. Rather than
/// pretend with a hard-coded exchange rate that rots, those currencies are
/// [`MinCharge::Unpublished`] and we enforce only one whole major unit (1.00 MAD, 1 VND, 1.000 KWD):
/// a floor that refuses nonsense such as 0.01, not a guarantee. For a strong currency (KWD, BHD,
/// OMR, JOD, KYD, GIP...) one unit is well above USD 0.50, so Stripe will take it; for a weak one
/// (IDR, VND, UGX...) Stripe may still refuse the Checkout Session with `amount_too_small`, and the
/// checkout path must report that as invalid input, not as a server error.
///
/// Even a published minimum is exact only when the connected account settles in that currency;
/// a USD charge on an account that settles in GBP must convert to at least GBP 0.30. The published
/// minimums are close enough to each other (all near USD 0.50) that this rarely matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MinCharge {
    /// Stripe's published minimum, in minor units.
    Published(i64),
    /// No published minimum: we require one whole major unit (see above).
    Unpublished,
}

/// Digits before the point in a major amount a client writes: more could never fit an `i64` of
/// minor units (fewer still may not, which the conversion refuses).
const MAJOR_INT_DIGITS: u32 = 18;

/// Stripe's general maximum: an amount supports up to eight digits (99999999 is USD 999,999.99).
const MAX_CHARGE_8_DIGITS: i64 = 99_999_999;
/// IDR is the documented exception: up to twelve digits.
const MAX_CHARGE_12_DIGITS: i64 = 999_999_999_999;

impl CurrencyInfo {
    const fn two(code: &'static str) -> Self {
        Self {
            code,
            exponent: 2,
            step_minor: 1,
            min_charge: MinCharge::Unpublished,
            max_charge_minor: MAX_CHARGE_8_DIGITS,
        }
    }
    const fn zero(code: &'static str) -> Self {
        Self { exponent: 0, ..Self::two(code) }
    }
    /// Three minor digits, the last one always 0.
    const fn three(code: &'static str) -> Self {
        Self { exponent: 3, step_minor: 10, ..Self::two(code) }
    }
    /// Two-decimal in the API, whole units only.
    const fn whole(code: &'static str) -> Self {
        Self { step_minor: 100, ..Self::two(code) }
    }
    const fn min(self, minor: i64) -> Self {
        Self { min_charge: MinCharge::Published(minor), ..self }
    }
    const fn max(self, minor: i64) -> Self {
        Self { max_charge_minor: minor, ..self }
    }
}

/// Every currency Stripe supports for charges, sorted by code (the lookup is a binary search and a
/// test checks the order). Minimums are Stripe's published ones, in minor units.
static CURRENCIES: [CurrencyInfo; 139] = [
    CurrencyInfo::two("aed").min(200),
    CurrencyInfo::two("afn"),
    CurrencyInfo::two("all"),
    CurrencyInfo::two("amd"),
    CurrencyInfo::two("ang"),
    CurrencyInfo::two("aoa"),
    CurrencyInfo::two("ars"),
    CurrencyInfo::two("aud").min(50),
    CurrencyInfo::two("awg"),
    CurrencyInfo::two("azn"),
    CurrencyInfo::two("bam"),
    CurrencyInfo::two("bbd"),
    CurrencyInfo::two("bdt"),
    CurrencyInfo::two("bgn").min(100),
    CurrencyInfo::three("bhd"),
    CurrencyInfo::zero("bif"),
    CurrencyInfo::two("bmd"),
    CurrencyInfo::two("bnd"),
    CurrencyInfo::two("bob"),
    CurrencyInfo::two("brl").min(50),
    CurrencyInfo::two("bsd"),
    CurrencyInfo::two("bwp"),
    CurrencyInfo::two("byn"),
    CurrencyInfo::two("bzd"),
    CurrencyInfo::two("cad").min(50),
    CurrencyInfo::two("cdf"),
    CurrencyInfo::two("chf").min(50),
    CurrencyInfo::zero("clp"),
    CurrencyInfo::two("cny"),
    CurrencyInfo::two("cop"),
    CurrencyInfo::two("crc"),
    CurrencyInfo::two("cve"),
    CurrencyInfo::two("czk").min(1500),
    CurrencyInfo::zero("djf"),
    CurrencyInfo::two("dkk").min(250),
    CurrencyInfo::two("dop"),
    CurrencyInfo::two("dzd"),
    CurrencyInfo::two("egp"),
    CurrencyInfo::two("etb"),
    CurrencyInfo::two("eur").min(50),
    CurrencyInfo::two("fjd"),
    CurrencyInfo::two("fkp"),
    CurrencyInfo::two("gbp").min(30),
    CurrencyInfo::two("gel"),
    CurrencyInfo::two("gip"),
    CurrencyInfo::two("gmd"),
    CurrencyInfo::zero("gnf"),
    CurrencyInfo::two("gtq"),
    CurrencyInfo::two("gyd"),
    CurrencyInfo::two("hkd").min(400),
    CurrencyInfo::two("hnl"),
    CurrencyInfo::two("htg"),
    CurrencyInfo::two("huf").min(17500),
    CurrencyInfo::two("idr").max(MAX_CHARGE_12_DIGITS),
    CurrencyInfo::two("ils"),
    CurrencyInfo::two("inr").min(50),
    CurrencyInfo::whole("isk"),
    CurrencyInfo::two("jmd"),
    CurrencyInfo::three("jod"),
    CurrencyInfo::zero("jpy").min(50),
    CurrencyInfo::two("kes"),
    CurrencyInfo::two("kgs"),
    CurrencyInfo::two("khr"),
    CurrencyInfo::zero("kmf"),
    CurrencyInfo::zero("krw"),
    CurrencyInfo::three("kwd"),
    CurrencyInfo::two("kyd"),
    CurrencyInfo::two("kzt"),
    CurrencyInfo::two("lak"),
    CurrencyInfo::two("lbp"),
    CurrencyInfo::two("lkr"),
    CurrencyInfo::two("lrd"),
    CurrencyInfo::two("lsl"),
    CurrencyInfo::two("mad"),
    CurrencyInfo::two("mdl"),
    CurrencyInfo::zero("mga"),
    CurrencyInfo::two("mkd"),
    CurrencyInfo::two("mmk"),
    CurrencyInfo::two("mnt"),
    CurrencyInfo::two("mop"),
    CurrencyInfo::two("mur"),
    CurrencyInfo::two("mvr"),
    CurrencyInfo::two("mwk"),
    CurrencyInfo::two("mxn").min(1000),
    CurrencyInfo::two("myr").min(200),
    CurrencyInfo::two("mzn"),
    CurrencyInfo::two("nad"),
    CurrencyInfo::two("ngn"),
    CurrencyInfo::two("nio"),
    CurrencyInfo::two("nok").min(300),
    CurrencyInfo::two("npr"),
    CurrencyInfo::two("nzd").min(50),
    CurrencyInfo::three("omr"),
    CurrencyInfo::two("pab"),
    CurrencyInfo::two("pen"),
    CurrencyInfo::two("pgk"),
    CurrencyInfo::two("php"),
    CurrencyInfo::two("pkr"),
    CurrencyInfo::two("pln").min(200),
    CurrencyInfo::zero("pyg"),
    CurrencyInfo::two("qar"),
    CurrencyInfo::two("ron").min(200),
    CurrencyInfo::two("rsd"),
    CurrencyInfo::two("rub"),
    CurrencyInfo::zero("rwf"),
    CurrencyInfo::two("sar"),
    CurrencyInfo::two("sbd"),
    CurrencyInfo::two("scr"),
    CurrencyInfo::two("sek").min(300),
    CurrencyInfo::two("sgd").min(50),
    CurrencyInfo::two("shp"),
    CurrencyInfo::two("sle"),
    CurrencyInfo::two("sos"),
    CurrencyInfo::two("srd"),
    CurrencyInfo::two("std"),
    CurrencyInfo::two("szl"),
    CurrencyInfo::two("thb").min(1000),
    CurrencyInfo::two("tjs"),
    CurrencyInfo::three("tnd"),
    CurrencyInfo::two("top"),
    CurrencyInfo::two("try"),
    CurrencyInfo::two("ttd"),
    CurrencyInfo::two("twd"),
    CurrencyInfo::two("tzs"),
    CurrencyInfo::two("uah"),
    CurrencyInfo::whole("ugx"),
    CurrencyInfo::two("usd").min(50),
    CurrencyInfo::two("uyu"),
    CurrencyInfo::two("uzs"),
    CurrencyInfo::zero("vnd"),
    CurrencyInfo::zero("vuv"),
    CurrencyInfo::two("wst"),
    CurrencyInfo::zero("xaf"),
    CurrencyInfo::two("xcd"),
    CurrencyInfo::zero("xof"),
    CurrencyInfo::zero("xpf"),
    CurrencyInfo::two("yer"),
    CurrencyInfo::two("zar"),
    CurrencyInfo::two("zmw"),
];

/// Index of `code` in [`CURRENCIES`], usable in a `const`. Panics (at compile time) if absent.
const fn index_of(code: &str) -> usize {
    let mut i = 0;
    while i < CURRENCIES.len() {
        let c = CURRENCIES[i].code.as_bytes();
        let w = code.as_bytes();
        if c.len() == w.len() && c[0] == w[0] && c[1] == w[1] && c[2] == w[2] {
            return i;
        }
        // `i < CURRENCIES.len()`: far from usize::MAX.
        #[allow(clippy::arithmetic_side_effects)]
        let next = i + 1;
        i = next;
    }
    panic!("currency not in the table");
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("currency must be the three-letter ISO code of a currency Stripe supports, like \"usd\"")]
pub struct UnknownCurrency;

/// A currency Stripe supports for charges. Parsed from its ISO code in any case; displays and
/// serializes lowercase, as Stripe wants it.
#[derive(Clone, Copy)]
pub struct Currency(&'static CurrencyInfo);

impl Currency {
    /// US dollar: the platform's currency (cost prices, wholesale rates).
    pub const USD: Currency = Currency(&CURRENCIES[index_of("usd")]);

    /// Parses an ISO 4217 code, case-insensitively: `"USD"`, `"usd"` and `"Usd"` are one currency.
    pub fn parse(code: &str) -> Result<Self, UnknownCurrency> {
        let &[a, b, c] = code.as_bytes() else {
            return Err(UnknownCurrency);
        };
        let lower = [a.to_ascii_lowercase(), b.to_ascii_lowercase(), c.to_ascii_lowercase()];
        CURRENCIES
            .binary_search_by(|info| info.code.as_bytes().cmp(&lower[..]))
            .map(|i| Currency(&CURRENCIES[i]))
            .map_err(|_| UnknownCurrency)
    }

    /// Every supported currency, in code order.
    pub fn all() -> impl ExactSizeIterator<Item = Currency> {
        CURRENCIES.iter().map(Currency)
    }

    /// The lowercase ISO code, as Stripe's API takes it.
    pub fn code(&self) -> &'static str {
        self.0.code
    }

    /// Minor digits in an API amount: 0 (JPY), 2 (USD, and ISK/UGX), 3 (KWD).
    pub fn exponent(&self) -> u32 {
        self.0.exponent
    }

    /// Every amount is a multiple of this many minor units: 1, 10 for the three-decimal
    /// currencies (last digit 0), 100 for ISK and UGX (whole units only).
    pub fn step_minor(&self) -> i64 {
        self.0.step_minor
    }

    /// Minor units in one major unit: 1, 100 or 1000.
    pub fn minor_per_major(&self) -> i64 {
        10i64.pow(self.0.exponent)
    }

    /// The minimum as Stripe publishes it (or not): see [`MinCharge`].
    pub fn published_min_charge(&self) -> MinCharge {
        self.0.min_charge
    }

    /// The smallest amount we accept for a charge: Stripe's published minimum, or one whole major
    /// unit where Stripe publishes none (see [`MinCharge`] for why, and what that does not promise).
    pub fn min_charge(&self) -> Money {
        let amount_minor = match self.0.min_charge {
            MinCharge::Published(minor) => minor,
            MinCharge::Unpublished => self.minor_per_major(),
        };
        Money { amount_minor, currency: *self }
    }

    /// The largest amount Stripe takes in one charge: eight digits in minor units (USD
    /// 999,999.99), twelve for IDR. Other high-denomination currencies may have their own
    /// limits that Stripe doesn't publish; Stripe then refuses the session.
    pub fn max_charge(&self) -> Money {
        // Round down to the step so the maximum itself is a valid amount.
        let m = self.0.max_charge_minor;
        let rem = m.checked_rem(self.0.step_minor).expect("a step is a positive constant");
        Money { amount_minor: m.checked_sub(rem).expect("0 <= rem <= m"), currency: *self }
    }
}

impl PartialEq for Currency {
    fn eq(&self, other: &Self) -> bool {
        self.0.code == other.0.code
    }
}
impl Eq for Currency {}
impl Hash for Currency {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.code.hash(state);
    }
}
impl PartialOrd for Currency {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Currency {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.code.cmp(other.0.code)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.0.code)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.code)
    }
}

impl FromStr for Currency {
    type Err = UnknownCurrency;
    fn from_str(s: &str) -> Result<Self, UnknownCurrency> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for Currency {
    type Error = UnknownCurrency;
    fn try_from(s: &str) -> Result<Self, UnknownCurrency> {
        Self::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.code)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a decimal amount written as a string, like \"10.00\"")]
    NotADecimal,
    #[error("must not be negative")]
    Negative,
    #[error("{currency} amounts have at most {max_dp} decimal places")]
    TooManyDecimals { currency: Currency, max_dp: u32 },
    /// Three-decimal currencies (step 0.010) and ISK/UGX (step 1.00).
    #[error("{} amounts must be a multiple of {}", .step.currency, .step.format_major())]
    NotAMultipleOfStep { step: Money },
    #[error("is too large")]
    TooLarge,
    #[error("must be at least {minimum}, the smallest charge Stripe accepts")]
    BelowMinimumCharge { minimum: Money },
    #[error("must be at most {maximum}, the largest charge Stripe accepts")]
    AboveMaximumCharge { maximum: Money },
    #[error("must be in {expected}, not {found}")]
    CurrencyMismatch { expected: Currency, found: Currency },
}

/// An amount of money: an integer count of the currency's minor unit, never negative, always a
/// multiple of the currency's step (see the module doc). Serializes as Stripe does:
/// `{"amount_minor": 1000, "currency": "usd"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "MoneyRepr", into = "MoneyRepr")]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyRepr {
    amount_minor: i64,
    currency: Currency,
}

impl TryFrom<MoneyRepr> for Money {
    type Error = MoneyError;
    fn try_from(r: MoneyRepr) -> Result<Self, MoneyError> {
        Money::from_minor(r.amount_minor, r.currency)
    }
}

impl From<Money> for MoneyRepr {
    fn from(m: Money) -> Self {
        MoneyRepr { amount_minor: m.amount_minor, currency: m.currency }
    }
}

impl Money {
    pub fn zero(currency: Currency) -> Self {
        Money { amount_minor: 0, currency }
    }

    /// From an API amount in minor units: `from_minor(1000, usd)` is 10.00 USD.
    /// Refuses a negative amount and one that breaks the currency's step (KWD `5123`, ISK `1050`).
    pub fn from_minor(amount_minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if amount_minor < 0 {
            return Err(MoneyError::Negative);
        }
        let step = currency.step_minor();
        if amount_minor.checked_rem(step) != Some(0) {
            return Err(MoneyError::NotAMultipleOfStep { step: Money { amount_minor: step, currency } });
        }
        Ok(Money { amount_minor, currency })
    }

    /// Parses a major-unit amount written as a string, without floats: `"10.00"` USD is `1000`,
    /// `"1000"` JPY is `1000`, `"5.120"` KWD is `5120`. Fewer decimals than the currency has are
    /// fine (`"10.5"` USD is `1050`); more are refused (`"10.005"` USD, `"1000.0"` JPY), even
    /// zeros. Syntax is strict: digits, optionally `.` and digits; no sign, exponent or spaces.
    /// `"5.123"` KWD and `"10.50"` ISK are refused by the currency's step.
    pub fn parse_major(s: &str, currency: Currency) -> Result<Self, MoneyError> {
        let exponent = currency.exponent();
        let major = parse_amount(s, AmountSyntax::new(exponent, MAJOR_INT_DIGITS)).map_err(|e| match e {
            AmountTextError::NotADecimal => MoneyError::NotADecimal,
            AmountTextError::Negative => MoneyError::Negative,
            AmountTextError::TooManyDecimals => MoneyError::TooManyDecimals { currency, max_dp: exponent },
            AmountTextError::TooManyDigits => MoneyError::TooLarge,
        })?;
        // The text had at most `exponent` places, so this is exact: no rounding can happen.
        let minor = major.checked_mul(Decimal::from(currency.minor_per_major())).ok_or(MoneyError::TooLarge)?;
        debug_assert!(minor.fract().is_zero());
        let amount_minor = i64::try_from(minor).map_err(|_| MoneyError::TooLarge)?;
        Self::from_minor(amount_minor, currency)
    }

    /// Converts a major-unit decimal to money, rounding UP to the currency's smallest chargeable
    /// amount (the minor unit, times its step). This is how a "points x credit rate" checkout is
    /// priced: the partner is never paid less than its rate. 250 points x 0.0333 USD = 8.325 ->
    /// 8.33 (`833`); 1.2341 KWD -> 1.240 (`1240`, the last digit must be 0); 10.01 ISK -> 11.00
    /// (`1100`, whole units only). An exact amount is unchanged: 8.32 USD -> `832`.
    pub fn from_major_ceil(amount_major: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        if amount_major.is_sign_negative() && !amount_major.is_zero() {
            return Err(MoneyError::Negative);
        }
        let minor =
            amount_major.checked_mul(Decimal::from(currency.minor_per_major())).ok_or(MoneyError::TooLarge)?.ceil();
        let minor = i64::try_from(minor).map_err(|_| MoneyError::TooLarge)?;
        let step = currency.step_minor();
        // `minor >= 0` and `step > 0`: `0 <= rem < step`.
        let rem = minor.checked_rem(step).expect("a step is a positive constant");
        let amount_minor = if rem == 0 {
            minor
        } else {
            step.checked_sub(rem).and_then(|up| minor.checked_add(up)).ok_or(MoneyError::TooLarge)?
        };
        Self::from_minor(amount_minor, currency)
    }

    /// The API amount, in minor units.
    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_zero(&self) -> bool {
        self.amount_minor == 0
    }

    /// The exact amount in major units: `1000` USD is 10.00, `5120` KWD is 5.120.
    pub fn as_major(&self) -> Decimal {
        Decimal::new(self.amount_minor, self.currency.exponent())
    }

    /// The major amount with exactly the currency's decimals: "10.00" USD, "1000" JPY,
    /// "5.120" KWD, "10.00" ISK. [`Money::parse_major`] reads it back to the same value.
    pub fn format_major(&self) -> String {
        let exponent = self.currency.exponent();
        if exponent == 0 {
            return self.amount_minor.to_string();
        }
        let per_major = self.currency.minor_per_major();
        let int = self.amount_minor.checked_div(per_major).expect("a positive power of ten");
        let frac = self.amount_minor.checked_rem(per_major).expect("a positive power of ten");
        format!("{int}.{frac:0width$}", width = exponent as usize)
    }

    /// Whether Stripe would take this amount as one charge: at least [`Currency::min_charge`]
    /// (one whole unit where Stripe publishes no minimum: see [`MinCharge`]) and at most
    /// [`Currency::max_charge`].
    pub fn check_chargeable(&self) -> Result<(), MoneyError> {
        let minimum = self.currency.min_charge();
        if self.amount_minor < minimum.amount_minor {
            return Err(MoneyError::BelowMinimumCharge { minimum });
        }
        let maximum = self.currency.max_charge();
        if self.amount_minor > maximum.amount_minor {
            return Err(MoneyError::AboveMaximumCharge { maximum });
        }
        Ok(())
    }

    /// `self + other`, same currency only; `TooLarge` past `i64`.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other.currency)?;
        let amount_minor = self.amount_minor.checked_add(other.amount_minor).ok_or(MoneyError::TooLarge)?;
        Ok(Money { amount_minor, ..self })
    }

    /// `self x n`, exact; `TooLarge` past `i64`. A multiple of a valid amount stays valid.
    pub fn checked_mul(self, n: u32) -> Result<Money, MoneyError> {
        let amount_minor = self.amount_minor.checked_mul(i64::from(n)).ok_or(MoneyError::TooLarge)?;
        Ok(Money { amount_minor, ..self })
    }

    fn same_currency(&self, found: Currency) -> Result<(), MoneyError> {
        if self.currency != found {
            return Err(MoneyError::CurrencyMismatch { expected: self.currency, found });
        }
        Ok(())
    }
}

/// `10.00 usd`, `1000 jpy`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.format_major(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    fn money(s: &str, code: &str) -> Result<Money, MoneyError> {
        Money::parse_major(s, cur(code))
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn table_is_sorted_unique_and_complete() {
        assert_eq!(CURRENCIES.len(), 139);
        for pair in CURRENCIES.windows(2) {
            assert!(pair[0].code < pair[1].code, "{} then {}", pair[0].code, pair[1].code);
        }
        for c in Currency::all() {
            assert!(c.code().len() == 3 && c.code().bytes().all(|b| b.is_ascii_lowercase()), "{c}");
            assert_eq!(Currency::parse(&c.code().to_uppercase()), Ok(c));
            // The minimum and maximum are themselves valid amounts.
            assert_eq!(Money::from_minor(c.min_charge().amount_minor(), c), Ok(c.min_charge()));
            assert_eq!(Money::from_minor(c.max_charge().amount_minor(), c), Ok(c.max_charge()));
        }
    }

    #[test]
    fn exponents_and_steps_follow_stripe() {
        let zero =
            ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "vnd", "vuv", "xaf", "xof", "xpf"];
        let three = ["bhd", "jod", "kwd", "omr", "tnd"];
        let whole = ["isk", "ugx"];
        for c in Currency::all() {
            let (exponent, step) = if zero.contains(&c.code()) {
                (0, 1)
            } else if three.contains(&c.code()) {
                (3, 10)
            } else if whole.contains(&c.code()) {
                (2, 100)
            } else {
                (2, 1)
            };
            assert_eq!((c.exponent(), c.step_minor()), (exponent, step), "{c}");
        }
    }

    #[test]
    fn published_minimums() {
        let expected = [
            ("usd", "0.50"),
            ("aed", "2.00"),
            ("aud", "0.50"),
            ("bgn", "1.00"),
            ("brl", "0.50"),
            ("cad", "0.50"),
            ("chf", "0.50"),
            ("czk", "15.00"),
            ("dkk", "2.50"),
            ("eur", "0.50"),
            ("gbp", "0.30"),
            ("hkd", "4.00"),
            ("huf", "175.00"),
            ("inr", "0.50"),
            ("jpy", "50"),
            ("mxn", "10.00"),
            ("myr", "2.00"),
            ("nok", "3.00"),
            ("nzd", "0.50"),
            ("pln", "2.00"),
            ("ron", "2.00"),
            ("sek", "3.00"),
            ("sgd", "0.50"),
            ("thb", "10.00"),
        ];
        for (code, min) in expected {
            let c = cur(code);
            let m = money(min, code).unwrap();
            assert_eq!(c.published_min_charge(), MinCharge::Published(m.amount_minor()), "{code}");
            assert_eq!(c.min_charge(), m, "{code}");
        }
        let published = Currency::all().filter(|c| matches!(c.published_min_charge(), MinCharge::Published(_)));
        assert_eq!(published.count(), expected.len());
        // Unpublished: one whole major unit.
        assert_eq!(cur("mad").min_charge(), money("1.00", "mad").unwrap());
        assert_eq!(cur("kwd").min_charge(), money("1.000", "kwd").unwrap());
        assert_eq!(cur("vnd").min_charge(), money("1", "vnd").unwrap());
        assert_eq!(cur("isk").min_charge(), money("1.00", "isk").unwrap());
    }

    #[test]
    fn currency_parses_any_case_and_shows_lowercase() {
        assert_eq!(Currency::parse("USD"), Ok(Currency::USD));
        assert_eq!(Currency::parse("uSd"), Ok(Currency::USD));
        assert_eq!(Currency::USD.to_string(), "usd");
        for bad in ["", "us", "usdd", "xxx", "US D", "üsd", "123"] {
            assert_eq!(Currency::parse(bad), Err(UnknownCurrency), "{bad:?}");
        }
        assert_eq!(serde_json::to_string(&cur("EUR")).unwrap(), "\"eur\"");
        assert_eq!(serde_json::from_str::<Currency>("\"JPY\"").unwrap(), cur("jpy"));
        assert!(serde_json::from_str::<Currency>("\"zzz\"").is_err());
    }

    #[test]
    fn parse_major_examples() {
        assert_eq!(money("10.00", "usd").unwrap().amount_minor(), 1000);
        assert_eq!(money("10.5", "usd").unwrap().amount_minor(), 1050);
        assert_eq!(money("10", "usd").unwrap().amount_minor(), 1000);
        assert_eq!(money("0.01", "usd").unwrap().amount_minor(), 1);
        assert_eq!(money("1000", "jpy").unwrap().amount_minor(), 1000);
        assert_eq!(money("5.120", "kwd").unwrap().amount_minor(), 5120);
        assert_eq!(money("5.12", "kwd").unwrap().amount_minor(), 5120);
        assert_eq!(money("10.00", "isk").unwrap().amount_minor(), 1000);
        assert_eq!(money("10", "ugx").unwrap().amount_minor(), 1000);
        assert_eq!(money("007.50", "usd").unwrap().amount_minor(), 750);
    }

    #[test]
    fn parse_major_refusals() {
        assert_eq!(money("10.005", "usd"), Err(MoneyError::TooManyDecimals { currency: Currency::USD, max_dp: 2 }));
        assert_eq!(money("10.000", "usd"), Err(MoneyError::TooManyDecimals { currency: Currency::USD, max_dp: 2 }));
        assert_eq!(money("1000.0", "jpy"), Err(MoneyError::TooManyDecimals { currency: cur("jpy"), max_dp: 0 }));
        assert_eq!(money("5.1234", "kwd"), Err(MoneyError::TooManyDecimals { currency: cur("kwd"), max_dp: 3 }));
        let kwd_step = MoneyError::NotAMultipleOfStep { step: Money::from_minor(10, cur("kwd")).unwrap() };
        assert_eq!(money("5.123", "kwd"), Err(kwd_step.clone()));
        assert_eq!(kwd_step.to_string(), "kwd amounts must be a multiple of 0.010");
        let isk_step = MoneyError::NotAMultipleOfStep { step: Money::from_minor(100, cur("isk")).unwrap() };
        assert_eq!(money("10.50", "isk"), Err(isk_step.clone()));
        assert_eq!(isk_step.to_string(), "isk amounts must be a multiple of 1.00");
        assert_eq!(money("0.01", "ugx").unwrap_err().to_string(), "ugx amounts must be a multiple of 1.00");
        assert_eq!(money("-1.00", "usd"), Err(MoneyError::Negative));
        assert_eq!(money("99999999999999999.99", "usd"), Err(MoneyError::TooLarge));
        assert_eq!(money("9999999999999999999", "jpy"), Err(MoneyError::TooLarge));
        assert_eq!(money("9223372036854775807", "jpy"), Err(MoneyError::TooLarge));
        assert_eq!(money("922337203685477580.70", "usd"), Err(MoneyError::TooLarge));
        assert_eq!(money("92233720368547758.07", "usd").map(|m| m.amount_minor()), Ok(i64::MAX));
        // Never rounded, however many places: `Decimal::from_str` would make these 1 and 0.
        let tiny = MoneyError::TooManyDecimals { currency: Currency::USD, max_dp: 2 };
        assert_eq!(money("0.99999999999999999999999999999", "usd"), Err(tiny.clone()));
        assert_eq!(money("0.000000000000000000000000000001", "usd"), Err(tiny));
        for bad in ["", ".", "1.", ".5", "1e3", "+1", " 1", "1 ", "1,00", "1.2.3", "--1", "-", "NaN", "١"] {
            assert_eq!(money(bad, "usd"), Err(MoneyError::NotADecimal), "{bad:?}");
        }
    }

    #[test]
    fn from_minor_checks_the_step() {
        assert!(Money::from_minor(5120, cur("kwd")).is_ok());
        assert!(Money::from_minor(5123, cur("kwd")).is_err());
        assert!(Money::from_minor(1050, cur("isk")).is_err());
        assert_eq!(Money::from_minor(-1, Currency::USD), Err(MoneyError::Negative));
        assert_eq!(Money::from_minor(0, Currency::USD), Ok(Money::zero(Currency::USD)));
    }

    #[test]
    fn format_major_examples() {
        assert_eq!(money("10.00", "usd").unwrap().format_major(), "10.00");
        assert_eq!(money("0.5", "usd").unwrap().format_major(), "0.50");
        assert_eq!(money("1000", "jpy").unwrap().format_major(), "1000");
        assert_eq!(money("5.120", "kwd").unwrap().format_major(), "5.120");
        assert_eq!(money("0.01", "kwd").unwrap().format_major(), "0.010");
        assert_eq!(money("10", "isk").unwrap().format_major(), "10.00");
        assert_eq!(money("12.34", "eur").unwrap().to_string(), "12.34 eur");
        assert_eq!(money("5.120", "kwd").unwrap().as_major(), d("5.120"));
    }

    #[test]
    fn ceil_conversion_examples() {
        let ceil = |s: &str, code: &str| Money::from_major_ceil(d(s), cur(code)).map(|m| m.amount_minor());
        // 250 points x 0.0333 USD
        assert_eq!(d("250") * d("0.0333"), d("8.325"));
        assert_eq!(ceil("8.325", "usd"), Ok(833));
        assert_eq!(ceil("8.32", "usd"), Ok(832));
        assert_eq!(ceil("8.3200000001", "usd"), Ok(833));
        assert_eq!(ceil("0", "usd"), Ok(0));
        assert_eq!(ceil("1.2341", "kwd"), Ok(1240));
        assert_eq!(ceil("1.2300", "kwd"), Ok(1230));
        assert_eq!(ceil("1.2301", "kwd"), Ok(1240));
        assert_eq!(ceil("10.01", "isk"), Ok(1100));
        assert_eq!(ceil("10", "isk"), Ok(1000));
        assert_eq!(ceil("99.2", "jpy"), Ok(100));
        assert_eq!(ceil("-0.01", "usd"), Err(MoneyError::Negative));
        assert_eq!(ceil("100000000000000000000", "usd"), Err(MoneyError::TooLarge));
    }

    #[test]
    fn chargeable_bounds() {
        assert_eq!(
            money("0.49", "usd").unwrap().check_chargeable(),
            Err(MoneyError::BelowMinimumCharge { minimum: money("0.50", "usd").unwrap() })
        );
        assert_eq!(money("0.50", "usd").unwrap().check_chargeable(), Ok(()));
        assert_eq!(money("999999.99", "usd").unwrap().check_chargeable(), Ok(()));
        assert_eq!(
            money("1000000.00", "usd").unwrap().check_chargeable(),
            Err(MoneyError::AboveMaximumCharge { maximum: money("999999.99", "usd").unwrap() })
        );
        assert_eq!(
            money("49", "jpy").unwrap().check_chargeable().unwrap_err().to_string(),
            "must be at least 50 jpy, the smallest charge Stripe accepts"
        );
        assert!(money("0.99", "mad").unwrap().check_chargeable().is_err());
        assert!(money("1.00", "mad").unwrap().check_chargeable().is_ok());
        assert_eq!(cur("isk").max_charge().amount_minor(), 99_999_900);
        assert_eq!(cur("kwd").max_charge().amount_minor(), 99_999_990);
        assert!(money("9999999999.99", "idr").unwrap().check_chargeable().is_ok());
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = money("10.00", "usd").unwrap();
        assert_eq!(a.checked_add(a).unwrap(), money("20.00", "usd").unwrap());
        assert_eq!(a.checked_mul(3).unwrap(), money("30.00", "usd").unwrap());
        assert_eq!(
            a.checked_add(money("10.00", "eur").unwrap()),
            Err(MoneyError::CurrencyMismatch { expected: Currency::USD, found: cur("eur") })
        );
        let big = Money::from_minor(i64::MAX, cur("jpy")).unwrap();
        assert_eq!(big.checked_add(money("1", "jpy").unwrap()), Err(MoneyError::TooLarge));
        assert_eq!(big.checked_mul(2), Err(MoneyError::TooLarge));
    }

    #[test]
    fn json_is_stripe_shaped_and_checked() {
        let m = money("5.120", "kwd").unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"amount_minor":5120,"currency":"kwd"}"#);
        assert_eq!(serde_json::from_str::<Money>(r#"{"amount_minor":5120,"currency":"KWD"}"#).unwrap(), m);
        assert!(serde_json::from_str::<Money>(r#"{"amount_minor":5123,"currency":"kwd"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount_minor":-1,"currency":"usd"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount_minor":"100","currency":"usd"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount_minor":1.5,"currency":"usd"}"#).is_err());
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        (0..CURRENCIES.len()).prop_map(|i| Currency(&CURRENCIES[i]))
    }

    /// A canonical major-amount string for `c`, written without [`Money::format_major`]:
    /// integer part without leading zeros, exactly `exponent` decimals respecting the step.
    fn canonical_string(c: Currency) -> impl Strategy<Value = String> {
        let steps_per_major = c.minor_per_major() / c.step_minor();
        (0u64..1_000_000_000_000_000, 0..steps_per_major).prop_map(move |(int, frac_steps)| {
            let frac = frac_steps * c.step_minor();
            match c.exponent() {
                0 => int.to_string(),
                e => format!("{int}.{frac:0width$}", width = e as usize),
            }
        })
    }

    proptest! {
        #[test]
        fn format_parse_round_trips((c, s) in any_currency().prop_flat_map(|c| (Just(c), canonical_string(c)))) {
            let m = Money::parse_major(&s, c).unwrap();
            prop_assert_eq!(m.format_major(), s);
            prop_assert_eq!(Money::parse_major(&m.format_major(), c).unwrap(), m);
        }

        #[test]
        fn minor_round_trips(c in any_currency(), units in 0i64..i64::MAX / 1000) {
            let m = Money::from_minor(units * c.step_minor(), c).unwrap();
            prop_assert_eq!(Money::parse_major(&m.format_major(), c).unwrap(), m);
            prop_assert_eq!(Money::from_major_ceil(m.as_major(), c).unwrap(), m);
            let json = serde_json::to_string(&m).unwrap();
            prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
        }

        #[test]
        fn ceil_is_the_smallest_valid_amount_not_below(c in any_currency(), mantissa in 0i64..1_000_000_000_000, scale in 0u32..8) {
            let x = Decimal::new(mantissa, scale);
            let m = Money::from_major_ceil(x, c).unwrap();
            prop_assert!(m.as_major() >= x);
            prop_assert_eq!(m.amount_minor() % c.step_minor(), 0);
            // One step less would be below x.
            if m.amount_minor() > 0 {
                let below = Money::from_minor(m.amount_minor() - c.step_minor(), c).unwrap();
                prop_assert!(below.as_major() < x);
            }
        }
    }
}

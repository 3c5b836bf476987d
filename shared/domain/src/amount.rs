//! One parser for every decimal amount that comes from outside: points, prices, money, credit
//! rates, thresholds, usage quantities and unit rates.
//!
//! `Decimal::from_str` silently rounds past 28 significant digits: `"0.99999999999999999999999999999"`
//! becomes `1`, and `"0.000000000000000000000000000001"` becomes `0`, both with few enough places
//! to pass a later scale check. So an amount is checked on its text, digit by digit, against what
//! its field allows ([`AmountSyntax`]), and only then converted, exactly: the digits that are left
//! always fit in a `Decimal`.

use rust_decimal::Decimal;

/// Significant digits a `Decimal` holds exactly (its 96-bit mantissa holds any 28-digit integer).
const DECIMAL_DIGITS: u32 = 28;

/// What one amount field accepts, beyond the shared syntax `-?digits(.digits)?` (no `+`, no
/// exponent, no spaces, no `.5` or `5.`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmountSyntax {
    max_dp: u32,
    max_int_digits: u32,
    signed: bool,
    zeros_past_dp: bool,
}

impl AmountSyntax {
    /// At most `max_dp` places and `max_int_digits` digits before the point (leading zeros don't
    /// count), unsigned, zeros past `max_dp` refused like any other digit. Together they must fit
    /// a `Decimal` exactly; a `const` that breaks this does not compile.
    pub const fn new(max_dp: u32, max_int_digits: u32) -> Self {
        assert!(
            matches!(max_dp.checked_add(max_int_digits), Some(digits) if digits <= DECIMAL_DIGITS),
            "more digits than a Decimal holds"
        );
        Self { max_dp, max_int_digits, signed: false, zeros_past_dp: false }
    }

    /// A leading `-` is accepted (a signed change to a wallet).
    pub const fn signed(self) -> Self {
        Self { signed: true, ..self }
    }

    /// Zeros past `max_dp` are not precision and are accepted: `"1.2300"` as a 2-place price.
    pub const fn zeros_past_dp(self) -> Self {
        Self { zeros_past_dp: true, ..self }
    }

    pub const fn max_dp(&self) -> u32 {
        self.max_dp
    }
}

/// Why the text of an amount is refused; each amount type maps it to its own error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountTextError {
    #[error("not a decimal number")]
    NotADecimal,
    #[error("negative where only positive amounts are allowed")]
    Negative,
    #[error("more decimal places than allowed")]
    TooManyDecimals,
    #[error("more integer digits than allowed")]
    TooManyDigits,
}

/// Parses `s` exactly as written, or refuses it: never rounds.
///
/// Checks, in this order: the syntax, the sign, the places (`"1.005"` with 2 places), the
/// integer digits (`"10000"` with 4). Leading zeros are free (`"007.50"`).
pub fn parse_amount(s: &str, syntax: AmountSyntax) -> Result<Decimal, AmountTextError> {
    let (negative, unsigned) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return Err(AmountTextError::NotADecimal);
    }
    if negative && !syntax.signed {
        return Err(AmountTextError::Negative);
    }
    let frac = frac.unwrap_or("");
    let frac = if syntax.zeros_past_dp { trim_zeros_past(frac, syntax.max_dp) } else { frac };
    if frac.len() > syntax.max_dp as usize {
        return Err(AmountTextError::TooManyDecimals);
    }
    let int = int.trim_start_matches('0');
    if int.len() > syntax.max_int_digits as usize {
        return Err(AmountTextError::TooManyDigits);
    }
    // At most DECIMAL_DIGITS digits remain (checked by `AmountSyntax::new`): the mantissa fits
    // an i128 and a Decimal exactly, so neither step below can fail.
    let mut mantissa: i128 = 0;
    for c in int.chars().chain(frac.chars()) {
        let digit = c.to_digit(10).expect("checked to be a digit above");
        mantissa = mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(digit)))
            .expect("at most 28 digits fit an i128");
    }
    if negative {
        mantissa = mantissa.checked_neg().expect("a non-negative i128 has a negation");
    }
    let scale = u32::try_from(frac.len()).expect("at most 28 places");
    Ok(Decimal::try_from_i128_with_scale(mantissa, scale).expect("at most 28 digits fit a Decimal"))
}

/// `frac` without the zeros that end it past `max_dp` places: `"2300"` with 2 is `"23"`,
/// `"2301"` stays as it is (refused after).
fn trim_zeros_past(frac: &str, max_dp: u32) -> &str {
    let kept = frac.trim_end_matches('0').len().max(max_dp as usize).min(frac.len());
    &frac[..kept]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    const PLACES_2: AmountSyntax = AmountSyntax::new(2, 13);
    const SIGNED_4: AmountSyntax = AmountSyntax::new(4, 13).signed().zeros_past_dp();

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn parses_exactly_what_is_written() {
        assert_eq!(parse_amount("10.50", PLACES_2), Ok(d("10.50")));
        assert_eq!(parse_amount("007.5", PLACES_2), Ok(d("7.5")));
        assert_eq!(parse_amount("0", PLACES_2), Ok(Decimal::ZERO));
        assert_eq!(parse_amount("-25.5000000", SIGNED_4), Ok(d("-25.5")));
        assert_eq!(parse_amount("9999999999999.99", PLACES_2), Ok(d("9999999999999.99")));
        assert_eq!(parse_amount("-9999999999999.9999", SIGNED_4), Ok(d("-9999999999999.9999")));
        // As many leading zeros as a client likes: they are not digits of the value.
        let zeros = format!("{}1.25", "0".repeat(100));
        assert_eq!(parse_amount(&zeros, PLACES_2), Ok(d("1.25")));
    }

    #[test]
    fn never_rounds() {
        // What `Decimal::from_str` turns into 1 and 0.
        assert_eq!(parse_amount("0.99999999999999999999999999999", SIGNED_4), Err(AmountTextError::TooManyDecimals));
        assert_eq!(parse_amount("0.000000000000000000000000000001", PLACES_2), Err(AmountTextError::TooManyDecimals));
        assert_eq!(parse_amount("0.000000000000000000000000000000", PLACES_2), Err(AmountTextError::TooManyDecimals));
        assert_eq!(
            parse_amount("0.000000000000000000000000000000", PLACES_2.zeros_past_dp()),
            Ok(Decimal::ZERO),
            "zeros past the places are not precision where the field says so"
        );
        assert_eq!(parse_amount("1.00001", SIGNED_4), Err(AmountTextError::TooManyDecimals));
        assert_eq!(parse_amount("1.00010", SIGNED_4), Ok(d("1.0001")));
        assert_eq!(parse_amount("1.005", PLACES_2), Err(AmountTextError::TooManyDecimals));
        assert_eq!(parse_amount("10000000000000", PLACES_2), Err(AmountTextError::TooManyDigits));
        assert_eq!(
            parse_amount("99999999999999999999999999999999999999999", PLACES_2),
            Err(AmountTextError::TooManyDigits)
        );
    }

    #[test]
    fn refuses_what_is_not_a_plain_decimal() {
        for bad in ["", "-", ".", ".5", "5.", "1e3", "+1", " 1", "1 ", "1,5", "1.2.3", "--1", "-.5", "NaN", "١"] {
            assert_eq!(parse_amount(bad, SIGNED_4), Err(AmountTextError::NotADecimal), "{bad:?}");
        }
        assert_eq!(parse_amount("-1", PLACES_2), Err(AmountTextError::Negative));
        assert_eq!(parse_amount("-0", PLACES_2), Err(AmountTextError::Negative));
        assert_eq!(parse_amount("-0", SIGNED_4).map(|v| v.is_zero()), Ok(true));
    }
}

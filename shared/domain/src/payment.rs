//! What a payment is worth in points over its life: the checkout's states, and how much of
//! the points a refund or a dispute takes back.

use rust_decimal::Decimal;

use super::points::{BALANCE_DP, round_half_up};
use super::{Money, Points};

/// Where a checkout stands. The only moves are the ones Stripe's session makes:
///
/// ```text
/// pending --completed (paid)------------------> credited
/// pending --completed (unpaid: async method)--> awaiting_payment --async_payment_succeeded--> credited
///                                                                 --async_payment_failed-----> failed
/// pending --expired---------------------------> expired
/// ```
///
/// A paid session is credited from any state but `credited` (Stripe's word that the money is
/// there wins over our record of an earlier event), and nothing ever leaves `credited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckoutStatus {
    Pending,
    AwaitingPayment,
    Credited,
    Expired,
    Failed,
}

impl CheckoutStatus {
    pub const ALL: [CheckoutStatus; 5] = [
        CheckoutStatus::Pending,
        CheckoutStatus::AwaitingPayment,
        CheckoutStatus::Credited,
        CheckoutStatus::Expired,
        CheckoutStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutStatus::Pending => "pending",
            CheckoutStatus::AwaitingPayment => "awaiting_payment",
            CheckoutStatus::Credited => "credited",
            CheckoutStatus::Expired => "expired",
            CheckoutStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<CheckoutStatus> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The states a checkout may move to `to` from.
    pub fn sources_of(to: CheckoutStatus) -> &'static [CheckoutStatus] {
        use CheckoutStatus::*;
        match to {
            Credited => &[Pending, AwaitingPayment, Expired, Failed],
            AwaitingPayment => &[Pending],
            Failed => &[Pending, AwaitingPayment],
            Expired => &[Pending],
            Pending => &[],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClawBackError {
    #[error("the payment's amount is zero")]
    NothingPaid,
    #[error("the refund is in {found}, the payment was in {paid}")]
    CurrencyMismatch { paid: &'static str, found: &'static str },
    #[error("the points to take back are out of range")]
    OutOfRange,
}

/// The points a payment of `paid` that bought `points` has lost once `reversed` of it went back
/// (refunded plus disputed, in the payment's currency): `points x min(reversed, paid) / paid`,
/// rounded half up to the balance's 4 places. A full reversal takes back exactly `points`;
/// what was taken before is subtracted by the caller, so each refund takes its share once and a
/// stale (smaller) total takes nothing.
pub fn clawback_total(points: Points, paid: Money, reversed: Money) -> Result<Points, ClawBackError> {
    if paid.currency() != reversed.currency() {
        return Err(ClawBackError::CurrencyMismatch {
            paid: paid.currency().code(),
            found: reversed.currency().code(),
        });
    }
    if paid.amount_minor() <= 0 {
        return Err(ClawBackError::NothingPaid);
    }
    let reversed_minor = reversed.amount_minor().clamp(0, paid.amount_minor());
    if reversed_minor == paid.amount_minor() {
        return Ok(points);
    }
    // points <= 1e12 with 4 places and amounts below 1e15 minor units: the product fits.
    let share = points
        .as_decimal()
        .checked_mul(Decimal::from(reversed_minor))
        .and_then(|x| x.checked_div(Decimal::from(paid.amount_minor())))
        .ok_or(ClawBackError::OutOfRange)?;
    Points::from_decimal(round_half_up(share, BALANCE_DP)).map_err(|_| ClawBackError::OutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::USD).unwrap()
    }

    fn pts(s: &str) -> Points {
        Points::parse(s).unwrap()
    }

    #[test]
    fn shares_of_a_payment() {
        // 1,000 points for 25.00: a 5.00 refund takes back 200, two of them 400, all of it 1,000.
        assert_eq!(clawback_total(pts("1000"), usd(2500), usd(500)), Ok(pts("200")));
        assert_eq!(clawback_total(pts("1000"), usd(2500), usd(1000)), Ok(pts("400")));
        assert_eq!(clawback_total(pts("1000"), usd(2500), usd(2500)), Ok(pts("1000")));
        // More than paid (a refund and a dispute of the same money) is capped at the points.
        assert_eq!(clawback_total(pts("1000"), usd(2500), usd(9999)), Ok(pts("1000")));
        assert_eq!(clawback_total(pts("1000"), usd(2500), usd(0)), Ok(Points::ZERO));
        // 100 points for 3.00, 1.00 back: 33.3333 (rounded to 4 places).
        assert_eq!(clawback_total(pts("100"), usd(300), usd(100)), Ok(pts("33.3333")));
        assert_eq!(clawback_total(pts("100"), usd(300), usd(200)), Ok(pts("66.6667")));
        let eur = Money::from_minor(100, Currency::parse("eur").unwrap()).unwrap();
        assert!(matches!(clawback_total(pts("1"), usd(100), eur), Err(ClawBackError::CurrencyMismatch { .. })));
        assert_eq!(clawback_total(pts("1"), usd(0), usd(0)), Err(ClawBackError::NothingPaid));
    }

    #[test]
    fn status_moves() {
        for s in CheckoutStatus::ALL {
            assert_eq!(CheckoutStatus::parse(s.as_str()), Some(s));
            assert!(!CheckoutStatus::sources_of(s).contains(&CheckoutStatus::Credited), "nothing leaves credited");
        }
    }
}

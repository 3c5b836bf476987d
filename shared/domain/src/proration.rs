//! Proration: what an add-on bought during a cycle costs for the rest of that cycle. The rule is
//! published to partners: the tests pin its examples.

use rust_decimal::Decimal;
use time::Date;

use super::{Cycle, CycleError, PRICE_DP, Points, round_half_up};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProrationError {
    #[error("quantity must be at least 1")]
    ZeroQuantity,
    #[error("price x quantity is too large")]
    TooLarge,
    #[error("purchase date {date} is outside the billing cycle {start} to {end}")]
    PurchaseOutsideCycle { date: Date, start: Date, end: Date },
}

/// The prorated cost of a purchase, with the facts that explain it (for the ledger entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prorated {
    full_price: Points,
    amount: Points,
    days_remaining: u32,
    days_in_cycle: u32,
}

impl Prorated {
    /// What is charged now: `full_price x days_remaining / days_in_cycle`, rounded once, half
    /// up, to 2 places. May be 0.00 (bought on the cycle's last day).
    pub fn amount(&self) -> Points {
        self.amount
    }

    /// `unit_price x quantity`: what a full cycle costs, and what renews from the next cycle.
    pub fn full_price(&self) -> Points {
        self.full_price
    }

    /// Whole days after the day of purchase up to and including the cycle's last day.
    pub fn days_remaining(&self) -> u32 {
        self.days_remaining
    }

    pub fn days_in_cycle(&self) -> u32 {
        self.days_in_cycle
    }

    /// The same rule, with the same days, applied to another full amount: the partner's
    /// wholesale cost for this purchase (cost price x quantity, in the platform's currency) is
    /// prorated exactly like the workspace's points. Rounded once, half up, to 2 places.
    pub fn apply_to(&self, full_amount: Decimal) -> Decimal {
        prorate_decimal(full_amount, self.days_remaining, self.days_in_cycle)
    }
}

/// `full x days_remaining / days_in_cycle`, rounded once, half up, to 2 places.
///
/// Rounding the `Decimal` quotient is rounding the exact rational: `full` has at most 4 decimal
/// places and `days_in_cycle <= 31`, so an exact value that isn't a midpoint (x.xx5) is at least
/// 1/(2_000_000 x 31) away from one, far more than the quotient's error at 28 significant digits.
/// A test checks this against integer arithmetic.
fn prorate_decimal(full: Decimal, days_remaining: u32, days_in_cycle: u32) -> Decimal {
    assert!(days_in_cycle > 0 && days_remaining < days_in_cycle, "not a cycle: {days_remaining}/{days_in_cycle}");
    // `full` is a price in points (at most POINTS_MAX) and a cycle at most 31 days: far within range.
    let exact = full
        .checked_mul(Decimal::from(days_remaining))
        .and_then(|x| x.checked_div(Decimal::from(days_in_cycle)))
        .expect("a price times at most 31 days fits a Decimal");
    let mut v = round_half_up(exact, PRICE_DP);
    v.rescale(PRICE_DP);
    v
}

/// Prorates an add-on bought on `purchase_date` during `cycle`:
///
/// `cost = unit_price x quantity x days_remaining / days_in_cycle`
///
/// where `days_remaining` counts the whole days after the day of purchase up to and including the
/// cycle's last day. The quantity multiplies before the single rounding, half up, to 2 places
/// ([`round_half_up`]); nothing else rounds. From the next cycle the full price renews.
///
/// Test vectors (the published examples):
/// - cycle 1-30 April, member add-on at 10 points, bought 15 April: 10 x 15/30 = 5.00; the next
///   cycle costs the full 10.00;
/// - cycle 1-31 May, bought 15 May: 10 x 16/31 = 5.1613 -> 5.16;
/// - bought on the cycle's last day: 0.00 (the purchase is still recorded);
/// - the published "$10 x 15/30 = $5" is the same rule on a 30-day cycle (bought with 15 days left);
/// - quantity before rounding: 3 add-ons at 1.01 with 15 of 30 days left cost
///   3 x 1.01 x 15/30 = 1.515 -> 1.52, where rounding each first would give 3 x 0.51 = 1.53.
///
/// Buying on a cycle's first day costs `(days - 1) / days` of the full price (the day of purchase
/// itself isn't counted); a renewal at the cycle start isn't a proration: it charges the full price.
///
/// A purchase date outside the cycle is an error, never clamped.
pub fn prorate(
    unit_price: Points,
    quantity: u32,
    cycle: &Cycle,
    purchase_date: Date,
) -> Result<Prorated, ProrationError> {
    if quantity == 0 {
        return Err(ProrationError::ZeroQuantity);
    }
    let days_remaining = cycle.days_remaining_after(purchase_date).map_err(|e| match e {
        CycleError::DateOutsideCycle { date, start, end } => ProrationError::PurchaseOutsideCycle { date, start, end },
        // `days_remaining_after` has no other error; keep the facts anyway.
        _ => ProrationError::PurchaseOutsideCycle { date: purchase_date, start: cycle.start(), end: cycle.end() },
    })?;
    let days_in_cycle = cycle.days_in_cycle();
    let full_price = unit_price.checked_mul(quantity).ok_or(ProrationError::TooLarge)?;
    let amount = prorate_decimal(full_price.as_decimal(), days_remaining, days_in_cycle);
    // 0 <= amount <= full_price <= POINTS_MAX, at 2 places: always a valid `Points`.
    let amount = Points::from_decimal(amount).expect("a prorated amount is within 0..=full price");
    Ok(Prorated { full_price, amount, days_remaining, days_in_cycle })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AnchorDay, POINTS_MAX};
    use proptest::prelude::*;
    use std::str::FromStr;
    use time::macros::date;

    fn pts(s: &str) -> Points {
        Points::parse(s).unwrap()
    }

    fn cycle(anchor: u8, d: Date) -> Cycle {
        Cycle::containing(AnchorDay::new(anchor).unwrap(), d).unwrap()
    }

    #[test]
    fn published_vectors() {
        let april = cycle(1, date!(2025 - 04 - 01));
        let p = prorate(pts("10"), 1, &april, date!(2025 - 04 - 15)).unwrap();
        assert_eq!((p.amount(), p.days_remaining(), p.days_in_cycle()), (pts("5.00"), 15, 30));
        assert_eq!(p.amount().to_string(), "5.00");
        assert_eq!(p.full_price(), pts("10.00"));
        // The next cycle renews at the full price.
        let may = april.next().unwrap();
        let p = prorate(pts("10"), 1, &may, date!(2025 - 05 - 15)).unwrap();
        assert_eq!((p.amount(), p.days_remaining(), p.days_in_cycle()), (pts("5.16"), 16, 31));
        let last = prorate(pts("10"), 1, &may, date!(2025 - 05 - 31)).unwrap();
        assert_eq!((last.amount(), last.days_remaining()), (Points::ZERO, 0));
        assert_eq!(last.amount().to_string(), "0.00");
        // The published "$10 x 15/30 = $5": a 30-day cycle, 15 days left after the purchase.
        let thirty = cycle(1, date!(2025 - 06 - 01));
        assert_eq!(thirty.days_in_cycle(), 30);
        assert_eq!(prorate(pts("10"), 1, &thirty, date!(2025 - 06 - 15)).unwrap().amount(), pts("5"));
    }

    #[test]
    fn quantity_multiplies_before_the_single_rounding() {
        let may = cycle(1, date!(2025 - 05 - 01));
        // 3 x 10 x 16/31 = 15.4838... -> 15.48
        assert_eq!(prorate(pts("10"), 3, &may, date!(2025 - 05 - 15)).unwrap().amount(), pts("15.48"));
        // 30 days with 15 left: 3 x 1.01 x 15/30 = 1.515 -> 1.52.
        let june = cycle(1, date!(2025 - 06 - 01));
        let p = prorate(pts("1.01"), 3, &june, date!(2025 - 06 - 15)).unwrap();
        assert_eq!(p.amount(), pts("1.52"));
        assert_ne!(p.amount(), pts("1.53")); // 3 x round(0.505) would be 1.53
        // Half up at the midpoint: 0.01 x 15/30 = 0.005 -> 0.01.
        assert_eq!(prorate(pts("0.01"), 1, &june, date!(2025 - 06 - 15)).unwrap().amount(), pts("0.01"));
    }

    #[test]
    fn refusals() {
        let april = cycle(1, date!(2025 - 04 - 01));
        assert_eq!(prorate(pts("10"), 0, &april, date!(2025 - 04 - 15)), Err(ProrationError::ZeroQuantity));
        assert_eq!(
            prorate(pts("10"), 1, &april, date!(2025 - 05 - 01)),
            Err(ProrationError::PurchaseOutsideCycle {
                date: date!(2025 - 05 - 01),
                start: date!(2025 - 04 - 01),
                end: date!(2025 - 04 - 30)
            })
        );
        assert!(prorate(pts("10"), 1, &april, date!(2025 - 03 - 31)).is_err());
        let max = Points::from_decimal(POINTS_MAX).unwrap();
        assert_eq!(prorate(max, 2, &april, date!(2025 - 04 - 15)), Err(ProrationError::TooLarge));
        assert!(prorate(max, 1, &april, date!(2025 - 04 - 15)).is_ok());
    }

    #[test]
    fn wholesale_cost_uses_the_same_days() {
        let may = cycle(1, date!(2025 - 05 - 01));
        let p = prorate(pts("10"), 2, &may, date!(2025 - 05 - 15)).unwrap();
        // Two extra bots at $5 wholesale: 10 x 16/31 = 5.16.
        assert_eq!(p.apply_to(Decimal::from(10)), Decimal::from_str("5.16").unwrap());
        assert_eq!(p.apply_to(Decimal::from(10)).to_string(), "5.16");
    }

    /// Half-up rounding of `units / 10^4 x r / n` to cents, in integers only.
    fn oracle_cents(units: i128, r: i128, n: i128) -> i128 {
        // cents = units x r / (n x 100); half up for non-negatives: floor((2 x num + den) / (2 x den)).
        let (num, den) = (units * r, n * 100);
        (2 * num + den) / (2 * den)
    }

    fn any_cycle() -> impl Strategy<Value = Cycle> {
        (1u8..=31, 2_400_000i32..2_500_000).prop_map(|(a, jd)| cycle(a, Date::from_julian_day(jd).unwrap()))
    }

    fn any_price() -> impl Strategy<Value = Points> {
        (0i64..=10_000_000_000).prop_map(|cents| Points::from_decimal(Decimal::new(cents, 2)).unwrap())
    }

    proptest! {
        #[test]
        fn matches_exact_integer_arithmetic(units in 0i64..=10_000_000_000_000, q in 1u32..1000, c in any_cycle(), day in 0u32..31) {
            let unit = Points::from_decimal(Decimal::new(units, 4)).unwrap();
            let d = c.start() + time::Duration::days(i64::from(day % c.days_in_cycle()));
            let p = prorate(unit, q, &c, d).unwrap();
            let full_units = i128::from(units) * i128::from(q);
            let expected = oracle_cents(full_units, i128::from(p.days_remaining()), i128::from(p.days_in_cycle()));
            prop_assert_eq!(p.amount().as_decimal(), Decimal::from_i128_with_scale(expected, 2));
        }

        #[test]
        fn bounded_by_zero_and_the_full_price(unit in any_price(), q in 1u32..10_000, c in any_cycle(), day in 0u32..31) {
            let d = c.start() + time::Duration::days(i64::from(day % c.days_in_cycle()));
            let p = prorate(unit, q, &c, d).unwrap();
            prop_assert!(p.amount() <= p.full_price());
            prop_assert_eq!(p.full_price(), unit.checked_mul(q).unwrap());
            prop_assert!(p.amount().check_price().is_ok());
        }

        #[test]
        fn monotone_in_days_remaining(unit in any_price(), q in 1u32..100, c in any_cycle()) {
            let mut previous = None;
            let mut d = c.end();
            // From the last day backwards: days remaining 0, 1, 2, ...
            while d >= c.start() {
                let p = prorate(unit, q, &c, d).unwrap();
                if let Some(prev) = previous {
                    prop_assert!(p.amount() >= prev);
                }
                previous = Some(p.amount());
                d = d.previous_day().unwrap();
            }
        }

        #[test]
        fn last_day_free_first_day_all_but_one_day(unit in any_price(), q in 1u32..100, c in any_cycle()) {
            prop_assert_eq!(prorate(unit, q, &c, c.end()).unwrap().amount(), Points::ZERO);
            let first = prorate(unit, q, &c, c.start()).unwrap();
            let n = Decimal::from(c.days_in_cycle());
            let expected = round_half_up(first.full_price().as_decimal() * (n - Decimal::ONE) / n, PRICE_DP);
            prop_assert_eq!(first.amount().as_decimal(), expected);
            prop_assert_eq!(first.days_remaining(), c.days_in_cycle() - 1);
        }
    }
}

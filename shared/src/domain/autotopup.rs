//! Auto top-up: when a renewal finds too few points, the card saved at checkout is charged for
//! enough of the workspace's chosen top-up option, once per shortfall, with rails against what
//! went wrong elsewhere (runaway top-ups, declined cards retried every few seconds, auto top-up
//! that stopped without anyone knowing):
//!
//! - one charge covers the whole shortfall: the smallest whole number of the option that does;
//! - an attempt is recorded *before* the card is charged, with its number in the charge's
//!   idempotency key: a crash after the charge retries the same attempt, which Stripe answers
//!   with the first charge, never a second one;
//! - after a decline (or a bank that wants the customer present) the next attempt waits at
//!   least [`RETRY_AFTER`]; after [`MAX_CONSECUTIVE_FAILURES`] in a row auto top-up switches
//!   itself off, says why, and stays off until the workspace turns it on again.

use time::{Duration, OffsetDateTime};

use super::{Money, MoneyError, Points, TopupOption, TopupOptionId};

/// The least time between two attempts after a failed one.
pub const RETRY_AFTER: Duration = Duration::hours(1);
/// Consecutive failures that switch auto top-up off.
pub const MAX_CONSECUTIVE_FAILURES: u32 = 3;

/// An attempt recorded before its charge: what it charges and which number it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopupAttempt {
    /// 1, 2, 3...: part of the charge's idempotency key.
    pub number: u64,
    pub option: TopupOptionId,
    /// How many of the option: `points` and `amount` are the option's times this.
    pub quantity: u32,
    pub points: Points,
    pub amount: Money,
    pub started_at: OffsetDateTime,
    /// Set when Stripe accepted the charge but the money comes later (`processing`).
    pub payment_intent: Option<String>,
}

/// The last failure, as shown to the workspace and its partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopupFailure {
    /// Stripe's decline code (`insufficient_funds`), `authentication_required`, or ours
    /// (`no_saved_card`, `topup_option_removed`, `stripe_error`).
    pub code: String,
    pub at: OffsetDateTime,
}

/// A workspace's auto top-up (the default: off, never set).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AutoTopup {
    pub enabled: bool,
    pub option: Option<TopupOptionId>,
    pub consecutive_failures: u32,
    pub last_failure: Option<TopupFailure>,
    pub next_attempt_after: Option<OffsetDateTime>,
    /// Why it switched itself off (shown until it is turned on again).
    pub disabled_reason: Option<String>,
    /// Attempts started so far (the next one is number `attempts + 1`).
    pub attempts: u64,
    pub in_flight: Option<TopupAttempt>,
    pub version: u64,
}

/// How many of an option cover `shortfall`: the smallest whole number (at least one).
pub fn quantity_for(shortfall: Points, option: &TopupOption) -> Option<u32> {
    let per = option.points().as_decimal();
    if per <= rust_decimal::Decimal::ZERO {
        return None;
    }
    let n = (shortfall.as_decimal() / per).ceil().max(rust_decimal::Decimal::ONE);
    u32::try_from(n.mantissa() / 10_i128.pow(n.scale())).ok()
}

impl AutoTopup {
    /// Turned on (again) with `option`: the failure count and any reason it stopped are cleared;
    /// an attempt in flight stays (it is settled by its own charge).
    pub fn turned_on(&self, option: TopupOptionId) -> AutoTopup {
        AutoTopup {
            enabled: true,
            option: Some(option),
            consecutive_failures: 0,
            next_attempt_after: None,
            disabled_reason: None,
            ..self.clone()
        }
    }

    pub fn turned_off(&self) -> AutoTopup {
        AutoTopup { enabled: false, ..self.clone() }
    }

    /// Whether a new attempt may start now.
    pub fn may_attempt(&self, now: OffsetDateTime) -> bool {
        self.enabled && self.in_flight.is_none() && self.next_attempt_after.is_none_or(|t| now >= t)
    }

    /// Records a new attempt for `shortfall` with `option`, before its charge.
    pub fn start(
        &self,
        id: TopupOptionId,
        option: &TopupOption,
        shortfall: Points,
        now: OffsetDateTime,
    ) -> Result<AutoTopup, MoneyError> {
        let quantity = quantity_for(shortfall, option).ok_or(MoneyError::TooLarge)?;
        let amount = option.amount().checked_mul(quantity)?;
        let points = option.points().checked_mul(quantity).ok_or(MoneyError::TooLarge)?;
        let attempt = TopupAttempt {
            number: self.attempts + 1,
            option: id,
            quantity,
            points,
            amount,
            started_at: now,
            payment_intent: None,
        };
        Ok(AutoTopup { attempts: attempt.number, in_flight: Some(attempt), ..self.clone() })
    }

    /// The attempt in flight was paid.
    pub fn succeeded(&self) -> AutoTopup {
        AutoTopup { in_flight: None, consecutive_failures: 0, next_attempt_after: None, ..self.clone() }
    }

    /// The attempt in flight (or one that could not start) failed with `code`.
    pub fn failed(&self, code: &str, now: OffsetDateTime) -> AutoTopup {
        let failures = self.consecutive_failures + 1;
        let off = failures >= MAX_CONSECUTIVE_FAILURES;
        AutoTopup {
            in_flight: None,
            consecutive_failures: failures,
            last_failure: Some(TopupFailure { code: code.to_owned(), at: now }),
            next_attempt_after: Some(now + RETRY_AFTER),
            enabled: self.enabled && !off,
            disabled_reason: if off {
                Some(format!("{failures} failed attempts in a row (last: {code}); turn it on again to retry"))
            } else {
                self.disabled_reason.clone()
            },
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::domain::Currency;

    fn option(cents: i64, points: &str) -> TopupOption {
        TopupOption::new("Pack", Money::from_minor(cents, Currency::USD).unwrap(), Points::parse(points).unwrap())
            .unwrap()
    }

    #[test]
    fn the_smallest_whole_number_of_the_option() {
        let pack = option(1000, "100");
        let p = |s: &str| Points::parse(s).unwrap();
        assert_eq!(quantity_for(p("0.01"), &pack), Some(1));
        assert_eq!(quantity_for(p("100"), &pack), Some(1));
        assert_eq!(quantity_for(p("100.01"), &pack), Some(2));
        assert_eq!(quantity_for(p("250"), &pack), Some(3));
        let a = AutoTopup::default().turned_on(TopupOptionId::parse("to_a").unwrap());
        let now = datetime!(2026-05-01 06:00 UTC);
        let started = a.start(TopupOptionId::parse("to_a").unwrap(), &pack, p("250"), now).unwrap();
        let f = started.in_flight.clone().unwrap();
        assert_eq!(
            (f.number, f.quantity, f.points.to_string(), f.amount.amount_minor()),
            (1, 3, "300.00".into(), 3000)
        );
        assert!(!started.may_attempt(now), "one attempt at a time");
        assert_eq!(started.succeeded().in_flight, None);
    }

    #[test]
    fn waits_an_hour_after_a_failure_and_stops_after_three() {
        let id = TopupOptionId::parse("to_a").unwrap();
        let pack = option(1000, "100");
        let t0 = datetime!(2026-05-01 06:00 UTC);
        let mut a = AutoTopup::default().turned_on(id.clone());
        for (i, code) in ["card_declined", "authentication_required", "insufficient_funds"].iter().enumerate() {
            let at = t0 + RETRY_AFTER * (i as i32);
            assert!(a.may_attempt(at), "attempt {i}");
            a = a.start(id.clone(), &pack, Points::parse("1").unwrap(), at).unwrap().failed(code, at);
            assert!(!a.may_attempt(at + Duration::minutes(59)), "not within the hour");
        }
        assert!(!a.enabled && !a.may_attempt(t0 + Duration::days(1)));
        assert_eq!(a.consecutive_failures, 3);
        assert!(a.disabled_reason.as_deref().unwrap().contains("insufficient_funds"));
        assert_eq!(a.attempts, 3);
        // On again: the count starts over, the attempt numbers don't.
        let on = a.turned_on(id.clone());
        assert!(on.may_attempt(t0) && on.disabled_reason.is_none() && on.consecutive_failures == 0);
        assert_eq!(on.start(id, &pack, Points::parse("1").unwrap(), t0).unwrap().in_flight.unwrap().number, 4);
    }
}

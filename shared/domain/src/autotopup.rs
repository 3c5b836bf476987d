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
//!   itself off, says why, and stays off until the workspace turns it on again;
//! - with a `threshold`, a debit that leaves the balance below it starts a refill (usage is
//!   the debit that does): the same attempt, one at a time, under the same rails;
//! - an optional `monthly_cap` bounds what auto top-up may charge in a calendar month (UTC):
//!   an attempt that would pass it is not started. An attempt counts towards it when it starts
//!   and stops counting if it fails, so the cap holds even while a charge is in flight.

use time::{Duration, OffsetDateTime};

use super::{Balance, Money, MoneyError, Points, PointsError, TopupOption, TopupOptionId};

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
    /// What the charge tells the customer (its description on Stripe), fixed when the attempt
    /// starts so that a retry of the charge says the same; `None` on an attempt stored before
    /// attempts kept it.
    pub description: Option<String>,
}

/// The option id an attempt names when it buys points at the partner's credit rate: not one of
/// the partner's options (theirs are `to_` and hex digits), so never mistaken for one.
pub fn rate_option() -> TopupOptionId {
    TopupOptionId::parse(RATE_OPTION).expect("a valid option id")
}

const RATE_OPTION: &str = "to_credit_rate";

impl TopupAttempt {
    /// Whether it buys points at the credit rate rather than one of the partner's options.
    pub fn at_rate(&self) -> bool {
        self.option.as_str() == RATE_OPTION
    }
}

/// The last failure, as shown to the workspace and its partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopupFailure {
    /// Stripe's decline code (`insufficient_funds`), `authentication_required`, or ours
    /// (`no_saved_card`, `topup_option_removed`, `topup_option_below_floor`, `stripe_error`).
    pub code: String,
    pub at: OffsetDateTime,
}

/// A workspace's auto top-up (the default: off, never set).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AutoTopup {
    pub enabled: bool,
    pub option: Option<TopupOptionId>,
    /// The points each refill buys at the partner's credit rate, when a workspace buys by the
    /// point rather than one of the partner's options (then `option` is none).
    pub points: Option<Points>,
    pub consecutive_failures: u32,
    pub last_failure: Option<TopupFailure>,
    pub next_attempt_after: Option<OffsetDateTime>,
    /// Why it switched itself off (shown until it is turned on again).
    pub disabled_reason: Option<String>,
    /// Attempts started so far (the next one is number `attempts + 1`).
    pub attempts: u64,
    pub in_flight: Option<TopupAttempt>,
    /// Refill when a debit leaves the balance below this (none: only renewals top up).
    pub threshold: Option<Points>,
    /// The most auto top-up may charge in one calendar month, in the option's currency.
    pub monthly_cap: Option<Money>,
    /// What attempts started in `spent.0` (`YYYY-MM`) charge, in the cap's currency.
    pub spent: Option<(String, Money)>,
    pub version: u64,
}

/// Why a new attempt did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Money(#[from] MoneyError),
    #[error("the monthly cap of {cap} would be passed ({spent} charged this month)")]
    MonthlyCap { cap: Money, spent: Money },
}

/// What a new shortfall finds of the attempt in flight ([`AutoTopup::in_flight_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlight<'a> {
    /// No attempt in flight: a new one may start, if [`AutoTopup::may_attempt`].
    Idle,
    /// Stripe accepted its charge and the money comes later: its event settles it.
    Pending,
    /// Started less than the caller's `leave_for` ago: another call is charging it right now.
    Busy,
    /// Recorded by a call that stopped before it knew the outcome: charged again under its own
    /// key, which Stripe answers with the first charge if there was one.
    Stalled(&'a TopupAttempt),
}

/// The calendar month (UTC) a cap counts in: `2026-04`.
pub fn cap_month(at: OffsetDateTime) -> String {
    let d = at.to_offset(time::UtcOffset::UTC).date();
    format!("{:04}-{:02}", d.year(), u8::from(d.month()))
}

/// How many of an option cover `shortfall`: the smallest whole number (at least one).
pub fn quantity_for(shortfall: Points, option: &TopupOption) -> Option<u32> {
    let per = option.points().as_decimal();
    if per <= rust_decimal::Decimal::ZERO {
        return None;
    }
    let n = shortfall.as_decimal().checked_div(per)?.ceil().max(rust_decimal::Decimal::ONE);
    u32::try_from(n).ok()
}

impl AutoTopup {
    /// Turned on (again) with `option`: the failure count and any reason it stopped are cleared;
    /// an attempt in flight stays (it is settled by its own charge).
    pub fn turned_on(&self, option: TopupOptionId) -> AutoTopup {
        AutoTopup {
            enabled: true,
            option: Some(option),
            points: None,
            consecutive_failures: 0,
            next_attempt_after: None,
            disabled_reason: None,
            ..self.clone()
        }
    }

    /// On, buying `points` at the partner's credit rate each time.
    pub fn turned_on_points(&self, points: Points) -> AutoTopup {
        AutoTopup { option: None, points: Some(points), ..self.turned_on(rate_option()) }
    }

    pub fn turned_off(&self) -> AutoTopup {
        AutoTopup { enabled: false, ..self.clone() }
    }

    /// Off for a reason the payer didn't choose (its card was removed): the reason is kept to
    /// show until it is turned on again.
    pub fn turned_off_because(&self, reason: &str) -> AutoTopup {
        AutoTopup { enabled: false, disabled_reason: Some(reason.to_owned()), ..self.clone() }
    }

    /// Whether a new attempt may start now.
    pub fn may_attempt(&self, now: OffsetDateTime) -> bool {
        self.enabled && self.in_flight.is_none() && self.next_attempt_after.is_none_or(|t| now >= t)
    }

    /// What a debit that left `balance` asks a refill for: the way up to the threshold, if auto
    /// top-up is on with a threshold and the balance is below it.
    pub fn refill_shortfall(&self, balance: Balance) -> Result<Option<Points>, PointsError> {
        let Some(threshold) = self.threshold.filter(|_| self.enabled) else { return Ok(None) };
        let lacking = threshold.as_decimal().checked_sub(balance.as_decimal()).ok_or(PointsError::TooLarge)?;
        if lacking <= rust_decimal::Decimal::ZERO {
            return Ok(None);
        }
        Points::from_decimal(lacking).map(Some)
    }

    /// The attempt in flight as a new shortfall at `now` finds it. `leave_for`: how long a
    /// refill leaves an attempt that another call may be charging; a renewal (`None`) takes up
    /// any that Stripe has not accepted.
    pub fn in_flight_at(&self, now: OffsetDateTime, leave_for: Option<Duration>) -> InFlight<'_> {
        match &self.in_flight {
            None => InFlight::Idle,
            Some(a) if a.payment_intent.is_some() => InFlight::Pending,
            Some(a) if leave_for.is_some_and(|d| now < a.started_at.saturating_add(d)) => InFlight::Busy,
            Some(a) => InFlight::Stalled(a),
        }
    }

    /// Whether a balance under the threshold asks for a refill now: on, with a threshold, and
    /// either free to start an attempt ([`Self::may_attempt`]) or holding one that stopped
    /// unanswered longer than `resume_after` ago (taken up again under its own key). An attempt
    /// Stripe accepted, or one another call started less than `resume_after` ago, asks for none.
    pub fn wants_refill(&self, now: OffsetDateTime, resume_after: Duration) -> bool {
        self.threshold.is_some() && self.wants_topup(now, resume_after)
    }

    /// [`Self::wants_refill`] without a threshold: what a renewal short of points asks.
    pub fn wants_topup(&self, now: OffsetDateTime, resume_after: Duration) -> bool {
        self.enabled
            && match self.in_flight_at(now, Some(resume_after)) {
                InFlight::Idle => self.may_attempt(now),
                InFlight::Stalled(_) => true,
                InFlight::Pending | InFlight::Busy => false,
            }
    }

    /// What attempts started in `now`'s month charge, zero if none did; `None` without a cap.
    pub fn spent_this_month(&self, now: OffsetDateTime) -> Option<Money> {
        let cap = self.monthly_cap?;
        Some(self.spent_in(&cap_month(now)).unwrap_or(Money::zero(cap.currency())))
    }

    /// Records a new attempt for `shortfall` with `option`, before its charge.
    pub fn start(
        &self,
        id: TopupOptionId,
        option: &TopupOption,
        shortfall: Points,
        now: OffsetDateTime,
    ) -> Result<AutoTopup, StartError> {
        let quantity = quantity_for(shortfall, option).ok_or(MoneyError::TooLarge)?;
        let amount = option.amount().checked_mul(quantity)?;
        let points = option.points().checked_mul(quantity).ok_or(MoneyError::TooLarge)?;
        let spent = match self.monthly_cap {
            None => None,
            Some(cap) => {
                let month = cap_month(now);
                let so_far = self.spent_this_month(now).unwrap_or(Money::zero(cap.currency()));
                let after = so_far.checked_add(amount).map_err(|_| StartError::MonthlyCap { cap, spent: so_far })?;
                if after.amount_minor() > cap.amount_minor() {
                    return Err(StartError::MonthlyCap { cap, spent: so_far });
                }
                Some((month, after))
            }
        };
        let attempt = TopupAttempt {
            // Attempts are counted one by one: u32 runs out after four billion of them.
            number: self.attempts.saturating_add(1),
            option: id,
            quantity,
            points,
            amount,
            started_at: now,
            payment_intent: None,
            description: None,
        };
        Ok(AutoTopup {
            attempts: attempt.number,
            in_flight: Some(attempt),
            spent: spent.or(self.spent.clone()),
            ..self.clone()
        })
    }

    /// What started attempts charge in `month`, if anything was counted there.
    pub fn spent_in(&self, month: &str) -> Option<Money> {
        self.spent.as_ref().filter(|(m, _)| m == month).map(|(_, s)| *s)
    }

    /// A failed attempt no longer counts towards its month's cap.
    fn uncounted(&self) -> Option<(String, Money)> {
        let (Some(attempt), Some((month, spent))) = (&self.in_flight, &self.spent) else { return self.spent.clone() };
        if cap_month(attempt.started_at) != *month || attempt.amount.currency() != spent.currency() {
            return self.spent.clone();
        }
        let back = spent.amount_minor().saturating_sub(attempt.amount.amount_minor()).max(0);
        Money::from_minor(back, spent.currency()).ok().map(|m| (month.clone(), m))
    }

    /// The attempt in flight was paid.
    pub fn succeeded(&self) -> AutoTopup {
        AutoTopup { in_flight: None, consecutive_failures: 0, next_attempt_after: None, ..self.clone() }
    }

    /// The attempt in flight (or one that could not start) failed with `code`.
    pub fn failed(&self, code: &str, now: OffsetDateTime) -> AutoTopup {
        let failures = self.consecutive_failures.saturating_add(1);
        let off = failures >= MAX_CONSECUTIVE_FAILURES;
        AutoTopup {
            spent: self.uncounted(),
            in_flight: None,
            consecutive_failures: failures,
            last_failure: Some(TopupFailure { code: code.to_owned(), at: now }),
            next_attempt_after: Some(now.saturating_add(RETRY_AFTER)),
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
    use proptest::prelude::*;
    use time::macros::datetime;

    use super::*;
    use crate::Currency;

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

    #[test]
    fn a_monthly_cap_bounds_what_starts_and_a_failure_gives_its_share_back() {
        let id = TopupOptionId::parse("to_a").unwrap();
        let pack = option(1000, "100");
        let usd = |cents| Money::from_minor(cents, Currency::USD).unwrap();
        let t0 = datetime!(2026-04-30 23:00 UTC);
        let capped = AutoTopup { monthly_cap: Some(usd(2500)), ..AutoTopup::default().turned_on(id.clone()) };
        let one = capped.start(id.clone(), &pack, Points::parse("1").unwrap(), t0).unwrap();
        assert_eq!(one.spent_in("2026-04"), Some(usd(1000)));
        // Paid: it keeps counting. A second pack fits (20.00), a third would not (30.00 > 25.00).
        let two = one.succeeded().start(id.clone(), &pack, Points::parse("1").unwrap(), t0).unwrap().succeeded();
        assert_eq!(two.spent_in("2026-04"), Some(usd(2000)));
        let refused = two.start(id.clone(), &pack, Points::parse("1").unwrap(), t0);
        assert_eq!(refused, Err(StartError::MonthlyCap { cap: usd(2500), spent: usd(2000) }));
        // Two packs at once (a shortfall of 150 points) would pass it too.
        assert!(capped.start(id.clone(), &pack, Points::parse("250").unwrap(), t0).is_err());
        // A failed attempt stops counting.
        let failed = two.clone();
        let failed = AutoTopup { monthly_cap: Some(usd(3000)), ..failed };
        let failed = failed.start(id.clone(), &pack, Points::parse("1").unwrap(), t0).unwrap();
        assert_eq!(failed.spent_in("2026-04"), Some(usd(3000)));
        assert_eq!(failed.failed("card_declined", t0).spent_in("2026-04"), Some(usd(2000)));
        // A new month starts from nothing.
        let may = two.start(id, &pack, Points::parse("1").unwrap(), datetime!(2026-05-01 00:00 UTC)).unwrap();
        assert_eq!((may.spent_in("2026-05"), may.spent_in("2026-04")), (Some(usd(1000)), None));
        assert_eq!(cap_month(datetime!(2026-05-01 00:30 +02:00)), "2026-04");
    }

    #[test]
    fn a_debit_below_the_threshold_asks_for_the_way_up_to_it() {
        let p = |s: &str| Points::parse(s).unwrap();
        let b = |s: &str| Balance::parse(s).unwrap();
        let on = AutoTopup {
            threshold: Some(p("50")),
            ..AutoTopup::default().turned_on(TopupOptionId::parse("to_a").unwrap())
        };
        assert_eq!(on.refill_shortfall(b("44.0350")), Ok(Some(p("5.965"))));
        assert_eq!(on.refill_shortfall(b("-10")), Ok(Some(p("60"))), "usage may take it below zero");
        assert_eq!(on.refill_shortfall(b("50")), Ok(None), "at the threshold is not below it");
        assert_eq!(on.refill_shortfall(b("50.0001")), Ok(None));
        assert_eq!(on.turned_off().refill_shortfall(b("0")), Ok(None), "off");
        let no_threshold = AutoTopup { threshold: None, ..on };
        assert_eq!(no_threshold.refill_shortfall(b("0")), Ok(None), "only renewals top it up");
    }

    #[test]
    fn one_attempt_in_flight_is_left_taken_up_or_waited_for() {
        let id = TopupOptionId::parse("to_a").unwrap();
        let t0 = datetime!(2026-05-01 06:00 UTC);
        let leave = Some(Duration::minutes(2));
        let idle = AutoTopup::default().turned_on(id.clone());
        assert_eq!(idle.in_flight_at(t0, leave), InFlight::Idle);
        let started = idle.start(id, &option(1000, "100"), Points::parse("1").unwrap(), t0).unwrap();
        let attempt = started.in_flight.clone().unwrap();
        assert_eq!(started.in_flight_at(t0 + Duration::seconds(119), leave), InFlight::Busy, "another call charges it");
        assert_eq!(started.in_flight_at(t0 + Duration::minutes(2), leave), InFlight::Stalled(&attempt));
        assert_eq!(started.in_flight_at(t0, None), InFlight::Stalled(&attempt), "a renewal takes it up at once");
        let mut accepted = started.clone();
        accepted.in_flight.as_mut().unwrap().payment_intent = Some("pi_1".into());
        assert_eq!(accepted.in_flight_at(t0 + Duration::days(1), None), InFlight::Pending, "its event settles it");
        assert!(!started.may_attempt(t0 + Duration::days(1)), "never a second one beside it");
    }

    #[test]
    fn a_refill_is_asked_for_when_one_may_start_or_one_stalled() {
        let id = TopupOptionId::parse("to_a").unwrap();
        let t0 = datetime!(2026-05-01 06:00 UTC);
        let resume = Duration::minutes(2);
        let on =
            AutoTopup { threshold: Some(Points::parse("50").unwrap()), ..AutoTopup::default().turned_on(id.clone()) };
        assert!(on.wants_refill(t0, resume));
        assert!(!on.turned_off().wants_refill(t0, resume), "off");
        assert!(!AutoTopup { threshold: None, ..on.clone() }.wants_refill(t0, resume), "only renewals top it up");
        let declined = on.failed("card_declined", t0);
        assert!(!declined.wants_refill(t0 + Duration::minutes(59), resume), "the hour after a decline");
        assert!(declined.wants_refill(t0 + Duration::hours(1), resume));
        let started = on.start(id, &option(1000, "100"), Points::parse("1").unwrap(), t0).unwrap();
        assert!(!started.wants_refill(t0 + Duration::seconds(119), resume), "another call charges it");
        assert!(started.wants_refill(t0 + resume, resume), "stalled: taken up again");
        let mut accepted = started;
        accepted.in_flight.as_mut().unwrap().payment_intent = Some("pi_1".into());
        assert!(!accepted.wants_refill(t0 + Duration::days(1), resume), "its event settles it");
    }

    #[test]
    fn spent_this_month_is_zero_in_the_caps_currency_until_an_attempt_starts() {
        let id = TopupOptionId::parse("to_a").unwrap();
        let t0 = datetime!(2026-04-30 23:00 UTC);
        let on = AutoTopup::default().turned_on(id.clone());
        assert_eq!(on.spent_this_month(t0), None, "no cap, nothing counted");
        let eur = Currency::parse("eur").unwrap();
        let capped = AutoTopup { monthly_cap: Some(Money::from_minor(5000, eur).unwrap()), ..on };
        assert_eq!(capped.spent_this_month(t0), Some(Money::zero(eur)));
        let pack =
            TopupOption::new("Pack", Money::from_minor(1000, eur).unwrap(), Points::parse("100").unwrap()).unwrap();
        let started = capped.start(id, &pack, Points::parse("150").unwrap(), t0).unwrap();
        assert_eq!(started.spent_this_month(t0), Some(Money::from_minor(2000, eur).unwrap()));
        assert_eq!(started.spent_this_month(datetime!(2026-05-01 00:00 UTC)), Some(Money::zero(eur)), "a new month");
    }

    proptest! {
        /// Whatever the shortfalls and whichever attempts are paid, the month's count is what
        /// the paid attempts charged, never more than the cap, and an attempt the cap refuses
        /// sees that count.
        #[test]
        fn the_cap_counts_the_paid_attempts_and_never_passes(
            cap_packs in 1i64..=10,
            steps in proptest::collection::vec((1i64..=300, any::<bool>()), 0..20),
        ) {
            let id = TopupOptionId::parse("to_a").unwrap();
            let pack = option(1000, "100");
            let usd = |minor| Money::from_minor(minor, Currency::USD).unwrap();
            let cap = usd(cap_packs * 1000);
            let t0 = datetime!(2026-05-01 06:00 UTC);
            let mut a = AutoTopup { monthly_cap: Some(cap), ..AutoTopup::default().turned_on(id.clone()) };
            let mut paid_minor = 0;
            for (i, (shortfall, pays)) in steps.into_iter().enumerate() {
                let at = t0 + Duration::hours(2 * i as i64);
                let shortfall = Points::from_decimal(rust_decimal::Decimal::from(shortfall)).unwrap();
                match a.start(id.clone(), &pack, shortfall, at) {
                    Ok(started) => {
                        let amount = started.in_flight.as_ref().unwrap().amount.amount_minor();
                        a = if pays {
                            paid_minor += amount;
                            started.succeeded()
                        } else {
                            started.failed("card_declined", at).turned_on(id.clone())
                        };
                    }
                    Err(StartError::MonthlyCap { spent, .. }) => prop_assert_eq!(spent, usd(paid_minor)),
                    Err(e) => prop_assert!(false, "{}", e),
                }
                prop_assert_eq!(a.spent_this_month(at), Some(usd(paid_minor)));
                prop_assert!(paid_minor <= cap.amount_minor());
            }
        }
    }
}

//! Billing cycles.
//!
//! A workspace's billing cycle runs from its anchor day for one calendar month: with anchor 15,
//! 15 April to 14 May inclusive, then 15 May to 14 June. An anchor day beyond a month's length
//! clamps to that month's last day, and the next month returns to the anchor (as Stripe does
//! with `billing_cycle_anchor`): anchor 31 gives 31 January to 27 February, 28 February to
//! 30 March, 31 March to 29 April, 30 April to 30 May. Every cycle is 28 to 31 days long, and
//! cycles follow each other without gap or overlap.
//!
//! Dates are calendar dates in the platform's billing time zone (UTC): the caller turns an
//! instant into a `Date` once, at the edge.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Month};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CycleError {
    #[error("anchor day must be 1 to 31")]
    InvalidAnchorDay,
    #[error("{date} is outside the billing cycle {start} to {end}")]
    DateOutsideCycle { date: Date, start: Date, end: Date },
    #[error("date is out of the supported calendar range")]
    OutOfRange,
    #[error("start and end are not a billing cycle of anchor day {anchor}")]
    NotACycle { anchor: AnchorDay },
}

/// The day of the month a workspace's cycles start on, 1 to 31. Serializes as a JSON number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct AnchorDay(u8);

impl AnchorDay {
    pub fn new(day: u8) -> Result<Self, CycleError> {
        if (1..=31).contains(&day) { Ok(Self(day)) } else { Err(CycleError::InvalidAnchorDay) }
    }

    /// The anchor of a workspace whose first cycle starts on `date`.
    pub fn of(date: Date) -> Self {
        Self(date.day())
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// This anchor's day in the given month, clamped to the month's last day.
    fn in_month(self, year: i32, month: Month) -> Result<Date, CycleError> {
        let day = self.0.min(month.length(year));
        Date::from_calendar_date(year, month, day).map_err(|_| CycleError::OutOfRange)
    }
}

impl TryFrom<u8> for AnchorDay {
    type Error = CycleError;
    fn try_from(day: u8) -> Result<Self, CycleError> {
        Self::new(day)
    }
}

impl From<AnchorDay> for u8 {
    fn from(a: AnchorDay) -> u8 {
        a.0
    }
}

impl fmt::Display for AnchorDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

fn previous_month(year: i32, month: Month) -> (i32, Month) {
    // A `Date`'s year is within +-9999 (the `time` crate's range): one less fits an i32.
    if month == Month::January { (year.saturating_sub(1), Month::December) } else { (year, month.previous()) }
}

fn next_month(year: i32, month: Month) -> (i32, Month) {
    if month == Month::December { (year.saturating_add(1), Month::January) } else { (year, month.next()) }
}

/// One billing cycle: `start` to `end`, both days included. Built only from an anchor, so it is
/// always a real cycle of that anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cycle {
    anchor: AnchorDay,
    start: Date,
    end: Date,
}

impl Cycle {
    /// The cycle of `anchor` that contains `date`. With anchor 1, 15 April 2025 is in 1-30 April;
    /// with anchor 31, 29 February 2024 is in 29 February-30 March.
    pub fn containing(anchor: AnchorDay, date: Date) -> Result<Self, CycleError> {
        let (year, month) = (date.year(), date.month());
        let this_month = anchor.in_month(year, month)?;
        let start = if date >= this_month {
            this_month
        } else {
            let (y, m) = previous_month(year, month);
            anchor.in_month(y, m)?
        };
        let (y, m) = next_month(start.year(), start.month());
        let end = anchor.in_month(y, m)?.previous_day().ok_or(CycleError::OutOfRange)?;
        Ok(Self { anchor, start, end })
    }

    /// The cycle that starts the day after this one ends.
    pub fn next(&self) -> Result<Self, CycleError> {
        let day_after = self.end.next_day().ok_or(CycleError::OutOfRange)?;
        Self::containing(self.anchor, day_after)
    }

    pub fn anchor(&self) -> AnchorDay {
        self.anchor
    }

    /// The cycle's first day.
    pub fn start(&self) -> Date {
        self.start
    }

    /// The cycle's last day (included). The next cycle starts the day after.
    pub fn end(&self) -> Date {
        self.end
    }

    pub fn contains(&self, date: Date) -> bool {
        self.start <= date && date <= self.end
    }

    /// Days in the cycle, both ends included: 30 for 1-30 April, 31 for 1-31 May. Always 28..=31.
    pub fn days_in_cycle(&self) -> u32 {
        // At most 31, so the cast can't truncate.
        let span = self.end.to_julian_day().abs_diff(self.start.to_julian_day());
        span.saturating_add(1)
    }

    /// The whole days after `date` up to and including the cycle's last day: in 1-30 April,
    /// bought 15 April -> 15 (16th to 30th); bought 1 April -> 29; bought 30 April -> 0.
    /// A date outside the cycle is an error, never a clamp.
    pub fn days_remaining_after(&self, date: Date) -> Result<u32, CycleError> {
        if !self.contains(date) {
            return Err(CycleError::DateOutsideCycle { date, start: self.start, end: self.end });
        }
        Ok(self.end.to_julian_day().abs_diff(date.to_julian_day()))
    }
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {}", self.start, self.end)
    }
}

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// Stored as `{"anchor_day": 31, "start": "2025-01-31", "end": "2025-02-27"}`; reading it back
/// checks that it is the cycle of that anchor starting on that day.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CycleRepr {
    anchor_day: AnchorDay,
    #[serde(with = "iso_date")]
    start: Date,
    #[serde(with = "iso_date")]
    end: Date,
}

impl Serialize for Cycle {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        CycleRepr { anchor_day: self.anchor, start: self.start, end: self.end }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Cycle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = CycleRepr::deserialize(d)?;
        let cycle = Cycle::containing(r.anchor_day, r.start).map_err(serde::de::Error::custom)?;
        if cycle.start != r.start || cycle.end != r.end {
            return Err(serde::de::Error::custom(CycleError::NotACycle { anchor: r.anchor_day }));
        }
        Ok(cycle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    fn anchor(day: u8) -> AnchorDay {
        AnchorDay::new(day).unwrap()
    }

    fn cycle(day: u8, date: Date) -> Cycle {
        Cycle::containing(anchor(day), date).unwrap()
    }

    #[test]
    fn anchor_day_is_checked() {
        assert_eq!(AnchorDay::new(0), Err(CycleError::InvalidAnchorDay));
        assert_eq!(AnchorDay::new(32), Err(CycleError::InvalidAnchorDay));
        assert_eq!(AnchorDay::new(31).unwrap().get(), 31);
        assert_eq!(AnchorDay::of(date!(2025 - 04 - 15)).get(), 15);
        assert_eq!(serde_json::from_str::<AnchorDay>("31").unwrap().get(), 31);
        assert!(serde_json::from_str::<AnchorDay>("32").is_err());
        assert!(serde_json::from_str::<AnchorDay>("\"5\"").is_err());
    }

    #[test]
    fn calendar_month_cycles() {
        let april = cycle(1, date!(2025 - 04 - 15));
        assert_eq!((april.start(), april.end()), (date!(2025 - 04 - 01), date!(2025 - 04 - 30)));
        assert_eq!(april.days_in_cycle(), 30);
        let may = april.next().unwrap();
        assert_eq!((may.start(), may.end()), (date!(2025 - 05 - 01), date!(2025 - 05 - 31)));
        assert_eq!(may.days_in_cycle(), 31);
        let mid = cycle(15, date!(2025 - 04 - 14));
        assert_eq!((mid.start(), mid.end()), (date!(2025 - 03 - 15), date!(2025 - 04 - 14)));
        assert_eq!(mid.next().unwrap().start(), date!(2025 - 04 - 15));
        let december = cycle(20, date!(2025 - 12 - 25));
        assert_eq!((december.start(), december.end()), (date!(2025 - 12 - 20), date!(2026 - 01 - 19)));
    }

    #[test]
    fn anchor_clamps_to_the_last_day_and_comes_back() {
        let expected = [
            (date!(2025 - 01 - 31), date!(2025 - 02 - 27), 28),
            (date!(2025 - 02 - 28), date!(2025 - 03 - 30), 31),
            (date!(2025 - 03 - 31), date!(2025 - 04 - 29), 30),
            (date!(2025 - 04 - 30), date!(2025 - 05 - 30), 31),
            (date!(2025 - 05 - 31), date!(2025 - 06 - 29), 30),
        ];
        let mut c = cycle(31, date!(2025 - 01 - 31));
        for (start, end, days) in expected {
            assert_eq!((c.start(), c.end(), c.days_in_cycle()), (start, end, days));
            c = c.next().unwrap();
        }
        // Leap year: anchor 31 starts on 29 February; anchor 30 too.
        assert_eq!(cycle(31, date!(2024 - 03 - 01)).start(), date!(2024 - 02 - 29));
        assert_eq!(cycle(30, date!(2024 - 02 - 29)).start(), date!(2024 - 02 - 29));
        assert_eq!(cycle(30, date!(2024 - 02 - 28)).start(), date!(2024 - 01 - 30));
        assert_eq!(cycle(29, date!(2025 - 02 - 28)).end(), date!(2025 - 03 - 28));
    }

    #[test]
    fn days_remaining_after_the_day_of_purchase() {
        let april = cycle(1, date!(2025 - 04 - 01));
        assert_eq!(april.days_remaining_after(date!(2025 - 04 - 15)), Ok(15));
        assert_eq!(april.days_remaining_after(date!(2025 - 04 - 01)), Ok(29));
        assert_eq!(april.days_remaining_after(date!(2025 - 04 - 30)), Ok(0));
        assert_eq!(
            april.days_remaining_after(date!(2025 - 05 - 01)),
            Err(CycleError::DateOutsideCycle {
                date: date!(2025 - 05 - 01),
                start: date!(2025 - 04 - 01),
                end: date!(2025 - 04 - 30)
            })
        );
        assert!(april.days_remaining_after(date!(2025 - 03 - 31)).is_err());
    }

    #[test]
    fn calendar_edges_are_errors_not_panics() {
        assert_eq!(Cycle::containing(anchor(31), Date::MAX).unwrap_err(), CycleError::OutOfRange);
        assert_eq!(Cycle::containing(anchor(2), Date::MIN).unwrap_err(), CycleError::OutOfRange);
        assert!(Cycle::containing(anchor(1), Date::MIN).is_ok());
    }

    #[test]
    fn json_round_trips_and_is_checked() {
        let c = cycle(31, date!(2025 - 02 - 01));
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"anchor_day":31,"start":"2025-01-31","end":"2025-02-27"}"#);
        assert_eq!(serde_json::from_str::<Cycle>(&json).unwrap(), c);
        let wrong_end = r#"{"anchor_day":31,"start":"2025-01-31","end":"2025-02-28"}"#;
        assert!(serde_json::from_str::<Cycle>(wrong_end).is_err());
        let not_a_start = r#"{"anchor_day":31,"start":"2025-02-01","end":"2025-02-27"}"#;
        assert!(serde_json::from_str::<Cycle>(not_a_start).is_err());
    }

    /// The Gregorian calendar repeats every 400 years, so 400 years from each of the 31 anchors
    /// covers every case there is: contiguous cycles of 28..=31 days, and `containing` of every
    /// day in a cycle returns that cycle.
    #[test]
    fn four_hundred_years_of_cycles_from_every_anchor() {
        const CYCLES_IN_400_YEARS: usize = 400 * 12;
        for day in 1..=31 {
            let a = anchor(day);
            let mut c = Cycle::containing(a, date!(2000 - 01 - 01)).unwrap();
            for _ in 0..CYCLES_IN_400_YEARS {
                assert!((28..=31).contains(&c.days_in_cycle()), "{c}");
                assert_eq!(c.start().day(), day.min(c.start().month().length(c.start().year())), "{c}");
                let mut d = c.start();
                while d <= c.end() {
                    assert_eq!(Cycle::containing(a, d).unwrap(), c, "{d} anchor {day}");
                    d = d.next_day().unwrap();
                }
                let next = c.next().unwrap();
                assert_eq!(next.start(), c.end().next_day().unwrap(), "gap or overlap after {c}");
                c = next;
            }
            assert!(c.start() >= date!(2399 - 12 - 01), "{c}");
        }
    }

    fn any_date() -> impl Strategy<Value = Date> {
        // 1600-01-01 to 2799-12-31, as Julian day numbers.
        (2_305_448i32..2_743_762).prop_map(|jd| Date::from_julian_day(jd).unwrap())
    }

    proptest! {
        #[test]
        fn containing_contains_and_remaining_is_bounded(day in 1u8..=31, date in any_date()) {
            let c = Cycle::containing(anchor(day), date).unwrap();
            prop_assert!(c.contains(date));
            let remaining = c.days_remaining_after(date).unwrap();
            prop_assert!(remaining < c.days_in_cycle());
            prop_assert_eq!(remaining == 0, date == c.end());
            let previous_start = c.start().previous_day().unwrap();
            prop_assert_eq!(Cycle::containing(anchor(day), previous_start).unwrap().next().unwrap(), c);
        }
    }
}

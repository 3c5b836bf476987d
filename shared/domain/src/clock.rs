//! Time comes from a clock the caller passes in, so tests (and the local runner's "advance
//! time" control) decide what day it is.

use std::any::Any;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use time::{Duration, OffsetDateTime};

/// `Any` lets the local runner find the [`OffsetClock`] it moves behind `Billing`'s
/// `Arc<dyn Clock>` (`as_offset` below), so the clock it advances is the one the operations
/// read, not a second one kept beside it.
pub trait Clock: Any + Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

impl dyn Clock {
    /// This clock as an [`OffsetClock`], if it is one.
    pub fn as_offset(&self) -> Option<&OffsetClock> {
        (self as &dyn Any).downcast_ref()
    }
}

/// The real time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that says what it is told.
#[derive(Debug)]
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    pub fn new(at: OffsetDateTime) -> Self {
        Self(Mutex::new(at))
    }

    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The real time plus an offset that only grows: the local runner's clock, so a demo can buy
/// an add-on, move a month ahead and watch it renew while time keeps running. Time never goes
/// back: an entry, a renewal or an idempotency record written "later" must not be followed by
/// one dated before it.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_s: AtomicI64,
}

/// The furthest an [`OffsetClock`] goes ahead of the real time: a century, beyond any demo and
/// well inside what `OffsetDateTime` can hold (year 9999), so `now()` cannot overflow.
pub const MAX_CLOCK_OFFSET: Duration = Duration::days(36_525);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the clock would be more than {} days ahead of the real time", MAX_CLOCK_OFFSET.whole_days())]
pub struct OffsetTooLarge;

impl OffsetClock {
    /// At the real time (no offset yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// How far ahead of the real time this clock is.
    pub fn offset(&self) -> Duration {
        Duration::seconds(self.offset_s.load(Ordering::Relaxed))
    }

    /// Moves the clock `by` ahead (whole seconds; a fraction is dropped) and returns the new
    /// offset. Nothing moves if that would pass [`MAX_CLOCK_OFFSET`].
    ///
    /// # Panics
    /// If `by` is negative: moving time back is a caller's bug (see the type's doc).
    pub fn advance(&self, by: Duration) -> Result<Duration, OffsetTooLarge> {
        assert!(!by.is_negative(), "an OffsetClock only moves forward, not by {by}");
        let max_s = MAX_CLOCK_OFFSET.whole_seconds();
        let previous = self
            .offset_s
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                s.checked_add(by.whole_seconds()).filter(|next| *next <= max_s)
            })
            .map_err(|_| OffsetTooLarge)?;
        Ok(Duration::seconds(previous.checked_add(by.whole_seconds()).expect("checked by the update above")))
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc().checked_add(self.offset()).expect("the offset is at most MAX_CLOCK_OFFSET")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `clock.now()` is the real time plus `offset`, read between two real-time readings.
    fn assert_ahead_by(clock: &OffsetClock, offset: Duration) {
        let before = OffsetDateTime::now_utc();
        let now = clock.now();
        let after = OffsetDateTime::now_utc();
        assert!(before + offset <= now && now <= after + offset, "{now} is not {before}..{after} + {offset}");
    }

    #[test]
    fn an_offset_clock_runs_ahead_by_what_it_was_advanced() {
        let clock = OffsetClock::new();
        assert_eq!(clock.offset(), Duration::ZERO);
        assert_ahead_by(&clock, Duration::ZERO);
        assert_eq!(clock.advance(Duration::days(31)), Ok(Duration::days(31)));
        assert_eq!(clock.advance(Duration::hours(5) + Duration::milliseconds(900)), Ok(Duration::hours(31 * 24 + 5)));
        assert_eq!(clock.offset(), Duration::hours(31 * 24 + 5), "the fraction of a second is dropped");
        assert_ahead_by(&clock, Duration::hours(31 * 24 + 5));
    }

    #[test]
    fn an_offset_clock_stops_at_its_maximum() {
        let clock = OffsetClock::new();
        assert_eq!(clock.advance(MAX_CLOCK_OFFSET - Duration::days(1)), Ok(MAX_CLOCK_OFFSET - Duration::days(1)));
        assert_eq!(clock.advance(Duration::days(2)), Err(OffsetTooLarge));
        assert_eq!(clock.offset(), MAX_CLOCK_OFFSET - Duration::days(1), "a refused advance moves nothing");
        assert_eq!(clock.advance(Duration::days(1)), Ok(MAX_CLOCK_OFFSET));
        assert_ahead_by(&clock, MAX_CLOCK_OFFSET);
    }

    #[test]
    #[should_panic(expected = "only moves forward")]
    fn an_offset_clock_never_goes_back() {
        let _ = OffsetClock::new().advance(Duration::seconds(-1));
    }

    #[test]
    fn the_offset_clock_is_found_behind_a_dyn_clock() {
        let clock: std::sync::Arc<dyn Clock> = std::sync::Arc::new(OffsetClock::new());
        clock.as_offset().expect("an OffsetClock").advance(Duration::days(1)).unwrap();
        assert_eq!(clock.as_offset().map(OffsetClock::offset), Some(Duration::days(1)));
        let fixed: &dyn Clock = &FixedClock::new(OffsetDateTime::UNIX_EPOCH);
        assert!(fixed.as_offset().is_none());
        assert!((&SystemClock as &dyn Clock).as_offset().is_none());
    }
}

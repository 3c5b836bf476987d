//! A saved card as its owner sees it (brand, last 4 digits, expiry) and when it stops being
//! good enough for the wallet it pays for.
//!
//! A card works through the last day of its expiry month (UTC here: Stripe gives no time zone).
//! A wallet needs its card only while it refills itself (a workspace's auto top-up, a
//! partner's auto-refill); then a refill may come any day, so the card has to last at least
//! [`REFILL_NOTICE`], and for a workspace until its next renewal too, since a renewal that finds
//! too few points starts a refill. A card that lapses before then is expiring, and its partner
//! hears of it once per card.

use time::{Date, Duration, Month, OffsetDateTime, Time};

/// How far ahead a wallet that refills itself needs its card: a refill may come any day, and
/// this leaves the customer a month to save a new one.
pub const REFILL_NOTICE: Duration = Duration::days(30);

/// A card's brand, last 4 digits and expiry, as Stripe reports them. Never the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardDetails {
    brand: String,
    last4: String,
    exp_month: u8,
    exp_year: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("a card's brand is 1 to 32 characters")]
    Brand,
    #[error("a card's last 4 are four digits")]
    Last4,
    #[error("a card's expiry month is 1 to 12")]
    Month,
    #[error("a card's expiry year is 2000 to 9998")]
    Year,
}

impl CardDetails {
    pub fn new(brand: &str, last4: &str, exp_month: u32, exp_year: u32) -> Result<Self, CardError> {
        if brand.is_empty() || brand.chars().count() > 32 {
            return Err(CardError::Brand);
        }
        if last4.len() != 4 || !last4.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::Last4);
        }
        let exp_month = u8::try_from(exp_month).ok().filter(|m| (1..=12).contains(m)).ok_or(CardError::Month)?;
        // 9998 at most, so that the month after the last one is still a date.
        let exp_year = u16::try_from(exp_year).ok().filter(|y| (2000..=9998).contains(y)).ok_or(CardError::Year)?;
        Ok(Self { brand: brand.to_owned(), last4: last4.to_owned(), exp_month, exp_year })
    }

    /// `visa`, `mastercard`, `amex`...: Stripe's name for it.
    pub fn brand(&self) -> &str {
        &self.brand
    }

    pub fn last4(&self) -> &str {
        &self.last4
    }

    pub fn exp_month(&self) -> u32 {
        u32::from(self.exp_month)
    }

    pub fn exp_year(&self) -> u32 {
        u32::from(self.exp_year)
    }

    /// The first instant the card no longer works: midnight UTC on the first day of the month
    /// after its expiry month.
    pub fn lapses_at(&self) -> OffsetDateTime {
        let year = i32::from(self.exp_year);
        let month = Month::try_from(self.exp_month).expect("1 to 12, checked when made");
        let year = if month == Month::December { year.saturating_add(1) } else { year };
        let first = Date::from_calendar_date(year, month.next(), 1).expect("a year of 2000 to 9999, checked when made");
        first.with_time(Time::MIDNIGHT).assume_utc()
    }

    /// Whether the card lapses before `until`, the last moment its wallet needs it.
    pub fn lapses_before(&self, until: OffsetDateTime) -> bool {
        self.lapses_at() <= until
    }
}

/// Until when a wallet needs its card, from `now`: `None` while it doesn't refill itself (its
/// card is never charged); else [`REFILL_NOTICE`] ahead, or its next renewal (`renews_on`, a
/// workspace's) if that is later.
pub fn card_needed_until(now: OffsetDateTime, refills: bool, renews_on: Option<Date>) -> Option<OffsetDateTime> {
    if !refills {
        return None;
    }
    let notice = now.checked_add(REFILL_NOTICE)?;
    let renewal = renews_on.map(|d| d.with_time(Time::MIDNIGHT).assume_utc());
    Some(renewal.map_or(notice, |r| r.max(notice)))
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    fn card(month: u32, year: u32) -> CardDetails {
        CardDetails::new("visa", "4242", month, year).unwrap()
    }

    #[test]
    fn a_card_works_through_its_expiry_month() {
        assert_eq!(card(12, 2026).lapses_at(), datetime!(2027-01-01 00:00 UTC));
        assert_eq!(card(2, 2028).lapses_at(), datetime!(2028-03-01 00:00 UTC));
        assert!(card(12, 2026).lapses_before(datetime!(2027-01-01 00:00 UTC)));
        assert!(!card(12, 2026).lapses_before(datetime!(2026-12-31 23:59 UTC)));
    }

    #[test]
    fn details_are_checked() {
        assert_eq!(CardDetails::new("", "4242", 1, 2030), Err(CardError::Brand));
        for last4 in ["424", "42424", "42a2", ""] {
            assert_eq!(CardDetails::new("visa", last4, 1, 2030), Err(CardError::Last4), "{last4:?}");
        }
        assert_eq!(CardDetails::new("visa", "4242", 0, 2030), Err(CardError::Month));
        assert_eq!(CardDetails::new("visa", "4242", 13, 2030), Err(CardError::Month));
        assert_eq!(CardDetails::new("visa", "4242", 1, 1999), Err(CardError::Year));
        assert_eq!(CardDetails::new("visa", "4242", 12, 9999), Err(CardError::Year));
        assert_eq!(card(12, 9998).lapses_at(), datetime!(9999-01-01 00:00 UTC));
        let c = card(7, 2031);
        assert_eq!((c.brand(), c.last4(), c.exp_month(), c.exp_year()), ("visa", "4242", 7, 2031));
    }

    #[test]
    fn a_wallet_needs_its_card_while_it_refills_until_the_later_of_a_month_and_its_renewal() {
        let now = datetime!(2026-12-05 10:00 UTC);
        assert_eq!(card_needed_until(now, false, Some(date!(2027 - 03 - 01))), None);
        // A month ahead when the renewal comes sooner, or there is none (a partner's wallet).
        assert_eq!(card_needed_until(now, true, Some(date!(2026 - 12 - 20))), Some(datetime!(2027-01-04 10:00 UTC)));
        assert_eq!(card_needed_until(now, true, None), Some(datetime!(2027-01-04 10:00 UTC)));
        // The renewal when it is further.
        assert_eq!(card_needed_until(now, true, Some(date!(2027 - 01 - 15))), Some(datetime!(2027-01-15 00:00 UTC)));
        // A card of December 2026 lapses before either; one of January 2027 lasts the month but
        // not to a renewal on 1 February.
        let until = card_needed_until(now, true, None).unwrap();
        assert!(card(12, 2026).lapses_before(until));
        assert!(!card(1, 2027).lapses_before(until));
        let until = card_needed_until(now, true, Some(date!(2027 - 02 - 01))).unwrap();
        assert!(card(1, 2027).lapses_before(until));
    }
}

//! Monthly statements: which entries a month holds, what they add up to, and what each one says
//! in a statement's words (money, description, Stripe ids).
//!
//! A statement covers a calendar month in UTC, not a workspace's cycle: a partner's statement
//! adds up all its workspaces, which renew on different days, and only a common month adds up;
//! accounting periods, tax returns and Stripe's own monthly reports are calendar months too. A
//! workspace's cycles still show, in its renewal entries (`cycle_start..cycle_end`).
//!
//! A wallet's entries are written one at a time, each under the wallet's version, and each is
//! dated no earlier than the one before it (the store keeps it so). So a month's entries are one
//! run of consecutive `seq`s: none is in two months or in none, the closing balance of one month
//! is the opening balance of the next, and `opening + sum(entries) = closing` exactly.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use time::{Date, OffsetDateTime, Time};

use super::{Balance, EntryKind, LedgerEntry};

/// A calendar month, UTC: `2026-11`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    month: time::Month,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a month written YYYY-MM, from 2000-01 to 9999-12")]
pub struct InvalidMonth;

impl Month {
    /// The month `at` falls in, in UTC.
    pub fn of(at: OffsetDateTime) -> Self {
        let utc = at.to_offset(time::UtcOffset::UTC);
        Self { year: utc.year(), month: utc.month() }
    }

    /// The first instant of the month.
    pub fn starts_at(self) -> OffsetDateTime {
        let day = Date::from_calendar_date(self.year, self.month, 1).expect("the 1st of a checked month exists");
        day.with_time(Time::MIDNIGHT).assume_utc()
    }

    /// The first instant after the month: the next one's start.
    pub fn ends_at(self) -> OffsetDateTime {
        self.next().starts_at()
    }

    pub fn next(self) -> Self {
        match self.month {
            time::Month::December => Self { year: self.year.saturating_add(1), month: time::Month::January },
            m => Self { year: self.year, month: m.next() },
        }
    }

    /// Whether the month is over at `now`: its statement can no longer change.
    pub fn is_closed(self, now: OffsetDateTime) -> bool {
        now >= self.ends_at()
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, u8::from(self.month))
    }
}

impl FromStr for Month {
    type Err = InvalidMonth;

    fn from_str(s: &str) -> Result<Self, InvalidMonth> {
        let (year, month) = s.split_once('-').ok_or(InvalidMonth)?;
        let digits = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4) || !digits(month, 2) {
            return Err(InvalidMonth);
        }
        let year: i32 = year.parse().map_err(|_| InvalidMonth)?;
        let month: u8 = month.parse().map_err(|_| InvalidMonth)?;
        if year < 2000 {
            return Err(InvalidMonth);
        }
        Ok(Self { year, month: time::Month::try_from(month).map_err(|_| InvalidMonth)? })
    }
}

/// Points and how many entries, of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KindTotal {
    pub count: u64,
    pub points: Decimal,
}

/// Money of one currency, and how many payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MoneyTotal {
    pub count: u64,
    /// Major units (`"10.00"` dollars, `"1000"` yen).
    pub amount: Decimal,
}

/// What one wallet's entries of one month add up to. The store keeps one per wallet and month,
/// added to in each change's own transaction; [`MonthTotals::add`] is the same arithmetic over
/// entries, for checking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthTotals {
    pub month: Month,
    /// The month's first and last entries.
    pub first_seq: u64,
    pub last_seq: u64,
    pub opening_balance: Balance,
    pub closing_balance: Balance,
    pub entries: u64,
    /// The sum of the positive amounts, and of the negative ones (a negative number).
    pub credits: Decimal,
    pub debits: Decimal,
    /// By [`EntryKind::name`].
    pub by_kind: BTreeMap<String, KindTotal>,
    /// Top-ups paid, by currency (ISO code, upper case).
    pub top_ups: BTreeMap<String, MoneyTotal>,
}

impl MonthTotals {
    /// A month that begins with `entry`.
    pub fn starting(entry: &LedgerEntry) -> Self {
        let opening = entry
            .balance_after
            .as_decimal()
            .checked_sub(entry.amount.as_decimal())
            .and_then(|b| Balance::from_decimal(b).ok())
            .expect("the balance before an entry was a balance");
        let mut totals = Self {
            month: Month::of(entry.created_at),
            first_seq: entry.id.seq,
            last_seq: entry.id.seq,
            opening_balance: opening,
            closing_balance: opening,
            entries: 0,
            credits: Decimal::ZERO,
            debits: Decimal::ZERO,
            by_kind: BTreeMap::new(),
            top_ups: BTreeMap::new(),
        };
        totals.add(entry);
        totals
    }

    /// Adds the next entry of the month.
    pub fn add(&mut self, entry: &LedgerEntry) {
        // Sums of amounts of at most 13 digits: far inside `Decimal`'s 28, however many.
        let count = |n: &mut u64| *n = n.saturating_add(1);
        let sum = |d: &mut Decimal, by: Decimal| *d = d.saturating_add(by);
        for (name, by) in month_additions(entry) {
            match name {
                Addition::Entries => count(&mut self.entries),
                Addition::Credits => sum(&mut self.credits, by),
                Addition::Debits => sum(&mut self.debits, by),
                Addition::KindCount(kind) => count(&mut self.by_kind.entry(kind.to_owned()).or_default().count),
                Addition::KindPoints(kind) => sum(&mut self.by_kind.entry(kind.to_owned()).or_default().points, by),
                Addition::TopUpCount(currency) => count(&mut self.top_ups.entry(currency).or_default().count),
                Addition::TopUpAmount(currency) => sum(&mut self.top_ups.entry(currency).or_default().amount, by),
            }
        }
        self.last_seq = entry.id.seq;
        self.closing_balance = entry.balance_after;
    }
}

/// The month a wallet is in, as its wallet item carries it: its totals but for the top-ups by
/// currency (which a top-up adds to the month's own item). Of a fixed size, so that a wallet's
/// state stays a small `Copy` value, and the month costs a usage debit no write of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthRun {
    pub month: Month,
    pub first_seq: u64,
    pub opening_balance: Balance,
    pub entries: u64,
    pub credits: Decimal,
    pub debits: Decimal,
    /// By kind, in the order of [`EntryKind::NAMES`].
    pub kinds: [KindTotal; EntryKind::NAMES.len()],
}

impl MonthRun {
    /// The run after `entry`, the wallet's next: `before` added to, or a new month begun.
    pub fn next(before: Option<MonthRun>, entry: &LedgerEntry) -> MonthRun {
        let month = Month::of(entry.created_at);
        let mut run = match before {
            Some(run) if run.month == month => run,
            _ => {
                let t = MonthTotals::starting(entry);
                return MonthRun::of(&t);
            }
        };
        let count = |n: &mut u64| *n = n.saturating_add(1);
        let sum = |d: &mut Decimal, by: Decimal| *d = d.saturating_add(by);
        for (name, by) in month_additions(entry) {
            match name {
                Addition::Entries => count(&mut run.entries),
                Addition::Credits => sum(&mut run.credits, by),
                Addition::Debits => sum(&mut run.debits, by),
                Addition::KindCount(kind) => {
                    if let Some(k) = kind_index(kind).and_then(|i| run.kinds.get_mut(i)) {
                        count(&mut k.count);
                    }
                }
                Addition::KindPoints(kind) => {
                    if let Some(k) = kind_index(kind).and_then(|i| run.kinds.get_mut(i)) {
                        sum(&mut k.points, by);
                    }
                }
                Addition::TopUpCount(_) | Addition::TopUpAmount(_) => {}
            }
        }
        run
    }

    /// The run of `totals` (its top-ups by currency left out).
    pub fn of(totals: &MonthTotals) -> MonthRun {
        let mut kinds = [KindTotal::default(); EntryKind::NAMES.len()];
        for (name, total) in &totals.by_kind {
            if let Some(k) = kind_index(name).and_then(|i| kinds.get_mut(i)) {
                *k = *total;
            }
        }
        MonthRun {
            month: totals.month,
            first_seq: totals.first_seq,
            opening_balance: totals.opening_balance,
            entries: totals.entries,
            credits: totals.credits,
            debits: totals.debits,
            kinds,
        }
    }

    /// The month's totals, its last entry `last_seq` leaving `closing`, with its `top_ups`.
    pub fn totals(&self, last_seq: u64, closing: Balance, top_ups: BTreeMap<String, MoneyTotal>) -> MonthTotals {
        MonthTotals {
            month: self.month,
            first_seq: self.first_seq,
            last_seq,
            opening_balance: self.opening_balance,
            closing_balance: closing,
            entries: self.entries,
            credits: self.credits,
            debits: self.debits,
            by_kind: EntryKind::NAMES
                .iter()
                .zip(self.kinds)
                .filter(|(_, k)| k.count > 0)
                .map(|(name, k)| ((*name).to_owned(), k))
                .collect(),
            top_ups,
        }
    }
}

fn kind_index(name: &str) -> Option<usize> {
    EntryKind::NAMES.iter().position(|n| *n == name)
}

/// One number a month's totals add for an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addition {
    Entries,
    Credits,
    Debits,
    KindCount(&'static str),
    KindPoints(&'static str),
    TopUpCount(String),
    TopUpAmount(String),
}

/// What `entry` adds to its month's totals: the one list both the store's additions and
/// [`MonthTotals::add`] follow.
pub fn month_additions(entry: &LedgerEntry) -> Vec<(Addition, Decimal)> {
    let amount = entry.amount.as_decimal();
    let kind = entry.kind.name();
    let mut adds = vec![
        (Addition::Entries, Decimal::ONE),
        (if amount.is_sign_negative() { Addition::Debits } else { Addition::Credits }, amount),
        (Addition::KindCount(kind), Decimal::ONE),
        (Addition::KindPoints(kind), amount),
    ];
    if let Some((paid, currency)) = top_up_paid(&entry.kind) {
        adds.push((Addition::TopUpCount(currency.clone()), Decimal::ONE));
        adds.push((Addition::TopUpAmount(currency), paid));
    }
    adds
}

/// What a top-up's customer paid, and in which currency.
fn top_up_paid(kind: &EntryKind) -> Option<(Decimal, String)> {
    match kind {
        EntryKind::TopUp { amount, currency, .. } => {
            let paid = Decimal::from_str(amount).ok()?;
            Some((paid, currency.to_ascii_uppercase()))
        }
        _ => None,
    }
}

/// An entry as a statement's line says it: the money that moved with it (if any), a sentence
/// for a person, and the Stripe objects to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    /// Major units and the currency, where money moved with the points.
    pub money: Option<(String, String)>,
    pub description: String,
    pub stripe_ids: Vec<String>,
}

impl StatementLine {
    pub fn of(entry: &LedgerEntry) -> Self {
        let upper = |c: &str| c.to_ascii_uppercase();
        match &entry.kind {
            EntryKind::Adjustment { reason } => Self::plain(reason.clone()),
            EntryKind::AddonPurchase {
                addon,
                quantity,
                unit_points,
                days_remaining,
                days_in_cycle,
                by_partner,
                ..
            } => {
                let who = if *by_partner { "added by the partner" } else { "bought" };
                Self::plain(format!(
                    "{quantity} x {addon} {who} at {unit_points} points each, {days_remaining} of {days_in_cycle} days"
                ))
            }
            EntryKind::TopUp { payment, amount, currency, receipt, .. } => Self {
                money: Some((amount.clone(), upper(currency))),
                description: format!("top-up paid {amount} {}", upper(currency)),
                stripe_ids: std::iter::once(payment).chain(receipt).cloned().collect(),
            },
            EntryKind::ClawBack { payment_intent, cause, refunded, disputed, currency } => {
                let cause = match cause {
                    super::ClawBackCause::Refund => "refund",
                    super::ClawBackCause::Dispute => "dispute",
                };
                Self {
                    money: None,
                    description: format!(
                        "taken back after a {cause}: {refunded} {c} refunded and {disputed} {c} disputed so far",
                        c = upper(currency)
                    ),
                    stripe_ids: vec![payment_intent.clone()],
                }
            }
            EntryKind::DisputeWon { payment_intent, dispute, amount, currency, .. } => Self {
                money: Some((amount.clone(), upper(currency))),
                description: format!("given back: dispute of {amount} {} won", upper(currency)),
                stripe_ids: vec![payment_intent.clone(), dispute.clone()],
            },
            EntryKind::Renewal { cycle_start, cycle_end, lines } => {
                Self::plain(format!("renewal of {} add-on line(s) for {cycle_start} to {cycle_end}", lines.len()))
            }
            EntryKind::Lapse { cycle_start, reason, shortfall, .. } => {
                Self::plain(format!("add-ons lapsed from {cycle_start}: {reason} (short by {shortfall} points)"))
            }
            EntryKind::Usage { meter, quantity, rate, event_id } => {
                Self::plain(format!("usage {event_id}: {quantity} {meter} at {rate} points"))
            }
            EntryKind::WholesaleCharges { charges, lines } => {
                Self::plain(format!("{charges} wholesale charge(s) of {} workspace line(s)", lines.len()))
            }
        }
    }

    fn plain(description: String) -> Self {
        Self { money: None, description, stripe_ids: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Actor, LedgerEntryId, PointsDelta, WalletId, WorkspaceId};
    use time::macros::datetime;

    #[test]
    fn months_parse_and_bound() {
        let m: Month = "2026-11".parse().unwrap();
        assert_eq!(m.to_string(), "2026-11");
        assert_eq!(m.starts_at(), datetime!(2026-11-01 0:00 UTC));
        assert_eq!(m.ends_at(), datetime!(2026-12-01 0:00 UTC));
        let december: Month = "2026-12".parse().unwrap();
        assert_eq!(december.ends_at(), datetime!(2027-01-01 0:00 UTC));
        for bad in ["2026-13", "2026-00", "2026-1", "26-11", "2026/11", "1999-12", "2026-11-01", "", "+026-11"] {
            assert_eq!(bad.parse::<Month>(), Err(InvalidMonth), "{bad}");
        }
        assert_eq!(Month::of(datetime!(2026-11-30 23:59:59.999 UTC)), m);
        assert_eq!(Month::of(datetime!(2026-12-01 0:30 +01:00)), m, "months are UTC's");
        assert!(!m.is_closed(datetime!(2026-11-30 23:59:59 UTC)));
        assert!(m.is_closed(datetime!(2026-12-01 0:00 UTC)));
    }

    fn entry(seq: u64, amount: &str, after: &str, kind: EntryKind) -> LedgerEntry {
        LedgerEntry {
            id: LedgerEntryId { wallet: WalletId::Workspace(WorkspaceId::parse("w1").unwrap()), seq },
            amount: PointsDelta::parse(amount).unwrap(),
            balance_after: Balance::parse(after).unwrap(),
            kind,
            actor: Actor::System("test".into()),
            created_at: datetime!(2026-11-15 12:00 UTC),
            idempotency_key: format!("k{seq}"),
        }
    }

    #[test]
    fn totals_add_up_by_kind_and_currency() {
        let top_up = |amount: &str, currency: &str| EntryKind::TopUp {
            payment: "cs_1".into(),
            topup_option_id: None,
            amount: amount.into(),
            currency: currency.into(),
            receipt: None,
        };
        let mut t = MonthTotals::starting(&entry(4, "100", "130", top_up("10.00", "usd")));
        t.add(&entry(5, "-30.5", "99.5", EntryKind::Adjustment { reason: "goodwill back".into() }));
        t.add(&entry(6, "1000", "1099.5", top_up("1000", "JPY")));
        t.add(&entry(7, "50", "1149.5", top_up("5.50", "USD")));
        assert_eq!((t.first_seq, t.last_seq, t.entries), (4, 7, 4));
        assert_eq!(t.opening_balance, Balance::parse("30").unwrap());
        assert_eq!(t.closing_balance, Balance::parse("1149.5").unwrap());
        assert_eq!((t.credits, t.debits), (Decimal::new(1150, 0), Decimal::new(-305, 1)));
        assert_eq!(t.opening_balance.as_decimal() + t.credits + t.debits, t.closing_balance.as_decimal());
        assert_eq!(t.by_kind["top_up"], KindTotal { count: 3, points: Decimal::new(1150, 0) });
        assert_eq!(t.top_ups["USD"], MoneyTotal { count: 2, amount: Decimal::new(1550, 2) });
        assert_eq!(t.top_ups["JPY"], MoneyTotal { count: 1, amount: Decimal::new(1000, 0) });
    }

    #[test]
    fn a_run_is_the_totals_but_the_top_ups() {
        let top_up = EntryKind::TopUp {
            payment: "cs_1".into(),
            topup_option_id: None,
            amount: "10.00".into(),
            currency: "usd".into(),
            receipt: None,
        };
        let entries = [
            entry(4, "100", "130", top_up),
            entry(5, "-30.5", "99.5", EntryKind::Adjustment { reason: "goodwill back".into() }),
            entry(6, "-0.5", "99", EntryKind::Adjustment { reason: "typo".into() }),
        ];
        let mut totals = MonthTotals::starting(&entries[0]);
        let mut run = MonthRun::next(None, &entries[0]);
        for e in &entries[1..] {
            totals.add(e);
            run = MonthRun::next(Some(run), e);
        }
        assert_eq!(run.totals(6, Balance::parse("99").unwrap(), totals.top_ups.clone()), totals);
        assert_eq!(MonthRun::of(&totals), run);
        // The next month starts a run of its own.
        let mut december = entry(7, "1", "100", EntryKind::Adjustment { reason: "x".into() });
        december.created_at = datetime!(2026-12-01 0:00 UTC);
        let next = MonthRun::next(Some(run), &december);
        assert_eq!((next.month.to_string(), next.first_seq, next.entries), ("2026-12".to_owned(), 7, 1));
        assert_eq!(next.opening_balance, Balance::parse("99").unwrap());
    }

    #[test]
    fn lines_say_money_and_stripe_ids() {
        let top_up = entry(
            1,
            "100",
            "100",
            EntryKind::TopUp {
                payment: "cs_9".into(),
                topup_option_id: None,
                amount: "10.00".into(),
                currency: "usd".into(),
                receipt: None,
            },
        );
        let line = StatementLine::of(&top_up);
        assert_eq!(line.money, Some(("10.00".into(), "USD".into())));
        assert_eq!(line.stripe_ids, vec!["cs_9".to_owned()]);
        let adjusted = StatementLine::of(&entry(2, "-5", "95", EntryKind::Adjustment { reason: "typo".into() }));
        assert_eq!((adjusted.money, adjusted.description.as_str()), (None, "typo"));
    }
}

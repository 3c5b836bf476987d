//! What monthly statements read: each wallet's month totals, and the month's run of entries.
//!
//! The month a wallet is in is carried by its wallet item (`month_*` attributes: a
//! [`MonthRun`]), which every balance change writes anyway: a change adds its entry there, and a
//! usage debit costs no write more. The first change of a new month writes the month before
//! into its own item (`MONTH#<yyyy-mm>`, in the same transaction), where it stays. Top-ups by
//! currency are open-ended, so they are not in the run: a top-up adds to its month's item (`ADD`)
//! and to its partner's `TOPUPS#<yyyy-mm>` item, so a partner's top-ups by currency are one read,
//! not a pass over its workspaces (a top-up is a payment: rare enough not to make those hot).
//! A statement is then a read of the totals and a query of entries `first_seq..=last_seq`,
//! however long the month's ledger is.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use domain::{
    Addition, Balance, EntryKind, KindTotal, LedgerEntry, MoneyTotal, Month, MonthRun, MonthTotals, PartnerId,
    WalletId, month_additions,
};

use super::cursor::LedgerCursor;
use super::item::{Attr, Condition, ENTITY_TYPE, Item, Key, MalformedItem, Order, Write};
use super::keys;
use super::table::{MAX_QUERY_LIMIT, Table};
use super::wallet::Page;
use super::{Store, StoreError};

const MONTH_PREFIX: &str = "MONTH#";
const TOPUPS_PREFIX: &str = "TOPUPS#";
const KIND_COUNT: &str = "kind_count#";
const KIND_POINTS: &str = "kind_points#";
const TOPUP_COUNT: &str = "top_ups#";
const TOPUP_AMOUNT: &str = "top_up_amount#";

/// Wallet `wallet`'s totals of `month`.
pub fn wallet_month(wallet: &WalletId, month: Month) -> Key {
    Key::new(keys::wallet_pk(wallet), format!("{MONTH_PREFIX}{month}"))
}

/// The top-ups of partner `p`'s workspaces in `month`, by currency.
pub fn partner_top_ups(p: &PartnerId, month: Month) -> Key {
    Key::new(keys::partner_pk(p), format!("{TOPUPS_PREFIX}{month}"))
}

fn attr_name(addition: &Addition) -> String {
    match addition {
        Addition::Entries => "entries".into(),
        Addition::Credits => "credits".into(),
        Addition::Debits => "debits".into(),
        Addition::KindCount(kind) => format!("{KIND_COUNT}{kind}"),
        Addition::KindPoints(kind) => format!("{KIND_POINTS}{kind}"),
        Addition::TopUpCount(currency) => format!("{TOPUP_COUNT}{currency}"),
        Addition::TopUpAmount(currency) => format!("{TOPUP_AMOUNT}{currency}"),
    }
}

/// The attributes of a closed month's item (all but its top-ups, which top-ups added to it).
fn closed_attrs(run: &MonthRun, last_seq: u64, closing: Balance) -> Vec<(String, Attr)> {
    let mut set = vec![
        (ENTITY_TYPE.to_owned(), Attr::s("wallet_month")),
        ("month".to_owned(), Attr::s(run.month.to_string())),
        ("last_seq".to_owned(), Attr::n(last_seq)),
        ("closing_balance".to_owned(), Attr::N(closing.as_decimal())),
    ];
    set.extend(run_attrs(run, ""));
    set
}

/// A run's attributes, their names after `prefix` (`month_` on the wallet item).
pub(crate) fn run_attrs(run: &MonthRun, prefix: &str) -> Vec<(String, Attr)> {
    let mut attrs = vec![
        (format!("{prefix}first_seq"), Attr::n(run.first_seq)),
        (format!("{prefix}opening_balance"), Attr::N(run.opening_balance.as_decimal())),
        (format!("{prefix}entries"), Attr::n(run.entries)),
        (format!("{prefix}credits"), Attr::N(run.credits)),
        (format!("{prefix}debits"), Attr::N(run.debits)),
    ];
    for (name, k) in EntryKind::NAMES.iter().zip(run.kinds).filter(|(_, k)| k.count > 0) {
        attrs.push((format!("{prefix}{KIND_COUNT}{name}"), Attr::n(k.count)));
        attrs.push((format!("{prefix}{KIND_POINTS}{name}"), Attr::N(k.points)));
    }
    if prefix.is_empty() {
        return attrs;
    }
    attrs.push((format!("{prefix}of"), Attr::s(run.month.to_string())));
    attrs
}

/// The run the attributes after `prefix` hold, if any.
pub(crate) fn run_from(item: &Item, prefix: &str) -> Result<Option<MonthRun>, MalformedItem> {
    let month_attr = if prefix.is_empty() { "month".to_owned() } else { format!("{prefix}of") };
    let first_seq = format!("{prefix}first_seq");
    if item.get(&first_seq).is_none() {
        return Ok(None);
    }
    let month: Month = item.parsed(&month_attr, |s| s.parse())?;
    let mut kinds = [KindTotal::default(); EntryKind::NAMES.len()];
    for (i, name) in EntryKind::NAMES.iter().enumerate() {
        let count_attr = format!("{prefix}{KIND_COUNT}{name}");
        if let Some(Attr::N(n)) = item.get(&count_attr) {
            kinds[i] = KindTotal {
                count: count(item, &count_attr, *n)?,
                points: item.num(&format!("{prefix}{KIND_POINTS}{name}"))?,
            };
        }
    }
    let opening = format!("{prefix}opening_balance");
    Ok(Some(MonthRun {
        month,
        first_seq: item.u64(&first_seq)?,
        opening_balance: balance(item, &opening)?,
        entries: item.u64(&format!("{prefix}entries"))?,
        credits: item.num(&format!("{prefix}credits"))?,
        debits: item.num(&format!("{prefix}debits"))?,
        kinds,
    }))
}

/// What `entry`, the wallet's next after a state of `balance` and `run`, writes besides the
/// wallet (whose item carries the new run): the month before into its own item, when `entry`
/// begins a new one; and a top-up to its month's item and its partner's.
pub(crate) fn month_writes(
    entry: &LedgerEntry,
    partner: Option<&PartnerId>,
    run: Option<MonthRun>,
    balance: Balance,
) -> Vec<Write> {
    let month = Month::of(entry.created_at);
    let mut writes = Vec::new();
    if let Some(before) = run.filter(|r| r.month != month) {
        // SET, not a replacement: the month's item may hold what its top-ups added.
        writes.push(Write::Update {
            key: wallet_month(&entry.id.wallet, before.month),
            set: closed_attrs(&before, entry.id.seq.saturating_sub(1), balance),
            condition: Condition::Always,
        });
    }
    let top_ups: Vec<(String, Decimal)> = month_additions(entry)
        .iter()
        .filter(|(a, _)| matches!(a, Addition::TopUpCount(_) | Addition::TopUpAmount(_)))
        .map(|(a, by)| (attr_name(a), *by))
        .collect();
    if top_ups.is_empty() {
        return writes;
    }
    let added = |key: Key, entity: &str| Write::Add {
        key,
        add: top_ups.clone(),
        set: Vec::new(),
        set_if_absent: vec![(ENTITY_TYPE.into(), Attr::s(entity)), ("month".into(), Attr::s(month.to_string()))],
    };
    writes.push(added(wallet_month(&entry.id.wallet, month), "wallet_month"));
    if let Some(p) = partner {
        writes.push(added(partner_top_ups(p, month), "partner_top_ups"));
    }
    writes
}

fn balance(item: &Item, name: &str) -> Result<Balance, MalformedItem> {
    Balance::from_decimal(item.num(name)?).map_err(|_| MalformedItem { key: item.key(), attr: name.into() })
}

fn count(item: &Item, name: &str, value: Decimal) -> Result<u64, MalformedItem> {
    u64::try_from(value).map_err(|_| MalformedItem { key: item.key(), attr: name.into() })
}

/// The counts and sums by currency of a `top_ups#` / `top_up_amount#` pair of attributes.
fn top_ups_of(item: &Item) -> Result<BTreeMap<String, MoneyTotal>, MalformedItem> {
    let mut top_ups = BTreeMap::<String, MoneyTotal>::new();
    for (name, value) in &item.0 {
        let Attr::N(n) = value else { continue };
        if let Some(currency) = name.strip_prefix(TOPUP_COUNT) {
            top_ups.entry(currency.to_owned()).or_default().count = count(item, name, *n)?;
        } else if let Some(currency) = name.strip_prefix(TOPUP_AMOUNT) {
            top_ups.entry(currency.to_owned()).or_default().amount = *n;
        }
    }
    Ok(top_ups)
}

/// A wallet's months, as [`Store::wallet_months`] read them with its wallet item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletMonths {
    /// The wallet's version when read (0: never written).
    pub version: u64,
    /// Oldest first.
    pub months: Vec<MonthTotals>,
}

/// A month's item: a closed month's totals, or (the month a wallet is in) only what its
/// top-ups added.
struct StoredMonth {
    month: Month,
    closed: Option<MonthTotals>,
    top_ups: BTreeMap<String, MoneyTotal>,
}

fn stored_month(item: &Item) -> Result<StoredMonth, MalformedItem> {
    let month: Month = item.parsed("month", |s| s.parse())?;
    let top_ups = top_ups_of(item)?;
    let closed = match run_from(item, "")? {
        Some(run) => Some(run.totals(item.u64("last_seq")?, balance(item, "closing_balance")?, top_ups.clone())),
        None => None,
    };
    Ok(StoredMonth { month, closed, top_ups })
}

/// The totals of `month` from a wallet's item and its month's item (either may be absent).
fn totals_of(
    month: Month,
    wallet: Option<&Item>,
    month_item: Option<&Item>,
) -> Result<Option<MonthTotals>, MalformedItem> {
    let stored = month_item.map(stored_month).transpose()?;
    if let Some(StoredMonth { closed: Some(closed), .. }) = &stored {
        return Ok(Some(closed.clone()));
    }
    let Some(wallet) = wallet else { return Ok(None) };
    let Some(run) = run_from(wallet, super::wallet::RUN_PREFIX)? else { return Ok(None) };
    if run.month != month {
        return Ok(None);
    }
    let top_ups = stored.map(|s| s.top_ups).unwrap_or_default();
    Ok(Some(run.totals(wallet.u64("version")?, balance(wallet, "balance")?, top_ups)))
}

impl<T: Table> Store<T> {
    /// Every month totals of `wallet`, oldest first: one a month it changed in (a dozen a year,
    /// so one query reads all of them), the month it is in from its wallet item.
    pub async fn wallet_months(&self, wallet: &WalletId) -> Result<WalletMonths, StoreError> {
        // The wallet first: a change between the two reads that begins a new month has written
        // the month before into its item by the time the query looks, so no month is lost; the
        // new one is left out, as the wallet read before it.
        let item = self.get_many(&[keys::wallet(wallet)]).await?.into_iter().next().flatten();
        let pk = keys::wallet_pk(wallet);
        let mut months = Vec::new();
        let mut open: BTreeMap<Month, BTreeMap<String, MoneyTotal>> = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let items = self.query_prefix(&pk, MONTH_PREFIX, after.as_deref(), MAX_QUERY_LIMIT).await?;
            for item in &items {
                match stored_month(item)? {
                    StoredMonth { closed: Some(closed), .. } => months.push(closed),
                    StoredMonth { month, closed: None, top_ups } => {
                        open.insert(month, top_ups);
                    }
                }
            }
            if items.len() < MAX_QUERY_LIMIT {
                break;
            }
            after = items.last().and_then(|i| i.key()).map(|k| k.sk);
        }
        if let Some(item) = &item
            && let Some(run) = run_from(item, super::wallet::RUN_PREFIX)?
            && months.last().is_none_or(|m| m.month < run.month)
        {
            let top_ups = open.remove(&run.month).unwrap_or_default();
            months.push(run.totals(item.u64("version")?, balance(item, "balance")?, top_ups));
        }
        let version = item.as_ref().map(|i| i.u64("version")).transpose()?.unwrap_or(0);
        Ok(WalletMonths { version, months })
    }

    /// The top-ups of partner `p`'s workspaces in `month`, by currency.
    pub async fn partner_top_ups(
        &self,
        p: &PartnerId,
        month: Month,
    ) -> Result<BTreeMap<String, MoneyTotal>, StoreError> {
        let item = self.get_many(&[partner_top_ups(p, month)]).await?.into_iter().next().flatten();
        Ok(item.as_ref().map(top_ups_of).transpose()?.unwrap_or_default())
    }

    /// The month totals of several wallets at once (absent: no change that month): the wallets'
    /// items (the month each is in), then their month's items, a `BatchGetItem` each per chunk.
    /// In that order: a change between the reads that begins a new month has written the month
    /// before into its item when the second read looks.
    pub async fn months_of(&self, wallets: &[WalletId], month: Month) -> Result<Vec<Option<MonthTotals>>, StoreError> {
        let mut found = Vec::with_capacity(wallets.len());
        for chunk in wallets.chunks(super::table::MAX_BATCH_GET_KEYS) {
            let wallet_items = self.get_many(&chunk.iter().map(keys::wallet).collect::<Vec<_>>()).await?;
            let month_items = self.get_many(&chunk.iter().map(|w| wallet_month(w, month)).collect::<Vec<_>>()).await?;
            for (w, m) in wallet_items.iter().zip(&month_items) {
                found.push(totals_of(month, w.as_ref(), m.as_ref())?);
            }
        }
        Ok(found)
    }

    /// A page of the entries of `totals`' month, oldest first, after `after` (from the month's
    /// first entry when `None`); none past the month's last entry.
    pub async fn month_entries(
        &self,
        wallet: &WalletId,
        totals: &MonthTotals,
        after: Option<&LedgerCursor>,
        limit: usize,
    ) -> Result<Page<LedgerEntry>, StoreError> {
        // Never before the month's first entry, whatever the cursor says (one of another month
        // of the same wallet is a valid cursor of its ledger).
        let before_first = totals.first_seq.saturating_sub(1);
        let from = after.map_or(before_first, |c| c.seq().max(before_first));
        let start = (from >= 1).then(|| LedgerCursor::after(from));
        if start.is_some_and(|c| c.seq() >= totals.last_seq) {
            return Ok(Page { items: Vec::new(), next: None });
        }
        let mut page = self.ledger(wallet, start.as_ref(), limit, Order::Ascending).await?;
        page.items.retain(|e| e.id.seq <= totals.last_seq);
        if page.items.last().is_none_or(|e| e.id.seq >= totals.last_seq) {
            page.next = None;
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use domain::{Actor, LedgerEntryId, PointsDelta, WorkspaceId};
    use time::macros::datetime;

    use super::*;

    fn top_up(seq: u64, at: time::OffsetDateTime) -> LedgerEntry {
        LedgerEntry {
            id: LedgerEntryId { wallet: WalletId::Workspace(WorkspaceId::parse("ws-1").unwrap()), seq },
            amount: PointsDelta::parse("1000").unwrap(),
            balance_after: Balance::parse("1030.5").unwrap(),
            kind: EntryKind::TopUp {
                payment: "cs_1".into(),
                topup_option_id: None,
                amount: "10.00".into(),
                currency: "usd".into(),
                receipt: None,
            },
            actor: Actor::Stripe("evt_1".into()),
            created_at: at,
            idempotency_key: "k".into(),
        }
    }

    /// The month items' attribute names are their stored shape: pinned here, as
    /// `tests/stored_format.json` pins the records'.
    #[test]
    fn a_new_month_closes_the_one_before_and_a_top_up_adds_to_its_month() {
        let p = PartnerId::parse("p-1").unwrap();
        let october = top_up(6, datetime!(2026-10-31 23:00 UTC));
        let run = MonthRun::next(None, &october);
        let november = top_up(7, datetime!(2026-11-30 23:59:59 UTC));
        // The wallet as October left it: 1030.50 after entry 6.
        let writes = month_writes(&november, Some(&p), Some(run), Balance::parse("1030.5").unwrap());
        let [
            Write::Update { key: closed, set, .. },
            Write::Add { key: month, add, set_if_absent, .. },
            Write::Add { key: partner, add: paid, .. },
        ] = &writes[..]
        else {
            panic!("three writes: {writes:?}")
        };
        assert_eq!((closed.pk.as_str(), closed.sk.as_str()), ("WS#ws-1", "MONTH#2026-10"));
        let names: Vec<String> = set.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
        assert_eq!(
            names,
            [
                "entity_type=S(\"wallet_month\")",
                "month=S(\"2026-10\")",
                "last_seq=N(6)",
                "closing_balance=N(1030.5000)",
                "first_seq=N(6)",
                "opening_balance=N(30.5000)",
                "entries=N(1)",
                "credits=N(1000.0000)",
                "debits=N(0)",
                "kind_count#top_up=N(1)",
                "kind_points#top_up=N(1000.0000)",
            ]
        );
        let adds = |v: &[(String, Decimal)]| v.iter().map(|(n, d)| format!("{n}={d}")).collect::<Vec<_>>();
        assert_eq!((month.pk.as_str(), month.sk.as_str()), ("WS#ws-1", "MONTH#2026-11"));
        assert_eq!(adds(add), ["top_ups#USD=1", "top_up_amount#USD=10.00"]);
        assert_eq!(set_if_absent[1], ("month".to_owned(), Attr::s("2026-11")));
        assert_eq!((partner.pk.as_str(), partner.sk.as_str()), ("PARTNER#p-1", "TOPUPS#2026-11"));
        assert_eq!(adds(paid), ["top_ups#USD=1", "top_up_amount#USD=10.00"]);
        // The same month, no top-up: nothing but the wallet, which carries the run.
        let mut again = top_up(8, datetime!(2026-11-30 23:59:59 UTC));
        again.kind = EntryKind::Adjustment { reason: "x".into() };
        let run = MonthRun::next(Some(run), &november);
        assert!(month_writes(&again, Some(&p), Some(run), Balance::parse("1030.5").unwrap()).is_empty());
    }

    #[test]
    fn a_run_reads_back_from_its_attributes() {
        let run = MonthRun::next(None, &top_up(3, datetime!(2026-11-02 10:00 UTC)));
        let mut item = Item::default();
        for (name, value) in run_attrs(&run, "month_") {
            item.set(&name, value);
        }
        assert_eq!(run_from(&item, "month_").unwrap(), Some(run));
        assert_eq!(run_from(&Item::default(), "month_").unwrap(), None);
    }
}

//! What monthly statements read: each wallet's month totals, kept beside its ledger, and the
//! month's run of entries.
//!
//! Every balance change adds its entry to its wallet's month item (`MONTH#<yyyy-mm>`) in its own
//! transaction: the first entry of the month sets the opening balance and `first_seq`, every one
//! sets the closing balance and `last_seq` and adds to the counts and sums
//! ([`domain::month_additions`]). A workspace's top-up also adds to its partner's
//! `TOPUPS#<yyyy-mm>` item, so a partner's top-ups by currency are one read, not a pass over
//! its workspaces (a top-up is a payment: rare enough not to make that item hot). A statement
//! is then a read of the totals and a query of entries `first_seq..=last_seq`, however long the
//! month's ledger is.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use domain::{
    Addition, Balance, EntryKind, KindTotal, LedgerEntry, MoneyTotal, Month, MonthTotals, PartnerId, WalletId,
    month_additions,
};

use super::cursor::LedgerCursor;
use super::item::{Attr, ENTITY_TYPE, Item, Key, MalformedItem, Order, Write};
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

/// What `entry` writes to its month's totals, in the transaction that writes it. `entry` must be
/// the wallet's next: the first of its month sets what opens the month.
pub(crate) fn month_writes(entry: &LedgerEntry, partner: Option<&PartnerId>) -> Vec<Write> {
    let month = Month::of(entry.created_at);
    let opening = entry.balance_after.as_decimal() - entry.amount.as_decimal();
    let additions = month_additions(entry);
    let mut writes = Vec::with_capacity(2);
    if let (Some(p), EntryKind::TopUp { .. }) = (partner, &entry.kind) {
        let top_ups = additions
            .iter()
            .filter(|(a, _)| matches!(a, Addition::TopUpCount(_) | Addition::TopUpAmount(_)))
            .map(|(a, by)| (attr_name(a), *by))
            .collect::<Vec<_>>();
        if !top_ups.is_empty() {
            writes.push(Write::Add {
                key: partner_top_ups(p, month),
                add: top_ups,
                set: Vec::new(),
                set_if_absent: vec![
                    (ENTITY_TYPE.into(), Attr::s("partner_top_ups")),
                    ("month".into(), Attr::s(month.to_string())),
                ],
            });
        }
    }
    writes.insert(
        0,
        Write::Add {
            key: wallet_month(&entry.id.wallet, month),
            add: additions.iter().map(|(a, by)| (attr_name(a), *by)).collect(),
            set: vec![
                ("last_seq".into(), Attr::n(entry.id.seq)),
                ("closing_balance".into(), Attr::N(entry.balance_after.as_decimal())),
            ],
            set_if_absent: vec![
                (ENTITY_TYPE.into(), Attr::s("wallet_month")),
                ("month".into(), Attr::s(month.to_string())),
                ("first_seq".into(), Attr::n(entry.id.seq)),
                ("opening_balance".into(), Attr::N(opening)),
            ],
        },
    );
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

/// A month item as its totals.
pub fn month_totals(item: &Item) -> Result<MonthTotals, MalformedItem> {
    let bad = |attr: &str| MalformedItem { key: item.key(), attr: attr.into() };
    let month: Month = item.parsed("month", |s| s.parse())?;
    let mut by_kind = BTreeMap::<String, KindTotal>::new();
    for (name, value) in &item.0 {
        let Attr::N(n) = value else { continue };
        if let Some(kind) = name.strip_prefix(KIND_COUNT) {
            by_kind.entry(kind.to_owned()).or_default().count = count(item, name, *n)?;
        } else if let Some(kind) = name.strip_prefix(KIND_POINTS) {
            by_kind.entry(kind.to_owned()).or_default().points = *n;
        }
    }
    Ok(MonthTotals {
        month,
        first_seq: item.u64("first_seq")?,
        last_seq: item.u64("last_seq")?,
        opening_balance: balance(item, "opening_balance")?,
        closing_balance: balance(item, "closing_balance")?,
        entries: count(item, "entries", item.num("entries")?)?,
        credits: item.num("credits").unwrap_or(Decimal::ZERO),
        debits: item.num("debits").unwrap_or(Decimal::ZERO),
        by_kind,
        top_ups: top_ups_of(item).map_err(|_| bad("top_ups"))?,
    })
}

impl<T: Table> Store<T> {
    /// Every month totals of `wallet`, oldest first: one a month it changed in (a dozen a year,
    /// so one query reads all of them).
    pub async fn wallet_months(&self, wallet: &WalletId) -> Result<Vec<MonthTotals>, StoreError> {
        let pk = keys::wallet_pk(wallet);
        let mut months = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let items = self.query_prefix(&pk, MONTH_PREFIX, after.as_deref(), MAX_QUERY_LIMIT).await?;
            for item in &items {
                months.push(month_totals(item)?);
            }
            if items.len() < MAX_QUERY_LIMIT {
                return Ok(months);
            }
            after = items.last().and_then(|i| i.key()).map(|k| k.sk);
        }
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

    /// The month totals of several wallets at once (absent: no change that month).
    pub async fn months_of(&self, wallets: &[WalletId], month: Month) -> Result<Vec<Option<MonthTotals>>, StoreError> {
        let keys: Vec<Key> = wallets.iter().map(|w| wallet_month(w, month)).collect();
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(super::table::MAX_BATCH_GET_KEYS) {
            for item in self.get_many(chunk).await? {
                found.push(item.as_ref().map(month_totals).transpose()?);
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

    /// The month items' attribute names are their stored shape: pinned here, as
    /// `tests/stored_format.json` pins the records'.
    #[test]
    fn a_top_up_adds_to_its_month_and_its_partners_top_ups() {
        let entry = LedgerEntry {
            id: LedgerEntryId { wallet: WalletId::Workspace(WorkspaceId::parse("ws-1").unwrap()), seq: 7 },
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
            created_at: datetime!(2026-11-30 23:59:59 UTC),
            idempotency_key: "k".into(),
        };
        let p = PartnerId::parse("p-1").unwrap();
        let writes = month_writes(&entry, Some(&p));
        let [Write::Add { key, add, set, set_if_absent }, Write::Add { key: top_ups, add: paid, .. }] = &writes[..]
        else {
            panic!("two additions: {writes:?}")
        };
        assert_eq!((key.pk.as_str(), key.sk.as_str()), ("WS#ws-1", "MONTH#2026-11"));
        let names = |v: &[(String, Decimal)]| v.iter().map(|(n, d)| format!("{n}={d}")).collect::<Vec<_>>();
        assert_eq!(
            names(add),
            [
                "entries=1",
                "credits=1000.0000",
                "kind_count#top_up=1",
                "kind_points#top_up=1000.0000",
                "top_ups#USD=1",
                "top_up_amount#USD=10.00"
            ]
        );
        let set: Vec<&str> = set.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(set, ["last_seq", "closing_balance"]);
        let first: Vec<(&str, &Attr)> = set_if_absent.iter().map(|(n, v)| (n.as_str(), v)).collect();
        assert_eq!(first[2..], [("first_seq", &Attr::n(7u64)), ("opening_balance", &Attr::N(Decimal::new(305, 1)))]);
        assert_eq!((top_ups.pk.as_str(), top_ups.sk.as_str()), ("PARTNER#p-1", "TOPUPS#2026-11"));
        assert_eq!(names(paid), ["top_ups#USD=1", "top_up_amount#USD=10.00"]);
        // A partner wallet's entry (no partner named) touches its month only.
        assert_eq!(month_writes(&entry, None).len(), 1);
    }
}

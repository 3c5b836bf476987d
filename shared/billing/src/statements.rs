//! Monthly statements of a wallet (a workspace's, a partner's own) and a partner's statement of
//! its workspaces: read from the month totals each change keeps beside the ledger
//! (`store::statements`), so a statement is a handful of reads however long its month was.

use std::collections::BTreeMap;

use domain::{Balance, LedgerEntry, MoneyTotal, Month, MonthTotals, PartnerId, WalletId, WorkspaceId};
use store::{LedgerCursor, PageRequest, Table};

use super::{Billing, OpError};

/// A wallet's statement of one month and a page of its entries, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub wallet: WalletId,
    pub month: Month,
    /// The month is over: nothing will be added to it.
    pub closed: bool,
    pub opening_balance: Balance,
    pub closing_balance: Balance,
    /// `None` when the wallet did not change in the month.
    pub totals: Option<MonthTotals>,
    pub entries: Vec<LedgerEntry>,
    pub next_cursor: Option<String>,
}

/// One workspace's line of its partner's statement.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceMonth {
    pub workspace: WorkspaceId,
    pub totals: MonthTotals,
}

/// A partner's statement of a month: its own wallet's totals (the wholesale charges folded into
/// it), its workspaces' top-ups by currency, and a page of its workspaces' totals (those whose
/// wallet changed that month).
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerStatement {
    pub partner: PartnerId,
    pub month: Month,
    pub closed: bool,
    pub wallet: Statement,
    pub top_ups: BTreeMap<String, MoneyTotal>,
    pub workspaces: Vec<WorkspaceMonth>,
    pub next_workspace: Option<WorkspaceId>,
}

/// The balance of a wallet (at `version` when read) that did not change in `month`: the closing
/// balance of the last month before it that it changed in, else zero (if it has no entries from
/// before).
fn balance_through(version: u64, months: &[MonthTotals], month: Month) -> Result<Balance, OpError> {
    if let Some(before) = months.iter().rev().find(|m| m.month < month) {
        return Ok(before.closing_balance);
    }
    // No change before `month`: the wallet was empty then, unless it changed before month
    // totals were kept at all.
    if months.is_empty() && version > 0 {
        return Err(OpError::Invalid {
            param: "month".into(),
            message: "this wallet's entries were all written before statements were kept".into(),
        });
    }
    Ok(Balance::ZERO)
}

fn begins_with(month: Month) -> OpError {
    OpError::Invalid { param: "month".into(), message: format!("statements of this wallet begin with {month}") }
}

impl<T: Table> Billing<T> {
    /// `wallet`'s statement of `month`, with a page of its entries.
    pub async fn statement(
        &self,
        wallet: &WalletId,
        month: Month,
        page: PageRequest<LedgerCursor>,
    ) -> Result<Statement, OpError> {
        let mut statement = self.month_of(wallet, month).await?;
        if let Some(t) = &statement.totals {
            let found = self.store.month_entries(wallet, t, page.after.as_ref(), page.limit).await?;
            statement.entries = found.items;
            statement.next_cursor = found.next.map(|c| c.encode(wallet));
        }
        Ok(statement)
    }

    /// `wallet`'s statement of `month` without its entries: what it opened and closed at, and
    /// its totals.
    async fn month_of(&self, wallet: &WalletId, month: Month) -> Result<Statement, OpError> {
        let now = self.clock.now();
        if month > Month::of(now) {
            return Err(OpError::Invalid { param: "month".into(), message: "has not begun".into() });
        }
        let store::statements::WalletMonths { version, months } = self.store.wallet_months(wallet).await?;
        if let Some(first) = months.first()
            && first.first_seq > 1
            && month <= first.month
        {
            // The wallet's first entries were written before month totals were kept: its
            // statements begin with the first whole month after.
            return Err(begins_with(first.month.next()));
        }
        let (opening, closing, totals) = match months.iter().find(|m| m.month == month) {
            Some(t) => (t.opening_balance, t.closing_balance, Some(t.clone())),
            None => {
                let balance = balance_through(version, &months, month)?;
                (balance, balance, None)
            }
        };
        Ok(Statement {
            wallet: wallet.clone(),
            month,
            closed: month.is_closed(now),
            opening_balance: opening,
            closing_balance: closing,
            totals,
            entries: Vec::new(),
            next_cursor: None,
        })
    }

    /// Partner `p`'s statement of `month`: its wallet's totals, its workspaces' top-ups, and up
    /// to `limit` of its workspaces (in id order, after `after`) that changed that month.
    pub async fn partner_statement(
        &self,
        p: &PartnerId,
        month: Month,
        after: Option<&WorkspaceId>,
        limit: usize,
    ) -> Result<PartnerStatement, OpError> {
        self.partner_settings(p).await?;
        let wallet = WalletId::Partner(p.clone());
        // The wallet's totals only; its entries are its own statement's.
        let own = self.month_of(&wallet, month).await?;
        let top_ups = self.store.partner_top_ups(p, month).await?;
        let listed = self.store.workspace_list(p, after, limit, None).await?;
        let wallets: Vec<WalletId> = listed.items.iter().map(|l| WalletId::Workspace(l.workspace.id.clone())).collect();
        let months = self.store.months_of(&wallets, month).await?;
        let workspaces = listed
            .items
            .iter()
            .zip(months)
            .filter_map(|(l, totals)| totals.map(|totals| WorkspaceMonth { workspace: l.workspace.id.clone(), totals }))
            .collect();
        Ok(PartnerStatement {
            partner: p.clone(),
            month,
            closed: own.closed,
            wallet: own,
            top_ups,
            workspaces,
            next_workspace: listed.next,
        })
    }
}

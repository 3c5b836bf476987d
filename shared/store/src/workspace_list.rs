//! A partner's workspaces with their balances, one Query a page: every workspace profile and
//! every workspace wallet carries the keys of the workspace-list index (GSI3, `PARTNER#p` /
//! `WS#w#PROFILE` and `WS#w#WALLET`), so a workspace's two items come one after the other.
//!
//! Items written before the index existed have no such keys: [`Store::backfill_workspace_list`]
//! adds them, once per table (`local upgrade-table`), and every later write of them keeps them.

use domain::{Balance, PartnerId, WalletId, WorkspaceId};

use super::item::{Attr, Condition, Guard, Item, Order, Write};
use super::keys::{self, ListedPart};
use super::records::{self, ListedWorkspace};
use super::schema::WORKSPACE_LIST_INDEX;
use super::table::{IndexPosition, IndexQuery, MAX_QUERY_LIMIT, Query, TableError};
use super::wallet::Page;
use super::{Store, StoreError, Table};

/// Most workspaces on one page of the list.
pub const MAX_LIST_PAGE: usize = 100;

/// One workspace of the list: what its profile says, and its wallet's balance (zero before
/// its first ledger entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub workspace: ListedWorkspace,
    pub balance: Balance,
}

/// What [`Store::backfill_workspace_list`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backfilled {
    pub partners: u64,
    pub workspaces: u64,
    /// Items that had no index keys and were given them.
    pub items_updated: u64,
}

/// A workspace's items as the index returned them.
struct Group {
    id: WorkspaceId,
    profile: Option<Item>,
    wallet: Option<Item>,
}

impl<T: Table> Store<T> {
    /// A page of partner `p`'s workspaces in id order, after `after`: those `filter` keeps, if
    /// there is one.
    ///
    /// Unfiltered, a page reads `limit` workspaces. A filter reads on (up to
    /// [`MAX_QUERY_LIMIT`] items, still one Query) to fill the page, so a page may hold fewer
    /// than `limit` when few match: `next` says whether the list goes on. Eventually
    /// consistent, as a global secondary index is.
    pub async fn workspace_list(
        &self,
        p: &PartnerId,
        after: Option<&WorkspaceId>,
        limit: usize,
        filter: Option<&(dyn Fn(&ListedWorkspace) -> bool + Sync)>,
    ) -> Result<Page<Listed, WorkspaceId>, StoreError> {
        assert!((1..=MAX_LIST_PAGE).contains(&limit), "page size {limit} out of range");
        let start = after.map(|w| IndexPosition {
            key: keys::wallet(&WalletId::Workspace(w.clone())),
            index_sk: keys::workspace_list_sk(w, ListedPart::Wallet),
        });
        // Two items a workspace, and one more to tell whether the list goes on.
        let read = if filter.is_some() { MAX_QUERY_LIMIT } else { 2 * limit + 1 };
        let items = self
            .table
            .query_index(IndexQuery {
                index: &WORKSPACE_LIST_INDEX,
                pk: &keys::partner_pk(p),
                start_after: start.as_ref(),
                limit: read,
                order: Order::Ascending,
            })
            .await
            .map_err(StoreError::from_table)?;
        let exhausted = items.len() < read;
        let mut groups = group(items)?;
        if !exhausted {
            // The read may have stopped between a workspace's profile and its wallet: that one
            // starts the next page.
            groups.pop();
        }
        let mut listed = Vec::new();
        let mut next = None;
        for (i, g) in groups.iter().enumerate() {
            // A wallet without its profile is one whose profile is not in the index yet.
            let Some(profile) = &g.profile else { continue };
            let workspace = records::listed_workspace_from(profile)?;
            if filter.is_some_and(|keep| !keep(&workspace)) {
                continue;
            }
            let balance = match &g.wallet {
                Some(wallet) => Balance::from_decimal(wallet.num("balance")?)
                    .map_err(|_| StoreError::Corrupt(format!("wallet of {} holds a balance out of range", g.id)))?,
                None => Balance::ZERO,
            };
            listed.push(Listed { workspace, balance });
            if listed.len() == limit {
                let more = i + 1 < groups.len() || !exhausted;
                next = more.then(|| g.id.clone());
                return Ok(Page { items: listed, next });
            }
        }
        if !exhausted {
            next = groups.last().map(|g| g.id.clone());
        }
        Ok(Page { items: listed, next })
    }

    /// Gives every workspace profile and wallet of every partner the workspace-list index's
    /// keys if it lacks them (items written before the index existed). Safe to run again, and
    /// beside live traffic: each item is updated alone, only if it exists, with the keys a
    /// write of it would give it.
    pub async fn backfill_workspace_list(&self) -> Result<Backfilled, StoreError> {
        let mut done = Backfilled::default();
        let mut after: Option<String> = None;
        loop {
            let page = self.query_page(keys::PARTNERS_PK, keys::PARTNER_REF_PREFIX, after.as_deref()).await?;
            for item in &page {
                let p = item.parsed("partner_id", PartnerId::parse)?;
                self.backfill_partner(&p, &mut done).await?;
                done.partners += 1;
            }
            match page.last().and_then(Item::key) {
                Some(last) if page.len() == MAX_QUERY_LIMIT => after = Some(last.sk),
                _ => return Ok(done),
            }
        }
    }

    async fn backfill_partner(&self, p: &PartnerId, done: &mut Backfilled) -> Result<(), StoreError> {
        let pk = keys::partner_pk(p);
        let mut after: Option<String> = None;
        loop {
            let page = self.query_page(&pk, keys::WORKSPACE_REF_PREFIX, after.as_deref()).await?;
            for item in &page {
                let w = records::workspace_ref_from(item)?.id;
                let parts = [
                    (keys::workspace_profile(&w), ListedPart::Profile, Guard::WorkspaceExists),
                    (keys::wallet(&WalletId::Workspace(w.clone())), ListedPart::Wallet, Guard::WalletVersion),
                ];
                for (key, part, guard) in parts {
                    let Some(stored) = self.table.get(&key).await.map_err(StoreError::from_table)? else { continue };
                    if stored.get(WORKSPACE_LIST_INDEX.partition).is_some() {
                        continue;
                    }
                    let update = Write::Update {
                        key,
                        set: vec![
                            (WORKSPACE_LIST_INDEX.partition.to_owned(), Attr::s(&pk)),
                            (WORKSPACE_LIST_INDEX.sort.to_owned(), Attr::s(keys::workspace_list_sk(&w, part))),
                        ],
                        condition: Condition::exists(guard),
                    };
                    match self.table.transact(vec![update]).await {
                        Ok(()) => done.items_updated += 1,
                        // Deleted meanwhile: nothing to list.
                        Err(TableError::ConditionFailed { .. }) => {}
                        Err(e) => return Err(StoreError::from_table(e)),
                    }
                }
                done.workspaces += 1;
            }
            match page.last().and_then(Item::key) {
                Some(last) if page.len() == MAX_QUERY_LIMIT => after = Some(last.sk),
                _ => return Ok(()),
            }
        }
    }

    async fn query_page(&self, pk: &str, prefix: &str, after: Option<&str>) -> Result<Vec<Item>, StoreError> {
        let query =
            Query { pk, sk_prefix: prefix, start_after: after, limit: MAX_QUERY_LIMIT, order: Order::Ascending };
        self.table.query(query).await.map_err(StoreError::from_table)
    }
}

/// The index's items, grouped by workspace in the order read.
fn group(items: Vec<Item>) -> Result<Vec<Group>, StoreError> {
    let mut groups: Vec<Group> = Vec::new();
    for item in items {
        let sk = item.str(WORKSPACE_LIST_INDEX.sort)?;
        let (id, part) =
            parse_list_sk(sk).ok_or_else(|| StoreError::Corrupt(format!("workspace list index sort key {sk:?}")))?;
        if groups.last().is_none_or(|g| g.id != id) {
            groups.push(Group { id, profile: None, wallet: None });
        }
        let g = groups.last_mut().expect("pushed above");
        match part {
            ListedPart::Profile => g.profile = Some(item),
            ListedPart::Wallet => g.wallet = Some(item),
        }
    }
    Ok(groups)
}

fn parse_list_sk(sk: &str) -> Option<(WorkspaceId, ListedPart)> {
    let (w, part) = sk.strip_prefix(keys::WORKSPACE_REF_PREFIX)?.rsplit_once('#')?;
    let part = match part {
        "PROFILE" => ListedPart::Profile,
        "WALLET" => ListedPart::Wallet,
        _ => return None,
    };
    Some((WorkspaceId::parse(w).ok()?, part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_sort_key_names_its_workspace_and_part() {
        let w = WorkspaceId::parse("ws-1").unwrap();
        for part in [ListedPart::Profile, ListedPart::Wallet] {
            assert_eq!(parse_list_sk(&keys::workspace_list_sk(&w, part)), Some((w.clone(), part)));
        }
        assert_eq!(parse_list_sk("WS#ws-1#LEDGER"), None);
        assert_eq!(parse_list_sk("PROFILE"), None);
        // A workspace's items sort before those of a workspace whose id extends its own.
        let longer = WorkspaceId::parse("ws-1-b").unwrap();
        assert!(
            keys::workspace_list_sk(&w, ListedPart::Wallet) < keys::workspace_list_sk(&longer, ListedPart::Profile)
        );
    }
}

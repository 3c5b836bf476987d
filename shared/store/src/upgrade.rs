//! Items stored in an earlier shape, brought to today's as they are read, so that a deployed
//! table needs no migration step: the next write of such an item stores it in today's shape.
//!
//! The one such shape: a workspace profile written before the workspace's add-ons moved into
//! it. Its add-ons were items of their own (`WS#w` / `ADDON#<id>`), so the profile is read with
//! them (one `Query` of them, on that read only) and handed on as if it held them.

use domain::{WorkspaceAddon, WorkspaceId};

use super::item::ENTITY_TYPE;
use super::table::MAX_QUERY_LIMIT;
use super::{Item, Store, StoreError, Table, keys, records};

/// Pages of add-on items read for one profile of the earlier shape: far more add-ons than a
/// workspace may hold.
pub const MAX_ADDON_PAGES: usize = 10;

impl<T: Table> Store<T> {
    /// `item` in today's shape (itself, unless it is a profile of the earlier shape).
    pub(crate) async fn upgraded(&self, item: Item) -> Result<Item, StoreError> {
        if item.str(ENTITY_TYPE).ok() != Some("workspace") || records::holds_addons(&item) {
            return Ok(item);
        }
        let w = item.parsed("workspace_id", WorkspaceId::parse)?;
        let held = self.addon_items(&w).await?;
        Ok(records::with_held_addons(item, &held))
    }

    /// [`Store::upgraded`] of an item a read may not have found.
    pub(crate) async fn upgraded_opt(&self, item: Option<Item>) -> Result<Option<Item>, StoreError> {
        match item {
            Some(item) => Ok(Some(self.upgraded(item).await?)),
            None => Ok(None),
        }
    }

    /// The add-on items of `w` that count toward its limits, in the order they were bought.
    async fn addon_items(&self, w: &WorkspaceId) -> Result<Vec<WorkspaceAddon>, StoreError> {
        let pk = keys::workspace_pk(w);
        let mut held = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_ADDON_PAGES {
            let page = self.query_prefix(&pk, keys::ADDON_PREFIX, after.as_deref(), MAX_QUERY_LIMIT).await?;
            after = page.last().and_then(Item::key).map(|k| k.sk);
            for item in &page {
                let addon = records::workspace_addon_from(item)?;
                if addon.status.counts_toward_limits() {
                    held.push(addon);
                }
            }
            if page.len() < MAX_QUERY_LIMIT {
                // In the order a profile keeps them: bought first, first.
                held.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
                return Ok(held);
            }
        }
        Err(StoreError::Corrupt(format!("workspace {w} has more add-on items than a workspace may hold")))
    }
}

//! An operation's one read: the idempotency record of its request and every item it decides
//! on, in one `BatchGetItem`.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::wallet::{Committed, IdempotencyKey, replay_of_record};
use super::{Item, Key, Store, StoreError, Table};

/// The items an operation read in its one round trip, by key. A key that was asked for and
/// has no item reads as `None`; a key that was not asked for is a bug in the operation, and
/// panics, so that a missing key shows up in the first test rather than as a silent extra read.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    items: HashMap<Key, Option<Item>>,
}

impl Snapshot {
    pub fn get(&self, key: &Key) -> Option<&Item> {
        match self.items.get(key) {
            Some(item) => item.as_ref(),
            None => panic!("{key:?} was not in the operation's read"),
        }
    }
}

/// What an operation's read found: whether its request was answered before (or its key used
/// for another request), and the items.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub used: Option<Committed>,
    pub snapshot: Snapshot,
}

impl<T: Table> Store<T> {
    /// Reads `keys` in one consistent `BatchGetItem`, for what decides without a request's
    /// idempotency record (a webhook's state sync, a pass).
    pub async fn snapshot(&self, keys: &[Key]) -> Result<Snapshot, StoreError> {
        let unique = unique(keys.iter());
        let items = unique.iter().cloned().zip(self.get_many(&unique).await?).collect();
        Ok(Snapshot { items })
    }

    /// Reads the idempotency record of `idem` and `keys` (repeats allowed) in one consistent
    /// `BatchGetItem`. A record that expired counts as unused, as at commit.
    pub async fn load(&self, idem: &IdempotencyKey, now: OffsetDateTime, keys: &[Key]) -> Result<Loaded, StoreError> {
        let record_key = idem.item_key();
        let unique = unique(std::iter::once(&record_key).chain(keys));
        let mut items: HashMap<Key, Option<Item>> = unique.iter().cloned().zip(self.get_many(&unique).await?).collect();
        let used = match items.remove(&record_key).flatten() {
            Some(record) => replay_of_record(idem, &record, now)?,
            None => None,
        };
        Ok(Loaded { used, snapshot: Snapshot { items } })
    }

    /// Reads `keys` (repeats allowed) in one consistent `BatchGetItem`, with no idempotency
    /// record: the one read of an operation that changes nothing (a quote).
    pub async fn read(&self, keys: &[Key]) -> Result<Snapshot, StoreError> {
        let mut unique: Vec<Key> = Vec::with_capacity(keys.len());
        for key in keys {
            if !unique.contains(key) {
                unique.push(key.clone());
            }
        }
        let items = unique.iter().cloned().zip(self.get_many(&unique).await?).collect();
        Ok(Snapshot { items })
    }
}

/// `keys` without repeats, in their order.
fn unique<'a>(keys: impl Iterator<Item = &'a Key>) -> Vec<Key> {
    let mut unique: Vec<Key> = Vec::new();
    for key in keys {
        if !unique.contains(key) {
            unique.push(key.clone());
        }
    }
    unique
}

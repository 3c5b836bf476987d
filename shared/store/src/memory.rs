//! The embedded store: one table in memory, evaluating conditions and transactions the way
//! DynamoDB does (all actions checked first, then all applied, under one lock). It is the
//! default for running locally and for fast handler tests; the contract suite runs the same
//! tests against it and against DynamoDB Local so the two cannot drift.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::item::{Attr, Condition, Item, Key, Order, PK, SK, Write};
use super::schema::IndexKeys;
use super::table::{FailedCondition, IndexPosition, MAX_QUERY_LIMIT, MAX_TRANSACTION_ACTIONS, Table, TableError};

#[derive(Debug, Default)]
pub struct MemoryTable {
    items: Mutex<BTreeMap<Key, Item>>,
}

impl MemoryTable {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Item>> {
        // A panic while holding the lock can only come from a bug in this file; the map is
        // never left half-updated (we check everything before we apply anything).
        self.items.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn holds(condition: &Condition, current: Option<&Item>) -> bool {
    match condition {
        Condition::Always => true,
        Condition::NotExists => current.is_none(),
        Condition::Exists => current.is_some(),
        Condition::Equals { attr, value } => current.and_then(|i| i.get(attr)) == Some(value),
        Condition::NotExistsOrExpired { attr, now_epoch_s } => match current {
            None => true,
            Some(item) => matches!(item.get(attr), Some(Attr::N(n)) if *n < (*now_epoch_s).into()),
        },
        Condition::OneOf { attr, values } => current.and_then(|i| i.get(attr)).is_some_and(|v| values.contains(v)),
    }
}

/// What DynamoDB refuses in a `BatchGetItem`: no keys, too many, or one key twice.
fn check_batch(keys: &[Key]) -> Result<(), TableError> {
    let unique: std::collections::BTreeSet<&Key> = keys.iter().collect();
    if keys.is_empty() || keys.len() > super::table::MAX_BATCH_GET_KEYS || unique.len() != keys.len() {
        return Err(TableError::Fatal(format!("a batch get of {} keys ({} distinct)", keys.len(), unique.len())));
    }
    Ok(())
}

impl Table for MemoryTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        Ok(self.lock().get(key).cloned())
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
        check_batch(keys)?;
        let items = self.lock();
        Ok(keys.iter().map(|k| items.get(k).cloned()).collect())
    }

    async fn query(
        &self,
        pk: &str,
        sk_prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        order: Order,
    ) -> Result<Vec<Item>, TableError> {
        assert!(limit > 0 && limit <= MAX_QUERY_LIMIT, "query limit {limit} out of range");
        let items = self.lock();
        let in_partition =
            items.range(Key::new(pk, sk_prefix)..).take_while(|(k, _)| k.pk == pk && k.sk.starts_with(sk_prefix));
        let after = |k: &Key| match (start_after, order) {
            (None, _) => true,
            (Some(s), Order::Ascending) => k.sk.as_str() > s,
            (Some(s), Order::Descending) => k.sk.as_str() < s,
        };
        let page: Vec<Item> = match order {
            Order::Ascending => in_partition.filter(|(k, _)| after(k)).take(limit).map(|(_, i)| i.clone()).collect(),
            Order::Descending => {
                let all: Vec<_> = in_partition.filter(|(k, _)| after(k)).collect();
                all.into_iter().rev().take(limit).map(|(_, i)| i.clone()).collect()
            }
        };
        Ok(page)
    }

    /// A scan of every item: the embedded store is for local runs and tests, where that is
    /// cheap; DynamoDB keeps a real index.
    async fn query_index(
        &self,
        index: &IndexKeys,
        pk: &str,
        start_after: Option<&IndexPosition>,
        limit: usize,
        order: Order,
    ) -> Result<Vec<Item>, TableError> {
        assert!(limit > 0 && limit <= MAX_QUERY_LIMIT, "query limit {limit} out of range");
        let items = self.lock();
        let mut hits: Vec<(String, &Key, &Item)> = items
            .iter()
            .filter(|(_, i)| i.get(index.partition) == Some(&Attr::s(pk)))
            .filter_map(|(k, i)| match i.get(index.sort) {
                Some(Attr::S(sk)) => Some((sk.clone(), k, i)),
                _ => None,
            })
            .collect();
        hits.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        if order == Order::Descending {
            hits.reverse();
        }
        let after = |sk: &String, k: &Key| match (start_after, order) {
            (None, _) => true,
            (Some(pos), Order::Ascending) => (sk, k) > (&pos.index_sk, &pos.key),
            (Some(pos), Order::Descending) => (sk, k) < (&pos.index_sk, &pos.key),
        };
        Ok(hits.into_iter().filter(|(sk, k, _)| after(sk, k)).take(limit).map(|(_, _, i)| i.clone()).collect())
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), TableError> {
        if writes.is_empty() || writes.len() > MAX_TRANSACTION_ACTIONS {
            return Err(TableError::Fatal(format!("a transaction takes 1 to 100 actions, not {}", writes.len())));
        }
        let mut items = self.lock();
        let keys: Vec<Key> = writes.iter().map(Write::key).collect();
        let mut distinct = keys.clone();
        distinct.sort();
        distinct.dedup();
        if distinct.len() != keys.len() {
            // DynamoDB refuses this with a ValidationException; so do we.
            return Err(TableError::Fatal("two actions of one transaction target the same item".into()));
        }
        let failed: Vec<FailedCondition> = writes
            .iter()
            .zip(&keys)
            .enumerate()
            .filter(|(_, (w, k))| !holds(w.condition(), items.get(k)))
            .map(|(index, (_, k))| FailedCondition { index, current: items.get(k).cloned() })
            .collect();
        if !failed.is_empty() {
            return Err(TableError::ConditionFailed { failed });
        }
        for (write, key) in writes.into_iter().zip(keys) {
            match write {
                Write::Put { item, .. } => {
                    items.insert(key, item);
                }
                Write::Update { set, .. } => {
                    let item = items
                        .entry(key.clone())
                        .or_insert_with(|| Item::default().with(PK, Attr::s(&key.pk)).with(SK, Attr::s(&key.sk)));
                    for (name, value) in set {
                        item.set(&name, value);
                    }
                }
                Write::Delete { .. } => {
                    items.remove(&key);
                }
                Write::Check { .. } => {}
            }
        }
        Ok(())
    }
}

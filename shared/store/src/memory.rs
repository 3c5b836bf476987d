//! The embedded store: one table in memory, evaluating conditions and transactions the way
//! DynamoDB does (all actions checked first, then all applied, under one lock). It is the
//! default for running locally and for fast handler tests; the contract suite runs the same
//! tests against it and against DynamoDB Local so the two cannot drift.

use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::Mutex;

use super::item::{Attr, Condition, Item, Key, Order, PK, SK, Test, Write};
use super::table::{
    FailedGuard, FailedGuards, IndexQuery, MAX_TRANSACTION_ACTIONS, Query, Table, TableError, check_limit,
};

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

/// The guard of `condition` if it fails on `current`.
fn failed_guard(condition: &Condition, current: Option<&Item>) -> Option<FailedGuard> {
    let Condition::Guarded { guard, test } = condition else { return None };
    let holds = match test {
        Test::NotExists => current.is_none(),
        Test::Exists => current.is_some(),
        Test::Equals { attr, value } => current.and_then(|i| i.get(attr)) == Some(value),
        Test::NotExistsOrExpired { attr, now_epoch_s } => match current {
            None => true,
            Some(item) => matches!(item.get(attr), Some(Attr::N(n)) if *n < (*now_epoch_s).into()),
        },
        Test::NotExistsOrEquals { attr, value } => current.is_none_or(|i| i.get(attr) == Some(value)),
        Test::OneOf { attr, values } => current.and_then(|i| i.get(attr)).is_some_and(|v| values.contains(v)),
    };
    (!holds).then(|| FailedGuard { guard: *guard, current: current.cloned() })
}

/// What DynamoDB refuses in a `BatchGetItem`: no keys, too many, or one key twice.
fn check_batch(keys: &[Key]) -> Result<(), TableError> {
    let unique: std::collections::BTreeSet<&Key> = keys.iter().collect();
    if keys.is_empty() || keys.len() > super::table::MAX_BATCH_GET_KEYS || unique.len() != keys.len() {
        return Err(TableError::fatal(format!("a batch get of {} keys ({} distinct)", keys.len(), unique.len())));
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
        Query { pk, sk_prefix, start_after, limit, order }: Query<'_>,
    ) -> Result<Vec<Item>, TableError> {
        check_limit(limit);
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
        IndexQuery { index, pk, start_after, limit, order }: IndexQuery<'_>,
    ) -> Result<Vec<Item>, TableError> {
        check_limit(limit);
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
            return Err(TableError::fatal(format!("a transaction takes 1 to 100 actions, not {}", writes.len())));
        }
        let mut items = self.lock();
        let keys: Vec<Key> = writes.iter().map(Write::key).collect();
        let mut distinct = keys.clone();
        distinct.sort();
        distinct.dedup();
        if distinct.len() != keys.len() {
            // DynamoDB refuses this with a ValidationException; so do we.
            return Err(TableError::fatal("two actions of one transaction target the same item"));
        }
        let failed: Vec<FailedGuard> =
            writes.iter().zip(&keys).filter_map(|(w, k)| failed_guard(w.condition(), items.get(k))).collect();
        if !failed.is_empty() {
            return Err(TableError::ConditionFailed { failed: FailedGuards::new(failed) });
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
                Write::Add { add, set, set_if_absent, .. } => {
                    let item = items
                        .entry(key.clone())
                        .or_insert_with(|| Item::default().with(PK, Attr::s(&key.pk)).with(SK, Attr::s(&key.sk)));
                    for (attr, by) in add {
                        let before = match item.get(&attr) {
                            None => Decimal::ZERO,
                            Some(Attr::N(n)) => *n,
                            Some(other) => {
                                return Err(TableError::fatal(format!("ADD to {attr}, which holds {other:?}")));
                            }
                        };
                        item.set(&attr, Attr::N(before + by));
                    }
                    for (name, value) in set {
                        item.set(&name, value);
                    }
                    for (name, value) in set_if_absent {
                        if item.get(&name).is_none() {
                            item.set(&name, value);
                        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::Guard;

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("a runtime").block_on(f)
    }

    /// A cancelled transaction names the guards of exactly the actions that failed, with their
    /// current items, whatever their positions, and writes nothing.
    #[test]
    fn failed_actions_map_to_their_guards() {
        let table = MemoryTable::new();
        let (a, b, c) = (Key::new("A", "A"), Key::new("B", "B"), Key::new("C", "C"));
        let existing = Item::new(&a, "x").with("version", Attr::n(2));
        run(table.transact(vec![Write::Put { item: existing.clone(), condition: Condition::Always }])).unwrap();
        let err = run(table.transact(vec![
            Write::Put { item: Item::new(&c, "x"), condition: Condition::not_exists(Guard::EventNew) },
            Write::Check {
                key: a.clone(),
                condition: Condition::equals(Guard::WorkspaceVersion, "version", Attr::n(1)),
            },
            Write::Check { key: b.clone(), condition: Condition::exists(Guard::PartnerExists) },
            Write::Put { item: Item::new(&Key::new("B", "other"), "x"), condition: Condition::Always },
        ]))
        .unwrap_err();
        let TableError::ConditionFailed { failed } = err else { panic!("{err:?}") };
        assert_eq!(failed.guards().collect::<Vec<_>>(), [Guard::WorkspaceVersion, Guard::PartnerExists]);
        assert_eq!(failed.current(Guard::WorkspaceVersion), Some(&existing));
        assert!(failed.get(Guard::PartnerExists).is_some_and(|f| f.current.is_none()));
        assert!(!failed.contains(Guard::EventNew));
        assert_eq!(run(table.get(&c)).unwrap(), None);
    }
}

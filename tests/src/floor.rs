//! The floor of an operation's work, for the benchmarks to compare it with: one read and one
//! `TransactWriteItems` of the very items the operation writes (their attributes and sizes,
//! recorded from a real run), with no decision, no retry and no second call.
//!
//! An operation that costs more than its floor spends it on extra round trips, conflicts and
//! retries; the ratio between the two says how much, and nothing else (a comparator of another
//! shape would measure the shape instead).

use std::sync::Mutex;

use store::item::{PK, SK};
use store::{Attr, Condition, Guard, IndexQuery, Item, Key, Query, Table, TableError, Write};

/// A table that keeps the writes of the last transaction it passed on.
#[derive(Debug)]
pub struct Recording<T> {
    pub inner: T,
    last: Mutex<Vec<Write>>,
}

impl<T> Recording<T> {
    pub fn new(inner: T) -> Self {
        Self { inner, last: Mutex::new(Vec::new()) }
    }

    /// The writes of the last transaction sent, committed or not.
    pub fn last_transaction(&self) -> Vec<Write> {
        self.last.lock().expect("recording lock").clone()
    }
}

impl<T: Table> Table for Recording<T> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
        self.inner.get_many(keys).await
    }

    async fn query(&self, query: Query<'_>) -> Result<Vec<Item>, TableError> {
        self.inner.query(query).await
    }

    async fn query_index(&self, query: IndexQuery<'_>) -> Result<Vec<Item>, TableError> {
        self.inner.query_index(query).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), TableError> {
        *self.last.lock().expect("recording lock") = writes.clone();
        self.inner.transact(writes).await
    }
}

/// `template`'s writes for one more run of the floor: every item moves to a partition of its
/// own (`tag` before its partition key) so that runs never meet, and is guarded by "does not
/// exist yet", which holds there. The item at `hot` stays where it is, guarded by "exists":
/// the item every run shares (a hot wallet) is contended as the operation contends it, but
/// the floor never loses a race to it.
pub fn moved(template: &[Write], tag: &str, hot: Option<&Key>) -> Vec<Write> {
    template
        .iter()
        .map(|w| {
            let key = w.key();
            // Nothing reads which guard of the floor's writes failed (they never do): each keeps
            // its own, and one written without a condition borrows "a new item"'s.
            let guard = w.condition().guard().unwrap_or(Guard::LedgerEntryNew);
            let (key, condition) = if Some(&key) == hot {
                (key, Condition::exists(guard))
            } else {
                (Key::new(format!("{tag}#{}", key.pk), key.sk), Condition::not_exists(guard))
            };
            match w {
                Write::Put { item, .. } => {
                    let mut item = item.clone();
                    item.set(PK, Attr::s(key.pk)).set(SK, Attr::s(key.sk));
                    Write::Put { item, condition }
                }
                Write::Update { set, .. } => Write::Update { key, set: set.clone(), condition },
                Write::Delete { .. } => Write::Delete { key, condition },
                Write::Check { .. } => Write::Check { key, condition },
                Write::Add { add, set, set_if_absent, .. } => {
                    Write::Add { key, add: add.clone(), set: set.clone(), set_if_absent: set_if_absent.clone() }
                }
            }
        })
        .collect()
}

/// One run of the floor: one read of the items `writes` touches (a `GetItem` for one, a
/// `BatchGetItem` for more), then the one transaction.
pub async fn once(table: &impl Table, writes: Vec<Write>) -> Result<(), TableError> {
    // One action per key in a transaction, so the keys are distinct.
    let keys: Vec<Key> = writes.iter().map(Write::key).collect();
    match keys.as_slice() {
        [key] => {
            table.get(key).await?;
        }
        _ => {
            table.get_many(&keys).await?;
        }
    }
    table.transact(writes).await
}

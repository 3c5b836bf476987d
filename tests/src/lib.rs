//! Test harness shared by the integration tests and the wallet benchmark: a DynamoDB Local
//! client, a fresh table per test, and table wrappers that count calls or fail on purpose; and
//! Lambda's side of a function process ([`lambda`]) for the init benchmark and the wiring test.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use store::dynamodb::{DynamoTable, create_table};
use store::{IndexQuery, Item, Key, Query, Table, TableError, Write};

pub mod floor;
pub mod lambda;

/// Where DynamoDB Local listens; `scripts/test` starts it and sets this.
pub const ENDPOINT_VAR: &str = "DYNAMODB_ENDPOINT";

/// A client for DynamoDB Local. Panics with directions when the endpoint is not set: these
/// tests need the real thing, and skipping them silently would hide that they never ran.
pub async fn local_client() -> Client {
    let endpoint = std::env::var(ENDPOINT_VAR).unwrap_or_else(|_| {
        panic!("{ENDPOINT_VAR} is not set: run the tests with scripts/test, which starts DynamoDB Local")
    });
    store::dynamodb::local_client(&endpoint).await
}

/// A new, empty table with a unique name (3-255 characters of [a-zA-Z0-9_.-]).
pub async fn fresh_table() -> DynamoTable {
    let client = local_client().await;
    let name = format!("test-{:016x}", fastrand::u64(..));
    create_table(&client, &name).await.expect("create the test table");
    DynamoTable::new(client, name)
}

/// Counts the calls that reach the table, by kind.
#[derive(Debug, Default)]
pub struct CountingTable<T> {
    pub inner: T,
    pub gets: AtomicU64,
    pub queries: AtomicU64,
    pub transactions: AtomicU64,
}

impl<T> CountingTable<T> {
    pub fn new(inner: T) -> Self {
        Self { inner, gets: AtomicU64::new(0), queries: AtomicU64::new(0), transactions: AtomicU64::new(0) }
    }

    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.gets.load(Ordering::Relaxed),
            self.queries.load(Ordering::Relaxed),
            self.transactions.load(Ordering::Relaxed),
        )
    }
}

impl<T: Table> Table for CountingTable<T> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.inner.get(key).await
    }

    /// One request, counted with the reads.
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.inner.get_many(keys).await
    }

    async fn query(&self, query: Query<'_>) -> Result<Vec<Item>, TableError> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.inner.query(query).await
    }

    async fn query_index(&self, query: IndexQuery<'_>) -> Result<Vec<Item>, TableError> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.inner.query_index(query).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), TableError> {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.inner.transact(writes).await
    }
}

/// When an injected fault strikes, relative to the real call.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// The call fails before it reaches the table: nothing is written.
    Before(TableError),
    /// The call reaches the table and commits, then the caller sees this error anyway (a
    /// timeout after the write, say).
    After(TableError),
    /// The call goes through untouched: scripted to let earlier calls pass and strike a later one.
    Pass,
}

/// Which call a fault targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Get,
    Transact,
}

/// A table that fails on purpose: scripted faults are consumed in order, one per matching
/// call, then calls pass through. DynamoDB Local never produces `TransactionConflict` or
/// throttling on its own, so this is how those paths are exercised.
#[derive(Debug)]
pub struct FaultyTable<T> {
    pub inner: T,
    script: Mutex<VecDeque<(Call, Fault)>>,
    pub committed_despite_error: AtomicU64,
}

impl<T> FaultyTable<T> {
    pub fn new(inner: T) -> Self {
        Self { inner, script: Mutex::new(VecDeque::new()), committed_despite_error: AtomicU64::new(0) }
    }

    pub fn inject(&self, call: Call, fault: Fault) {
        self.script.lock().unwrap().push_back((call, fault));
    }

    pub fn pending(&self) -> usize {
        self.script.lock().unwrap().len()
    }

    fn next_fault(&self, call: Call) -> Option<Fault> {
        let mut script = self.script.lock().unwrap();
        let pos = script.iter().position(|(c, _)| *c == call)?;
        script.remove(pos).map(|(_, f)| f)
    }
}

impl<T: Table> Table for FaultyTable<T> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        match self.next_fault(Call::Get) {
            Some(Fault::Before(e)) => Err(e),
            Some(Fault::After(e)) => {
                self.inner.get(key).await?;
                Err(e)
            }
            Some(Fault::Pass) | None => self.inner.get(key).await,
        }
    }

    /// Scripted like a read: a `Call::Get` fault fails the whole batch.
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
        match self.next_fault(Call::Get) {
            Some(Fault::Before(e)) => Err(e),
            Some(Fault::After(e)) => {
                self.inner.get_many(keys).await?;
                Err(e)
            }
            Some(Fault::Pass) | None => self.inner.get_many(keys).await,
        }
    }

    async fn query(&self, query: Query<'_>) -> Result<Vec<Item>, TableError> {
        self.inner.query(query).await
    }

    async fn query_index(&self, query: IndexQuery<'_>) -> Result<Vec<Item>, TableError> {
        self.inner.query_index(query).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), TableError> {
        match self.next_fault(Call::Transact) {
            Some(Fault::Before(e)) => Err(e),
            Some(Fault::After(e)) => {
                if self.inner.transact(writes).await.is_ok() {
                    self.committed_despite_error.fetch_add(1, Ordering::Relaxed);
                }
                Err(e)
            }
            Some(Fault::Pass) | None => self.inner.transact(writes).await,
        }
    }
}

//! Small builders the tests share.

use domain::{Actor, EntryKind, LedgerEntry, Overdraft, PartnerId, PointsDelta, WalletId, WorkspaceId};
use integration_tests::fresh_table;
use serde_json::{Value, json};
use store::dynamodb::DynamoTable;
use store::memory::MemoryTable;
use store::{IdempotencyKey, Posting, Store};
use time::OffsetDateTime;
use time::macros::datetime;

pub const T0: OffsetDateTime = datetime!(2026-04-15 12:00 UTC);

pub fn memory_store() -> Store<MemoryTable> {
    Store::new(MemoryTable::new())
}

pub async fn dynamo_store() -> Store<DynamoTable> {
    Store::new(fresh_table().await)
}

/// A workspace wallet with a random id, so tests sharing a table never meet.
pub fn new_wallet() -> WalletId {
    WalletId::Workspace(WorkspaceId::parse(&format!("ws-{:012x}", fastrand::u64(..) >> 16)).unwrap())
}

/// A posting keyed by `key`; the request hash covers amount and guard, so reusing the key
/// with another amount is a different request.
pub fn posting(wallet: &WalletId, amount: &str, overdraft: Overdraft, key: &str) -> Posting {
    let request = format!("{amount}|{overdraft:?}");
    Posting {
        wallet: wallet.clone(),
        amount: PointsDelta::parse(amount).unwrap(),
        overdraft,
        kind: EntryKind::Adjustment { reason: format!("test {key}") },
        actor: Actor::User("tester".into()),
        at: T0,
        idempotency: IdempotencyKey::new(&wallet.to_string(), key, request.as_bytes()).unwrap(),
        // A workspace's wallet is listed with its partner's workspaces: here, a partner of tests.
        partner: matches!(wallet, WalletId::Workspace(_)).then(|| PartnerId::parse("tests").unwrap()),
        in_partner_ledger: false,
        also: Vec::new(),
    }
}

/// The response stored with the idempotency record.
pub fn respond(entry: &LedgerEntry) -> Value {
    json!({ "entry": entry.id.seq, "balance": entry.balance_after.to_string() })
}

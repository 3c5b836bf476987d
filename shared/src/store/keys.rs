//! Every key of the single table is built here, and nowhere else.
//!
//! | PK | SK | entity_type |
//! |---|---|---|
//! | `WS#w` / `PARTNER#p` | `WALLET` | `wallet` |
//! | `WS#w` / `PARTNER#p` | `LEDGER#<seq, 20 digits>` | `ledger_entry` |
//! | `IDEMP#<scope>#<key>` | `IDEMP` | `idempotency` |

use crate::domain::{PartnerId, WalletId, WorkspaceId};

use super::item::Key;

pub const WALLET_SK: &str = "WALLET";
pub const LEDGER_PREFIX: &str = "LEDGER#";
pub const IDEMP_SK: &str = "IDEMP";

pub fn workspace_pk(w: &WorkspaceId) -> String {
    format!("WS#{w}")
}

pub fn partner_pk(p: &PartnerId) -> String {
    format!("PARTNER#{p}")
}

pub fn wallet_pk(wallet: &WalletId) -> String {
    match wallet {
        WalletId::Workspace(w) => workspace_pk(w),
        WalletId::Partner(p) => partner_pk(p),
    }
}

pub fn wallet(wallet: &WalletId) -> Key {
    Key::new(wallet_pk(wallet), WALLET_SK)
}

/// Zero-padded so that the sort key order is the sequence order.
pub fn ledger_sk(seq: u64) -> String {
    format!("{LEDGER_PREFIX}{seq:020}")
}

pub fn ledger_entry(wallet: &WalletId, seq: u64) -> Key {
    Key::new(wallet_pk(wallet), ledger_sk(seq))
}

pub fn ledger_seq(sk: &str) -> Option<u64> {
    let digits = sk.strip_prefix(LEDGER_PREFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `scope` names who may use the key (e.g. a workspace and an operation), so two tenants'
/// keys never collide.
pub fn idempotency(scope: &str, key: &str) -> Key {
    Key::new(format!("IDEMP#{scope}#{key}"), IDEMP_SK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_keys_sort_by_sequence() {
        assert!(ledger_sk(9) < ledger_sk(10));
        assert_eq!(ledger_seq(&ledger_sk(u64::MAX)), Some(u64::MAX));
        assert_eq!(ledger_seq("LEDGER#12"), None);
        assert_eq!(ledger_seq("WALLET"), None);
    }
}

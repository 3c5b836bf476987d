//! The table's definition, in one place: tests and the local runner create the table from it,
//! and template.yaml declares the same (a test keeps them equal).

/// Attribute names of the primary key and of the global secondary indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexKeys {
    pub name: &'static str,
    pub partition: &'static str,
    pub sort: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDefinition {
    pub primary: IndexKeys,
    /// Global secondary indexes, all projecting every attribute.
    pub global_indexes: &'static [IndexKeys],
    /// The attribute DynamoDB's TTL deletes items by (epoch seconds).
    pub ttl_attribute: &'static str,
}

/// GSI1 lists renewals due: `DUE#<shard>` / `<period_end>#<workspace>` (write-sharded).
pub const DUE_INDEX: IndexKeys = IndexKeys { name: "GSI1", partition: "GSI1PK", sort: "GSI1SK" };
/// GSI2 lists a partner's ledger across its workspaces: `PARTNER#p` /
/// `<created_at in ns, 20 digits>#<wallet pk>#<seq>`.
pub const PARTNER_LEDGER_INDEX: IndexKeys = IndexKeys { name: "GSI2", partition: "GSI2PK", sort: "GSI2SK" };
/// GSI3 lists a partner's workspaces with their balances: `PARTNER#p` / `WS#w#PROFILE` on each
/// workspace profile and `WS#w#WALLET` on its wallet, so one Query reads both, side by side.
pub const WORKSPACE_LIST_INDEX: IndexKeys = IndexKeys { name: "GSI3", partition: "GSI3PK", sort: "GSI3SK" };

pub const TABLE: TableDefinition = TableDefinition {
    primary: IndexKeys { name: "primary", partition: super::item::PK, sort: super::item::SK },
    global_indexes: &[DUE_INDEX, PARTNER_LEDGER_INDEX, WORKSPACE_LIST_INDEX],
    ttl_attribute: super::TTL_ATTR,
};

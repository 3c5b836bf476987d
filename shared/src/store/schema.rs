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

pub const TABLE: TableDefinition = TableDefinition {
    primary: IndexKeys { name: "primary", partition: super::item::PK, sort: super::item::SK },
    // GSI1 lists renewals due: `DUE#<shard>` / `<period_end>#<workspace>` (write-sharded).
    global_indexes: &[IndexKeys { name: "GSI1", partition: "GSI1PK", sort: "GSI1SK" }],
    ttl_attribute: super::TTL_ATTR,
};

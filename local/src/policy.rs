//! template.yaml's least-privilege policies, enforced locally: while a function's handler
//! runs, every table call it makes is checked against the DynamoDB actions its `Policies`
//! allow, and one it would be denied in AWS fails here too (`AccessDeniedException`, a 500).
//! A policy too tight for the code then shows up on the first local run, not after a deploy.
//!
//! A transaction is authorized per action, as IAM does it: a `Put` needs `dynamodb:PutItem`,
//! an `Update` `dynamodb:UpdateItem`, a `Delete` `dynamodb:DeleteItem`, a `Check`
//! `dynamodb:ConditionCheckItem`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use store::{IndexQuery, Item, Key, Query, Table, TableError, Write};

/// What one function may do to the table, as its template policies say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamoPolicy {
    /// Actions (without the `dynamodb:` prefix; `*` for all) on the table itself.
    pub table: BTreeSet<String>,
    /// Actions on each index by name (`*`: every index).
    pub indexes: BTreeMap<String, BTreeSet<String>>,
}

fn allows(actions: &BTreeSet<String>, action: &str) -> bool {
    actions.contains(action) || actions.contains("*")
}

impl DynamoPolicy {
    pub fn allows_table(&self, action: &str) -> bool {
        allows(&self.table, action)
    }

    pub fn allows_index(&self, index: &str, action: &str) -> bool {
        [index, "*"].iter().any(|i| self.indexes.get(*i).is_some_and(|a| allows(a, action)))
    }
}

/// The policy in force for the handler running in this task.
#[derive(Debug, Clone)]
pub struct ActivePolicy {
    /// The function's logical id, for the error.
    pub function: String,
    pub policy: DynamoPolicy,
}

tokio::task_local! {
    static ACTIVE: Arc<ActivePolicy>;
}

/// Runs `f` (a handler's future) under `policy`.
pub async fn scope<F: std::future::Future>(policy: Arc<ActivePolicy>, f: F) -> F::Output {
    ACTIVE.scope(policy, f).await
}

fn check(action: &str, index: Option<&str>) -> Result<(), TableError> {
    // Outside a handler (seeding the demo data) nothing is restricted.
    let denied = ACTIVE
        .try_with(|active| {
            let ok = match index {
                None => active.policy.allows_table(action),
                Some(i) => active.policy.allows_index(i, action),
            };
            (!ok).then(|| active.function.clone())
        })
        .ok()
        .flatten();
    match denied {
        None => Ok(()),
        Some(function) => {
            let resource = index.map_or("the table".to_owned(), |i| format!("index {i}"));
            tracing::error!(
                function,
                action = %format!("dynamodb:{action}"),
                %resource,
                "template.yaml does not allow this: the deployed function would get AccessDeniedException"
            );
            Err(TableError::fatal(format!(
                "AccessDeniedException: {function} is not authorized to perform dynamodb:{action} on {resource}"
            )))
        }
    }
}

/// A table that checks every call against the [`ActivePolicy`] of the running handler.
#[derive(Debug, Default)]
pub struct PolicyTable<T> {
    pub inner: T,
}

impl<T> PolicyTable<T> {
    pub fn new(inner: T) -> Self {
        Self { inner }
    }
}

impl<T: Table> Table for PolicyTable<T> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        check("GetItem", None)?;
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
        check("BatchGetItem", None)?;
        self.inner.get_many(keys).await
    }

    async fn query(&self, query: Query<'_>) -> Result<Vec<Item>, TableError> {
        check("Query", None)?;
        self.inner.query(query).await
    }

    async fn query_index(&self, query: IndexQuery<'_>) -> Result<Vec<Item>, TableError> {
        check("Query", Some(query.index.name))?;
        self.inner.query_index(query).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), TableError> {
        for w in &writes {
            check(
                match w {
                    Write::Put { .. } => "PutItem",
                    Write::Update { .. } | Write::Add { .. } => "UpdateItem",
                    Write::Delete { .. } => "DeleteItem",
                    Write::Check { .. } => "ConditionCheckItem",
                },
                None,
            )?;
        }
        self.inner.transact(writes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::memory::MemoryTable;

    fn policy(table: &[&str], indexes: &[(&str, &str)]) -> Arc<ActivePolicy> {
        let mut p = DynamoPolicy { table: table.iter().map(|a| a.to_string()).collect(), ..Default::default() };
        for (i, a) in indexes {
            p.indexes.entry(i.to_string()).or_default().insert(a.to_string());
        }
        Arc::new(ActivePolicy { function: "Fn".into(), policy: p })
    }

    #[tokio::test]
    async fn calls_outside_the_policy_are_denied() {
        let t = PolicyTable::new(MemoryTable::new());
        let key = Key::new("A", "B");
        let put = || {
            vec![Write::Put {
                item: Item::default().with("PK", store::Attr::s("A")).with("SK", store::Attr::s("B")),
                condition: store::Condition::Always,
            }]
        };
        assert!(t.transact(put()).await.is_ok(), "no policy outside a handler");
        assert!(scope(policy(&["GetItem"], &[]), t.get(&key)).await.is_ok());
        let denied = scope(policy(&["GetItem"], &[]), t.transact(put())).await.unwrap_err();
        assert!(matches!(&denied, TableError::Fatal { what, .. } if what.contains("dynamodb:PutItem")), "{denied:?}");
        assert!(scope(policy(&["*"], &[]), t.transact(put())).await.is_ok());
        let gsi = store::schema::TABLE.global_indexes[0];
        let query_gsi =
            || IndexQuery { index: &gsi, pk: "X", start_after: None, limit: 1, order: store::Order::Ascending };
        assert!(scope(policy(&["Query"], &[]), t.query_index(query_gsi())).await.is_err());
        let by_name = policy(&[], &[(gsi.name, "Query")]);
        assert!(scope(by_name, t.query_index(query_gsi())).await.is_ok());
        let any_index = policy(&[], &[("*", "Query")]);
        assert!(scope(any_index, t.query_index(query_gsi())).await.is_ok());
    }
}

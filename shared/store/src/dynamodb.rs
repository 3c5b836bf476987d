//! The production table: DynamoDB through aws-sdk-dynamodb.
//!
//! Every transaction asks for `ReturnValuesOnConditionCheckFailure = ALL_OLD`, so a cancelled
//! transaction hands back the items whose conditions failed and a version conflict is retried
//! with fresh state at no extra read. SDK errors are classified here, once, into
//! [`TableError`]; nothing else in the code base looks at an SDK error.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, ConditionCheck, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TransactWriteItem, Update,
};
use rust_decimal::Decimal;

use super::item::{Attr, Condition, Guard, Item, Key, Order, PK, SK, Test, Write};
use super::schema::TABLE;
use super::table::{
    FailedGuard, FailedGuards, IndexQuery, MAX_BATCH_GET_KEYS, MAX_TRANSACTION_ACTIONS, Query, SdkCause, Table,
    TableError, check_limit,
};

/// A query stops after this many round trips even if DynamoDB keeps returning short pages
/// (each page is at most 1 MB; our pages are far smaller).
const MAX_QUERY_ROUNDS: usize = 16;
/// A batch get asks again for unprocessed keys at most this often.
const MAX_BATCH_GET_ROUNDS: u32 = 5;
/// How long `create_table` waits for the table to become active.
const CREATE_WAIT_ROUNDS: u32 = 120;
const CREATE_WAIT_STEP: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct DynamoTable {
    client: Client,
    table_name: String,
}

impl DynamoTable {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self { client, table_name: table_name.into() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table_name(&self) -> &str {
        &self.table_name
    }
}

fn to_av(attr: &Attr) -> AttributeValue {
    match attr {
        Attr::S(s) => AttributeValue::S(s.clone()),
        Attr::N(n) => AttributeValue::N(n.to_string()),
        Attr::Bool(b) => AttributeValue::Bool(*b),
        Attr::Null => AttributeValue::Null(true),
        Attr::L(l) => AttributeValue::L(l.iter().map(to_av).collect()),
        Attr::M(m) => AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), to_av(v))).collect()),
    }
}

fn from_av(av: &AttributeValue) -> Result<Attr, TableError> {
    Ok(match av {
        AttributeValue::S(s) => Attr::S(s.clone()),
        AttributeValue::N(n) => Attr::N(
            Decimal::from_str(n)
                .or_else(|_| Decimal::from_scientific(n))
                .map_err(|_| TableError::fatal(format!("number {n:?} does not fit a decimal")))?,
        ),
        AttributeValue::Bool(b) => Attr::Bool(*b),
        AttributeValue::Null(_) => Attr::Null,
        AttributeValue::L(l) => Attr::L(l.iter().map(from_av).collect::<Result<_, _>>()?),
        AttributeValue::M(m) => {
            Attr::M(m.iter().map(|(k, v)| Ok((k.clone(), from_av(v)?))).collect::<Result<_, TableError>>()?)
        }
        other => return Err(TableError::fatal(format!("attribute type we never write: {other:?}"))),
    })
}

fn to_map(item: &Item) -> HashMap<String, AttributeValue> {
    item.0.iter().map(|(k, v)| (k.clone(), to_av(v))).collect()
}

fn from_map(map: &HashMap<String, AttributeValue>) -> Result<Item, TableError> {
    Ok(Item(map.iter().map(|(k, v)| Ok((k.clone(), from_av(v)?))).collect::<Result<_, TableError>>()?))
}

fn key_map(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// A condition as a DynamoDB expression with its placeholders.
#[derive(Default)]
struct Expression {
    text: Option<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expression {
    fn condition(condition: &Condition) -> Self {
        let mut e = Self::default();
        let Condition::Guarded { test, .. } = condition else { return e };
        e.text = match test {
            Test::NotExists => Some(format!("attribute_not_exists({PK})")),
            Test::Exists => Some(format!("attribute_exists({PK})")),
            Test::Equals { attr, value } => {
                e.names.insert("#c".into(), attr.clone());
                e.values.insert(":c".into(), to_av(value));
                Some("#c = :c".into())
            }
            Test::NotExistsOrExpired { attr, now_epoch_s } => {
                e.names.insert("#c".into(), attr.clone());
                e.values.insert(":c".into(), AttributeValue::N(now_epoch_s.to_string()));
                Some(format!("attribute_not_exists({PK}) OR #c < :c"))
            }
            Test::NotExistsOrEquals { attr, value } => {
                e.names.insert("#c".into(), attr.clone());
                e.values.insert(":c".into(), to_av(value));
                Some(format!("attribute_not_exists({PK}) OR #c = :c"))
            }
            Test::OneOf { attr, values } => {
                e.names.insert("#c".into(), attr.clone());
                let placeholders: Vec<String> = (0..values.len()).map(|i| format!(":c{i}")).collect();
                for (name, value) in placeholders.iter().zip(values) {
                    e.values.insert(name.clone(), to_av(value));
                }
                Some(format!("#c IN ({})", placeholders.join(", ")))
            }
        };
        e
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> TableError {
    TableError::fatal("request not built").caused_by(SdkCause::new(e))
}

/// A put, a delete or a check of a transaction: `builder` (which names the item or its key) on
/// `table`, under `cond`, with the item back when the condition fails. Their builders are
/// distinct types with the same setters.
macro_rules! conditioned {
    ($builder:expr, $table:expr, $cond:expr) => {
        $builder
            .table_name($table)
            .set_condition_expression($cond.text.clone())
            .set_expression_attribute_names($cond.names())
            .set_expression_attribute_values($cond.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err)?
    };
}

/// `#uN = :uN` for each attribute of `set`, its name and value added to the expression's.
fn assignments(
    set: &[(String, Attr)],
    names: &mut HashMap<String, String>,
    values: &mut HashMap<String, AttributeValue>,
) -> Vec<String> {
    set.iter()
        .enumerate()
        .map(|(i, (name, value))| {
            names.insert(format!("#u{i}"), name.clone());
            values.insert(format!(":u{i}"), to_av(value));
            format!("#u{i} = :u{i}")
        })
        .collect()
}

impl DynamoTable {
    fn transact_item(&self, write: &Write) -> Result<TransactWriteItem, TableError> {
        let cond = Expression::condition(write.condition());
        let item = match write {
            Write::Put { item, .. } => TransactWriteItem::builder().put(conditioned!(
                Put::builder().set_item(Some(to_map(item))),
                &self.table_name,
                cond
            )),
            Write::Update { key, set, .. } => {
                let mut names = cond.names.clone();
                let mut values = cond.values.clone();
                let assignments = assignments(set, &mut names, &mut values);
                TransactWriteItem::builder().update(
                    Update::builder()
                        .table_name(&self.table_name)
                        .set_key(Some(key_map(key)))
                        .update_expression(format!("SET {}", assignments.join(", ")))
                        .set_condition_expression(cond.text.clone())
                        .set_expression_attribute_names(Some(names))
                        .set_expression_attribute_values((!values.is_empty()).then_some(values))
                        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                        .build()
                        .map_err(build_err)?,
                )
            }
            Write::Add { key, add, set, set_if_absent } => {
                let mut names = HashMap::new();
                let mut values = HashMap::new();
                let mut sets = assignments(set, &mut names, &mut values);
                for (i, (name, value)) in set_if_absent.iter().enumerate() {
                    names.insert(format!("#f{i}"), name.clone());
                    values.insert(format!(":f{i}"), to_av(value));
                    sets.push(format!("#f{i} = if_not_exists(#f{i}, :f{i})"));
                }
                let mut adds = Vec::with_capacity(add.len());
                for (i, (name, by)) in add.iter().enumerate() {
                    names.insert(format!("#a{i}"), name.clone());
                    values.insert(format!(":a{i}"), to_av(&Attr::N(*by)));
                    adds.push(format!("#a{i} :a{i}"));
                }
                let mut expression = Vec::with_capacity(2);
                if !sets.is_empty() {
                    expression.push(format!("SET {}", sets.join(", ")));
                }
                if !adds.is_empty() {
                    expression.push(format!("ADD {}", adds.join(", ")));
                }
                assert!(!expression.is_empty(), "an Add that changes nothing");
                TransactWriteItem::builder().update(
                    Update::builder()
                        .table_name(&self.table_name)
                        .set_key(Some(key_map(key)))
                        .update_expression(expression.join(" "))
                        .set_expression_attribute_names(Some(names))
                        .set_expression_attribute_values(Some(values))
                        .build()
                        .map_err(build_err)?,
                )
            }
            Write::Delete { key, .. } => TransactWriteItem::builder().delete(conditioned!(
                Delete::builder().set_key(Some(key_map(key))),
                &self.table_name,
                cond
            )),
            Write::Check { key, condition } => {
                assert!(*condition != Condition::Always, "a check without a condition checks nothing");
                TransactWriteItem::builder().condition_check(conditioned!(
                    ConditionCheck::builder().set_key(Some(key_map(key))),
                    &self.table_name,
                    cond
                ))
            }
        };
        Ok(item.build())
    }
}

/// Error codes after which nothing was written and a retry may succeed.
const TRANSIENT_CODES: &[&str] = &[
    "TransactionConflict",
    "TransactionConflictException",
    "ThrottlingError",
    "ThrottlingException",
    "ProvisionedThroughputExceeded",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionInProgressException",
    "LimitExceededException",
];

/// Classifies any SDK error but a cancelled transaction, keeping it as the source.
fn classify<E, R>(err: SdkError<E, R>) -> TableError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let classified = match &err {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().unwrap_or("unknown");
            if TRANSIENT_CODES.contains(&code) {
                TableError::transient(code)
            } else if code == "InternalServerError" || code == "ServiceUnavailable" {
                // A 5xx from DynamoDB does not say whether the write happened.
                TableError::ambiguous(code)
            } else {
                TableError::fatal(code)
            }
        }
        SdkError::ConstructionFailure(_) => TableError::fatal("request not built"),
        // Timeouts, dropped connections, unreadable responses: the request may have landed.
        _ => TableError::ambiguous("no answer"),
    };
    classified.caused_by(SdkCause::new(err))
}

/// Reads the reasons of a cancelled transaction, one per action in the order of `guards` (the
/// guard of each action's condition): a condition failure reports its action's guard with the
/// current item.
pub fn classify_cancellation(reasons: &[CancellationReason], guards: &[Option<Guard>]) -> TableError {
    let code = |r: &CancellationReason| r.code().unwrap_or("None").to_owned();
    let failed: Result<Vec<FailedGuard>, TableError> = reasons
        .iter()
        .zip(guards)
        .filter(|(r, _)| code(r) == "ConditionalCheckFailed")
        .map(|(r, guard)| {
            let guard = guard.ok_or_else(|| TableError::fatal("a condition failed on an action that has none"))?;
            Ok(FailedGuard { guard, current: r.item().map(from_map).transpose()? })
        })
        .collect();
    let failed = match failed {
        Ok(f) => f,
        Err(e) => return e,
    };
    if !failed.is_empty() {
        return TableError::ConditionFailed { failed: FailedGuards::new(failed) };
    }
    let codes: Vec<String> = reasons.iter().map(code).filter(|c| c != "None").collect();
    if codes.iter().all(|c| TRANSIENT_CODES.contains(&c.as_str())) && !codes.is_empty() {
        TableError::transient(codes.join(","))
    } else {
        TableError::fatal(format!("transaction cancelled: {codes:?}"))
    }
}

fn classify_transact<R>(err: SdkError<TransactWriteItemsError, R>, guards: &[Option<Guard>]) -> TableError
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let SdkError::ServiceError(ctx) = &err
        && let TransactWriteItemsError::TransactionCanceledException(e) = ctx.err()
    {
        return classify_cancellation(e.cancellation_reasons(), guards).caused_by(SdkCause::new(err));
    }
    classify(err)
}

impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        let get = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(key_map(key)))
            .consistent_read(true)
            .send();
        let out = traced("GetItem", &self.table_name, get).await.map_err(classify)?;
        out.item().map(from_map).transpose()
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
        assert!(!keys.is_empty() && keys.len() <= MAX_BATCH_GET_KEYS, "a batch get of {} keys", keys.len());
        let mut found: HashMap<Key, Item> = HashMap::with_capacity(keys.len());
        let mut pending: Vec<HashMap<String, AttributeValue>> = keys.iter().map(key_map).collect();
        // DynamoDB may answer part of a batch and hand back the rest as `UnprocessedKeys` (under
        // throttling): ask again for those, a bounded number of times, backing off a little.
        for round in 0..MAX_BATCH_GET_ROUNDS {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(build_err)?;
            let get = self.client.batch_get_item().request_items(&self.table_name, request).send();
            let out = traced("BatchGetItem", &self.table_name, get).await.map_err(classify)?;
            for map in out.responses().and_then(|r| r.get(&self.table_name)).into_iter().flatten() {
                let item = from_map(map)?;
                let key = item.key().ok_or_else(|| TableError::fatal("a batch get returned an item without keys"))?;
                found.insert(key, item);
            }
            pending = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table_name))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(keys.iter().map(|k| found.remove(k)).collect());
            }
            tokio::time::sleep(Duration::from_millis(10 << round)).await;
        }
        Err(TableError::transient(format!(
            "{} keys still unprocessed after {MAX_BATCH_GET_ROUNDS} rounds",
            pending.len()
        )))
    }

    async fn query(
        &self,
        Query { pk, sk_prefix, start_after, limit, order }: Query<'_>,
    ) -> Result<Vec<Item>, TableError> {
        let query = self
            .client
            .query()
            .table_name(&self.table_name)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .scan_index_forward(order == Order::Ascending)
            .consistent_read(true);
        // A key condition can't compare with an empty string: no prefix is the whole partition.
        let query = if sk_prefix.is_empty() {
            query.key_condition_expression("#pk = :pk")
        } else {
            query
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":prefix", AttributeValue::S(sk_prefix.to_owned()))
        };
        collect_pages(query, start_after.map(|sk| key_map(&Key::new(pk, sk))), limit).await
    }

    async fn query_index(
        &self,
        IndexQuery { index, pk, start_after, limit, order }: IndexQuery<'_>,
    ) -> Result<Vec<Item>, TableError> {
        let start = start_after.map(|pos| {
            let mut k = key_map(&pos.key);
            k.insert(index.partition.to_owned(), AttributeValue::S(pk.to_owned()));
            k.insert(index.sort.to_owned(), AttributeValue::S(pos.index_sk.clone()));
            k
        });
        let query = self
            .client
            .query()
            .table_name(&self.table_name)
            .index_name(index.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", index.partition)
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .scan_index_forward(order == Order::Ascending);
        collect_pages(query, start, limit).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), TableError> {
        if writes.is_empty() || writes.len() > MAX_TRANSACTION_ACTIONS {
            return Err(TableError::fatal(format!("a transaction takes 1 to 100 actions, not {}", writes.len())));
        }
        let items = writes.iter().map(|w| self.transact_item(w)).collect::<Result<Vec<_>, _>>()?;
        let guards: Vec<Option<Guard>> = writes.iter().map(|w| w.condition().guard()).collect();
        let write = self.client.transact_write_items().set_transact_items(Some(items)).send();
        traced("TransactWriteItems", &self.table_name, write).await.map_err(|e| classify_transact(e, &guards))?;
        Ok(())
    }
}

/// Runs `query` from `start` until `limit` items are read or the results end. DynamoDB may
/// stop a page early (1 MB), so this follows `LastEvaluatedKey`, at most
/// [`MAX_QUERY_ROUNDS`] times.
async fn collect_pages(
    query: QueryFluentBuilder,
    mut start: Option<HashMap<String, AttributeValue>>,
    limit: usize,
) -> Result<Vec<Item>, TableError> {
    check_limit(limit);
    let mut items = Vec::with_capacity(limit);
    for _ in 0..MAX_QUERY_ROUNDS {
        let remaining = i32::try_from(limit - items.len()).expect("limit <= MAX_QUERY_LIMIT");
        let page = query.clone().set_exclusive_start_key(start.take()).limit(remaining).send();
        let out =
            traced("Query", query.get_table_name().as_deref().unwrap_or_default(), page).await.map_err(classify)?;
        for map in out.items() {
            items.push(from_map(map)?);
        }
        match out.last_evaluated_key() {
            Some(lek) if items.len() < limit => start = Some(lek.clone()),
            _ => return Ok(items),
        }
    }
    Ok(items)
}

/// Awaits one DynamoDB call (with the SDK's retries) inside a span that `runtime`'s X-Ray layer
/// sends as a subsegment when the function's tracing is on (the span contract is in
/// `runtime::xray`): the operation, the table, and how the call failed. With tracing off the
/// span is disabled and this is the bare call.
async fn traced<T, E>(
    operation: &'static str,
    table: &str,
    call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata,
{
    use tracing::field::Empty;
    // On the heap: an SDK call's future is large, and a debug build's stack is not.
    let call = Box::pin(call);
    let span = tracing::info_span!(target: "xray", "DynamoDB", aws.operation = operation, aws.table_name = table,
        http.status = Empty, error = Empty, throttle = Empty, fault = Empty);
    if span.is_disabled() {
        return call.await;
    }
    let result = tracing::Instrument::instrument(call, span.clone()).await;
    if let Err(e) = &result {
        let status = e.raw_response().map(|r| r.status().as_u16());
        // DynamoDB throttles with a 400 and one of these codes.
        let throttled = e.code().is_some_and(|c| {
            c.contains("Throttl") || c.starts_with("ProvisionedThroughputExceeded") || c == "RequestLimitExceeded"
        });
        if let Some(status) = status {
            span.record("http.status", u64::from(status));
        }
        match status {
            Some(400..=499) => span.record("error", true).record("throttle", throttled),
            // A 5xx, or no answer (a timeout, a dropped connection).
            _ => span.record("fault", true),
        };
    }
    result
}

/// A client for a DynamoDB outside AWS (DynamoDB Local): static dummy credentials, region
/// us-east-1, the given endpoint. The tests and the local runner use it; Lambdas never do.
pub async fn local_client(endpoint: &str) -> Client {
    let credentials = aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "static");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .load()
        .await;
    // DynamoDB Local shares its machine with the tests and builds that drive it: it may pause
    // for longer than DynamoDB does.
    client(&config, LOCAL_ATTEMPT_TIMEOUT, LOCAL_ATTEMPT_TIMEOUT * 3)
}

/// [`ATTEMPT_TIMEOUT`] for DynamoDB Local.
pub const LOCAL_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one DynamoDB request may go unanswered before the SDK gives it up and sends it again
/// (on another connection): a connection that stalls costs this, not the function's whole time.
/// DynamoDB answers in milliseconds; a transaction that lost a race is cancelled at once.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// The most one operation takes with the SDK's own retries (3 attempts): under the API
/// functions' 10 s, so a DynamoDB that keeps stalling answers 503 rather than a Lambda timeout.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(6);

/// The DynamoDB client of `config`, with the time limits of one attempt and one operation. A
/// request given up on may have landed: the store treats it as an outcome it can't know (a
/// conditioned write is refused by its own condition when tried again).
pub fn client(config: &aws_config::SdkConfig, attempt: Duration, operation: Duration) -> Client {
    let timeouts = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(attempt)
        .operation_timeout(operation)
        .build();
    Client::from_conf(aws_sdk_dynamodb::config::Builder::from(config).timeout_config(timeouts).build())
}

/// Creates the table as [`TABLE`] defines it (tests and local runs; production tables come
/// from template.yaml) and waits until it is active.
pub async fn create_table(client: &Client, table_name: &str) -> Result<(), TableError> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(build_err)
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder().attribute_name(name).key_type(kind).build().map_err(build_err)
    };
    let mut request = client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(TABLE.primary.partition)?)
        .attribute_definitions(attr(TABLE.primary.sort)?)
        .key_schema(key(TABLE.primary.partition, KeyType::Hash)?)
        .key_schema(key(TABLE.primary.sort, KeyType::Range)?);
    for gsi in TABLE.global_indexes {
        request = request
            .attribute_definitions(attr(gsi.partition)?)
            .attribute_definitions(attr(gsi.sort)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(gsi.name)
                    .key_schema(key(gsi.partition, KeyType::Hash)?)
                    .key_schema(key(gsi.sort, KeyType::Range)?)
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()
                    .map_err(build_err)?,
            );
    }
    request.send().await.map_err(classify)?;
    for _ in 0..CREATE_WAIT_ROUNDS {
        let out = client.describe_table().table_name(table_name).send().await.map_err(classify)?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            client
                .update_time_to_live()
                .table_name(table_name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(TABLE.ttl_attribute)
                        .enabled(true)
                        .build()
                        .map_err(build_err)?,
                )
                .send()
                .await
                .map_err(classify)?;
            return Ok(());
        }
        tokio::time::sleep(CREATE_WAIT_STEP).await;
    }
    Err(TableError::fatal(format!("table {table_name} did not become active")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancellation_reasons_are_classified() {
        let reason = |code: &str| CancellationReason::builder().code(code).build();
        let with_item = CancellationReason::builder()
            .code("ConditionalCheckFailed")
            .item("PK", AttributeValue::S("WS#a".into()))
            .item("version", AttributeValue::N("7".into()))
            .build();
        let guards = [Some(Guard::IdempotencyNew), Some(Guard::WalletVersion), Some(Guard::LedgerEntryNew)];
        match classify_cancellation(&[reason("None"), with_item, reason("None")], &guards) {
            TableError::ConditionFailed { failed } => {
                assert_eq!(failed.guards().collect::<Vec<_>>(), [Guard::WalletVersion]);
                let item = failed.current(Guard::WalletVersion).unwrap();
                assert_eq!(item.get("version"), Some(&Attr::N(7.into())));
            }
            other => panic!("{other:?}"),
        }
        let two = [Some(Guard::PaymentNew), Some(Guard::CheckoutStatus)];
        assert!(matches!(
            classify_cancellation(&[reason("TransactionConflict"), reason("None")], &two),
            TableError::Transient { .. }
        ));
        assert!(matches!(classify_cancellation(&[reason("ThrottlingError")], &two[..1]), TableError::Transient { .. }));
        assert!(matches!(classify_cancellation(&[reason("ValidationError")], &two[..1]), TableError::Fatal { .. }));
    }

    /// Each failed action reports the guard of its own condition, whatever its position; the
    /// actions whose conditions held are not reported.
    #[test]
    fn failed_actions_map_to_their_guards() {
        let failed = || CancellationReason::builder().code("ConditionalCheckFailed").build();
        let held = || CancellationReason::builder().code("None").build();
        let guards = [None, Some(Guard::PaymentNew), Some(Guard::WorkspaceVersion), Some(Guard::EventNew)];
        match classify_cancellation(&[held(), failed(), held(), failed()], &guards) {
            TableError::ConditionFailed { failed } => {
                assert_eq!(failed.guards().collect::<Vec<_>>(), [Guard::PaymentNew, Guard::EventNew]);
                assert!(failed.contains(Guard::PaymentNew) && !failed.contains(Guard::WorkspaceVersion));
                assert_eq!(failed.current(Guard::PaymentNew), None);
            }
            other => panic!("{other:?}"),
        }
        // DynamoDB never fails an action that has no condition; if it says so, nothing is guessed.
        assert!(matches!(classify_cancellation(&[failed(), held()], &guards[..2]), TableError::Fatal { .. }));
    }

    /// The guard names a failure; it never changes the expression DynamoDB evaluates.
    #[test]
    fn expressions_are_the_tests_alone() {
        let text = |c: &Condition| Expression::condition(c).text;
        assert_eq!(text(&Condition::Always), None);
        assert_eq!(text(&Condition::not_exists(Guard::PaymentNew)).as_deref(), Some("attribute_not_exists(PK)"));
        assert_eq!(text(&Condition::exists(Guard::PartnerExists)).as_deref(), Some("attribute_exists(PK)"));
        let version = Expression::condition(&Condition::equals(Guard::WalletVersion, "version", Attr::n(3)));
        assert_eq!(version.text.as_deref(), Some("#c = :c"));
        assert_eq!(version.names["#c"], "version");
        assert_eq!(version.values[":c"], AttributeValue::N("3".into()));
        let expired = Condition::not_exists_or_expired(Guard::IdempotencyNew, "expires_at", 100);
        assert_eq!(text(&expired).as_deref(), Some("attribute_not_exists(PK) OR #c < :c"));
        let claim = Condition::not_exists_or_equals(Guard::StripeAccountClaim, "partner_id", Attr::s("p-1"));
        assert_eq!(text(&claim).as_deref(), Some("attribute_not_exists(PK) OR #c = :c"));
        let from = Condition::one_of(Guard::CheckoutStatus, "status", &["pending", "awaiting_payment"]);
        assert_eq!(text(&from).as_deref(), Some("#c IN (:c0, :c1)"));
    }

    #[test]
    fn numbers_round_trip_exactly() {
        let n = Decimal::from_str("-1234567.8901").unwrap();
        assert_eq!(from_av(&to_av(&Attr::N(n))).unwrap(), Attr::N(n));
        assert_eq!(from_av(&AttributeValue::N("1E+3".into())).unwrap(), Attr::N(1000.into()));
    }
}

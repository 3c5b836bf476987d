//! The floor of a first request for the init benchmark (`init-bench --first-request`): a Lambda
//! that reads one DynamoDB item per event and does nothing else, with the SDK configured as the
//! functions configure it (`runtime::aws_config`) and its client built at start. What it pays on
//! its first request over its later ones (the SDK's first call: a new connection, its first
//! signing, its endpoint resolved) is what any function that reads DynamoDB pays, whatever it
//! does around the read.
//!
//! An example of the tests crate, like `empty-lambda`, for the same reason.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::lambda_runtime::{self, Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = runtime::aws_config().await?;
    let client = store::dynamodb::client(&config, store::dynamodb::ATTEMPT_TIMEOUT, store::dynamodb::OPERATION_TIMEOUT);
    let table = std::env::var("TABLE_NAME")?;
    let (client, table) = (&client, table.as_str());
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async move {
        let read = client
            .get_item()
            .table_name(table)
            .key("PK", AttributeValue::S("FLOOR".into()))
            .key("SK", AttributeValue::S("FLOOR".into()))
            .send()
            .await?;
        Ok::<_, Error>(json!({ "found": read.item.is_some() }))
    }))
    .await
}

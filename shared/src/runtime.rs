//! What every Lambda's `main` does once, before the first event: JSON logs, configuration
//! from the environment, the DynamoDB client.

use std::sync::Arc;

use crate::domain::SystemClock;
use crate::ops::Billing;
use crate::store::Store;
use crate::store::dynamodb::DynamoTable;

/// The table's name, set by template.yaml.
pub const TABLE_NAME_VAR: &str = "TABLE_NAME";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
}

/// JSON logs filtered by `RUST_LOG` (default `info`), without ANSI colours (CloudWatch).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_current_span(false)
        .without_time()
        .init();
}

/// The operations over the production table named by `TABLE_NAME`, on the real clock.
pub async fn billing_from_env() -> Result<Arc<Billing<DynamoTable>>, ConfigError> {
    let table = std::env::var(TABLE_NAME_VAR).map_err(|_| ConfigError::Missing(TABLE_NAME_VAR))?;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    Ok(Arc::new(Billing::new(Store::new(DynamoTable::new(client, table)), Arc::new(SystemClock))))
}

//! What every Lambda's `main` does once, before the first event: JSON logs, configuration
//! from the environment, the DynamoDB client.

use std::sync::Arc;

use billing::Billing;
use domain::{Currency, Meters, SystemClock};
use store::Store;
use store::dynamodb::DynamoTable;

/// The table's name, set by template.yaml.
pub const TABLE_NAME_VAR: &str = "TABLE_NAME";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {why}")]
    Invalid { name: &'static str, why: String },
    #[error("SSM parameter {name}: {why}")]
    Parameter { name: String, why: String },
}

/// JSON logs filtered by `RUST_LOG` (default `info`), without ANSI colours (CloudWatch).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_ansi(false)
        // The request span's fields (request id, operation, partner, workspace) on every line.
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .init();
}

/// The AWS configuration of the function's role and region.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The operations over the production table named by `TABLE_NAME`, on the real clock.
pub async fn billing_from_env() -> Result<Arc<Billing<DynamoTable>>, ConfigError> {
    Ok(Arc::new(billing(&aws_config().await)?))
}

/// [`billing_from_env`] with a configuration already loaded (to add [`billing::Payments`]).
pub fn billing(config: &aws_config::SdkConfig) -> Result<Billing<DynamoTable>, ConfigError> {
    let table = env(TABLE_NAME_VAR)?;
    let client = aws_sdk_dynamodb::Client::new(config);
    let billing = Billing::new(Store::new(DynamoTable::new(client, table)), Arc::new(SystemClock));
    Ok(billing.with_meters(meters_from_env()?).with_platform(platform_from_env()?))
}

/// The deployment's default wholesale floor per point, per currency, `currency=price` separated
/// by commas (`usd=0.12,eur=0.11`); unset, one US cent in USD. A partner's own terms replace it.
pub const WHOLESALE_FLOORS_VAR: &str = "WHOLESALE_FLOORS";

/// The platform's figures from [`WHOLESALE_FLOORS_VAR`]; a value that does not parse stops the
/// function at init.
pub fn platform_from_env() -> Result<billing::PlatformConfig, ConfigError> {
    let wholesale_floors = match std::env::var(WHOLESALE_FLOORS_VAR) {
        Ok(v) => domain::WholesaleFloors::parse_setting(&v)
            .map_err(|e| ConfigError::Invalid { name: WHOLESALE_FLOORS_VAR, why: e.to_string() })?,
        Err(_) => domain::WholesaleFloors::default(),
    };
    Ok(billing::PlatformConfig { wholesale_floors })
}

/// The platform's meters and their wholesale unit costs in USD, `code=unit_cost` separated by
/// commas (`voice_minutes=0.07,sms=0.01`); unset, voice minutes at 0.07.
pub const PLATFORM_METERS_VAR: &str = "PLATFORM_METERS";

/// The meters of [`PLATFORM_METERS_VAR`]; a value that does not parse stops the function at init.
pub fn meters_from_env() -> Result<Meters, ConfigError> {
    match std::env::var(PLATFORM_METERS_VAR) {
        Ok(v) if !v.trim().is_empty() => {
            Meters::parse(Currency::USD, &v).map_err(|why| ConfigError::Invalid { name: PLATFORM_METERS_VAR, why })
        }
        _ => Ok(Meters::default_usd()),
    }
}

/// `"true"` on a deployment that takes real money, `"false"` on a test one (template.yaml's
/// `StripeLivemode`).
pub const STRIPE_LIVEMODE_VAR: &str = "STRIPE_LIVEMODE";
/// The SSM parameter (SecureString) holding the platform's Stripe secret key.
pub const STRIPE_SECRET_KEY_PARAM_VAR: &str = "STRIPE_SECRET_KEY_PARAM";
/// The SSM parameter (SecureString) holding the webhook signing secrets, comma-separated (two
/// during a rotation).
pub const STRIPE_WEBHOOK_SECRETS_PARAM_VAR: &str = "STRIPE_WEBHOOK_SECRETS_PARAM";
/// The same for the platform account's own webhook endpoint (`POST /stripe/platform-webhook`).
pub const STRIPE_PLATFORM_WEBHOOK_SECRETS_PARAM_VAR: &str = "STRIPE_PLATFORM_WEBHOOK_SECRETS_PARAM";

fn env(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).ok_or(ConfigError::Missing(name))
}

#[cfg(feature = "ssm")]
fn livemode_from_env() -> Result<bool, ConfigError> {
    match env(STRIPE_LIVEMODE_VAR)?.as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => {
            Err(ConfigError::Invalid { name: STRIPE_LIVEMODE_VAR, why: format!("{other:?} is not true or false") })
        }
    }
}

/// Whether a Stripe secret key is a live one (`sk_live_...`, `rk_live_...`).
pub fn is_live_key(key: &str) -> bool {
    key.starts_with("sk_live_") || key.starts_with("rk_live_")
}

/// Reads a SecureString parameter, decrypted. Its value never reaches a log.
#[cfg(feature = "ssm")]
pub async fn parameter(config: &aws_config::SdkConfig, var: &'static str) -> Result<String, ConfigError> {
    let name = env(var)?;
    let client = aws_sdk_ssm::Client::new(config);
    let answer = client.get_parameter().name(&name).with_decryption(true).send().await.map_err(|e| {
        ConfigError::Parameter { name: name.clone(), why: aws_sdk_ssm::error::DisplayErrorContext(e).to_string() }
    })?;
    answer
        .parameter
        .and_then(|p| p.value)
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Parameter { name, why: "the parameter is empty".into() })
}

/// The webhook function's Stripe: the signing secrets and the mode, no client.
#[cfg(feature = "ssm")]
pub async fn webhook_payments_from_env(config: &aws_config::SdkConfig) -> Result<billing::Payments, ConfigError> {
    let livemode = livemode_from_env()?;
    let secrets = |list: String| -> Vec<String> {
        list.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
    };
    let (connect, platform) = tokio::try_join!(
        parameter(config, STRIPE_WEBHOOK_SECRETS_PARAM_VAR),
        parameter(config, STRIPE_PLATFORM_WEBHOOK_SECRETS_PARAM_VAR),
    )?;
    Ok(billing::Payments::new(livemode)
        .with_webhook_secrets(secrets(connect))
        .with_platform_webhook_secrets(secrets(platform)))
}

/// The Stripe client of the functions that call Stripe, with the key from SSM. A key of the
/// other mode than `STRIPE_LIVEMODE` stops the function at init: a test key on a live
/// deployment (or the reverse) is a misconfiguration, not something to run with.
#[cfg(feature = "stripe")]
pub async fn client_payments_from_env(config: &aws_config::SdkConfig) -> Result<billing::Payments, ConfigError> {
    let livemode = livemode_from_env()?;
    let key = parameter(config, STRIPE_SECRET_KEY_PARAM_VAR).await?;
    if is_live_key(&key) != livemode {
        return Err(ConfigError::Invalid {
            name: STRIPE_SECRET_KEY_PARAM_VAR,
            why: format!("the key's mode does not match {STRIPE_LIVEMODE_VAR}={livemode}"),
        });
    }
    let gateway = stripe_gateway::client::StripeGateway::new(stripe_gateway::client::StripeConfig::new(key))
        .map_err(|e| ConfigError::Invalid { name: STRIPE_SECRET_KEY_PARAM_VAR, why: e.to_string() })?;
    Ok(billing::Payments::new(livemode).with_gateway(Arc::new(gateway)))
}

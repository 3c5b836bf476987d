//! What every Lambda's `main` does once, before the first event: JSON logs, configuration
//! from the environment, the DynamoDB client, and the Stripe a function needs; then the
//! runtime's loop ([`serve_http`], [`serve_events`]).

use std::sync::Arc;

use billing::Billing;
use domain::{Currency, Meters, SystemClock};
use store::Store;
use store::dynamodb::DynamoTable;

#[cfg(feature = "stripe")]
pub mod lazy_gateway;
pub mod metrics;
mod serve;
pub mod xray;

#[cfg(feature = "stripe")]
use lazy_gateway::LazyGateway;
#[cfg(feature = "http")]
pub use serve::serve_http;
pub use serve::{Error, Operations, Stripe, deadline_instant, init, serve_events};

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

/// JSON logs filtered by `RUST_LOG` (default `info`), without ANSI colours (CloudWatch); and,
/// when Lambda runs an X-Ray daemon beside the function, the calls' subsegments
/// ([`xray::XrayLayer`]).
pub fn init_tracing() {
    use tracing_subscriber::layer::{Layer, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        // The spans made for X-Ray stay out of the log: as a line's current span they would
        // hide the request's.
        .add_directive(format!("{}=off", xray::TARGET).parse().expect("a directive"));
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .with_ansi(false)
        // The request span's fields (request id, operation, partner, workspace) on every line.
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .with_filter(filter);
    let (traces, unusable) = match xray::XrayLayer::from_env() {
        Ok(layer) => (layer, None),
        Err(why) => (None, Some(why)),
    };
    tracing_subscriber::registry().with(logs).with(traces.map(|l| l.with_filter(xray::XrayLayer::filter()))).init();
    if let Some(why) = unusable {
        tracing::warn!(error = %why, "X-Ray's daemon can't be reached: no subsegments are sent");
    }
}

/// The roots of trust of AWS's endpoints (Amazon Trust Services, and the Starfield root it is
/// cross-signed by), as AWS documents them for its services.
const AWS_ROOTS: &str = include_str!("aws-roots.pem");

/// A PEM bundle trusted instead of [`AWS_ROOTS`] (a proxy with its own CA, say).
pub const AWS_CA_BUNDLE_VAR: &str = "AWS_CA_BUNDLE";

/// The AWS configuration of the function's role and region. Its HTTPS client trusts the roots
/// AWS's endpoints chain to, compiled in, rather than the system's: parsing the system's 146
/// took 3.3 of the 5 ms a function's init spent beyond an empty one (measured on this project's
/// machine). `AWS_CA_BUNDLE` names a bundle to trust instead.
pub async fn aws_config() -> Result<aws_config::SdkConfig, ConfigError> {
    use aws_smithy_http_client::ConnectorBuilder;
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let roots = match std::env::var(AWS_CA_BUNDLE_VAR) {
        Ok(path) => {
            let bundle = std::fs::read(&path)
                .map_err(|e| ConfigError::Invalid { name: AWS_CA_BUNDLE_VAR, why: format!("{path}: {e}") })?;
            root_count(&bundle)
                .map_err(|why| ConfigError::Invalid { name: AWS_CA_BUNDLE_VAR, why: format!("{path}: {why}") })?;
            bundle
        }
        Err(_) => AWS_ROOTS.as_bytes().to_vec(),
    };
    let tls = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(roots))
        .build()
        .map_err(|e| ConfigError::Invalid { name: AWS_CA_BUNDLE_VAR, why: e.to_string() })?;
    // The SDK's own default client (`aws-smithy-runtime`'s `default_https_client`: rustls on
    // aws-lc, the timeouts and sleep of the client's settings, a proxy from the environment),
    // with our trust store.
    let http = aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        connector.set_tls_context(tls.clone());
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    });
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    // Lambda puts the role's credentials and the region in the environment (AWS_ACCESS_KEY_ID,
    // AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION): read them there rather than build
    // the default chains (profile files, SSO, web identity, containers, IMDS): building them was
    // about half a millisecond of every start (measured on this project's machine). Everything
    // else, the endpoint URLs included, is still read as the SDK reads it.
    let loader = if std::env::var_os(LAMBDA_FUNCTION_NAME_VAR).is_some() {
        loader
            .region(aws_config::environment::EnvironmentVariableRegionProvider::new())
            .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
    } else {
        loader
    };
    Ok(loader.load().await)
}

/// Set by Lambda in every function's environment.
const LAMBDA_FUNCTION_NAME_VAR: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// How many roots of trust a PEM bundle holds; an error for a bundle with none, or with one that
/// is not a certificate (the SDK's client would panic on it).
fn root_count(pem: &[u8]) -> Result<usize, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.map_err(|e| format!("not PEM: {e}"))?).map_err(|e| format!("not a certificate: {e}"))?;
    }
    if roots.is_empty() { Err("no certificate in it".into()) } else { Ok(roots.len()) }
}

/// The operations over the production table named by `TABLE_NAME`, on the real clock.
pub async fn billing_from_env() -> Result<Arc<Billing<DynamoTable>>, ConfigError> {
    Ok(Arc::new(billing(&aws_config().await?)?))
}

/// [`billing_from_env`] with a configuration already loaded (to add [`billing::Payments`]).
pub fn billing(config: &aws_config::SdkConfig) -> Result<Billing<DynamoTable>, ConfigError> {
    let table = env(TABLE_NAME_VAR)?;
    let client = store::dynamodb::client(config, store::dynamodb::ATTEMPT_TIMEOUT, store::dynamodb::OPERATION_TIMEOUT);
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
    Ok(billing::PlatformConfig { wholesale_floors, ..Default::default() })
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

/// Reads the SecureString parameter named by the variable `var`, decrypted. Its value never
/// reaches a log.
#[cfg(feature = "ssm")]
pub async fn parameter(config: &aws_config::SdkConfig, var: &'static str) -> Result<String, ConfigError> {
    read_parameter(config, env(var)?).await
}

#[cfg(feature = "ssm")]
async fn read_parameter(config: &aws_config::SdkConfig, name: String) -> Result<String, ConfigError> {
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

/// Reads several SecureString parameters, decrypted, in one `GetParameters` call: their values
/// in the order of `names`. A name SSM does not know, or an empty value, is an error naming it.
#[cfg(feature = "ssm")]
async fn read_parameters(config: &aws_config::SdkConfig, names: &[String]) -> Result<Vec<String>, ConfigError> {
    let client = aws_sdk_ssm::Client::new(config);
    let answer =
        client.get_parameters().set_names(Some(names.to_vec())).with_decryption(true).send().await.map_err(|e| {
            ConfigError::Parameter {
                name: names.join(", "),
                why: aws_sdk_ssm::error::DisplayErrorContext(e).to_string(),
            }
        })?;
    if let Some(unknown) = answer.invalid_parameters.filter(|u| !u.is_empty()) {
        return Err(ConfigError::Parameter { name: unknown.join(", "), why: "no such parameter".into() });
    }
    let found = answer.parameters.unwrap_or_default();
    names
        .iter()
        .map(|name| {
            found
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| p.value.clone())
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ConfigError::Parameter { name: name.clone(), why: "the parameter is empty".into() })
        })
        .collect()
}

/// The webhook function's Stripe: the signing secrets (both endpoints', read in one call) and
/// the mode, no client.
#[cfg(feature = "ssm")]
pub async fn webhook_payments_from_env(config: &aws_config::SdkConfig) -> Result<billing::Payments, ConfigError> {
    let livemode = livemode_from_env()?;
    let secrets = |list: &str| -> Vec<String> {
        list.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
    };
    let names = [env(STRIPE_WEBHOOK_SECRETS_PARAM_VAR)?, env(STRIPE_PLATFORM_WEBHOOK_SECRETS_PARAM_VAR)?];
    let values = read_parameters(config, &names).await?;
    let [connect, platform] = values.as_slice() else { unreachable!("one value per name") };
    Ok(billing::Payments::new(livemode)
        .with_webhook_secrets(secrets(connect))
        .with_platform_webhook_secrets(secrets(platform)))
}

/// Where the Stripe client sends its calls instead of api.stripe.com and connect.stripe.com:
/// the Stripe fake on loopback, for the wiring test and the init benchmark, which start the
/// real binaries. Unset on a deployment; set on a live one, it stops the function at init.
pub const STRIPE_API_BASE_VAR: &str = "STRIPE_API_BASE";

/// The Stripe client of the functions that may call Stripe, built on the first call that needs
/// it ([`LazyGateway`]): the key is read from SSM then, not at init. A key of the other mode
/// than `STRIPE_LIVEMODE` (a test key on a live deployment, or the reverse) is a
/// misconfiguration: that call fails as retryable, logged, without reaching Stripe.
#[cfg(feature = "stripe")]
pub fn client_payments_from_env(config: &aws_config::SdkConfig) -> Result<billing::Payments, ConfigError> {
    Ok(billing::Payments::new(livemode_from_env()?).with_gateway(lazy_client_from_env(config)?))
}

/// The Stripe client alone, as [`client_payments_from_env`] builds it.
#[cfg(feature = "stripe")]
pub fn lazy_client_from_env(config: &aws_config::SdkConfig) -> Result<Arc<LazyGateway>, ConfigError> {
    let livemode = livemode_from_env()?;
    // Both read now: a function missing either is misdeployed, which init should say.
    let key_param = env(STRIPE_SECRET_KEY_PARAM_VAR)?;
    let base = std::env::var(STRIPE_API_BASE_VAR).ok().filter(|v| !v.trim().is_empty());
    if livemode && base.is_some() {
        return Err(ConfigError::Invalid {
            name: STRIPE_API_BASE_VAR,
            why: format!("a live deployment ({STRIPE_LIVEMODE_VAR}=true) calls Stripe itself"),
        });
    }
    let config = config.clone();
    let gateway = LazyGateway::new(move || {
        let (config, key_param, base) = (config.clone(), key_param.clone(), base.clone());
        async move {
            let key = read_parameter(&config, key_param).await?;
            stripe_client(key, livemode, base.as_deref())
        }
    });
    Ok(Arc::new(gateway))
}

/// The client over `key`, refused when the key's mode is not the deployment's.
#[cfg(feature = "stripe")]
fn stripe_client(
    key: String,
    livemode: bool,
    base: Option<&str>,
) -> Result<Arc<dyn stripe_gateway::gateway::Gateway>, ConfigError> {
    if is_live_key(&key) != livemode {
        return Err(ConfigError::Invalid {
            name: STRIPE_SECRET_KEY_PARAM_VAR,
            why: format!("the key's mode does not match {STRIPE_LIVEMODE_VAR}={livemode}"),
        });
    }
    let mut config = stripe_gateway::client::StripeConfig::new(key);
    if let Some(base) = base {
        config = config.with_base(base);
    }
    let gateway = stripe_gateway::client::StripeGateway::new(config)
        .map_err(|e| ConfigError::Invalid { name: STRIPE_SECRET_KEY_PARAM_VAR, why: e.to_string() })?;
    Ok(Arc::new(gateway))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_roots_are_the_five_aws_documents() {
        assert_eq!(root_count(AWS_ROOTS.as_bytes()), Ok(5));
    }

    #[test]
    fn a_bundle_that_is_not_certificates_is_refused() {
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(root_count(garbage).unwrap_err().starts_with("not a certificate"));
        assert_eq!(root_count(b"nothing here"), Err("no certificate in it".into()));
    }
}

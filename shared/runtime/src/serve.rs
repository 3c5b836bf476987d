//! A function's `main` in one call: JSON logs, the configuration and the clients once, then
//! the runtime's loop handing each event to the function's handler with them.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use billing::Billing;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use store::dynamodb::DynamoTable;

use crate::ConfigError;

/// What `main` returns: an init failure (already logged) or the runtime's own.
pub type Error = lambda_runtime::Error;

/// The operations every handler gets, over the production table.
pub type Operations = Arc<Billing<DynamoTable>>;

/// What a function needs of Stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stripe {
    /// Nothing: it neither calls Stripe nor hears from it.
    None,
    /// The webhook endpoints' signing secrets, read from SSM at init: every request checks a
    /// signature, so deferring them would only move the read into the first request.
    #[cfg(feature = "ssm")]
    WebhookSecrets,
    /// The client, its key read from SSM on the first call that needs it
    /// ([`crate::lazy_gateway::LazyGateway`]).
    #[cfg(feature = "stripe")]
    Client,
    /// Both: the webhook, which reads a subscription from Stripe when an event says it changed.
    #[cfg(feature = "stripe")]
    WebhookSecretsAndClient,
}

/// Logs, configuration, the clients: what a function builds once. A failure is logged and
/// ends the process before its first `/next` (Lambda reports the init as failed).
pub async fn init(stripe: Stripe) -> Result<Operations, Error> {
    crate::init_tracing();
    let built = async {
        let config = crate::aws_config().await?;
        let billing = crate::billing(&config)?;
        let billing = match stripe {
            Stripe::None => billing,
            #[cfg(feature = "ssm")]
            Stripe::WebhookSecrets => billing.with_payments(crate::webhook_payments_from_env(&config).await?),
            #[cfg(feature = "stripe")]
            Stripe::Client => billing.with_payments(crate::client_payments_from_env(&config)?),
            #[cfg(feature = "stripe")]
            Stripe::WebhookSecretsAndClient => billing.with_payments(
                crate::webhook_payments_from_env(&config).await?.with_gateway(crate::lazy_client_from_env(&config)?),
            ),
        };
        Ok::<_, ConfigError>(Arc::new(billing))
    };
    built.await.map_err(|e| {
        tracing::error!(error = %e, "init failed");
        e.into()
    })
}

/// Serves API Gateway's HTTP events: `handler` answers each request (its errors are answers
/// already, so the runtime only ever sees a response).
#[cfg(feature = "http")]
pub async fn serve_http<F, Fut>(stripe: Stripe, handler: F) -> Result<(), Error>
where
    F: Fn(Operations, lambda_http::Request) -> Fut,
    Fut: Future<Output = lambda_http::Response<lambda_http::Body>> + Send,
{
    let billing = init(stripe).await?;
    lambda_http::run(lambda_http::service_fn(|req| {
        let answer = handler(billing.clone(), req);
        async move { Ok::<_, std::convert::Infallible>(answer.await) }
    }))
    .await
}

/// Serves JSON events (a schedule's): `handler`'s summary is the invocation's result, its error
/// the invocation's error.
pub async fn serve_events<F, Fut, E>(stripe: Stripe, handler: F) -> Result<(), Error>
where
    F: Fn(Operations, LambdaEvent<Value>) -> Fut,
    Fut: Future<Output = Result<Value, E>> + Send,
    E: Into<Diagnostic> + std::fmt::Debug,
{
    let billing = init(stripe).await?;
    lambda_runtime::run(lambda_runtime::service_fn(|event| handler(billing.clone(), event))).await
}

/// An invocation's deadline (wall-clock time, as Lambda gives it: `event.context.deadline()`) on
/// the monotonic clock, which a scheduled or stream run measures itself by: `now` and
/// `now_instant` are the same moment on both. A deadline already past is `now_instant`.
pub fn deadline_instant(deadline: SystemTime, now: SystemTime, now_instant: Instant) -> Instant {
    now_instant + deadline.duration_since(now).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_moves_to_the_monotonic_clock() {
        let (now, now_instant) = (SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000), Instant::now());
        let in_15_min = now + Duration::from_millis(900_000);
        assert_eq!(deadline_instant(in_15_min, now, now_instant), now_instant + Duration::from_secs(900));
        assert_eq!(deadline_instant(now - Duration::from_secs(1), now, now_instant), now_instant, "already past");
        let (wall, i) = (SystemTime::now(), Instant::now());
        assert_eq!(deadline_instant(wall + Duration::from_secs(3), wall, i), i + Duration::from_secs(3));
        assert_eq!(deadline_instant(wall - Duration::from_secs(3), wall, i), i);
    }
}

//! The renew-addons Lambda: tracing, the run's limits, the Stripe key from SSM and the clients
//! once, then one renewal run per scheduled event (whose payload says nothing we need).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    runtime::init_tracing();
    let limits = renew_addons::limits_from_env(|name| std::env::var(name).ok())?;
    let config = runtime::aws_config().await;
    // A renewal short of points may top the wallet up on the workspace's saved card first.
    let payments = runtime::client_payments_from_env(&config).await?;
    let billing = Arc::new(runtime::billing(&config)?.with_payments(payments));
    run(service_fn(|event: LambdaEvent<Value>| {
        let billing = billing.clone();
        async move {
            let deadline = renew_addons::deadline_instant(event.context.deadline(), SystemTime::now(), Instant::now());
            let run = renew_addons::handle(&billing, deadline, limits).await?;
            Ok::<_, renew_addons::RenewError>(run.summary())
        }
    }))
    .await
}

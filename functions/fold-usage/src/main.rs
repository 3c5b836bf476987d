//! The fold-usage Lambda: tracing, the DynamoDB client and the Stripe client (a fold below a
//! partner wallet's refill threshold charges the partner's card) once, then one fold run per
//! scheduled event (whose payload says nothing we need).
// The fold's future nests the store's retrying transaction inside the run's loop inside the
// runtime's service: deeper than the default limit lets rustc compute its layout.
#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    runtime::init_tracing();
    let config = runtime::aws_config().await;
    let payments = runtime::client_payments_from_env(&config).await?;
    let billing = Arc::new(runtime::billing(&config)?.with_payments(payments));
    run(service_fn(|event: LambdaEvent<Value>| {
        let billing = Arc::clone(&billing);
        async move {
            let deadline = fold_usage::deadline_instant(event.context.deadline(), SystemTime::now(), Instant::now());
            let run = fold_usage::handle(&billing, deadline).await?;
            Ok::<_, fold_usage::FoldError>(run.summary())
        }
    }))
    .await
}

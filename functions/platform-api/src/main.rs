//! The platform-api Lambda: tracing, configuration and clients once, then one handler per event.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    runtime::init_tracing();
    let config = runtime::aws_config().await;
    // A usage debit below a workspace's refill threshold charges its saved card (auto top-up).
    let payments = runtime::client_payments_from_env(&config).await?;
    let billing = Arc::new(runtime::billing(&config)?.with_payments(payments));
    run(service_fn(|req: Request| {
        let billing = billing.clone();
        async move { Ok::<_, Infallible>(platform_api::handle(&billing, req).await) }
    }))
    .await
}

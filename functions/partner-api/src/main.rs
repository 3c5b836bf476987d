//! The partner-api Lambda: tracing, configuration, the Stripe key from SSM (for Connect) and
//! the clients once, then one handler per event.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    runtime::init_tracing();
    let config = runtime::aws_config().await;
    let payments = runtime::client_payments_from_env(&config).await?;
    let billing = Arc::new(runtime::billing(&config)?.with_payments(payments));
    run(service_fn(|req: Request| {
        let billing = billing.clone();
        async move { Ok::<_, Infallible>(partner_api::handle(&billing, req).await) }
    }))
    .await
}

//! The stripe-webhook Lambda: tracing, configuration, the webhook secrets from SSM and the
//! DynamoDB client once, then one handler per event. It never calls Stripe.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    runtime::init_tracing();
    let config = runtime::aws_config().await;
    let payments = runtime::webhook_payments_from_env(&config).await?;
    let billing = Arc::new(runtime::billing(&config)?.with_payments(payments));
    run(service_fn(|req: Request| {
        let billing = billing.clone();
        async move { Ok::<_, Infallible>(stripe_webhook::handle(&billing, req).await) }
    }))
    .await
}

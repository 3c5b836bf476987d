//! The adjust-points Lambda: tracing, configuration and clients once, then one handler per event.

use std::convert::Infallible;

use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    runtime::init_tracing();
    let billing = runtime::billing_from_env().await?;
    run(service_fn(|req: Request| {
        let billing = billing.clone();
        async move { Ok::<_, Infallible>(adjust_points::handle(&billing, req).await) }
    }))
    .await
}

//! The reconcile-payments Lambda: [`runtime::serve_events`] builds the clients once (the Stripe
//! key is read from SSM on the first listing), then each scheduled event (whose payload says
//! nothing we need) runs one sweep.
// The sweep's future nests the webhook's crediting transaction inside the run's windows inside
// the runtime's service: deeper than the default limit lets rustc compute its layout.
#![recursion_limit = "256"]

use std::time::{Instant, SystemTime};

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    runtime::serve_events(runtime::Stripe::Client, |billing, event| async move {
        let deadline = runtime::deadline_instant(event.context.deadline(), SystemTime::now(), Instant::now());
        reconcile_payments::handle(&billing, deadline).await.map(|run| run.summary())
    })
    .await
}

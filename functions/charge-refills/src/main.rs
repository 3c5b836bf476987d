//! The charge-refills Lambda: [`runtime::serve_events`] builds the clients once (the Stripe key
//! is read from SSM on the first charge), then each invocation (a batch of the table's stream
//! records, or the scheduled sweep) takes the refill requests it names.
// A request's future nests the refill engine's charge and credit and the renewal after it inside
// the runtime's service: deeper than the default limit lets rustc compute its layout in a release
// build.
#![recursion_limit = "256"]

use std::time::{Instant, SystemTime};

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    runtime::serve_events(runtime::Stripe::Client, |billing, event| async move {
        let deadline = runtime::deadline_instant(event.context.deadline(), SystemTime::now(), Instant::now());
        charge_refills::handle(&billing, &event.payload, deadline).await.map(|run| run.summary())
    })
    .await
}
